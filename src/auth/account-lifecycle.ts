import { and, eq, lte, sql } from 'drizzle-orm';
import { users } from '../db/schema';
import type { Deps } from '../deps';
import { blockedStatements, type ChangeBy, deleteUserStatements, runStatements } from '../identity/user-records';
import { findUserById, type User } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';

/**
 * Blocking, unblocking and deleting an account: the admin API calls these, and so will
 * self-service deletion. Two stores hold an account — its record in D1 and its UserSessions object
 * (sessions, refresh families, codes, opaque tokens; the refresh grant reads no D1) — so each
 * operation changes them in the order that fails closed, and is idempotent, so a retry after a
 * failure part-way finishes the job:
 * - block: the object first (everything ends, nothing new starts), then the record;
 * - unblock: the record first, then the object;
 * - delete: the record marked blocked (no audit event of its own: the deletion's follows), then the
 *   object (as block, then wiped a day later), then the record removed with its audit event. A
 *   deletion that fails part-way and is never retried leaves the account blocked in D1 — after its
 *   object has wiped itself too — never able to sign in again unnoticed.
 */

export const noSuchUser = () => new GatehouseError('not_found', 'No such user.', { field: 'id' });

/** The user, or a 404. */
export async function existingUser(deps: Deps, userId: string): Promise<User> {
  const user = await failClosed('the database', () => findUserById(deps.db, userId));
  if (!user) throw noSuchUser();
  return user;
}

/** An admin blocking or deleting their own account would lock themselves out: another admin (or a machine client) must. */
function refuseOwnAccount(by: ChangeBy, userId: string, what: string): void {
  if (by.actor === `user:${userId}`)
    throw new GatehouseError('conflict', `An admin cannot ${what} their own account; another admin or a machine client can.`);
}

/**
 * Blocks the account: it cannot sign in by any method, and every session, refresh token, code and
 * access token it has ends now. Returns how many sessions ended (0 when it was blocked already).
 */
export async function blockUser(deps: Deps, userId: string, by: ChangeBy): Promise<{ sessionsEnded: number }> {
  refuseOwnAccount(by, userId, 'block');
  await existingUser(deps, userId);
  const now = deps.now();
  const { sessions } = await deps.sessions.block(userId, now);
  const detail = { ...by.detail, sessionsEnded: sessions };
  await failClosed('the database', () => runStatements(deps.db, blockedStatements(deps.db, userId, true, { ...by, detail }, now)));
  return { sessionsEnded: sessions };
}

/** Lets the account sign in again. Nothing that ended comes back: no session, no token issued before the block. */
export async function unblockUser(deps: Deps, userId: string, by: ChangeBy): Promise<void> {
  await existingUser(deps, userId);
  const now = deps.now();
  await failClosed('the database', () => runStatements(deps.db, blockedStatements(deps.db, userId, false, by, now)));
  await deps.sessions.unblock(userId);
}

/**
 * Deletes the account: the record is marked blocked and due for deletion (so a failure from here on
 * is finished by the scheduled handler, src/auth/account-deletion.ts, if nobody retries), its object
 * ends everything at once and refuses anything new (a sign-in that read the account a moment before
 * gets no session), then one D1 batch writes `user_deleted`, strips what identifies the person from
 * the audit events that stay, and removes the record with everything that references it. If that
 * batch fails the account is still there, blocked in D1 and in its object, and the caller is told to
 * try again (503); the retry finishes.
 *
 * `dueBy`: delete only an account whose scheduled deletion is due by then (the scheduled handler): a
 * sign-in that cancelled it first wins, and the answer is false.
 */
export async function deleteUser(deps: Deps, userId: string, by: ChangeBy, opts: { dueBy?: number } = {}): Promise<boolean> {
  refuseOwnAccount(by, userId, 'delete');
  await existingUser(deps, userId);
  const now = deps.now();
  const id = eq(users.id, userId);
  const marked = await failClosed('the database', () =>
    deps.db
      .update(users)
      .set({ blockedAt: sql`coalesce(${users.blockedAt}, ${now})`, deletionDueAt: sql`coalesce(${users.deletionDueAt}, ${now})` })
      .where(opts.dueBy === undefined ? id : and(id, lte(users.deletionDueAt, opts.dueBy)))
      .returning({ id: users.id }),
  );
  if (marked.length === 0) return false;
  const { sessions } = await deps.sessions.forget(userId, now);
  const detail = { ...by.detail, sessionsEnded: sessions };
  await failClosed('the database', () => runStatements(deps.db, deleteUserStatements(deps.db, userId, { ...by, detail }, now)));
  return true;
}
