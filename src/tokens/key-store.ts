import { inArray } from 'drizzle-orm';
import type { JWK } from 'jose';
import type { Database } from '../db/client';
import { signingKeys } from '../db/schema';
import { randomToken, seal, unseal } from '../lib/crypto';

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

/** The private JWK sealed under the key-encryption key, bound to its kid. */
export const encryptPrivateJwk = (kek: string, kid: string, jwk: JWK): Promise<string> => seal(kek, kid, JSON.stringify(jwk));

export const decryptPrivateJwk = async (kek: string, kid: string, sealed: string): Promise<JWK> =>
  JSON.parse(await unseal(kek, kid, sealed)) as JWK;

const GENERATE: Record<SigningAlg, Parameters<SubtleCrypto['generateKey']>[0]> = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
};

/**
 * Generates a key pair and inserts it as `generation` of `alg` unless that generation exists
 * already (a concurrent creator won): then nothing is written. Returns whether this call created it.
 */
export async function createKey(
  db: Database,
  kek: string,
  k: { alg: SigningAlg; generation: number; signsFrom: number; now: number },
): Promise<boolean> {
  const pair = (await crypto.subtle.generateKey(GENERATE[k.alg], true, ['sign', 'verify'])) as CryptoKeyPair;
  const kid = `${k.alg.toLowerCase()}-${k.generation}-${randomToken(8)}`;
  const [publicJwk, privateJwk] = (await Promise.all([
    crypto.subtle.exportKey('jwk', pair.publicKey),
    crypto.subtle.exportKey('jwk', pair.privateKey),
  ])) as [JWK, JWK];
  const rows = await db
    .insert(signingKeys)
    .values({
      kid,
      alg: k.alg,
      generation: k.generation,
      publicJwk: JSON.stringify({ kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x, y: publicJwk.y, n: publicJwk.n, e: publicJwk.e }),
      privateJwkEncrypted: await encryptPrivateJwk(kek, kid, privateJwk),
      createdAt: k.now,
      signsFrom: k.signsFrom,
    })
    .onConflictDoNothing()
    .returning({ kid: signingKeys.kid });
  return rows.length === 1;
}

export async function loadKeys(db: Database): Promise<StoredKey[]> {
  const rows = await db
    .select({
      kid: signingKeys.kid,
      alg: signingKeys.alg,
      generation: signingKeys.generation,
      publicJwk: signingKeys.publicJwk,
      createdAt: signingKeys.createdAt,
      signsFrom: signingKeys.signsFrom,
    })
    .from(signingKeys)
    .all();
  return rows.map((r) => ({ ...r, publicJwk: JSON.parse(r.publicJwk) as JWK }));
}

export async function loadPrivateJwk(db: Database, kek: string, kid: string): Promise<JWK | undefined> {
  const row = await db
    .select({ sealed: signingKeys.privateJwkEncrypted })
    .from(signingKeys)
    .where(inArray(signingKeys.kid, [kid]))
    .get();
  return row ? decryptPrivateJwk(kek, kid, row.sealed) : undefined;
}

export async function deleteKeys(db: Database, kids: string[]): Promise<void> {
  if (kids.length > 0) await db.delete(signingKeys).where(inArray(signingKeys.kid, kids));
}
