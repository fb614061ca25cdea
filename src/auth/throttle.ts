import { eq } from 'drizzle-orm';
import type { Database } from '../db/client';
import { credentialFailures } from '../db/schema';
import { sha256 } from '../lib/crypto';
import { GatehouseError } from '../lib/errors';

/**
 * Exact per-account counters with back-off, kept in D1 and keyed by a hash of the normalised email,
 * so unknown addresses are throttled exactly like known ones (the throttle reveals nothing).
 *
 * - `sign_in`: failed passwords. From the 5th consecutive failure the account key is locked for
 *   30 s, doubling per further failure up to 15 min. A success clears it.
 * - `mail`: sign-up, reset and sign-in mails to one address. From the 5th within the window, the same
 *   back-off — silently: the answer stays the same and the mail is not sent (mailLimitReached), since
 *   a 429 would tell a known address (whose owner's own mails count) from an unknown one.
 * - `second_factor`: wrong TOTP or recovery codes for one user (keyed by user id), same back-off.
 * Counters older than 24 h start again from zero.
 */
export type ThrottleScope = 'sign_in' | 'mail' | 'second_factor';

export const THROTTLE = { freeAttempts: 4, baseLockMs: 30_000, maxLockMs: 15 * 60_000, windowMs: 24 * 3600_000 };

export const throttleKey = (scope: ThrottleScope, email: string) => sha256(`${scope}:${email}`);

/** Throws 429 (with Retry-After) while the account key is locked. */
export async function assertNotLocked(db: Database, scope: ThrottleScope, email: string, now: number): Promise<void> {
  const row = await db
    .select({ lockedUntil: credentialFailures.lockedUntil })
    .from(credentialFailures)
    .where(eq(credentialFailures.key, await throttleKey(scope, email)))
    .get();
  if (row && row.lockedUntil > now) {
    const retryAfter = Math.ceil((row.lockedUntil - now) / 1000);
    throw new GatehouseError(
      'account_locked',
      scope === 'second_factor'
        ? `Too many wrong codes. Try again in ${retryAfter} seconds.`
        : `Too many attempts for this account. Try again in ${retryAfter} seconds, or reset your password.`,
      { retryAfter },
    );
  }
}

/** Whether the per-address mail limit holds mail back now (never an error: see `mail` above). */
export async function mailLimitReached(db: Database, email: string, now: number): Promise<boolean> {
  const row = await db
    .select({ lockedUntil: credentialFailures.lockedUntil })
    .from(credentialFailures)
    .where(eq(credentialFailures.key, await throttleKey('mail', email)))
    .get();
  return row !== undefined && row.lockedUntil > now;
}

/** Counts one attempt atomically (one upsert) and sets the lock the count calls for. */
export async function recordAttempt(d1: D1Database, scope: ThrottleScope, email: string, now: number): Promise<number> {
  const { freeAttempts, baseLockMs, maxLockMs, windowMs } = THROTTLE;
  const row = await d1
    .prepare(
      `INSERT INTO credential_failures (key, failures, locked_until, updated_at) VALUES (?1, 1, 0, ?2)
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN updated_at < ?2 - ?3 THEN 1 ELSE failures + 1 END,
         locked_until = CASE
           WHEN updated_at < ?2 - ?3 OR failures + 1 <= ?4 THEN 0
           ELSE ?2 + min(?5 << min(failures - ?4, 10), ?6) END,
         updated_at = ?2
       RETURNING failures`,
    )
    .bind(await throttleKey(scope, email), now, windowMs, freeAttempts, baseLockMs, maxLockMs)
    .first<{ failures: number }>();
  return row?.failures ?? 1;
}

/** The statement that clears a counter (key from throttleKey), to run alone or inside a batch. */
export const clearAttemptsStatement = (db: Database, key: string) => db.delete(credentialFailures).where(eq(credentialFailures.key, key));
