import { LruCache } from '../lib/lru';
import type { KeyRing } from '../tokens/key-ring';
import { signToken } from '../tokens/jwt';
import type { Identity } from './identity';

/** Assertions live at most this long (the bound: ≤ 60 s). */
export const ASSERTION_TTL = 60;
/** A cached assertion is reused while it has at least this long left. */
const REUSE_MARGIN = 15;

/** Signed assertions by claims and audience, while reusable; sized by ASSERTION_CACHE_SIZE. */
export const assertionCache = new LruCache<string, string>(10_000, 'assertions');

/**
 * The claims an origin receives, in the assertion as in the headers. A machine caller (a client
 * acting for itself) has no user: its `sub` is `client:<client_id>`, which no user id can equal.
 */
export function assertionClaims(who: Identity, exposeEmail: boolean): Record<string, unknown> {
  const key = who.keyId ? { key_id: who.keyId } : {};
  if (who.kind === 'machine')
    return { sub: `client:${who.clientId}`, client_id: who.clientId, machine: true, scope: (who.scopes ?? []).join(' '), ...key };
  return {
    sub: who.sub,
    ...(who.sid ? { sid: who.sid } : {}),
    roles: who.roles,
    ...(who.tier ? { tier: who.tier } : {}),
    amr: who.amr,
    ...(who.acr ? { acr: who.acr } : {}),
    ...(who.authTime !== null ? { auth_time: who.authTime } : {}),
    ...(who.clientId ? { client_id: who.clientId } : {}),
    ...(who.scopes ? { scope: who.scopes.join(' ') } : {}),
    ...key,
    ...(exposeEmail && who.email ? { email: who.email, email_verified: who.emailVerified } : {}),
  };
}

/**
 * A short-lived JWT (`typ: gatehouse-assertion+jwt`, `aud` = the route's origin) stating the
 * identity, signed ES256 and verifiable against the JWKS. Signing per request would cost a
 * signature each time; one assertion is reused while it is fresh for exactly the same claims,
 * audience and credential expiry (the cache key is all of them), and never outlives the credential.
 */
export async function assertionFor(
  ring: KeyRing,
  a: { who: Identity; audience: string; issuer: string; exposeEmail: boolean; now: number },
): Promise<string> {
  const nowS = Math.floor(a.now / 1000);
  const claims = assertionClaims(a.who, a.exposeEmail);
  const key = JSON.stringify([a.audience, a.issuer, a.who.exp, claims]);
  const hit = assertionCache.get(key, a.now);
  if (hit) return hit;
  const ttl = Math.max(1, Math.min(ASSERTION_TTL, a.who.exp - nowS));
  const { token, exp } = await signToken(ring, { kind: 'assertion', claims, issuer: a.issuer, audience: a.audience, ttl, now: a.now });
  // Reused while at least REUSE_MARGIN seconds are left.
  assertionCache.set(key, token, (exp - REUSE_MARGIN + 1) * 1000);
  return token;
}
