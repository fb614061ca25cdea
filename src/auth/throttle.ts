import { eq, sql } from 'drizzle-orm';
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

/** The read of a counter's lock (key from throttleKey), to run alone or in one batch with the reads it guards. */
export const lockQuery = (db: Database, key: string) =>
  db.select({ lockedUntil: credentialFailures.lockedUntil }).from(credentialFailures).where(eq(credentialFailures.key, key));

export type LockRow = { lockedUntil: number } | undefined;

const isLocked = (row: LockRow, now: number) => row !== undefined && row.lockedUntil > now;

/** Throws 429 (with Retry-After) while the counter's lock (from lockQuery) holds. */
export function assertUnlocked(row: LockRow, scope: ThrottleScope, now: number): void {
  if (row && isLocked(row, now)) {
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

/** Throws 429 (with Retry-After) while the account key is locked. */
export async function assertNotLocked(db: Database, scope: ThrottleScope, email: string, now: number): Promise<void> {
  assertUnlocked(await lockQuery(db, await throttleKey(scope, email)).get(), scope, now);
}

/** Whether the per-address mail limit holds mail back (a row from lockQuery; never an error: see `mail` above). */
export const mailHeld = (row: LockRow, now: number) => isLocked(row, now);

/** Whether the per-address mail limit holds mail back now. */
export async function mailLimitReached(db: Database, email: string, now: number): Promise<boolean> {
  return mailHeld(await lockQuery(db, await throttleKey('mail', email)).get(), now);
}

/**
 * Counts one attempt (key from throttleKey) atomically — one upsert, to run alone or inside a
 * batch — and sets the lock the count calls for; returns the count.
 */
export function recordAttemptStatement(db: Database, key: string, now: number) {
  const { freeAttempts, baseLockMs, maxLockMs, windowMs } = THROTTLE;
  const { failures, updatedAt } = credentialFailures;
  const stale = sql`${updatedAt} < ${now - windowMs}`;
  return db
    .insert(credentialFailures)
    .values({ key, failures: 1, lockedUntil: 0, updatedAt: now })
    .onConflictDoUpdate({
      target: credentialFailures.key,
      set: {
        failures: sql`CASE WHEN ${stale} THEN 1 ELSE ${failures} + 1 END`,
        lockedUntil: sql`CASE WHEN ${stale} OR ${failures} + 1 <= ${freeAttempts} THEN 0
          ELSE ${now} + min(${baseLockMs} << min(${failures} - ${freeAttempts}, 10), ${maxLockMs}) END`,
        updatedAt: now,
      },
    })
    .returning({ failures: credentialFailures.failures });
}

/** Counts one attempt (recordAttemptStatement, alone); returns the count. */
export async function recordAttempt(db: Database, scope: ThrottleScope, email: string, now: number): Promise<number> {
  const [row] = await recordAttemptStatement(db, await throttleKey(scope, email), now);
  return row?.failures ?? 1;
}

/** The statement that clears a counter (key from throttleKey), to run alone or inside a batch. */
export const clearAttemptsStatement = (db: Database, key: string) => db.delete(credentialFailures).where(eq(credentialFailures.key, key));
