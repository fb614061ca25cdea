import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { consumeEmailToken, EMAIL_TOKEN_TTL, issueEmailToken, peekEmailToken, TOKEN_IS_LIVE } from '../identity/email-tokens';
import { findUserByEmail } from '../identity/users';
import { failClosed } from '../lib/errors';
import { resetPasswordMail } from '../mail/templates';
import { checkNewPassword } from './password-policy';
import { mailLimitReached, recordAttempt, throttleKey } from './throttle';
import { authUrl } from './urls';

/**
 * Mails a reset link when the address has an account; answers the same either way. Unknown
 * addresses spend the same hashing work, and the mail is sent through `defer` (after the response),
 * so the two paths take about the same time.
 */
export async function requestPasswordReset(
  deps: Deps,
  email: string,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<void> {
  const { db } = deps;
  const now = deps.now();
  const [held, found] = await failClosed('the database', () => Promise.all([mailLimitReached(db, email, now), findUserByEmail(db, email)]));
  await failClosed('the database', async () => {
    await recordAttempt(deps.db, 'mail', email, now);
    await auditInsert(db, {
      type: held ? 'mail_suppressed' : 'password_reset_requested',
      userId: found?.id ?? null,
      meta,
      ...(held ? { detail: { for: 'password_reset' } } : {}),
      at: now,
    });
  });
  // Past the per-address mail limit: answered like an unknown address (no link, no mail).
  const user = held ? undefined : found;
  if (!user) {
    await deps.passwords.verifyDummy(email);
    return;
  }
  const token = await failClosed('the database', () => issueEmailToken(db, { purpose: 'reset_password', email, userId: user.id, now }));
  await deps.passwords.verifyDummy(email);
  const link = authUrl(deps.config, '/auth/reset-password', { token });
  // Only known addresses get mail: sending it after the answer keeps the provider's latency from
  // telling the two apart. A failure is logged (mail_send_failed); the person can ask again.
  defer(deps.mailer.send(resetPasswordMail(email, link, EMAIL_TOKEN_TTL.reset_password / 60)));
}

/**
 * Sets a new password with a reset token. Order matters: the token is checked, every session of
 * the user is revoked, then one D1 transaction consumes the token and writes the password, the
 * audit event and the counter reset together. Of two concurrent uses exactly one wins. A reset also
 * proves the address, so it is marked verified.
 */
export async function resetPassword(
  deps: Deps,
  input: { token: string; password: string },
  meta: RequestMeta,
): Promise<{ userId: string; email: string }> {
  const { db } = deps;
  const now = deps.now();
  const peeked = await failClosed('the database', () => peekEmailToken(db, 'reset_password', input.token, now));
  await checkNewPassword(deps.commonPasswords, input.password, deps.config.passwordMinLength);
  const userId = peeked.userId!;
  const passwordHash = await deps.passwords.hash(input.password);

  await deps.sessions.revokeAll(userId);
  const auditDetail = JSON.stringify({ sessionsRevoked: 'all' });
  await failClosed('the database', async () =>
    consumeEmailToken(deps.d1, {
      purpose: 'reset_password',
      tokenHash: peeked.tokenHash,
      now,
      effects: [
        {
          sql: `UPDATE users SET password_hash = ?4, email_verified_at = coalesce(email_verified_at, ?3), updated_at = ?3
                WHERE id = (SELECT user_id FROM email_tokens WHERE ${TOKEN_IS_LIVE})`,
          params: [passwordHash],
        },
        {
          sql: `INSERT INTO audit_events (type, user_id, ip, user_agent, detail, created_at)
                SELECT 'password_reset', user_id, ?4, ?5, ?6, ?3 FROM email_tokens WHERE ${TOKEN_IS_LIVE}`,
          params: [meta.ip, meta.userAgent?.slice(0, 256) ?? null, auditDetail],
        },
        {
          sql: `DELETE FROM credential_failures WHERE key = ?4 AND EXISTS (SELECT 1 FROM email_tokens WHERE ${TOKEN_IS_LIVE})`,
          params: [await throttleKey('sign_in', peeked.email)],
        },
        {
          sql: `DELETE FROM email_tokens WHERE purpose = ?2 AND token_hash != ?1
                AND user_id = (SELECT user_id FROM email_tokens WHERE ${TOKEN_IS_LIVE})`,
        },
      ],
    }),
  );
  return { userId, email: peeked.email };
}
