import { eq } from 'drizzle-orm';
import type { JSONWebKeySet } from 'jose';
import type { Database } from '../db/client';
import { clientResources, oauthClients, type ClientResourceRow, type OAuthClientRow } from '../db/schema';
import { deepFreeze, LruCache } from '../lib/lru';

import { KNOWN_SCOPES, type GrantType } from './grants-and-scopes';

export { GRANT_TYPES, KNOWN_SCOPES, type GrantType } from './grants-and-scopes';
export type AuthMethod = OAuthClientRow['tokenEndpointAuthMethod'];

export interface Client {
  clientId: string;
  name: string;
  isPublic: boolean;
  secretHash: string | null;
  authMethod: AuthMethod;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: GrantType[];
  scopes: string[];
  firstParty: boolean;
  accessTokenFormat: 'jwt' | 'opaque';
  idTokenAlg: 'RS256' | 'ES256';
  jwks: JSONWebKeySet | null;
  /** Seconds; null for the server default. */
  accessTokenTtl: number | null;
  refreshTokenIdleTtl: number | null;
  refreshTokenAbsoluteTtl: number | null;
  /** Sign-ins for this client need a second factor. */
  requireMfa: boolean;
  /** RFC 8707 resources (registered APIs) it may ask access tokens for. */
  resources: string[];
  /** For each of those APIs, the scopes of it the client may be given. */
  resourceScopes: Readonly<Record<string, string[]>>;
  /** Resources it is (an API's own credentials): it may introspect their tokens. */
  serves: string[];
  /** PKCE required (always, for public clients); off: OpenID requests may use `nonce` instead. */
  requirePkce: boolean;
  /** Scope-released claims go in the ID token as well as at userinfo. */
  idTokenClaims: boolean;
  /** Authorization requests must be pushed (RFC 9126). */
  requirePar: boolean;
  /** Access tokens only DPoP-bound (RFC 9449 §5.2). Public clients' refresh tokens are bound whenever a proof is given. */
  requireDpop: boolean;
  /** Registered itself through RFC 7591, not by an operator: the consent page says so. */
  selfRegistered: boolean;
}

const list = (json: string) => JSON.parse(json) as string[];

/** A client as the code uses it: its row, and its grants to registered APIs. */
export function clientFromRow(r: OAuthClientRow, grants: readonly ClientResourceRow[] = []): Client {
  return {
    clientId: r.clientId,
    name: r.name,
    isPublic: r.tokenEndpointAuthMethod === 'none',
    secretHash: r.secretHash,
    authMethod: r.tokenEndpointAuthMethod,
    redirectUris: list(r.redirectUris),
    postLogoutRedirectUris: list(r.postLogoutRedirectUris),
    grantTypes: list(r.grantTypes) as GrantType[],
    scopes: list(r.scopes),
    firstParty: r.firstParty,
    accessTokenFormat: r.accessTokenFormat,
    idTokenAlg: r.idTokenSignedResponseAlg,
    jwks: r.jwks ? (JSON.parse(r.jwks) as JSONWebKeySet) : null,
    accessTokenTtl: r.accessTokenTtl,
    refreshTokenIdleTtl: r.refreshTokenIdleTtl,
    refreshTokenAbsoluteTtl: r.refreshTokenAbsoluteTtl,
    requireMfa: r.requireMfa,
    resources: grants.map((g) => g.resource),
    resourceScopes: Object.fromEntries(grants.map((g) => [g.resource, list(g.scopes)])),
    serves: list(r.serves),
    requirePkce: r.requirePkce || r.tokenEndpointAuthMethod === 'none',
    idTokenClaims: r.idTokenClaims,
    requirePar: r.requirePar,
    requireDpop: r.requireDpop,
    selfRegistered: r.registrationTokenHash !== null,
  };
}

const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * How long an isolate keeps a client record it read (docs/oidc.md "Client records in the isolate"):
 * the token endpoint then authenticates a known client without a D1 read. A change made through
 * Gatehouse (dynamic registration's update and delete) takes effect at once on the isolate that
 * made it; on other isolates, and for changes made in D1 directly (the clients CLI), within this.
 */
export const CLIENT_CACHE_TTL_MS = 30_000;
/** At most this many records per isolate; the least recently used goes first. */
const cached = new LruCache<string, Client>(2_000, 'clients');

/**
 * The client with this id (and its API grants), from the isolate's cache while fresh, else from D1
 * in one round trip. Unknown ids are not cached (a caller spraying ids cannot push known clients
 * out). The record is frozen: shared between requests, nobody may change it.
 */
export async function findClient(db: Database, clientId: string, now = Date.now()): Promise<Client | undefined> {
  if (!CLIENT_ID.test(clientId)) return undefined;
  const hit = cached.get(clientId, now);
  if (hit) return hit;
  const [rows, grants] = await db.batch([
    db.select().from(oauthClients).where(eq(oauthClients.clientId, clientId)),
    db.select().from(clientResources).where(eq(clientResources.clientId, clientId)),
  ]);
  const row = rows[0];
  if (!row) return undefined;
  const client = deepFreeze(clientFromRow(row, grants));
  cached.set(clientId, client, now + CLIENT_CACHE_TTL_MS);
  return client;
}

/** Drops a client's cached record: after Gatehouse itself changed or deleted it. */
export function forgetClient(clientId: string): void {
  cached.delete(clientId);
}

/**
 * The resources a grant may be exchanged for (RFC 8707): those the request named — shown on the
 * consent page — or, asking for none, every one a first-party client may have (it needs no
 * consent). A third-party client that named none gets tokens for Gatehouse alone: an API is never
 * reached on a consent that did not name it.
 */
export const grantResources = (r: { client: Client; resources: string[] }) =>
  r.resources.length || !r.client.firstParty ? r.resources : r.client.resources;

/**
 * What a user grant may hold of the scopes asked (OIDC Core §3.1.2.1: unknown ones are ignored,
 * ones this client may not have dropped): its OpenID scopes, and the scopes it was granted at the
 * APIs the grant will cover (grantResources).
 */
export function grantableScope(asked: readonly string[], client: Client, resources: readonly string[]): string[] {
  const allowed = new Set(client.scopes.filter((s) => (KNOWN_SCOPES as readonly string[]).includes(s)));
  for (const r of resources) for (const s of client.resourceScopes[r] ?? []) allowed.add(s);
  return [...new Set(asked.filter((s) => allowed.has(s)))];
}
