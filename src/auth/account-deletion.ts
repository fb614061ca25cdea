import { and, asc, eq, isNotNull, isNull, lte } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import { users } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsertWhile, type RequestMeta } from '../identity/audit';
import { shownEmail } from '../identity/email';
import type { User } from '../identity/users';
import { accountBlocked, failClosed, GatehouseError } from '../lib/errors';
import { accountDeletedMail, deletionCancelledMail, deletionScheduledMail } from '../mail/templates';
import type { SessionClaims } from '../sessions/session-token';
import { deleteUser, existingUser } from './account-lifecycle';
import { authorizeSensitiveAction, type Proof } from './recent-auth';
import { authUrl } from './urls';

/**
 * Self-service deletion (the right to be forgotten, docs/privacy.md "Account deletion"). With no
 * grace period (ACCOUNT_DELETION_GRACE_DAYS=0, the default) the account goes at once, through the
 * same deleteUser as the admin API. With one, the account is scheduled: every session ends now, a
 * sign-in before the day cancels it (completeSignIn calls cancelScheduledDeletion), and the
 * scheduled handler deletes it when due — and finishes any deletion that failed part-way.
 */

const DAY_MS = 86_400_000;
/** Deletions the scheduled handler finishes per run, at most (the rest wait for the next run). */
export const DELETIONS_PER_RUN = 50;

export interface DeletionRequest {
  /** What the person typed to confirm: their address, or the word `delete` for an account without one. */
  confirm: string;
  proof?: Proof | undefined;
}

export type DeletionOutcome = { status: 'deleted' } | { status: 'scheduled'; dueAt: number };

/** The confirmation the person must type: the account's address, or `delete` when it has none. */
export const confirmationFor = (user: Pick<User, 'email'>) => shownEmail(user.email) ?? 'delete';

/**
 * The person deletes their own account: a sensitive action (a proof given now, or a recent sign-in
 * on this device), confirmed by typing the address. Mailed either way.
 */
export async function deleteOwnAccount(
  deps: Deps,
  session: SessionClaims,
  request: DeletionRequest,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<DeletionOutcome> {
  await authorizeSensitiveAction(deps, session, request.proof, meta);
  const user = await existingUser(deps, session.sub);
  const expected = confirmationFor(user);
  if (request.confirm.trim().toLowerCase() !== expected)
    throw new GatehouseError('invalid_request', `Type ${expected === 'delete' ? 'the word delete' : 'your address'} to confirm.`, {
      field: 'confirm',
    });
  const address = shownEmail(user.email);
  const now = deps.now();
  const graceDays = deps.config.deletionGraceDays;
  if (graceDays === 0) {
    await deleteUser(deps, user.id, { actor: null, meta, detail: { self: true } });
    if (address) defer(deps.mailer.send(accountDeletedMail(address, { when: new Date(now) })));
    return { status: 'deleted' };
  }
  const dueAt = now + graceDays * DAY_MS;
  const id = eq(users.id, user.id);
  const scheduled = and(id, eq(users.deletionDueAt, dueAt))!;
  // Recorded first, then every session ends: a failure between leaves it scheduled with sessions
  // still live, and asking again (or a sign-in, which cancels it) is harmless.
  await failClosed('the database', () =>
    deps.db.batch([
      deps.db
        .update(users)
        .set({ deletionDueAt: dueAt, updatedAt: now })
        .where(and(id, isNull(users.deletionDueAt), isNull(users.blockedAt))),
      auditInsertWhile(
        deps.db,
        { type: 'deletion_scheduled', userId: user.id, meta, detail: { dueAt, sid: session.sid }, at: now },
        users,
        and(scheduled, eq(users.updatedAt, now))!,
      ),
    ]),
  );
  const row = await failClosed('the database', () => deps.db.select({ due: users.deletionDueAt }).from(users).where(id).get());
  await deps.sessions.revokeAll(user.id);
  const due = row?.due ?? dueAt;
  if (address)
    defer(deps.mailer.send(deletionScheduledMail(address, { due: new Date(due), signInLink: authUrl(deps.config, '/auth/sign-in') })));
  return { status: 'scheduled', dueAt: due };
}

/**
 * A sign-in during the grace period keeps the account: the schedule is cleared (only while the
 * account is not blocked — once the scheduled handler has begun, the deletion wins and this
 * sign-in is refused), audited and mailed. Called by completeSignIn before the session starts.
 */
export async function cancelScheduledDeletion(
  deps: Deps,
  user: Pick<User, 'id' | 'email' | 'deletionDueAt'>,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<void> {
  if (user.deletionDueAt === null) return;
  const now = deps.now();
  const pending = and(eq(users.id, user.id), isNotNull(users.deletionDueAt), isNull(users.blockedAt))!;
  const writes: BatchItem<'sqlite'>[] = [
    auditInsertWhile(
      deps.db,
      { type: 'deletion_cancelled', userId: user.id, meta, detail: { dueAt: user.deletionDueAt }, at: now },
      users,
      pending,
    ),
    deps.db.update(users).set({ deletionDueAt: null, updatedAt: now }).where(pending).returning({ id: users.id }),
  ];
  const [, cleared] = (await failClosed('the database', () =>
    deps.db.batch(writes as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]]),
  )) as [unknown, { id: string }[]];
  if (cleared.length === 0) throw accountBlocked();
  const address = shownEmail(user.email);
  if (address) defer(deps.mailer.send(deletionCancelledMail(address, { accountLink: authUrl(deps.config, '/auth/account') })));
}

/**
 * The scheduled handler's part: deletes the accounts whose deletion is due — those scheduled with a
 * grace period, and any deletion that failed part-way — in a bounded batch, oldest first. One that
 * fails is logged and left for the next run; one cancelled meanwhile by a sign-in is skipped.
 */
export async function finishDueDeletions(deps: Deps, now: number, limit = DELETIONS_PER_RUN): Promise<{ deleted: number; failed: number }> {
  const due = await deps.db
    .select({ id: users.id })
    .from(users)
    .where(lte(users.deletionDueAt, now))
    .orderBy(asc(users.deletionDueAt))
    .limit(limit)
    .all();
  let deleted = 0;
  let failed = 0;
  for (const { id } of due) {
    try {
      if (await deleteUser(deps, id, { actor: null, meta: { ip: null, userAgent: null }, detail: { scheduled: true } }, { dueBy: now }))
        deleted++;
    } catch (e) {
      failed++;
      console.error(JSON.stringify({ event: 'scheduled_deletion_failed', userId: id, error: String(e) }));
    }
  }
  return { deleted, failed };
}
