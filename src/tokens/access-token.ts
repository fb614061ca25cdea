import type { JWTPayload } from 'jose';
import type { Deps } from '../deps';
import { GatehouseError } from '../lib/errors';
import { LruCache } from '../lib/lru';
import { TokenRejected, verifyToken } from './jwt';

/** The issuer identifier: Gatehouse's public origin (no trailing slash), from config only. */
export const issuerOf = (deps: Deps) => deps.config.publicUrl.origin;

export const invalidToken = (message: string) => new GatehouseError('invalid_token', message);

/** A signed access token as verified: RFC 9068 claims plus `gid` (its grant) and `gty` (its grant type). */
export type AccessTokenClaims = JWTPayload & { sub: string; exp: number; client_id?: string; scope?: string; gid?: string; gty?: string };

/** A token a client got for itself (client_credentials): no user behind it. */
export const isMachineToken = (c: AccessTokenClaims) => c.gty === 'client_credentials' || typeof c.auth_time !== 'number';

// ── Opaque access tokens (the phantom-token pattern) ────────────────────────────────────────
/**
 * `ot1.<owner>.<secret>`, owner = base64url of the name of the object holding the JWT (a user id,
 * or `client:<client_id>`).
 */
const OPAQUE = /^ot1\.([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/;

const b64url = (s: string) => btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const unb64url = (s: string) => atob(s.replace(/-/g, '+').replace(/_/g, '/'));

export const formatOpaqueToken = (owner: string, secret: string) => `ot1.${b64url(owner)}.${secret}`;

export function parseOpaqueToken(token: string): { owner: string; secret: string } | null {
  const m = OPAQUE.exec(token);
  if (!m) return null;
  try {
    const owner = unb64url(m[1]!);
    return /^[A-Za-z0-9_:-]{1,140}$/.test(owner) ? { owner, secret: m[2]! } : null;
  } catch {
    return null;
  }
}

export type PhantomCache = LruCache<string, string>;

/** Opaque access token → its JWT, per isolate, until the JWT expires (the phantom-token pattern); sized by OPAQUE_TOKEN_CACHE_SIZE. */
export const phantomCache: PhantomCache = new LruCache<string, string>(10_000, 'opaque_tokens');

/**
 * The JWT behind an opaque access token, or the token itself. With `cache` (the gateway), the
 * exchange happens once per isolate and the JWT is reused until it expires; a revoked opaque token
 * then stops working there at its expiry (≤ ACCESS_TOKEN_TTL) — at once on `fresh` routes, and at
 * userinfo and introspection, which never cache.
 */
export async function exchangeOpaque(deps: Deps, token: string, cache?: PhantomCache): Promise<string> {
  const opaque = parseOpaqueToken(token);
  if (!opaque) return token;
  const now = deps.now();
  const hit = cache?.get(token, now);
  if (hit) return hit;
  const jwt = await deps.sessions.resolveOpaque(opaque.owner, opaque.secret, now);
  if (!jwt) throw invalidToken('The access token is not valid.');
  if (cache) {
    const exp = JSON.parse(unb64url(jwt.split('.')[1]!)).exp as number;
    cache.set(token, jwt, exp * 1000);
  }
  return jwt;
}

/**
 * Verifies a bearer access token issued by Gatehouse: a JWT in the isolate (no I/O for a known key),
 * an opaque one after exchanging it for its JWT. `audience` is what the caller is (RFC 8707/9068:
 * a token for one resource is refused by every other); `any` is only for the authorization
 * server's own bookkeeping (introspection and revocation check the caller against the token).
 */
export async function verifyAccessToken(
  deps: Deps,
  token: string,
  opts: { audience: string[] | 'any'; cache?: PhantomCache },
): Promise<AccessTokenClaims> {
  const jwt = await exchangeOpaque(deps, token, opts.cache);
  try {
    const claims = await verifyToken(deps.signingKeys, jwt, {
      kind: 'access',
      issuer: issuerOf(deps),
      audience: opts.audience === 'any' ? undefined : opts.audience,
      now: deps.now(),
    });
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') throw new TokenRejected('no sub');
    return claims as AccessTokenClaims;
  } catch (e) {
    if (e instanceof TokenRejected) throw invalidToken('The access token is not valid here.');
    throw e;
  }
}

/**
 * Whether an access token is still alive in its owner's Durable Object: neither its grant (revoked
 * refresh family, replayed code, sign-out) nor the token itself (RFC 7009) was revoked, and its
 * user is not blocked (nor was blocked after it was issued).
 * One object call; used where revocation must take effect at once.
 */
export async function isAccessTokenLive(deps: Deps, claims: AccessTokenClaims): Promise<boolean> {
  return deps.sessions.isTokenLive(tokenOwner(claims), {
    grantId: isMachineToken(claims) ? null : (claims.gid ?? null),
    jti: claims.jti ?? null,
    issuedAt: claims.iat ?? null,
  });
}

/**
 * The object whose revocation list speaks for a token: its user's, or for a token a client got for
 * itself, the client's (`client:<id>`, where its opaque tokens live too).
 */
export const tokenOwner = (claims: AccessTokenClaims) => (isMachineToken(claims) ? `client:${claims.client_id ?? ''}` : claims.sub);
