import { Hono } from 'hono';
import type { AppEnv } from '../deps';
import { deferTo, parseInput, requestMeta } from '../lib/http';
import { enforceIpLimit } from '../lib/rate-limit';
import { clearSessionCookie, setSessionCookie } from '../sessions/middleware';
import { verifyEmail } from './email-verification';
import { requestPasswordReset, resetPassword } from './password-reset';
import { forgotPasswordInput, resetPasswordInput, signInInput, signUpInput, verifyEmailInput } from './schemas';
import { signInWithPassword } from './sign-in';
import { signUp } from './sign-up';

/** The JSON credential API under /auth/api (docs/api.md). Errors render as problem+json. */
export const authApi = new Hono<AppEnv>();

authApi.use('/*', async (c, next) => {
  c.header('cache-control', 'no-store');
  await next();
});

// Every credential endpoint is limited per IP before any work is done.
for (const path of ['/sign-up', '/sign-in', '/forgot-password', '/reset-password', '/verify-email']) {
  authApi.post(path, async (c, next) => {
    await enforceIpLimit(c.var.deps.rateLimit, requestMeta(c).ip);
    await next();
  });
}

authApi.post('/sign-up', async (c) => {
  const input = await parseInput(c, 'json', signUpInput);
  await signUp(c.var.deps, input, requestMeta(c));
  return c.json({ status: 'check_email', message: 'Check your email to finish signing up.' }, 202);
});

authApi.post('/sign-in', async (c) => {
  const input = await parseInput(c, 'json', signInInput);
  const { user, session } = await signInWithPassword(c.var.deps, input, requestMeta(c));
  setSessionCookie(c, session.cookie);
  return c.json({
    user,
    session: { sid: session.record.sid, expiresAt: session.record.absoluteExpiresAt, amr: session.record.amr },
  });
});

authApi.post('/forgot-password', async (c) => {
  const { email } = await parseInput(c, 'json', forgotPasswordInput);
  await requestPasswordReset(c.var.deps, email, requestMeta(c), deferTo(c, 'reset_mail_failed'));
  return c.json({ status: 'check_email', message: 'If that address has an account, a reset link is on its way.' }, 202);
});

authApi.post('/reset-password', async (c) => {
  const input = await parseInput(c, 'json', resetPasswordInput);
  await resetPassword(c.var.deps, input, requestMeta(c));
  clearSessionCookie(c);
  return c.json({ status: 'password_reset', message: 'Your password was changed and every session signed out.' });
});

authApi.post('/verify-email', async (c) => {
  const { token } = await parseInput(c, 'json', verifyEmailInput);
  const { email, created } = await verifyEmail(c.var.deps, token, requestMeta(c));
  return c.json({ status: 'email_verified', email, accountCreated: created });
});
