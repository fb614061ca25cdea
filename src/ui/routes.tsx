import { router } from '../lib/router';
import { loadAccount, revokeSession, signOut, signOutEverywhere } from '../account/sessions';
import {
  EMAIL_SIGN_IN_TTL_MS,
  peekEmailSignInLink,
  requestEmailSignIn,
  signInWithEmailCode,
  signInWithEmailLink,
} from '../auth/email-sign-in';
import { signInAfterPasskeySignUp, verifyEmail } from '../auth/email-verification';
import { listPasskeys } from '../auth/passkeys';
import { requestPasswordReset, resetPassword } from '../auth/password-reset';
import { forgotPasswordInput, resetPasswordInput, secondFactorInput, signInInput, signUpInput, verifyEmailInput } from '../auth/schemas';
import { signInWithPassword } from '../auth/sign-in';
import { signUp } from '../auth/sign-up';
import { secondFactorsOf } from '../auth/totp';
import { safeReturnTo } from '../auth/urls';
import { GatehouseError } from '../lib/errors';
import { deferTo } from '../lib/defer';
import { parseInput } from '../lib/request-body';
import { requestMeta } from '../lib/request-meta';
import { signInContext } from '../auth/sign-in-context';
import { limitPostsPerIp } from '../lib/rate-limit';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { clearSessionCookie, requireSession } from '../sessions/middleware';
import { csrfProtection } from './csrf';
import { afterFirstFactor, formAction, formReturnTo, toSignIn, tokenQuery, typedEmail } from './form-helpers';
import { PASSKEY_SCRIPT } from './generated/passkeys.bundle';
import { PASSKEY_SCRIPT_PATH, STYLESHEET, STYLESHEET_PATH } from './layout';
import { en } from './messages';
import { AccountPage } from './pages/account';
import {
  ConfirmEmailLinkPage,
  EmailCodePage,
  EmailSignInPage,
  ForgotPasswordPage,
  MessagePage,
  ResetPasswordPage,
  SignInPage,
  SignUpPage,
  VerifyEmailPage,
} from './pages/credentials';
import { securityPages } from './security-routes';

/** The hosted pages under /auth: forms post back to their own path (docs/api.md lists both faces). */
export const pages = router('page');

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
pages.route('/', securityPages);

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
pages.post('/sign-in', async (c) => {
  const email = await typedEmail(c);
  const returnTo = await formReturnTo(c);
  return formAction(c, (s) => <SignInPage {...s} email={email} returnTo={returnTo} />, async () => {
    const input = await parseInput(c, 'form', signInInput);
    const outcome = await signInWithPassword(c.var.deps, input, signInContext(c), { defer: deferTo(c, 'sign_in_mail_failed') });
    return afterFirstFactor(c, outcome, returnTo);
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
    writeCookie(c, COOKIES.emailSignIn, cookie, EMAIL_SIGN_IN_TTL_MS / 1000);
    return c.html(<EmailCodePage csrf={c.var.csrfToken} returnTo={returnTo} sentTo={input.email} />, 202);
  });
});
pages.post('/email-sign-in/code', async (c) => {
  const returnTo = await formReturnTo(c);
  return formAction(c, (s) => <EmailCodePage {...s} returnTo={returnTo} />, async () => {
    const { code } = await parseInput(c, 'form', secondFactorInput);
    const outcome = await signInWithEmailCode(
      c.var.deps,
      { code, bindingCookie: readCookie(c, COOKIES.emailSignIn) },
      signInContext(c),
      deferTo(c, 'sign_in_mail_failed'),
    );
    clearCookie(c, COOKIES.emailSignIn);
    return afterFirstFactor(c, outcome, returnTo);
  });
});
/** A link that cannot be used: say so under the email sign-in title, with the way to a new one. */
const emailLinkErrorPage = { title: en.emailSignIn.title, link: { href: '/auth/email-sign-in', label: en.emailSignIn.submit } };
const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
// Opening the link shows a confirmation, never signs in by itself: mail scanners fetch links, and a
// link opened in another browser must say who asked for it before that browser is signed in.
pages.get('/email-sign-in/link', async (c) => {
  const token = tokenQuery.parse(c.req.query('token'));
  c.set('errorPage', emailLinkErrorPage);
  const view = await peekEmailSignInLink(c.var.deps, token, readCookie(c, COOKIES.emailSignIn));
  return c.html(<ConfirmEmailLinkPage csrf={c.var.csrfToken} token={token} device={view.device} when={when(view.requestedAt)} sameBrowser={view.sameBrowser} />);
});
pages.post('/email-sign-in/link', async (c) => {
  const token = tokenQuery.parse((await c.req.parseBody())['token']);
  c.set('errorPage', emailLinkErrorPage);
  const { outcome, returnTo } = await signInWithEmailLink(c.var.deps, token, signInContext(c), deferTo(c, 'sign_in_mail_failed'));
  clearCookie(c, COOKIES.emailSignIn);
  return afterFirstFactor(c, outcome, returnTo);
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
pages.get('/account', requireSession, async (c) => {
  const { deps } = c.var;
  const account = await loadAccount(deps, c.var.session);
  const [factors, passkeys] = await Promise.all([secondFactorsOf(deps, account.user.id), listPasskeys(deps, account.user.id)]);
  const setup = c.req.query('setup') === 'passkey' && passkeys.length === 0;
  return c.html(
    <AccountPage account={account} csrf={c.var.csrfToken} security={{ factors, passkeys }} setupPasskey={setup} askProof={deps.config.gateway.sharedHost} />,
  );
});

pages.post('/account/sessions/:sid/revoke', requireSession, async (c) => {
  const claims = c.var.session;
  await loadAccount(c.var.deps, claims);
  const sid = c.req.param('sid');
  await revokeSession(c.var.deps, claims, sid, requestMeta(c)).catch((e) => {
    if (!(e instanceof GatehouseError && e.code === 'not_found')) throw e;
  });
  if (sid === claims.sid) return toSignIn(c);
  return c.redirect('/auth/account', 303);
});
pages.post('/sign-out', async (c) => {
  if (c.var.session) await signOut(c.var.deps, c.var.session, requestMeta(c));
  clearSessionCookie(c);
  return c.redirect('/auth/sign-in', 303);
});
pages.post('/sign-out-everywhere', requireSession, async (c) => {
  await signOutEverywhere(c.var.deps, c.var.session, requestMeta(c));
  return toSignIn(c);
});
