import { attributesFromForm } from '../identity/profile-attributes';
import { router } from '../lib/router';
import { EMAIL_SIGN_IN_TTL_MS, peekEmailSignInLink, requestEmailSignIn, signInWithEmailCode, signInWithEmailLink } from './email-sign-in';
import { signInAfterPasskeySignUp, verifyEmail } from './email-verification';
import { requestPasswordReset, resetPassword } from './password-reset';
import { forgotPasswordInput, resetPasswordInput, secondFactorInput, signInInput, signUpInput, verifyEmailInput } from './schemas';
import { signInWithPassword } from './sign-in';
import { signUp } from './sign-up';
import { safeReturnTo } from './urls';
import { signInButtons } from './upstream-provider-records';
import { failClosed } from '../lib/errors';
import type { C } from './page-forms';
import { deferTo } from '../lib/defer';
import { parseInput } from '../lib/request-body';
import { requestMeta } from '../lib/request-meta';
import { signInContext } from './sign-in-context';
import { clearSessionCookie } from '../sessions/middleware';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { afterFirstFactor, formAction, formReturnTo, tokenQuery, typedEmail } from './page-forms';
import { MessagePage } from '../ui/components';
import { en } from '../ui/messages';
import {
  ConfirmEmailLinkPage,
  EmailCodePage,
  EmailSignInPage,
  ForgotPasswordPage,
  ResetPasswordPage,
  SignInPage,
  SignUpPage,
  VerifyEmailPage,
} from './pages';

/**
 * The sign-in, sign-up, email sign-in, password reset and email verification pages under /auth.
 * Mounted by src/hosted-authPages.ts under its no-store, CSRF and per-IP middleware.
 */
export const authPages = router('page');

// Sign in
/** The "continue with" buttons of a sign-in that goes on to `returnTo` (a client's own, for an authorization request). */
const buttonsFor = (c: C, returnTo: string | null | undefined) =>
  failClosed('the database', () => signInButtons(c.var.deps.db, returnTo, c.var.deps.now()));

authPages.get('/sign-in', async (c) => {
  const returnTo = safeReturnTo(c.req.query('return_to'));
  return c.html(
    <SignInPage
      csrf={c.var.csrfToken}
      returnTo={returnTo}
      email={c.req.query('login_hint')?.slice(0, 254)}
      providers={await buttonsFor(c, returnTo)}
    />,
  );
});
authPages.post('/sign-in', async (c) => {
  const email = await typedEmail(c);
  const returnTo = await formReturnTo(c);
  const providers = await buttonsFor(c, returnTo);
  return formAction(
    c,
    (s) => <SignInPage {...s} email={email} returnTo={returnTo} providers={providers} />,
    async () => {
      const input = await parseInput(c, 'form', signInInput);
      const outcome = await signInWithPassword(c.var.deps, input, signInContext(c), { defer: deferTo(c, 'sign_in_mail_failed') });
      return afterFirstFactor(c, outcome, returnTo);
    },
  );
});

// Email sign-in: a link and a code in one mail.
authPages.get('/email-sign-in', (c) =>
  c.html(<EmailSignInPage csrf={c.var.csrfToken} returnTo={safeReturnTo(c.req.query('return_to') ?? null)} />),
);
authPages.post('/email-sign-in', async (c) => {
  const email = await typedEmail(c);
  const returnTo = await formReturnTo(c);
  return formAction(
    c,
    (s) => <EmailSignInPage {...s} email={email} returnTo={returnTo} />,
    async () => {
      const input = await parseInput(c, 'form', forgotPasswordInput);
      const { cookie } = await requestEmailSignIn(c.var.deps, input.email, requestMeta(c), deferTo(c, 'sign_in_mail_failed'), returnTo);
      writeCookie(c, COOKIES.emailSignIn, cookie, EMAIL_SIGN_IN_TTL_MS / 1000);
      return c.html(<EmailCodePage csrf={c.var.csrfToken} returnTo={returnTo} sentTo={input.email} />, 202);
    },
  );
});
authPages.post('/email-sign-in/code', async (c) => {
  const returnTo = await formReturnTo(c);
  return formAction(
    c,
    (s) => <EmailCodePage {...s} returnTo={returnTo} />,
    async () => {
      const { code } = await parseInput(c, 'form', secondFactorInput);
      const outcome = await signInWithEmailCode(
        c.var.deps,
        { code, bindingCookie: readCookie(c, COOKIES.emailSignIn) },
        signInContext(c),
        deferTo(c, 'sign_in_mail_failed'),
      );
      clearCookie(c, COOKIES.emailSignIn);
      return afterFirstFactor(c, outcome, returnTo);
    },
  );
});
/** A link that cannot be used: say so under the email sign-in title, with the way to a new one. */
const emailLinkErrorPage = { title: en.emailSignIn.title, link: { href: '/auth/email-sign-in', label: en.emailSignIn.submit } };
const when = (ms: number) => `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC`;
// Opening the link shows a confirmation, never signs in by itself: mail scanners fetch links, and a
// link opened in another browser must say who asked for it before that browser is signed in.
authPages.get('/email-sign-in/link', async (c) => {
  const token = tokenQuery.parse(c.req.query('token'));
  c.set('errorPage', emailLinkErrorPage);
  const view = await peekEmailSignInLink(c.var.deps, token, readCookie(c, COOKIES.emailSignIn));
  return c.html(
    <ConfirmEmailLinkPage
      csrf={c.var.csrfToken}
      token={token}
      device={view.device}
      when={when(view.requestedAt)}
      sameBrowser={view.sameBrowser}
    />,
  );
});
authPages.post('/email-sign-in/link', async (c) => {
  const token = tokenQuery.parse((await c.req.parseBody())['token']);
  c.set('errorPage', emailLinkErrorPage);
  const { outcome, returnTo } = await signInWithEmailLink(c.var.deps, token, signInContext(c), deferTo(c, 'sign_in_mail_failed'));
  clearCookie(c, COOKIES.emailSignIn);
  return afterFirstFactor(c, outcome, returnTo);
});

// Sign up
authPages.get('/sign-up', async (c) =>
  c.html(
    <SignUpPage
      csrf={c.var.csrfToken}
      minLength={c.var.deps.config.passwordMinLength}
      providers={await buttonsFor(c, null)}
      attributes={c.var.deps.config.attributes.filter((a) => a.required)}
    />,
  ),
);
authPages.post('/sign-up', async (c) => {
  const email = await typedEmail(c);
  const minLength = c.var.deps.config.passwordMinLength;
  const providers = await buttonsFor(c, null);
  const asked = c.var.deps.config.attributes.filter((a) => a.required);
  return formAction(
    c,
    (s) => <SignUpPage {...s} email={email} minLength={minLength} providers={providers} attributes={asked} />,
    async () => {
      const input = await parseInput(c, 'form', signUpInput);
      const form = await c.req.parseBody();
      const attributes = attributesFromForm(asked, (k) => (typeof form[k] === 'string' ? (form[k] as string).trim() : ''));
      await signUp(c.var.deps, { ...input, attributes }, requestMeta(c));
      return c.html(<MessagePage title={en.signUp.sent} body={en.signUp.sentBody(input.email)} />, 202);
    },
  );
});

// Forgot and reset password
authPages.get('/forgot-password', (c) => c.html(<ForgotPasswordPage csrf={c.var.csrfToken} />));
authPages.post('/forgot-password', async (c) => {
  const email = await typedEmail(c);
  return formAction(
    c,
    (s) => <ForgotPasswordPage {...s} email={email} />,
    async () => {
      const input = await parseInput(c, 'form', forgotPasswordInput);
      await requestPasswordReset(c.var.deps, input.email, requestMeta(c), deferTo(c, 'reset_mail_failed'));
      return c.html(<MessagePage title={en.forgot.sent} body={en.forgot.sentBody} />, 202);
    },
  );
});

authPages.get('/reset-password', (c) => {
  const token = tokenQuery.parse(c.req.query('token'));
  return c.html(<ResetPasswordPage csrf={c.var.csrfToken} token={token} minLength={c.var.deps.config.passwordMinLength} />);
});
authPages.post('/reset-password', async (c) => {
  const token = tokenQuery.parse((await c.req.parseBody())['token']);
  const minLength = c.var.deps.config.passwordMinLength;
  return formAction(
    c,
    (s) => <ResetPasswordPage {...s} token={token} minLength={minLength} />,
    async () => {
      const input = await parseInput(c, 'form', resetPasswordInput);
      await resetPassword(c.var.deps, input, requestMeta(c));
      clearSessionCookie(c);
      return c.html(
        <MessagePage title={en.reset.done} body={en.reset.doneBody} link={{ href: '/auth/sign-in', label: en.signIn.submit }} />,
      );
    },
  );
});

// Verify email: GET shows a button, POST consumes the token.
authPages.get('/verify-email', (c) => c.html(<VerifyEmailPage csrf={c.var.csrfToken} token={tokenQuery.parse(c.req.query('token'))} />));
authPages.post('/verify-email', async (c) => {
  const token = tokenQuery.parse((await c.req.parseBody())['token']);
  return formAction(
    c,
    (s) => <VerifyEmailPage {...s} token={token} />,
    async () => {
      const input = await parseInput(c, 'form', verifyEmailInput);
      const { deps } = c.var;
      const verified = await verifyEmail(deps, input.token, requestMeta(c), readCookie(c, COOKIES.upstreamSignUp));
      clearCookie(c, COOKIES.upstreamSignUp);
      if (verified.passwordless) {
        // Signed up with a passkey: signed in by the confirmed address, then on to create the passkey.
        const outcome = await signInAfterPasskeySignUp(deps, verified.userId, signInContext(c), deferTo(c, 'sign_in_mail_failed'));
        return afterFirstFactor(c, outcome, '/auth/account?setup=passkey');
      }
      return c.html(
        <MessagePage
          title={en.verify.done}
          body={en.verify.doneBody(verified.email)}
          link={{ href: '/auth/sign-in', label: en.signIn.submit }}
        />,
      );
    },
  );
});
