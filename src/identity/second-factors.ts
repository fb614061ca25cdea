import { anotherWayIn } from './sign-in-methods';
import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../db/client';
import { passkeys, recoveryCodes, totpCredentials, users } from '../db/schema';
import { auditInsertWhile } from './audit';
import type { ChangeBy, Statement } from './user-records';

/**
 * Removing a user's second factors — the person from their account page, an operator through the
 * admin API, or the users CLI (`reset-mfa`) — is one list of statements: the authenticator app and
 * its recovery codes (and, with `passkeys`, every passkey), with `mfa_disabled` audited only when
 * there was something to remove.
 */
export function secondFactorResetStatements(
  db: Database,
  userId: string,
  o: { passkeys: boolean },
  by: ChangeBy,
  now: number,
): Statement[] {
  const had = o.passkeys
    ? sql`(EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = ${userId}) OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = ${userId}))`
    : sql`EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = ${userId})`;
  return [
    // Before the deletes: it sees what is about to go.
    auditInsertWhile(
      db,
      {
        type: 'mfa_disabled',
        userId,
        actor: by.actor,
        meta: by.meta,
        detail: { ...by.detail, method: o.passkeys ? 'all' : 'totp' },
        at: now,
      },
      users,
      and(eq(users.id, userId), had)!,
    ),
    db.delete(totpCredentials).where(eq(totpCredentials.userId, userId)),
    db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId)),
    ...(o.passkeys ? [db.delete(passkeys).where(eq(passkeys.userId, userId))] : []),
  ];
}

/** Removes one passkey of the user, audited as `passkey_removed` only when it was theirs and there. */
export function passkeyRemovalStatements(db: Database, userId: string, passkeyId: string, by: ChangeBy, now: number): Statement[] {
  // Never the last way in (an account with no password, no address and no linked identity); the
  // condition is in the delete itself, so a removal racing an unlink cannot leave none.
  const which = and(eq(passkeys.id, passkeyId), eq(passkeys.userId, userId), anotherWayIn(userId, { passkey: passkeyId }))!;
  return [
    // Written exactly when the passkey is removed.
    auditInsertWhile(
      db,
      { type: 'passkey_removed', userId, actor: by.actor, meta: by.meta, detail: { ...by.detail, passkey: passkeyId }, at: now },
      passkeys,
      which,
    ),
    db.delete(passkeys).where(which).returning({ id: passkeys.id }),
  ];
}
