import { inArray } from 'drizzle-orm';
import type { JWK } from 'jose';
import type { Database } from '../db/client';
import { signingKeys } from '../db/schema';
import { decryptPrivateJwk, newKeyRow, type SigningAlg, type StoredKey } from './key-material';

export { SIGNING_ALGS, type SigningAlg, type StoredKey } from './key-material';

/**
 * Generates a key pair and inserts it as `generation` of `alg` unless that generation exists
 * already (a concurrent creator won): then nothing is written. Returns whether this call created it.
 */
export async function createKey(
  db: Database,
  kek: string,
  k: { alg: SigningAlg; generation: number; signsFrom: number; now: number },
): Promise<boolean> {
  const rows = await db
    .insert(signingKeys)
    .values(await newKeyRow(kek, k))
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
