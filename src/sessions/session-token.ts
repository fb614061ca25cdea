import { SignJWT, jwtVerify, errors } from 'jose';
import { LruCache } from '../lib/lru';

/**
 * The short-lived token inside the session cookie: an HS256 JWT that any isolate of this worker
 * verifies with no I/O. Only Gatehouse itself reads it, so a symmetric key (derived from AUTH_SECRET)
 * is enough; tokens for other parties (access and ID tokens, assertions) are signed asymmetrically.
 */
export const SESSION_TOKEN_TYPE = 'gh-session+jwt';

export interface SessionClaims {
  sub: string;
  sid: string;
  amr: string[];
  /** Seconds since epoch of the sign-in. */
  authTime: number;
  /** Seconds since epoch. */
  exp: number;
  /**
   * What the gateway injects, carried in the token so the hot path needs no I/O; re-read from D1
   * at every refresh, so a role or tier change reaches requests within SESSION_TOKEN_TTL.
   */
  email: string;
  emailVerified: boolean;
  roles: string[];
  tier: string;
  /** Made by a cross-device handoff (it never counts as a recent sign-in). */
  relayed: boolean;
  /** The app host this session is for (null: Gatehouse's own host); it is refused anywhere else. */
  host: string | null;
}

export interface SessionTokenOptions {
  key: CryptoKey;
  issuer: string;
  ttl: number;
  now: number;
}

export async function issueSessionToken(
  claims: Omit<SessionClaims, 'exp'>,
  { key, issuer, ttl, now }: SessionTokenOptions,
): Promise<{ token: string; exp: number }> {
  const iat = Math.floor(now / 1000);
  const exp = iat + ttl;
  const token = await new SignJWT({
    sid: claims.sid,
    amr: claims.amr,
    auth_time: claims.authTime,
    email: claims.email,
    email_verified: claims.emailVerified,
    roles: claims.roles,
    tier: claims.tier,
    ...(claims.relayed ? { relayed: true } : {}),
    ...(claims.host ? { host: claims.host } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: SESSION_TOKEN_TYPE })
    .setSubject(claims.sub)
    .setIssuer(issuer)
    .setAudience(issuer)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key);
  return { token, exp };
}

export type SessionTokenVerdict =
  | { status: 'valid'; claims: SessionClaims }
  /** Signature good but past (or near) expiry: refresh it through the session's Durable Object. */
  | { status: 'stale'; claims: SessionClaims }
  | { status: 'invalid' };

/**
 * Tokens this isolate has already verified, until they go stale: the same string verifies the same
 * way until then, so the hot path skips even the HMAC. Bounded (SESSION_CACHE_SIZE), least recently
 * used out first.
 */
export const verifiedSessionCache = new LruCache<string, SessionClaims>(50_000, 'session_tokens');

/**
 * Verifies a session token in the isolate. `refreshWithin` seconds before expiry the token is
 * reported stale so it is refreshed before it lapses; a stale token older than `maxAge` is invalid.
 */
export async function verifySessionToken(
  token: string,
  opts: { key: CryptoKey; issuer: string; now: number; refreshWithin: number; maxAge: number },
): Promise<SessionTokenVerdict> {
  const known = verifiedSessionCache.get(token, opts.now);
  if (known && known.exp - opts.refreshWithin > opts.now / 1000) return { status: 'valid', claims: known };
  try {
    const { payload } = await jwtVerify(token, opts.key, {
      algorithms: ['HS256'],
      typ: SESSION_TOKEN_TYPE,
      issuer: opts.issuer,
      audience: opts.issuer,
      requiredClaims: ['sub', 'sid', 'exp', 'auth_time'],
      currentDate: new Date(opts.now),
      clockTolerance: opts.maxAge,
    });
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((a): a is string => typeof a === 'string') : null);
    const amr = strings(payload.amr);
    const roles = strings(payload.roles);
    if (typeof payload.sid !== 'string' || !amr || !roles || typeof payload.auth_time !== 'number') return { status: 'invalid' };
    if (typeof payload.email !== 'string' || typeof payload.email_verified !== 'boolean' || typeof payload.tier !== 'string')
      return { status: 'invalid' };
    if ((payload.relayed !== undefined && payload.relayed !== true) || (payload.host !== undefined && typeof payload.host !== 'string'))
      return { status: 'invalid' };
    const claims: SessionClaims = {
      sub: payload.sub!,
      sid: payload.sid,
      amr,
      authTime: payload.auth_time,
      exp: payload.exp!,
      email: payload.email,
      emailVerified: payload.email_verified,
      roles,
      tier: payload.tier,
      relayed: payload.relayed === true,
      host: typeof payload.host === 'string' ? payload.host : null,
    };
    const fresh = claims.exp - opts.refreshWithin > opts.now / 1000;
    if (fresh) {
      verifiedSessionCache.set(token, claims, claims.exp * 1000);
    }
    return { status: fresh ? 'valid' : 'stale', claims };
  } catch (e) {
    if (e instanceof errors.JOSEError) return { status: 'invalid' };
    throw e;
  }
}
