import type { Database } from '../db/client';
import { nextKeys } from './key-material';
import { createKey, deleteKeys, loadKeys, SIGNING_ALGS, type SigningAlg, type StoredKey } from './key-store';

/** How keys are rotated; all in milliseconds. */
export interface KeyPolicy {
  /** A signer is replaced after this long. */
  rotationMs: number;
  /** A new key is published this long before it signs (longer than anyone caches the JWKS). */
  publishLeadMs: number;
  /** The longest a token signed by a key can live: a retired key stays published this long after its successor takes over. */
  maxTokenTtlMs: number;
}

export interface KeyView {
  /** Per algorithm, the key that signs now. */
  signers: Partial<Record<SigningAlg, StoredKey>>;
  /** Keys in the JWKS: upcoming, signing, and retired ones whose tokens may still be alive. */
  published: StoredKey[];
  /** Retired keys whose every token has expired: safe to delete. */
  expired: StoredKey[];
  /** Per algorithm, a published key that does not sign yet. */
  upcoming: Partial<Record<SigningAlg, StoredKey>>;
}

/** Where each key stands at `now`. Pure: the same keys and time always give the same view. */
export function viewKeys(keys: StoredKey[], now: number, policy: KeyPolicy): KeyView {
  const view: KeyView = { signers: {}, published: [], expired: [], upcoming: {} };
  for (const alg of SIGNING_ALGS) {
    const mine = keys.filter((k) => k.alg === alg).sort((a, b) => a.generation - b.generation);
    const started = mine.filter((k) => k.signsFrom <= now);
    const signer = started.at(-1);
    if (signer) view.signers[alg] = signer;
    for (const k of mine) {
      if (k.signsFrom > now) {
        view.upcoming[alg] ??= k;
        view.published.push(k);
        continue;
      }
      const successor = started.find((s) => s.generation > k.generation);
      const alive = !successor || successor.signsFrom + policy.maxTokenTtlMs > now;
      (alive ? view.published : view.expired).push(k);
    }
  }
  return view;
}

/**
 * Makes sure every algorithm has a signing key; creates generation 1 where none exists. Safe under
 * concurrency: racing creators agree on one key per generation through the unique index.
 */
export async function ensureKeys(db: Database, kek: string, now: number): Promise<void> {
  const keys = await loadKeys(db);
  await Promise.all(
    SIGNING_ALGS.filter((alg) => !keys.some((k) => k.alg === alg)).map((alg) =>
      createKey(db, kek, { alg, generation: 1, signsFrom: now, now }),
    ),
  );
}

/**
 * The scheduled rotation: publish the next key `publishLeadMs` before the current signer's time is
 * up, and delete retired keys whose tokens have all expired. Idempotent; run it as often as you like.
 */
export async function rotateKeys(
  db: Database,
  kek: string,
  now: number,
  policy: KeyPolicy,
): Promise<{ created: SigningAlg[]; deleted: string[] }> {
  await ensureKeys(db, kek, now);
  const view = viewKeys(await loadKeys(db), now, policy);
  const created: SigningAlg[] = [];
  for (const alg of SIGNING_ALGS) {
    const signer = view.signers[alg];
    if (!signer || view.upcoming[alg]) continue;
    const due = signer.signsFrom + policy.rotationMs;
    if (now < due - policy.publishLeadMs) continue;
    const signsFrom = Math.max(due, now + policy.publishLeadMs);
    if (await createKey(db, kek, { alg, generation: signer.generation + 1, signsFrom, now })) created.push(alg);
  }
  const deleted = view.expired.map((k) => k.kid);
  await deleteKeys(db, deleted);
  return { created, deleted };
}

/** Rotation on demand (key-material.ts nextKeys): a new key per algorithm that signs from now on. */
export async function rotateKeysNow(db: Database, kek: string, now: number, algs: readonly SigningAlg[] = SIGNING_ALGS): Promise<string[]> {
  const created: string[] = [];
  for (const next of nextKeys(await loadKeys(db), now, algs))
    if (await createKey(db, kek, next)) created.push(`${next.alg}#${next.generation}`);
  return created;
}

export function keyPolicy(tokens: { rotationDays: number; publishLead: number; accessTtl: number; idTtl: number }): KeyPolicy {
  return {
    rotationMs: tokens.rotationDays * 86400_000,
    publishLeadMs: tokens.publishLead * 1000,
    // Every signed token Gatehouse issues lives at most this long (assertions: 60 s).
    maxTokenTtlMs: Math.max(tokens.accessTtl, tokens.idTtl, 60) * 1000,
  };
}
