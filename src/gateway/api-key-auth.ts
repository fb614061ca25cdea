import { and, eq, sql } from 'drizzle-orm';
import { apiKeys, apiResources, clientResources, oauthClients, userRoles, users } from '../db/schema';
import type { Deps } from '../deps';
import { sha256, timingSafeEqualString } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import { LruCache } from '../lib/lru';
import { ipKey } from '../lib/rate-limit';
import { parseApiKey } from '../oauth/api-keys';
import type { Identity } from './identity';

/**
 * How long an isolate trusts an API key record it read (docs/origin.md "API keys"): within it a key
 * is verified with no D1 read; a key revoked or changed in D1 stops working on a warm isolate
 * within this — at once on `fresh` routes, which read the record on every request.
 */
export const API_KEY_CACHE_TTL_MS = 60_000;
/** `last_used_at` is written at most this often per key and isolate, after the response. */
const LAST_USED_EVERY_MS = 60_000;

interface KeyRecord {
  secretHash: string;
  /** False when the owning client may no longer ask tokens for the key's API, or the owning user is blocked. */
  ownerMayUse: boolean;
  userId: string | null;
  clientId: string | null;
  resource: string;
  scopes: string[];
  expiresAt: number | null;
  revokedAt: number | null;
  /** The owning user's, when a user owns it (as of the read). */
  roles: string[];
  tier: string | null;
  /** When this isolate last recorded the key's use. */
  touchedAt: number;
  /** Until when this isolate trusts the record. */
  cachedUntil: number;
}

const cache = new LruCache<string, KeyRecord>(5_000, 'api_keys');

export type KeyCheck = { status: 'ok'; who: Identity } | { status: 'rejected'; reason: string };

/**
 * A key's record as it stands now, in one D1 statement: the key, the API's current scopes, and
 * what its owner may still have — a client's grant at that API (none: the key opens nothing; a
 * narrower one narrows the key) or a user's roles and tier. The key's scopes are what is left of
 * its own after the API and the grant.
 */
async function readKey(deps: Deps, id: string, now: number): Promise<KeyRecord | null> {
  const row = await failClosed('the database', () =>
    deps.db
      .select({
        key: apiKeys,
        apiScopes: apiResources.scopes,
        granted: clientResources.scopes,
        clientAuth: oauthClients.tokenEndpointAuthMethod,
        clientGrants: oauthClients.grantTypes,
        tier: users.tier,
        userBlockedAt: users.blockedAt,
        roles: sql<string>`(SELECT json_group_array(${userRoles.role}) FROM ${userRoles} WHERE ${userRoles.userId} = ${apiKeys.userId})`,
      })
      .from(apiKeys)
      .innerJoin(apiResources, eq(apiResources.identifier, apiKeys.resource))
      .leftJoin(clientResources, and(eq(clientResources.clientId, apiKeys.clientId), eq(clientResources.resource, apiKeys.resource)))
      .leftJoin(oauthClients, eq(oauthClients.clientId, apiKeys.clientId))
      .leftJoin(users, eq(users.id, apiKeys.userId))
      .where(eq(apiKeys.id, id))
      .get(),
  );
  if (!row) return null;
  const { key } = row;
  const defined = (JSON.parse(row.apiScopes) as { name: string }[]).map((s) => s.name);
  let scopes = (JSON.parse(key.scopes) as string[]).filter((s) => defined.includes(s));
  // A user's key speaks for them only while they may sign in: a blocked account's keys open nothing.
  let ownerMayUse = key.userId === null || row.userBlockedAt === null;
  if (key.clientId) {
    // A client that may no longer ask tokens for the API (or cannot act for itself) has no key to it either.
    const machine =
      row.clientAuth !== null &&
      row.clientAuth !== 'none' &&
      (JSON.parse(row.clientGrants ?? '[]') as string[]).includes('client_credentials');
    ownerMayUse = row.granted !== null && machine;
    const granted = JSON.parse(row.granted ?? '[]') as string[];
    scopes = scopes.filter((s) => granted.includes(s));
  }
  return {
    ownerMayUse,
    secretHash: key.secretHash,
    userId: key.userId,
    clientId: key.clientId,
    resource: key.resource,
    scopes,
    expiresAt: key.expiresAt,
    revokedAt: key.revokedAt,
    roles: key.userId ? (JSON.parse(row.roles) as string[]).sort() : [],
    tier: row.tier,
    touchedAt: key.lastUsedAt ?? 0,
    cachedUntil: now + API_KEY_CACHE_TTL_MS,
  };
}

/**
 * Verifies an API key in the isolate: its form and check first (a mistyped or made-up key costs no
 * lookup), then its record — from the isolate's cache while fresh, else from D1 behind the per-IP
 * credential limit (so a spray of well-formed keys cannot turn into a D1 read each) — then the
 * secret's hash in constant time, revocation and expiry. The key's API must be one the route
 * accepts. Records the use at most once a minute, after the response (`defer`).
 */
export async function verifyApiKey(
  deps: Deps,
  presented: string,
  c: { audiences: readonly string[]; fresh: boolean; ip: string | null; defer: (task: Promise<void>) => void },
): Promise<KeyCheck> {
  const parsed = parseApiKey(presented.trim());
  if (!parsed) return { status: 'rejected', reason: 'The API key is not valid.' };
  const now = deps.now();
  const cached = cache.get(parsed.id, now);
  const secretHash = await sha256(parsed.secret);
  const matches = (r: KeyRecord) => timingSafeEqualString(secretHash, r.secretHash);
  let record = c.fresh ? undefined : cached;
  if (!record) {
    // A key this isolate has not seen (or whose secret does not match what it saw) costs a D1 read
    // only within the per-IP credential limit; a known key re-read on a fresh route does not.
    if (!(cached && matches(cached)) && !(await deps.rateLimit(ipKey(c.ip))))
      throw new GatehouseError('rate_limited', 'Too many requests from this address; wait a minute and try again.', { retryAfter: 60 });
    const read = await readKey(deps, parsed.id, now);
    if (!read) return { status: 'rejected', reason: 'The API key is not valid.' };
    record = read;
    cache.set(parsed.id, record, record.cachedUntil);
  }
  if (!matches(record)) return { status: 'rejected', reason: 'The API key is not valid.' };
  if (record.revokedAt !== null) return { status: 'rejected', reason: 'The API key has been revoked.' };
  if (!record.ownerMayUse)
    return {
      status: 'rejected',
      reason: record.userId
        ? 'The account this API key acts for is blocked.'
        : 'The client that owns this API key may no longer use its API.',
    };
  if (record.expiresAt !== null && record.expiresAt <= now) return { status: 'rejected', reason: 'The API key has expired.' };
  if (!c.audiences.includes(record.resource)) return { status: 'rejected', reason: 'The API key is not for this API.' };
  if (now - record.touchedAt >= LAST_USED_EVERY_MS) {
    record.touchedAt = now;
    c.defer(
      deps.db
        .update(apiKeys)
        .set({ lastUsedAt: now })
        .where(eq(apiKeys.id, parsed.id))
        .then(() => undefined),
    );
  }
  return { status: 'ok', who: identityFromKey(parsed.id, record) };
}

/** Drops a key's cached record: after Gatehouse itself revoked or changed it. */
export function forgetApiKey(id: string): void {
  cache.delete(id);
}

/**
 * Who a key speaks for: its user, or its client acting for itself (a machine). No sign-in stands
 * behind it — no session, amr, acr or auth_time — so routes that ask how or when someone signed in
 * refuse it. `exp` bounds the gateway's assertion: the key's expiry, or the cached record's.
 */
function identityFromKey(id: string, r: KeyRecord): Identity {
  const validUntil = Math.min(r.expiresAt ?? Number.POSITIVE_INFINITY, r.cachedUntil);
  return {
    via: 'api_key',
    kind: r.clientId ? 'machine' : 'user',
    sub: r.userId ?? r.clientId!,
    sid: null,
    email: null,
    emailVerified: null,
    roles: r.roles,
    tier: r.tier,
    amr: [],
    acr: null,
    authTime: null,
    scopes: r.scopes,
    clientId: r.clientId,
    grantId: null,
    jti: null,
    keyId: id,
    exp: Math.floor(validUntil / 1000),
  };
}
