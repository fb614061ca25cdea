import type { JWK } from 'jose';
import { randomToken, seal, unseal } from '../lib/crypto';

// Signing-key material made and opened with WebCrypto alone: shared by the worker (key-store.ts)
// and the operator's CLI (scripts/keys.ts), so both build keys the same way.

export type SigningAlg = 'ES256' | 'RS256';
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'RS256'];

/** A signing key as stored, without its private half. */
export interface StoredKey {
  kid: string;
  alg: SigningAlg;
  generation: number;
  publicJwk: JWK;
  createdAt: number;
  signsFrom: number;
}

/** A signing key's row as stored: the public JWK, and the private one sealed under the KEK. */
export interface KeyRow {
  kid: string;
  alg: SigningAlg;
  generation: number;
  publicJwk: string;
  privateJwkEncrypted: string;
  createdAt: number;
  signsFrom: number;
}

/** The private JWK sealed under the key-encryption key, bound to its kid. */
export const encryptPrivateJwk = (kek: string, kid: string, jwk: JWK): Promise<string> => seal(kek, kid, JSON.stringify(jwk));

export const decryptPrivateJwk = async (kek: string, kid: string, sealed: string): Promise<JWK> =>
  JSON.parse(await unseal(kek, kid, sealed)) as JWK;

const GENERATE: Record<SigningAlg, { name: string } & Record<string, unknown>> = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
};

/** Generates a key pair for `generation` of `alg` and seals its private half. */
export async function newKeyRow(kek: string, k: { alg: SigningAlg; generation: number; signsFrom: number; now: number }): Promise<KeyRow> {
  const pair = (await crypto.subtle.generateKey(GENERATE[k.alg] as never, true, ['sign', 'verify'])) as CryptoKeyPair;
  const kid = `${k.alg.toLowerCase()}-${k.generation}-${randomToken(8)}`;
  const [publicJwk, privateJwk] = (await Promise.all([
    crypto.subtle.exportKey('jwk', pair.publicKey),
    crypto.subtle.exportKey('jwk', pair.privateKey),
  ])) as [JWK, JWK];
  return {
    kid,
    alg: k.alg,
    generation: k.generation,
    publicJwk: JSON.stringify({ kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x, y: publicJwk.y, n: publicJwk.n, e: publicJwk.e }),
    privateJwkEncrypted: await encryptPrivateJwk(kek, kid, privateJwk),
    createdAt: k.now,
    signsFrom: k.signsFrom,
  };
}

/**
 * Rotation on demand (an operator, or a certification run): for each algorithm the next
 * generation, signing from `now`. The key it replaces stays published until every token it signed
 * has expired (keys.ts viewKeys), so clients holding those tokens keep verifying them; other
 * isolates pick the new key up at its first unknown `kid` (the key ring reloads on a miss at most
 * every 30 s).
 */
export function nextKeys(keys: StoredKey[], now: number, algs: readonly SigningAlg[] = SIGNING_ALGS) {
  return algs.map((alg) => ({
    alg,
    generation: Math.max(0, ...keys.filter((k) => k.alg === alg).map((k) => k.generation)) + 1,
    signsFrom: now,
    now,
  }));
}
