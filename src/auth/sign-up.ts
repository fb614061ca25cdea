import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { issueEmailToken, EMAIL_TOKEN_TTL } from '../identity/email-tokens';
import { signUpAttributes } from '../identity/profile-attributes';
import { findUserByEmail } from '../identity/users';
import { failClosed } from '../lib/errors';
import { alreadyRegisteredMail, verifyEmailMail } from '../mail/templates';
import { checkNewPassword } from './password-policy';
import { mailLimitReached, recordAttempt } from './throttle';
import { authUrl } from './urls';

/**
 * Starts a sign-up. The answer is the same whether or not the address has an account: a new
 * address gets a verification link (the account is created when it is opened, with this password,
 * or with none when signing up with a passkey, and with the profile attributes the form asked);
 * an existing one gets a note that it already has an account. Both paths hash the password, so
 * they take about the same time.
 */
export async function signUp(
  deps: Deps,
  input: { email: string; password: string | null; attributes?: Record<string, unknown> | undefined },
  meta: RequestMeta,
): Promise<void> {
  const { db, config } = deps;
  const now = deps.now();
  if (input.password !== null) await checkNewPassword(deps.commonPasswords, input.password, config.passwordMinLength);
  // The attributes the site asks at sign-up (PROFILE_ATTRIBUTES `required`): checked before anything
  // is stored or mailed, whether or not the address has an account (the answer must not differ).
  const attributes = signUpAttributes(config.attributes, input.attributes);
  const held = await failClosed('the database', () => mailLimitReached(db, input.email, now));

  // A passkey sign-up (no password) still does the hashing work: the answer takes as long either way.
  const passwordHash =
    input.password !== null ? await deps.passwords.hash(input.password) : await deps.passwords.verifyDummy(input.email).then(() => null);
  const existing = await failClosed('the database', () => findUserByEmail(db, input.email));
  const minutes = EMAIL_TOKEN_TTL.verify_email / 60;

  await failClosed('the database', async () => {
    await recordAttempt(deps.db, 'mail', input.email, now);
    await auditInsert(db, {
      type: held ? 'mail_suppressed' : 'sign_up_requested',
      userId: existing?.id ?? null,
      meta,
      detail: held ? { for: 'sign_up' } : { existing: Boolean(existing) },
      at: now,
    });
  });
  // Past the per-address mail limit the answer is the same, and nothing is sent or stored.
  if (held) return;

  if (existing?.emailVerifiedAt) {
    await deps.mailer.send(alreadyRegisteredMail(input.email, authUrl(config, '/auth/sign-in'), authUrl(config, '/auth/forgot-password')));
    return;
  }
  // An existing but unverified account (made by an operator) only needs its address confirmed;
  // a new address gets a pending sign-up carrying the chosen password.
  const token = await failClosed('the database', () =>
    issueEmailToken(db, {
      purpose: 'verify_email',
      email: input.email,
      userId: existing?.id ?? null,
      passwordHash: existing ? null : passwordHash,
      profileAttributes: existing || Object.keys(attributes).length === 0 ? null : JSON.stringify(attributes),
      now,
    }),
  );
  await deps.mailer.send(verifyEmailMail(input.email, authUrl(config, '/auth/verify-email', { token }), minutes));
}
