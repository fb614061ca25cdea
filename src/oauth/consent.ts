import { and, eq } from 'drizzle-orm';
import { consents } from '../db/schema';
import type { Deps } from '../deps';
import { audit, type RequestMeta } from '../identity/audit';
import { randomToken, sha256 } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import type { SessionClaims } from '../sessions/session-token';
import { findResource } from './api-resource-cache';
import { KNOWN_SCOPES, type Client } from './clients';
import type { ResourceScope } from './api-resources';

/** How long a consent page may wait for its answer. */
const CONSENT_TTL_MS = 10 * 60_000;

/**
 * What a user has granted a client so far: its OpenID scopes, and for each API (RFC 8707 resource)
 * its tokens may be for, the scopes of that API — an API's scope is agreed to for that API only,
 * so two APIs that both call a scope `read` are two consents.
 */
export interface Consent {
  scopes: string[];
  apis: Record<string, string[]>;
}

/** What an authorization request asks consent for: its OpenID scopes, and each named API with the scopes of it the client may have. */
export function consentAsked(req: { client: Client; scope: readonly string[]; resources: readonly string[] }): Consent {
  return {
    scopes: req.scope.filter((s) => (KNOWN_SCOPES as readonly string[]).includes(s)),
    apis: Object.fromEntries(req.resources.map((r) => [r, req.scope.filter((s) => (req.client.resourceScopes[r] ?? []).includes(s))])),
  };
}

export async function storedConsent(deps: Deps, userId: string, clientId: string): Promise<Consent> {
  const stored = await failClosed('the database', () =>
    deps.db
      .select()
      .from(consents)
      .where(and(eq(consents.userId, userId), eq(consents.clientId, clientId)))
      .get(),
  );
  if (!stored) return { scopes: [], apis: {} };
  const resources = JSON.parse(stored.resources) as string[] | Record<string, string[]>;
  // Consents recorded before APIs had scopes hold a list of resources, with none of their scopes.
  const apis = Array.isArray(resources) ? Object.fromEntries(resources.map((r) => [r, []])) : resources;
  return { scopes: JSON.parse(stored.scopes) as string[], apis };
}

/** Whether an earlier consent covers a request: every OpenID scope, every API, and each API's scopes for that API. */
export const consentCovers = (granted: Consent, asked: Consent) =>
  asked.scopes.every((s) => granted.scopes.includes(s)) &&
  Object.entries(asked.apis).every(
    ([api, scopes]) => granted.apis[api] !== undefined && scopes.every((s) => granted.apis[api]!.includes(s)),
  );

/** Records consent for what was asked (added to any earlier grant, API by API). */
export async function recordConsent(deps: Deps, userId: string, clientId: string, asked: Consent, meta: RequestMeta): Promise<void> {
  const before = await storedConsent(deps, userId, clientId);
  const scopes = JSON.stringify([...new Set([...before.scopes, ...asked.scopes])].sort());
  const apis: Record<string, string[]> = { ...before.apis };
  for (const [api, granted] of Object.entries(asked.apis)) apis[api] = [...new Set([...(apis[api] ?? []), ...granted])].sort();
  const resources = JSON.stringify(Object.fromEntries(Object.entries(apis).sort(([a], [b]) => a.localeCompare(b))));
  const now = deps.now();
  await failClosed('the database', async () => {
    await audit(deps.db, {
      type: 'consent_granted',
      userId,
      meta,
      detail: { clientId, scope: asked.scopes, apis: asked.apis },
      at: now,
    });
    await deps.db
      .insert(consents)
      .values({ userId, clientId, scopes, resources, grantedAt: now })
      .onConflictDoUpdate({ target: [consents.userId, consents.clientId], set: { scopes, resources, grantedAt: now } });
  });
}

/**
 * Keeps the authorization request a consent page asks about in the user's Durable Object, bound to
 * this session, and returns its id — the only thing the page's form carries. The decision then
 * answers exactly that request (never parameters a form could make up).
 */
export async function holdForConsent(deps: Deps, session: SessionClaims, params: Record<string, string>): Promise<string> {
  const id = randomToken(32);
  await deps.sessions.holdAuthorization(session.sub, await sha256(id), {
    sid: session.sid,
    params,
    expiresAt: deps.now() + CONSENT_TTL_MS,
  });
  return id;
}

/** The held request a decision answers, taken once; only by the session that was asked. */
export async function takeHeldConsent(deps: Deps, session: SessionClaims, id: string | undefined): Promise<Record<string, string>> {
  const gone = () =>
    new GatehouseError('invalid_request', 'This request has expired or was already answered. Go back to the application and start again.');
  if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) throw gone();
  const held = await deps.sessions.takeAuthorization(session.sub, await sha256(id), deps.now());
  if (!held || held.sid !== session.sid) throw gone();
  return held.params;
}

/** An API a consent page names, with the scopes of it the request asks for (as the API describes them). */
export interface ConsentApi {
  identifier: string;
  name: string;
  scopes: ResourceScope[];
}

/**
 * The APIs a consent request names, each with the asked scopes it defines: the page shows the API's
 * own words for them. An API no longer registered is shown by its identifier alone.
 */
export async function consentApis(deps: Deps, req: { scope: readonly string[]; resources: readonly string[] }): Promise<ConsentApi[]> {
  return Promise.all(
    req.resources.map(async (identifier) => {
      const api = await failClosed('the database', () => findResource(deps.db, identifier, deps.now()));
      return {
        identifier,
        name: api?.name ?? identifier,
        scopes: api?.scopes.filter((s) => req.scope.includes(s.name)) ?? [],
      };
    }),
  );
}
