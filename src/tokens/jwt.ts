import { errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { randomToken } from '../lib/crypto';
import type { SigningAlg } from './key-store';
import type { KeyRing } from './key-ring';

/** Token types Gatehouse signs; the verifier of each accepts only its own `typ` (RFC 8725 §3.11). */
export const TOKEN_TYPES = {
  access: 'at+jwt', // RFC 9068
  id: 'JWT', // OIDC Core ID token
  assertion: 'gatehouse-assertion+jwt', // the gateway's identity assertion to origins
} as const;
export type TokenKind = keyof typeof TOKEN_TYPES;

/** The only algorithms any verifier accepts: never `none`, never HMAC with a public key. */
export const ALLOWED_ALGS: SigningAlg[] = ['ES256', 'RS256'];

export class TokenRejected extends Error {
  constructor(readonly reason: string) {
    super(`token rejected: ${reason}`);
    this.name = 'TokenRejected';
  }
}

export async function signToken(
  ring: KeyRing,
  t: { kind: TokenKind; alg?: SigningAlg; claims: JWTPayload; issuer: string; audience: string | string[]; ttl: number; now: number },
): Promise<{ token: string; jti: string; exp: number; kid: string }> {
  const alg = t.alg ?? 'ES256';
  const { kid, key } = await ring.signer(alg, t.now);
  const iat = Math.floor(t.now / 1000);
  const exp = iat + t.ttl;
  const jti = randomToken(16);
  const token = await new SignJWT(t.claims)
    .setProtectedHeader({ alg, kid, typ: TOKEN_TYPES[t.kind] })
    .setIssuer(t.issuer)
    .setAudience(t.audience)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti)
    .sign(key);
  return { token, jti, exp, kid };
}

/**
 * Verifies a token Gatehouse signed, in the isolate: algorithm allow-list, `typ`, a published `kid`,
 * no key-locating headers (`jku`, `x5u`, `jwk`, `x5c`), `iss`, `aud`, `exp` and `nbf` — any miss
 * throws TokenRejected with the reason.
 */
export async function verifyToken(
  ring: KeyRing,
  token: string,
  v: {
    kind: TokenKind;
    issuer: string;
    /** Required, except for access tokens the authorization server inspects for a caller it checks itself. */
    audience: string | string[] | undefined;
    now: number;
    algorithms?: SigningAlg[];
    /** For hints only (id_token_hint): an expired token is still evidence of who it was issued to. */
    allowExpired?: boolean;
  },
): Promise<JWTPayload> {
  const getKey: JWTVerifyGetKey = async (header) => {
    for (const h of ['jku', 'x5u', 'jwk', 'x5c'] as const) if (h in header) throw new TokenRejected(`header ${h} is not accepted`);
    if (typeof header.kid !== 'string') throw new TokenRejected('no kid');
    const key = await ring.verificationKey(header.kid, header.alg, v.now);
    if (!key) throw new TokenRejected('unknown kid');
    return key;
  };
  if (v.audience === undefined && v.kind !== 'access') throw new TokenRejected('no audience to check');
  const options = (at: number) => ({
    algorithms: v.algorithms ?? ALLOWED_ALGS,
    typ: TOKEN_TYPES[v.kind],
    issuer: v.issuer,
    ...(v.audience === undefined ? {} : { audience: v.audience }),
    currentDate: new Date(at),
    requiredClaims: ['exp', 'iat', 'iss', 'aud'],
  });
  try {
    return (await jwtVerify(token, getKey, options(v.now))).payload;
  } catch (e) {
    if (e instanceof TokenRejected) throw e;
    // A hint may be expired: check everything else as of the second before it expired (so a
    // future `nbf` is still refused — a tolerance window would have let that through).
    if (v.allowExpired && e instanceof errors.JWTExpired && typeof e.payload.exp === 'number' && e.payload.exp * 1000 <= v.now) {
      try {
        return (await jwtVerify(token, getKey, options(e.payload.exp * 1000 - 1000))).payload;
      } catch (again) {
        if (again instanceof TokenRejected) throw again;
        if (again instanceof errors.JOSEError) throw new TokenRejected(again.code);
        throw again;
      }
    }
    if (e instanceof errors.JOSEError) throw new TokenRejected(e.code);
    throw e;
  }
}
