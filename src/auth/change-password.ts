import { eq } from 'drizzle-orm';
import { users } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { findUserById } from '../identity/users';
import { failClosed, GatehouseError, unavailable } from '../lib/errors';
import { passwordChangedMail } from '../mail/templates';
import type { SessionClaims } from '../sessions/session-token';
import { checkNewPassword } from './password-policy';
import { authorizeSensitiveAction, type Proof } from './recent-auth';
import { authUrl } from './urls';

export interface PasswordChange {
  /** The password the account has now; a proof like any other (throttled as sign-in is). */
  currentPassword?: string | undefined;
  newPassword: string;
  /** Instead of the current password: a code or a passkey given now (or nothing, after a recent sign-in). */
  proof?: Proof | undefined;
}

/**
 * Changes the signed-in person's password, or sets a first one on an account that has none
 * (passkey-only, or made from an upstream sign-in). The sensitive-action rule decides who may
 * (recent-auth.ts): the current password is one proof it accepts, and a wrong one counts toward the
 * account's sign-in throttle, so this is no way around it. The new password meets the policy; the
 * other sessions end (with the refresh tokens born of them) before the new hash is written, so a
 * failure part-way leaves the old password with fewer sessions — never the new password with a
 * thief's session still live. The account is told by mail.
 */
export async function changePassword(
  deps: Deps,
  session: SessionClaims,
  change: PasswordChange,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<{ first: boolean; sessionsEnded: number }> {
  const proof: Proof | undefined = change.currentPassword !== undefined ? { password: change.currentPassword } : change.proof;
  await authorizeSensitiveAction(deps, session, proof, meta).catch((e: unknown) => {
    // A wrong current password is reported against the field that carried it.
    if (e instanceof GatehouseError && e.code === 'invalid_proof' && change.currentPassword !== undefined)
      throw new GatehouseError('invalid_proof', e.message, { field: 'currentPassword' });
    throw e;
  });
  await checkNewPassword(deps.commonPasswords, change.newPassword, deps.config.passwordMinLength, 'newPassword');
  const user = await failClosed('the database', () => findUserById(deps.db, session.sub));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  const first = user.passwordHash === null;
  const passwordHash = await deps.passwords.hash(change.newPassword);

  const sessionsEnded = await deps.sessions.revokeAll(session.sub, session.sid);
  const now = deps.now();
  try {
    await deps.db.batch([
      deps.db.update(users).set({ passwordHash, updatedAt: now }).where(eq(users.id, user.id)),
      auditInsert(deps.db, {
        type: 'password_changed',
        userId: user.id,
        meta,
        detail: { first, sid: session.sid, sessionsEnded, ...(proof ? { proof: Object.keys(proof)[0] } : { proof: 'recent_sign_in' }) },
        at: now,
      }),
    ]);
  } catch (e) {
    throw unavailable('the database', e);
  }
  defer(
    deps.mailer.send(passwordChangedMail(user.email, { first, when: new Date(now), accountLink: authUrl(deps.config, '/auth/account') })),
  );
  return { first, sessionsEnded };
}

/** Whether the account has a password (the page offers to change it, or to set a first one). */
export async function hasPassword(deps: Deps, userId: string): Promise<boolean> {
  const user = await failClosed('the database', () => findUserById(deps.db, userId));
  return Boolean(user?.passwordHash);
}
