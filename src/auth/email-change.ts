import { and, count, eq, gt, isNull } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import { emailChanges, emailTokens, users } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { assertPersonalAddress, shownEmail } from '../identity/email';
import { findUserByEmail, findUserById } from '../identity/users';
import { randomToken, sha256, timingSafeEqualString } from '../lib/crypto';
import { failClosed, GatehouseError, unavailable } from '../lib/errors';
import { addressChangedMail, addressTakenMail, confirmNewAddressMail } from '../mail/templates';
import type { SessionClaims } from '../sessions/session-token';
import { authorizeSensitiveAction, type Proof } from './recent-auth';
import { authUrl } from './urls';

/**
 * Changing one's address (docs/privacy.md, "Email change"). Nothing changes until the new address
 * confirms: a link mailed there, single use, valid only in the browser that asked (a cookie's
 * secret, hashed in the row) and only for the account that asked. When it takes effect every other
 * session ends and the old address is told, with a link that puts it back (and ends every session)
 * for UNDO_HOURS. An address another account holds gets the same answer as any other — its owner is
 * mailed that someone tried, and nothing changes — so the form reveals no account.
 */

export const CONFIRM_MINUTES = 30;
export const UNDO_HOURS = 72;
/** Change requests per account per hour (each sends a mail to an address the requester chooses). */
export const REQUESTS_PER_HOUR = 5;

const invalidLink = () =>
  new GatehouseError('invalid_link', 'This link is not valid: it was used already, has expired, or was opened in another browser.');

/**
 * Asks for a change: a sensitive action (a proof given now, or a recent sign-in). Returns the secret
 * for the binding cookie of the browser that asked — set whether the address is free or taken, so
 * the two answers are the same.
 */
export async function requestEmailChange(
  deps: Deps,
  session: SessionClaims,
  change: { email: string; proof?: Proof | undefined },
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<{ binding: string }> {
  await authorizeSensitiveAction(deps, session, change.proof, meta);
  assertPersonalAddress(change.email);
  const now = deps.now();
  const [user, holder, recent] = await failClosed('the database', () =>
    Promise.all([
      findUserById(deps.db, session.sub),
      findUserByEmail(deps.db, change.email),
      deps.db
        .select({ n: count() })
        .from(emailChanges)
        .where(and(eq(emailChanges.userId, session.sub), eq(emailChanges.kind, 'confirm'), gt(emailChanges.createdAt, now - 3600_000)))
        .get(),
    ]),
  );
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  if (user.email === change.email) throw new GatehouseError('invalid_request', 'That is already your address.', { field: 'email' });
  if ((recent?.n ?? 0) >= REQUESTS_PER_HOUR)
    throw new GatehouseError('rate_limited', 'Too many address changes asked for in the last hour. Try again later.', {
      retryAfter: 3600,
    });
  const binding = randomToken();
  const token = randomToken();
  const [tokenHash, bindingHash] = await Promise.all([sha256(token), sha256(binding)]);
  // A new request voids the links of earlier ones; the row is written for a taken address too (its
  // link can never take effect), so the hourly count cannot tell the two apart either.
  await failClosed('the database', () =>
    deps.db.batch([
      deps.db
        .update(emailChanges)
        .set({ usedAt: now })
        .where(and(eq(emailChanges.userId, user.id), eq(emailChanges.kind, 'confirm'), isNull(emailChanges.usedAt))),
      deps.db.insert(emailChanges).values({
        tokenHash,
        kind: 'confirm',
        userId: user.id,
        bindingHash,
        requestedSid: session.sid,
        oldEmail: user.email,
        newEmail: change.email,
        expiresAt: holder ? now : now + CONFIRM_MINUTES * 60_000,
        createdAt: now,
      }),
      auditInsert(deps.db, { type: 'email_change_requested', userId: user.id, meta, detail: { sid: session.sid }, at: now }),
    ]),
  );
  const mail = holder
    ? addressTakenMail(change.email, { accountLink: authUrl(deps.config, '/auth/sign-in') })
    : confirmNewAddressMail(change.email, {
        link: authUrl(deps.config, `/auth/account/email/confirm?token=${encodeURIComponent(token)}`),
        minutes: CONFIRM_MINUTES,
      });
  defer(deps.mailer.send(mail));
  return { binding };
}

/**
 * The new address confirms (its link, opened in the browser that asked, and — when that browser is
 * signed in — signed in to the same account). The change takes effect: the address (verified),
 * every other session ended, the links mailed to the old address voided, the undo link mailed there.
 */
export async function confirmEmailChange(
  deps: Deps,
  token: string,
  binding: string | undefined,
  session: SessionClaims | null,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<{ email: string; sessionsEnded: number }> {
  const now = deps.now();
  const tokenHash = await sha256(token);
  const row = await failClosed('the database', () =>
    deps.db
      .select()
      .from(emailChanges)
      .where(and(eq(emailChanges.tokenHash, tokenHash), eq(emailChanges.kind, 'confirm')))
      .get(),
  );
  if (!row || row.usedAt !== null || row.expiresAt <= now || !binding || !row.bindingHash) throw invalidLink();
  if (!timingSafeEqualString(await sha256(binding), row.bindingHash)) throw invalidLink();
  if (session && session.sub !== row.userId) throw invalidLink();
  // The session that asked must still be live: changing the password, signing out everywhere, a
  // reset or a block — anything that ended it — ends what it started, so a thief cut off by the
  // owner cannot finish moving the account to their own address.
  if (row.requestedSid && !(await deps.sessions.get(row.userId, row.requestedSid, now))) throw invalidLink();
  // Single use: the conditional UPDATE is the check (of two clicks, one gets the row).
  const taken = await failClosed('the database', () =>
    deps.db
      .update(emailChanges)
      .set({ usedAt: now })
      .where(and(eq(emailChanges.tokenHash, tokenHash), isNull(emailChanges.usedAt)))
      .returning({ userId: emailChanges.userId }),
  );
  if (taken.length === 0) throw invalidLink();

  const undo = randomToken();
  const undoHash = await sha256(undo);
  const writes: BatchItem<'sqlite'>[] = [
    // Only while the account still has the address the change was asked from.
    deps.db
      .update(users)
      .set({ email: row.newEmail, emailVerifiedAt: now, updatedAt: now })
      .where(and(eq(users.id, row.userId), eq(users.email, row.oldEmail))),
    deps.db.delete(emailTokens).where(eq(emailTokens.userId, row.userId)),
    auditInsert(deps.db, {
      type: 'email_changed',
      userId: row.userId,
      meta,
      detail: { fields: ['email'], ...(session ? { sid: session.sid } : {}) },
      at: now,
    }),
  ];
  const oldAddress = shownEmail(row.oldEmail);
  if (oldAddress)
    writes.push(
      deps.db.insert(emailChanges).values({
        tokenHash: undoHash,
        kind: 'undo',
        userId: row.userId,
        bindingHash: null,
        oldEmail: row.oldEmail,
        newEmail: row.newEmail,
        expiresAt: now + UNDO_HOURS * 3600_000,
        createdAt: now,
      }),
    );
  try {
    const [updated] = (await deps.db.batch(writes as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]])) as [{ meta: { changes: number } }];
    if (updated.meta.changes === 0) throw invalidLink();
  } catch (e) {
    if (e instanceof GatehouseError) throw e;
    await release(deps, tokenHash);
    // The unique address: another account took it since the link was sent.
    if (String(e).includes('UNIQUE'))
      throw new GatehouseError('conflict', 'This address now belongs to another account.', { field: 'email' });
    throw unavailable('the database', e);
  }
  const sessionsEnded = await deps.sessions.revokeAll(row.userId, session?.sid);
  if (oldAddress)
    defer(
      deps.mailer.send(
        addressChangedMail(oldAddress, {
          newAddress: row.newEmail,
          undoLink: authUrl(deps.config, `/auth/account/email/undo?token=${encodeURIComponent(undo)}`),
          hours: UNDO_HOURS,
        }),
      ),
    );
  return { email: row.newEmail, sessionsEnded };
}

/**
 * The old address says "this was not me": it becomes the account's address again (verified: the
 * link came through it), every session and refresh token ends, and every pending link is voided.
 * No session needed — the person may have lost access. Single use, UNDO_HOURS.
 */
export async function undoEmailChange(deps: Deps, token: string, meta: RequestMeta): Promise<{ email: string; sessionsEnded: number }> {
  const now = deps.now();
  const tokenHash = await sha256(token);
  const [row] = await failClosed('the database', () =>
    deps.db
      .update(emailChanges)
      .set({ usedAt: now })
      .where(
        and(
          eq(emailChanges.tokenHash, tokenHash),
          eq(emailChanges.kind, 'undo'),
          isNull(emailChanges.usedAt),
          gt(emailChanges.expiresAt, now),
        ),
      )
      .returning(),
  );
  if (!row) throw invalidLink();
  try {
    await deps.db.batch([
      deps.db.update(users).set({ email: row.oldEmail, emailVerifiedAt: now, updatedAt: now }).where(eq(users.id, row.userId)),
      deps.db
        .update(emailChanges)
        .set({ usedAt: now })
        .where(and(eq(emailChanges.userId, row.userId), isNull(emailChanges.usedAt))),
      deps.db.delete(emailTokens).where(eq(emailTokens.userId, row.userId)),
      auditInsert(deps.db, { type: 'email_change_undone', userId: row.userId, meta, detail: { fields: ['email'] }, at: now }),
    ]);
  } catch (e) {
    await release(deps, tokenHash);
    if (String(e).includes('UNIQUE')) throw new GatehouseError('conflict', 'The old address now belongs to another account.');
    throw unavailable('the database', e);
  }
  const sessionsEnded = await deps.sessions.revokeAll(row.userId);
  return { email: row.oldEmail, sessionsEnded };
}

/** A link whose change could not be written is usable again (best effort: the change did not happen). */
async function release(deps: Deps, tokenHash: string): Promise<void> {
  await deps.db
    .update(emailChanges)
    .set({ usedAt: null })
    .where(eq(emailChanges.tokenHash, tokenHash))
    .run()
    .catch(() => undefined);
}
