import type { Context } from 'hono';
import { router } from '../lib/router';
import * as z from 'zod';
import type { AppEnv } from '../deps';
import { GatehouseError } from '../lib/errors';
import { deferTo } from '../lib/defer';
import { parseInput } from '../lib/request-body';
import { requestMeta } from '../lib/request-meta';
import { signInContext } from './sign-in-context';
import { limitPostsPerIp } from '../lib/rate-limit';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { clearSessionCookie, requireSession, requireSignedIn, setSessionCookie } from '../sessions/middleware';
import { EMAIL_SIGN_IN_TTL_MS, requestEmailSignIn, signInWithEmailCode, signInWithEmailLink } from './email-sign-in';
import { signInAfterPasskeySignUp, verifyEmail } from './email-verification';
import { authenticationOptions, listPasskeys, verifyPasskey } from './passkeys';
import { requestPasswordReset, resetPassword } from './password-reset';
import {
  forgotPasswordInput,
  passkeyAssertionInput,
  passkeyRegistrationInput,
  purposeDecisionsInput,
  resetPasswordInput,
  secondFactorInput,
  withProof,
  signInInput,
  signUpInput,
  verifyEmailInput,
} from './schemas';
import { completePurposes, completeSignIn, PENDING_TTL, PURPOSES_TTL, stepUp, type SignInOutcome } from './second-factor';
import { purposeView } from './purposes';
import {
  addPasskey,
  beginPasskeyRegistration,
  beginTotpEnrolment,
  deletePasskey,
  finishTotpEnrolment,
  removeTotp,
  replaceRecoveryCodes,
} from './manage-factors';
import { signInWithPasskey, signInWithPassword } from './sign-in';
import { secondFactorsOf } from './totp';
import { signUp } from './sign-up';
import { safeReturnTo } from './urls';
import { acrOf } from './acr';
import type { StartedSession } from '../sessions/session-lifecycle';

type C = Context<AppEnv>;

/**
 * The JSON credential API under /auth/api (docs/api.md): sign-up, sign-in (password, email, passkey)
 * and its second step, step-up, reset, verification, and the signed-in user's second factors.
 * Errors render as problem+json.
 */
export const authApi = router('problem');

authApi.use('/*', async (c, next) => {
  c.header('cache-control', 'no-store');
  await next();
});

// Every credential endpoint is limited per IP before any work is done.
const CREDENTIAL_POSTS = [
  '/sign-up',
  '/sign-in',
  '/sign-in/second-factor',
  '/sign-in/purposes',
  '/step-up',
  '/forgot-password',
  '/reset-password',
  '/verify-email',
  '/email-sign-in',
  '/email-sign-in/code',
  '/email-sign-in/link',
  '/passkeys/authentication-options',
  '/passkeys/sign-in',
  '/passkeys/verify',
];
limitPostsPerIp(authApi, CREDENTIAL_POSTS);

const sessionBody = (session: StartedSession) => ({
  sid: session.record.sid,
  expiresAt: session.record.absoluteExpiresAt,
  amr: session.record.amr,
  acr: acrOf(session.record.amr),
});

/** Sets the cookies a sign-in outcome calls for and describes it (the JSON body). */
function signInBody(c: C, outcome: SignInOutcome, returnTo?: string) {
  if (outcome.kind === 'second_factor') {
    writeCookie(c, COOKIES.secondFactor, outcome.pending, PENDING_TTL);
    const next = `/auth/second-factor?${new URLSearchParams({ return_to: safeReturnTo(returnTo ?? null) })}`;
    return {
      status: 'second_factor_required',
      methods: { totp: outcome.factors.totp, recoveryCode: outcome.factors.recoveryCodesLeft > 0, passkey: outcome.factors.passkeys > 0 },
      next,
    };
  }
  clearCookie(c, COOKIES.secondFactor);
  if (outcome.kind === 'purposes') {
    writeCookie(c, COOKIES.purposes, outcome.pending, PURPOSES_TTL);
    return {
      status: 'consent_required',
      purposes: outcome.purposes.map(purposeView),
      next: `/auth/purposes?${new URLSearchParams({ return_to: safeReturnTo(returnTo ?? null) })}`,
    };
  }
  clearCookie(c, COOKIES.purposes);
  setSessionCookie(c, outcome.session.cookie);
  return { status: 'signed_in', user: outcome.user, session: sessionBody(outcome.session), next: safeReturnTo(returnTo ?? null) };
}

const signInResponse = (c: C, outcome: SignInOutcome, returnTo?: string) => c.json(signInBody(c, outcome, returnTo));

authApi.post('/sign-up', async (c) => {
  const input = await parseInput(c, 'json', signUpInput);
  await signUp(c.var.deps, input, requestMeta(c));
  return c.json({ status: 'check_email', message: 'Check your email to finish signing up.' }, 202);
});

authApi.post('/sign-in', async (c) => {
  const input = await parseInput(c, 'json', signInInput);
  const outcome = await signInWithPassword(c.var.deps, input, signInContext(c), { defer: deferTo(c, 'sign_in_mail_failed') });
  return signInResponse(c, outcome);
});

authApi.post('/sign-in/second-factor', async (c) => {
  const { code } = await parseInput(c, 'json', secondFactorInput);
  const done = await completeSignIn(c.var.deps, readCookie(c, COOKIES.secondFactor), { kind: 'code', code }, signInContext(c), {
    defer: deferTo(c, 'sign_in_mail_failed'),
  });
  return signInResponse(c, done);
});

/** The purposes a sign-in waits for, answered: `decisions` accept (or refuse) each at its version. */
authApi.post('/sign-in/purposes', async (c) => {
  const { decisions, returnTo } = await parseInput(c, 'json', purposeDecisionsInput.extend({ returnTo: z.string().max(2048).optional() }));
  const outcome = await completePurposes(c.var.deps, readCookie(c, COOKIES.purposes), decisions, signInContext(c), {
    defer: deferTo(c, 'sign_in_mail_failed'),
  });
  return signInResponse(c, outcome, returnTo);
});

authApi.post('/step-up', async (c) => {
  const { code } = await parseInput(c, 'json', secondFactorInput);
  if (!c.var.session) throw new GatehouseError('unauthenticated', 'Sign in first.');
  const { session } = await stepUp(c.var.deps, c.var.session, { kind: 'code', code }, requestMeta(c));
  setSessionCookie(c, session.cookie);
  return c.json({ status: 'stepped_up', session: sessionBody(session) });
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
  const verified = await verifyEmail(c.var.deps, token, requestMeta(c), readCookie(c, COOKIES.upstreamSignUp));
  clearCookie(c, COOKIES.upstreamSignUp);
  const body = { status: 'email_verified', email: verified.email, accountCreated: verified.created };
  if (!verified.passwordless) return c.json(body);
  // A passkey sign-up is signed in by the confirmed address, to register its passkey next.
  const outcome = await signInAfterPasskeySignUp(c.var.deps, verified.userId, signInContext(c), deferTo(c, 'sign_in_mail_failed'));
  return c.json({ ...signInBody(c, outcome, '/auth/account?setup=passkey'), ...body });
});

// Email sign-in: a link and an 8-digit code in one mail; the code only works in the asking browser.
authApi.post('/email-sign-in', async (c) => {
  const { email } = await parseInput(c, 'json', forgotPasswordInput);
  const { cookie } = await requestEmailSignIn(c.var.deps, email, requestMeta(c), deferTo(c, 'sign_in_mail_failed'));
  writeCookie(c, COOKIES.emailSignIn, cookie, EMAIL_SIGN_IN_TTL_MS / 1000);
  return c.json({ status: 'check_email', message: 'If that address has an account, a sign-in link and code are on their way.' }, 202);
});

authApi.post('/email-sign-in/code', async (c) => {
  const { code } = await parseInput(c, 'json', secondFactorInput);
  const outcome = await signInWithEmailCode(
    c.var.deps,
    { code, bindingCookie: readCookie(c, COOKIES.emailSignIn) },
    signInContext(c),
    deferTo(c, 'sign_in_mail_failed'),
  );
  clearCookie(c, COOKIES.emailSignIn);
  return signInResponse(c, outcome);
});

authApi.post('/email-sign-in/link', async (c) => {
  const { token } = await parseInput(c, 'json', verifyEmailInput);
  const { outcome, returnTo } = await signInWithEmailLink(c.var.deps, token, signInContext(c), deferTo(c, 'sign_in_mail_failed'));
  clearCookie(c, COOKIES.emailSignIn);
  return signInResponse(c, outcome, returnTo);
});

// Passkeys: the browser script (src/ui/client/passkeys.ts) drives these.
authApi.post('/passkeys/authentication-options', async (c) => c.json(await authenticationOptions(c.var.deps)));

/** Sign in with a passkey (first factor; with user verification it is two factors at once). */
authApi.post('/passkeys/sign-in', async (c) => {
  const input = await parseInput(c, 'json', passkeyAssertionInput);
  const { deps } = c.var;
  const outcome = await signInWithPasskey(deps, input, signInContext(c), { defer: deferTo(c, 'sign_in_mail_failed') });
  return signInResponse(c, outcome, input.returnTo);
});

/** A passkey as the second step of a pending sign-in, or to step up the current session. */
authApi.post('/passkeys/verify', async (c) => {
  const input = await parseInput(c, 'json', passkeyAssertionInput);
  const { deps } = c.var;
  const ctx = signInContext(c);
  const verified = await verifyPasskey(deps, input, ctx.meta);
  const proof = { kind: 'passkey' as const, ...verified };
  const pending = readCookie(c, COOKIES.secondFactor);
  if (pending) {
    const done = await completeSignIn(deps, pending, proof, ctx, { defer: deferTo(c, 'sign_in_mail_failed') });
    return signInResponse(c, done, input.returnTo);
  }
  if (!c.var.session) throw new GatehouseError('unauthenticated', 'Sign in first.');
  const { session } = await stepUp(deps, c.var.session, proof, ctx.meta);
  setSessionCookie(c, session.cookie);
  return c.json({ status: 'stepped_up', session: sessionBody(session), next: safeReturnTo(input.returnTo ?? null) });
});

// Managing one's second factors needs a session (and JSON for state changes).
for (const path of ['/passkeys', '/passkeys/registration-options', '/second-factors', '/totp', '/totp/*', '/recovery-codes'])
  authApi.use(path, requireSignedIn);
authApi.use('/passkeys/:id{[A-Za-z0-9_-]+}', async (c, next) => (c.req.method === 'DELETE' ? requireSignedIn(c, next) : next()));

// Second factors of the signed-in user (the account page's security section, as JSON). Each
// action checks the sensitive-action rule itself (manage-factors.ts); `proof` is optional JSON.
authApi.get('/second-factors', requireSession, async (c) => c.json(await secondFactorsOf(c.var.deps, c.var.session.sub)));

/** Starts (or shows again) TOTP enrolment: the secret and the otpauth:// URI for the app. */
authApi.post('/totp', requireSession, async (c) => c.json(await beginTotpEnrolment(c.var.deps, c.var.session), 201));

authApi.post('/totp/confirm', requireSession, async (c) => {
  const { code, proof } = await parseInput(c, 'json', secondFactorInput.extend(withProof));
  const recoveryCodes = await finishTotpEnrolment(c.var.deps, c.var.session, code, proof, requestMeta(c));
  return c.json({ status: 'enrolled', recoveryCodes });
});

authApi.delete('/totp', requireSession, async (c) => {
  await removeTotp(c.var.deps, c.var.session, await optionalProof(c), requestMeta(c));
  return c.body(null, 204);
});

authApi.post('/recovery-codes', requireSession, async (c) => {
  const { proof } = await parseInput(c, 'json', z.object(withProof));
  return c.json({ recoveryCodes: await replaceRecoveryCodes(c.var.deps, c.var.session, proof, requestMeta(c)) });
});

authApi.get('/passkeys', requireSession, async (c) => c.json({ passkeys: await listPasskeys(c.var.deps, c.var.session.sub) }));

authApi.post('/passkeys/registration-options', requireSession, async (c) =>
  c.json(await beginPasskeyRegistration(c.var.deps, c.var.session)),
);

authApi.post('/passkeys', requireSession, async (c) => {
  const { proof, ...input } = await parseInput(c, 'json', passkeyRegistrationInput);
  const passkey = await addPasskey(c.var.deps, c.var.session, input as never, proof, requestMeta(c));
  return c.json({ passkey }, 201);
});

authApi.delete('/passkeys/:id{[A-Za-z0-9_-]+}', requireSession, async (c) => {
  await deletePasskey(c.var.deps, c.var.session, c.req.param('id'), await optionalProof(c), requestMeta(c));
  return c.body(null, 204);
});

/** A DELETE may carry a JSON body with `proof`; one without a body has none. */
async function optionalProof(c: Context) {
  if (!c.req.header('content-type')) return undefined;
  return (await parseInput(c, 'json', z.object(withProof))).proof;
}
