import { Hono, type Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { z } from 'zod';
import { loadAccount, revokeSession, signOut, signOutEverywhere } from '../account/sessions';
import { signInAfterPasskeySignUp, verifyEmail } from '../auth/email-verification';
import { requestPasswordReset, resetPassword } from '../auth/password-reset';
import { forgotPasswordInput, resetPasswordInput, secondFactorInput, signInInput, signUpInput, verifyEmailInput } from '../auth/schemas';
import { ACR } from '../auth/acr';
import {
  EMAIL_SIGN_IN_COOKIE,
  EMAIL_SIGN_IN_TTL_MS,
  peekEmailSignInLink,
  requestEmailSignIn,
  signInWithEmailCode,
  signInWithEmailLink,
} from '../auth/email-sign-in';
import { listPasskeys, removePasskey } from '../auth/passkeys';
import {
  assertRecentSignIn,
  completeSignIn,
  PENDING_COOKIE,
  PENDING_TTL,
  readPending,
  stepUp,
  type SignInOutcome,
} from '../auth/second-factor';
import { signInWithPassword } from '../auth/sign-in';
import {
  confirmTotpEnrollment,
  disableTotp,
  hasSecondFactor,
  pendingTotpSecret,
  regenerateRecoveryCodes,
  secondFactorsOf,
  startTotpEnrollment,
} from '../auth/totp';
import { signUp } from '../auth/sign-up';
import { safeReturnTo } from '../auth/urls';
import type { AppEnv } from '../deps';
import { GatehouseError } from '../lib/errors';
import { deferTo, parseInput, requestMeta, signInContext } from '../lib/http';
import { limitPostsPerIp } from '../lib/rate-limit';
import { clearCookie, clearSessionCookie, setPendingCookie, setSessionCookie } from '../sessions/middleware';
import { PASSKEY_SCRIPT } from './generated/passkeys.bundle';
import { csrfProtection } from './csrf';
import { PASSKEY_SCRIPT_PATH, STYLESHEET, STYLESHEET_PATH } from './layout';
import { NoSecondFactorPage, RecoveryCodesPage, SecondFactorPage, TotpEnrollPage } from './pages/mfa';
import { qrDataUri } from './qr';
import { en } from './messages';
import { AccountPage } from './pages/account';
import {
  ConfirmEmailLinkPage,
  ContinuePage,
  EmailCodePage,
  EmailSignInPage,
  ForgotPasswordPage,
  MessagePage,
  ResetPasswordPage,
  SignInPage,
  SignUpPage,
  VerifyEmailPage,
  type FormState,
} from './pages/credentials';

type C = Context<AppEnv>;

/** The hosted pages under /auth: forms post back to their own path (docs/api.md lists both faces). */
export const pages = new Hono<AppEnv>();

pages.get(STYLESHEET_PATH.replace('/auth', ''), (c) =>
  c.body(STYLESHEET, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
);
pages.get(PASSKEY_SCRIPT_PATH.replace('/auth', ''), (c) =>
  c.body(PASSKEY_SCRIPT, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
);

pages.use('/*', async (c, next) => {
  c.header('cache-control', 'no-store');
  await next();
});
pages.use('/*', csrfProtection);

const credentialPosts = ['/sign-up', '/sign-in', '/second-factor', '/email-sign-in', '/email-sign-in/code', '/email-sign-in/link', '/forgot-password', '/reset-password', '/verify-email', '/account/totp'];
limitPostsPerIp(pages, credentialPosts);

/**
 * Runs a form action; a 4xx GatehouseError re-renders the form with the message next to its field
 * (status and Retry-After kept). Anything else propagates to the app's error handler.
 */
async function formAction(c: C, render: (s: FormState) => unknown, run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof GatehouseError) || e.status >= 500) throw e;
    if (e.extra.retryAfter) c.header('retry-after', String(e.extra.retryAfter));
    const state: FormState = { csrf: c.var.csrfToken, error: e.message };
    if (e.extra.field) state.field = e.extra.field;
    return c.html(render(state) as string, e.status as 400);
  }
}

/** The email the person typed, to put back into a re-rendered form. */
const typedEmail = async (c: C) => {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  return typeof body['email'] === 'string' ? body['email'].slice(0, 254) : undefined;
};

// Sign in
pages.get('/sign-in', (c) =>
  c.html(
    <SignInPage
      csrf={c.var.csrfToken}
      returnTo={safeReturnTo(c.req.query('return_to'))}
      email={c.req.query('login_hint')?.slice(0, 254)}
    />,
  ),
);
/** Where a form post goes once signed in: an authorization request leaves the form submission first. */
const continueTo = (c: C, returnTo: string) =>
  returnTo.startsWith('/auth/authorize') ? c.html(<ContinuePage href={returnTo} />) : c.redirect(returnTo, 303);

/** A first factor passed: signed in at once, or on to the second step. */
function afterFirstFactor(c: C, outcome: SignInOutcome, returnTo: string): Response | Promise<Response> {
  if (outcome.kind === 'second_factor') {
    setPendingCookie(c, PENDING_COOKIE, outcome.pending, PENDING_TTL);
    return c.redirect(`/auth/second-factor?${new URLSearchParams({ return_to: returnTo })}`, 303);
  }
  clearCookie(c, PENDING_COOKIE);
  setSessionCookie(c, outcome.session.cookie);
  return continueTo(c, returnTo);
}

const formReturnTo = async (c: C) => safeReturnTo(((await c.req.parseBody())['return_to'] as string | undefined) ?? null);

pages.post('/sign-in', async (c) => {
  const email = await typedEmail(c);
  const returnTo = await formReturnTo(c);
  return formAction(c, (s) => <SignInPage {...s} email={email} returnTo={returnTo} />, async () => {
    const input = await parseInput(c, 'form', signInInput);
    const outcome = await signInWithPassword(c.var.deps, input, signInContext(c), { defer: deferTo(c, 'sign_in_mail_failed') });
    return afterFirstFactor(c, outcome, returnTo);
  });
});

// The second step of a sign-in (pending cookie), or a step-up of the current session.
async function secondFactorState(c: C): Promise<{ userId: string; stepUp: boolean } | null> {
  const pending = await readPending(c.var.deps, getCookie(c, PENDING_COOKIE));
  if (pending) return { userId: pending.sub, stepUp: false };
  return c.var.session ? { userId: c.var.session.sub, stepUp: true } : null;
}

pages.get('/second-factor', async (c) => {
  const returnTo = safeReturnTo(c.req.query('return_to') ?? null);
  const state = await secondFactorState(c);
  if (!state) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  const factors = await secondFactorsOf(c.var.deps, state.userId);
  if (!hasSecondFactor(factors)) return c.html(<NoSecondFactorPage returnTo={returnTo} />, 403);
  // A phishing-resistant sign-in can only come from a passkey: codes are not offered then.
  const passkeyOnly = c.req.query('acr') === ACR.phishingResistant;
  if (passkeyOnly && factors.passkeys === 0) return c.html(<NoSecondFactorPage returnTo={returnTo} />, 403);
  const shown = passkeyOnly ? { ...factors, totp: false, recoveryCodesLeft: 0 } : factors;
  return c.html(<SecondFactorPage csrf={c.var.csrfToken} returnTo={returnTo} factors={shown} stepUp={state.stepUp} />);
});
pages.post('/second-factor', async (c) => {
  const returnTo = await formReturnTo(c);
  const state = await secondFactorState(c);
  if (!state) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  const factors = await secondFactorsOf(c.var.deps, state.userId);
  return formAction(c, (s) => <SecondFactorPage {...s} returnTo={returnTo} factors={factors} stepUp={state.stepUp} />, async () => {
    const { code } = await parseInput(c, 'form', secondFactorInput);
    const { deps } = c.var;
    if (state.stepUp) {
      const { session } = await stepUp(deps, c.var.session!, { kind: 'code', code }, requestMeta(c));
      setSessionCookie(c, session.cookie);
      return continueTo(c, returnTo);
    }
    const done = await completeSignIn(deps, getCookie(c, PENDING_COOKIE), { kind: 'code', code }, signInContext(c), {
      defer: deferTo(c, 'sign_in_mail_failed'),
    });
    return afterFirstFactor(c, { kind: 'signed_in', ...done }, returnTo);
  });
});

// Email sign-in: a link and a code in one mail.
pages.get('/email-sign-in', (c) =>
  c.html(<EmailSignInPage csrf={c.var.csrfToken} returnTo={safeReturnTo(c.req.query('return_to') ?? null)} />),
);
pages.post('/email-sign-in', async (c) => {
  const email = await typedEmail(c);
  const returnTo = await formReturnTo(c);
  return formAction(c, (s) => <EmailSignInPage {...s} email={email} returnTo={returnTo} />, async () => {
    const input = await parseInput(c, 'form', forgotPasswordInput);
    const { cookie } = await requestEmailSignIn(c.var.deps, input.email, requestMeta(c), deferTo(c, 'sign_in_mail_failed'), returnTo);
    setPendingCookie(c, EMAIL_SIGN_IN_COOKIE, cookie, EMAIL_SIGN_IN_TTL_MS / 1000);
    return c.html(<EmailCodePage csrf={c.var.csrfToken} returnTo={returnTo} sentTo={input.email} />, 202);
  });
});
pages.post('/email-sign-in/code', async (c) => {
  const returnTo = await formReturnTo(c);
  return formAction(c, (s) => <EmailCodePage {...s} returnTo={returnTo} />, async () => {
    const { code } = await parseInput(c, 'form', secondFactorInput);
    const outcome = await signInWithEmailCode(
      c.var.deps,
      { code, bindingCookie: getCookie(c, EMAIL_SIGN_IN_COOKIE) },
      signInContext(c),
      deferTo(c, 'sign_in_mail_failed'),
    );
    clearCookie(c, EMAIL_SIGN_IN_COOKIE);
    return afterFirstFactor(c, outcome, returnTo);
  });
});
const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
// Opening the link shows a confirmation, never signs in by itself: mail scanners fetch links, and a
// link opened in another browser must say who asked for it before that browser is signed in.
pages.get('/email-sign-in/link', async (c) => {
  const token = tokenQuery.parse(c.req.query('token'));
  try {
    const view = await peekEmailSignInLink(c.var.deps, token, getCookie(c, EMAIL_SIGN_IN_COOKIE));
    return c.html(<ConfirmEmailLinkPage csrf={c.var.csrfToken} token={token} device={view.device} when={when(view.requestedAt)} sameBrowser={view.sameBrowser} />);
  } catch (e) {
    if (!(e instanceof GatehouseError) || e.status >= 500) throw e;
    return c.html(<MessagePage title={en.emailSignIn.title} body={e.message} status="error" link={{ href: '/auth/email-sign-in', label: en.emailSignIn.submit }} />, 400);
  }
});
pages.post('/email-sign-in/link', async (c) => {
  const token = tokenQuery.parse((await c.req.parseBody())['token']);
  try {
    const { outcome, returnTo } = await signInWithEmailLink(c.var.deps, token, signInContext(c), deferTo(c, 'sign_in_mail_failed'));
    clearCookie(c, EMAIL_SIGN_IN_COOKIE);
    return afterFirstFactor(c, outcome, returnTo);
  } catch (e) {
    if (!(e instanceof GatehouseError) || e.status >= 500) throw e;
    return c.html(<MessagePage title={en.emailSignIn.title} body={e.message} status="error" link={{ href: '/auth/email-sign-in', label: en.emailSignIn.submit }} />, e.status as 400);
  }
});

// Sign up
pages.get('/sign-up', (c) => c.html(<SignUpPage csrf={c.var.csrfToken} minLength={c.var.deps.config.passwordMinLength} />));
pages.post('/sign-up', async (c) => {
  const email = await typedEmail(c);
  const minLength = c.var.deps.config.passwordMinLength;
  return formAction(c, (s) => <SignUpPage {...s} email={email} minLength={minLength} />, async () => {
    const input = await parseInput(c, 'form', signUpInput);
    await signUp(c.var.deps, input, requestMeta(c));
    return c.html(<MessagePage title={en.signUp.sent} body={en.signUp.sentBody(input.email)} />, 202);
  });
});

// Forgot and reset password
pages.get('/forgot-password', (c) => c.html(<ForgotPasswordPage csrf={c.var.csrfToken} />));
pages.post('/forgot-password', async (c) => {
  const email = await typedEmail(c);
  return formAction(c, (s) => <ForgotPasswordPage {...s} email={email} />, async () => {
    const input = await parseInput(c, 'form', forgotPasswordInput);
    await requestPasswordReset(c.var.deps, input.email, requestMeta(c), deferTo(c, 'reset_mail_failed'));
    return c.html(<MessagePage title={en.forgot.sent} body={en.forgot.sentBody} />, 202);
  });
});

const tokenQuery = z.string().max(256).catch('');
pages.get('/reset-password', (c) => {
  const token = tokenQuery.parse(c.req.query('token'));
  return c.html(<ResetPasswordPage csrf={c.var.csrfToken} token={token} minLength={c.var.deps.config.passwordMinLength} />);
});
pages.post('/reset-password', async (c) => {
  const token = tokenQuery.parse((await c.req.parseBody())['token']);
  const minLength = c.var.deps.config.passwordMinLength;
  return formAction(c, (s) => <ResetPasswordPage {...s} token={token} minLength={minLength} />, async () => {
    const input = await parseInput(c, 'form', resetPasswordInput);
    await resetPassword(c.var.deps, input, requestMeta(c));
    clearSessionCookie(c);
    return c.html(
      <MessagePage title={en.reset.done} body={en.reset.doneBody} link={{ href: '/auth/sign-in', label: en.signIn.submit }} />,
    );
  });
});

// Verify email: GET shows a button, POST consumes the token.
pages.get('/verify-email', (c) =>
  c.html(<VerifyEmailPage csrf={c.var.csrfToken} token={tokenQuery.parse(c.req.query('token'))} />),
);
pages.post('/verify-email', async (c) => {
  const token = tokenQuery.parse((await c.req.parseBody())['token']);
  return formAction(c, (s) => <VerifyEmailPage {...s} token={token} />, async () => {
    const input = await parseInput(c, 'form', verifyEmailInput);
    const { deps } = c.var;
    const verified = await verifyEmail(deps, input.token, requestMeta(c));
    if (verified.passwordless) {
      // Signed up with a passkey: signed in by the confirmed address, then on to create the passkey.
      const outcome = await signInAfterPasskeySignUp(deps, verified.userId, signInContext(c), deferTo(c, 'sign_in_mail_failed'));
      return afterFirstFactor(c, outcome, '/auth/account?setup=passkey');
    }
    return c.html(
      <MessagePage title={en.verify.done} body={en.verify.doneBody(verified.email)} link={{ href: '/auth/sign-in', label: en.signIn.submit }} />,
    );
  });
});

// Account
const toSignIn = (c: C) => {
  clearSessionCookie(c);
  return c.redirect(`/auth/sign-in?return_to=${encodeURIComponent('/auth/account')}`, 303);
};

/** Runs an account action for the signed-in user; a missing or revoked session goes to sign-in. */
async function withAccount(c: C, run: () => Promise<Response>): Promise<Response> {
  if (!c.var.session) return toSignIn(c);
  try {
    return await run();
  } catch (e) {
    if (e instanceof GatehouseError && e.code === 'unauthenticated') return toSignIn(c);
    // Changing second factors needs a recent sign-in: sign in again and come back.
    if (e instanceof GatehouseError && e.code === 'recent_sign_in_required')
      return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: '/auth/account', reason: 'recent' })}`, 303);
    throw e;
  }
}

pages.get('/account', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const account = await loadAccount(deps, c.var.session!);
    const [factors, passkeys] = await Promise.all([secondFactorsOf(deps, account.user.id), listPasskeys(deps, account.user.id)]);
    const setup = c.req.query('setup') === 'passkey' && passkeys.length === 0;
    return c.html(<AccountPage account={account} csrf={c.var.csrfToken} security={{ factors, passkeys }} setupPasskey={setup} />);
  }),
);

// Two-step verification: enrol an authenticator app (QR rendered here, never by a third party).
pages.get('/account/totp', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    const returnTo = safeReturnTo(c.req.query('return_to') ?? '/auth/account');
    const enrolment = (await pendingTotpSecret(deps, user)) ?? (await startTotpEnrollment(deps, user));
    return c.html(<TotpEnrollPage csrf={c.var.csrfToken} secret={enrolment.secret} qr={qrDataUri(enrolment.uri)} returnTo={returnTo} />);
  }),
);
pages.post('/account/totp', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    const returnTo = await formReturnTo(c);
    const enrolment = await pendingTotpSecret(deps, user);
    if (!enrolment) return c.redirect('/auth/account/totp', 303);
    return formAction(
      c,
      (s) => <TotpEnrollPage {...s} secret={enrolment.secret} qr={qrDataUri(enrolment.uri)} returnTo={returnTo} />,
      async () => {
        const { code } = await parseInput(c, 'form', secondFactorInput);
        const codes = await confirmTotpEnrollment(deps, user.id, code, requestMeta(c));
        return c.html(<RecoveryCodesPage codes={codes} returnTo={returnTo} />);
      },
    );
  }),
);
pages.post('/account/totp/remove', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    assertRecentSignIn(c.var.session!, deps.now());
    await disableTotp(deps, user.id, requestMeta(c));
    return c.redirect('/auth/account', 303);
  }),
);
pages.post('/account/recovery-codes', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    assertRecentSignIn(c.var.session!, deps.now());
    if (!(await secondFactorsOf(deps, user.id)).totp) return c.redirect('/auth/account/totp', 303);
    return c.html(<RecoveryCodesPage codes={await regenerateRecoveryCodes(deps, user.id, requestMeta(c))} returnTo="/auth/account" />);
  }),
);
pages.post('/account/passkeys/:id/remove', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    assertRecentSignIn(c.var.session!, deps.now());
    await removePasskey(deps, user.id, c.req.param('id'), requestMeta(c));
    return c.redirect('/auth/account', 303);
  }),
);
pages.post('/account/sessions/:sid/revoke', (c) =>
  withAccount(c, async () => {
    const claims = c.var.session!;
    await loadAccount(c.var.deps, claims);
    const sid = c.req.param('sid');
    await revokeSession(c.var.deps, claims, sid, requestMeta(c)).catch((e) => {
      if (!(e instanceof GatehouseError && e.code === 'not_found')) throw e;
    });
    if (sid === claims.sid) return toSignIn(c);
    return c.redirect('/auth/account', 303);
  }),
);
pages.post('/sign-out', async (c) => {
  if (c.var.session) await signOut(c.var.deps, c.var.session, requestMeta(c));
  clearSessionCookie(c);
  return c.redirect('/auth/sign-in', 303);
});
pages.post('/sign-out-everywhere', (c) =>
  withAccount(c, async () => {
    await signOutEverywhere(c.var.deps, c.var.session!, requestMeta(c));
    return toSignIn(c);
  }),
);
