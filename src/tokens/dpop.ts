import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, errors, jwtVerify, type JWK } from 'jose';
import type { Deps } from '../deps';
import { hmac, sha256, timingSafeEqualString } from '../lib/crypto';
import { GatehouseError } from '../lib/errors';

/**
 * DPoP (RFC 9449): a token bound to a key the client holds is useless without a fresh proof signed
 * by that key for this very request. One verifier for the token endpoint, userinfo and the gateway.
 */

/** Asymmetric algorithms a proof may be signed with (discovery's `dpop_signing_alg_values_supported`). */
export const DPOP_ALGS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'];

/** A proof's `iat` may be this far from our clock (seconds), either way. */
export const DPOP_WINDOW_S = 60;

/** Nonces (RFC 9449 §8) change every five minutes; the previous one is still taken. */
const NONCE_STEP_MS = 5 * 60_000;

/** Proofs seen in this isolate (RFC 9449 §11.1), until their `iat` is out of the window. */
const REPLAY_LIMIT = 50_000;
const seen = new Map<string, number>();

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** A refused proof: `use_dpop_nonce` carries the nonce to retry with. */
export class DpopError extends GatehouseError {
  constructor(
    code: 'invalid_dpop_proof' | 'use_dpop_nonce',
    message: string,
    readonly nonce?: string,
  ) {
    super(code, message);
  }
}

const invalid = (why: string) => new DpopError('invalid_dpop_proof', `The DPoP proof was refused: ${why}.`);

/** A nonce for clients to put in their next proof: `<step>.<HMAC>`, stateless. */
export async function dpopNonce(deps: Deps, at = deps.now()): Promise<string> {
  const step = Math.floor(at / NONCE_STEP_MS);
  return `${step.toString(36)}.${(await hmac(deps.keys.csrf, `dpop-nonce:${step}`)).slice(0, 32)}`;
}

async function nonceIsCurrent(deps: Deps, nonce: unknown): Promise<boolean> {
  if (typeof nonce !== 'string' || nonce.length > 64) return false;
  const now = deps.now();
  for (const at of [now, now - NONCE_STEP_MS]) if (timingSafeEqualString(nonce, await dpopNonce(deps, at))) return true;
  return false;
}

/** `htu` compared as RFC 9449 §4.3 asks: scheme, host and path, normalised; no query, no fragment. */
function sameTarget(htu: unknown, url: string): boolean {
  if (typeof htu !== 'string' || htu.length > 2048) return false;
  try {
    const a = new URL(htu);
    const b = new URL(url);
    return a.origin === b.origin && a.pathname === b.pathname && !a.username && !a.password;
  } catch {
    return false;
  }
}

/** Remembers a proof; false when it was seen already. Full, the oldest entries give way. */
function firstUse(key: string, now: number): boolean {
  const until = seen.get(key);
  if (until !== undefined && until > now) return false;
  if (seen.size >= REPLAY_LIMIT) {
    for (const [k, exp] of seen) {
      if (seen.size < REPLAY_LIMIT && exp > now) break;
      seen.delete(k);
    }
  }
  seen.set(key, now + 2 * DPOP_WINDOW_S * 1000);
  return true;
}

export interface VerifiedProof {
  /** RFC 7638 thumbprint of the proof's key: what a token is bound to (`cnf.jkt`). */
  jkt: string;
}

/**
 * Checks the `DPoP` header of a request (RFC 9449 §4.3): exactly one compact JWS, `typ`
 * dpop+jwt, an asymmetric `alg`, a public `jwk` that verifies it, `htm`/`htu` of this request,
 * `iat` within the window, a `jti` not seen before, `ath` for the access token presented with it,
 * and — when the server asks for them — a current `nonce`.
 */
export async function verifyDpopProof(
  deps: Deps,
  r: { header: string | undefined; method: string; url: string; accessToken?: string },
): Promise<VerifiedProof> {
  const proof = r.header?.trim();
  if (!proof) throw invalid('a DPoP header is required');
  if (!COMPACT_JWS.test(proof) || proof.length > 8192) throw invalid('send exactly one DPoP header holding one compact JWT');
  let jwk: JWK;
  let payload: Record<string, unknown>;
  try {
    const header = decodeProtectedHeader(proof);
    if (header.typ !== 'dpop+jwt') throw invalid('typ must be dpop+jwt');
    if (header.jwk && ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((m) => m in header.jwk!)) throw invalid('its jwk must be a public key');
    const verified = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGS });
    jwk = verified.protectedHeader.jwk!;
    payload = verified.payload as Record<string, unknown>;
  } catch (e) {
    if (e instanceof DpopError) throw e;
    // Every input here is the caller's (WebCrypto, too, refuses a malformed key with a DOMException).
    throw invalid(`its signature or header is not valid (${e instanceof errors.JOSEError ? e.code : 'malformed'})`);
  }
  if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 128)
    throw invalid('jti must be a string of 8 to 128 characters');
  if (payload.htm !== r.method) throw invalid("htm is not this request's method");
  if (!sameTarget(payload.htu, r.url)) throw invalid("htu is not this request's URL");
  const now = deps.now();
  if (typeof payload.iat !== 'number' || Math.abs(payload.iat - now / 1000) > DPOP_WINDOW_S)
    throw invalid(`iat must be within ${DPOP_WINDOW_S} seconds of now`);
  if (r.accessToken !== undefined && payload.ath !== (await sha256(r.accessToken)))
    throw invalid('ath is not the hash of the access token presented');
  if (deps.config.dpop.requireNonce && !(await nonceIsCurrent(deps, payload.nonce)))
    throw new DpopError('use_dpop_nonce', 'Use the DPoP nonce this server provides.', await dpopNonce(deps));
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  if (!firstUse(`${jkt}:${payload.jti}`, now)) throw invalid('it was used before');
  return { jkt };
}

/** The key a token is bound to (`cnf.jkt`), or null for a bearer token. */
export function boundKey(claims: Record<string, unknown>): string | null {
  const cnf = claims.cnf as { jkt?: unknown } | undefined;
  return cnf && typeof cnf.jkt === 'string' ? cnf.jkt : null;
}

/** `Authorization: Bearer …` or `Authorization: DPoP …` (RFC 9449 §7.1), or null. */
export function parseAuthorization(header: string | undefined): { scheme: 'Bearer' | 'DPoP'; token: string } | null {
  const m = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i.exec(header ?? '');
  if (!m) return null;
  return { scheme: m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: m[2]! };
}

/**
 * A resource request's proof of possession (RFC 9449 §7): a token bound to a key needs the DPoP
 * scheme and a proof by that key for this request; a bearer token may not pose as a DPoP one.
 * `dpopRequired`: this resource takes bound tokens only.
 */
export async function checkSenderConstraint(
  deps: Deps,
  r: {
    scheme: 'Bearer' | 'DPoP';
    token: string;
    claims: Record<string, unknown>;
    proof: string | undefined;
    method: string;
    url: string;
    dpopRequired?: boolean;
  },
): Promise<void> {
  const jkt = boundKey(r.claims);
  if (jkt === null) {
    if (r.scheme === 'DPoP') throw new GatehouseError('invalid_token', 'This access token is not DPoP-bound: send it as a Bearer token.');
    if (r.dpopRequired) throw new GatehouseError('invalid_token', 'This resource takes DPoP-bound access tokens only.');
    return;
  }
  if (r.scheme !== 'DPoP')
    throw new GatehouseError('invalid_token', 'This access token is DPoP-bound: send it with the DPoP scheme and a proof.');
  const proof = await verifyDpopProof(deps, { header: r.proof, method: r.method, url: r.url, accessToken: r.token });
  if (!timingSafeEqualString(proof.jkt, jkt)) throw invalid('it is signed by another key than the token is bound to');
}
