import type { ProfileAttribute } from '../identity/profile-attributes';
import { AttributeControl } from './attribute-control';
import type { FC } from 'hono/jsx';
import { UpstreamButtons, type ProviderButton } from './upstream-pages';
import { Alert, CodeForm, Field, Form, Layout } from '../ui/layout';
import type { FormState } from '../ui/components';
import { en } from '../ui/messages';

const fieldError = (s: FormState, name: string) => (s.field === name ? s.error : undefined);
const formError = (s: FormState) => (s.error && !['email', 'password', 'token'].includes(s.field ?? '') ? s.error : undefined);

export const SignInPage: FC<FormState & { returnTo?: string; providers?: ProviderButton[] }> = (s) => (
  <Layout title={en.signIn.title} passkeys>
    <Alert message={formError(s)} />
    <Form action="/auth/sign-in" csrf={s.csrf}>
      {s.returnTo && <input type="hidden" name="return_to" value={s.returnTo} />}
      {/* "webauthn" lets the browser offer passkeys in this field's autofill (conditional UI). */}
      <Field
        name="email"
        label={en.email}
        type="email"
        autocomplete="username webauthn"
        value={s.email}
        error={fieldError(s, 'email')}
        autofocus
      />
      <Field name="password" label={en.password} type="password" autocomplete="current-password" error={fieldError(s, 'password')} />
      <button class="primary" type="submit">
        {en.signIn.submit}
      </button>
    </Form>
    <p>
      <button type="button" data-passkey="sign-in" data-return-to={s.returnTo ?? '/auth/account'}>
        {en.signIn.passkey}
      </button>{' '}
      <a href={`/auth/email-sign-in${s.returnTo ? `?return_to=${encodeURIComponent(s.returnTo)}` : ''}`}>{en.signIn.emailLink}</a> ·{' '}
      <a href="/auth/handoff/qr">{en.signIn.withPhone}</a>
    </p>
    <p class="alert" role="alert" data-passkey-error hidden />
    <UpstreamButtons providers={s.providers ?? []} csrf={s.csrf} returnTo={s.returnTo} />
    <p>
      <a href="/auth/forgot-password">{en.signIn.forgot}</a>
    </p>
    <p>
      {en.signIn.noAccount} <a href="/auth/sign-up">{en.signIn.createAccount}</a>
    </p>
  </Layout>
);

export const SignUpPage: FC<FormState & { minLength: number; providers?: ProviderButton[]; attributes?: ProfileAttribute[] }> = (s) => (
  <Layout title={en.signUp.title}>
    <Alert message={formError(s)} />
    <Form action="/auth/sign-up" csrf={s.csrf}>
      <Field name="email" label={en.email} type="email" autocomplete="email" value={s.email} error={fieldError(s, 'email')} autofocus />
      <Field
        name="password"
        label={en.password}
        type="password"
        autocomplete="new-password"
        minlength={s.minLength}
        hint={en.passwordHint(s.minLength)}
        error={fieldError(s, 'password')}
      />
      {(s.attributes ?? []).map((a) => (
        <AttributeControl a={a} value={undefined} needed error={fieldError(s, `attributes.${a.id}`)} />
      ))}
      <button class="primary" type="submit" name="method" value="password">
        {en.signUp.submit}
      </button>{' '}
      {/* No password: the account is created when the address is confirmed, then a passkey is added. */}
      <button type="submit" name="method" value="passkey" formnovalidate>
        {en.signUp.withPasskey}
      </button>
    </Form>
    <UpstreamButtons providers={s.providers ?? []} csrf={s.csrf} />
    <p>
      {en.signUp.haveAccount} <a href="/auth/sign-in">{en.signIn.submit}</a>
    </p>
  </Layout>
);

export const ForgotPasswordPage: FC<FormState> = (s) => (
  <Layout title={en.forgot.title}>
    <p>{en.forgot.intro}</p>
    <Alert message={formError(s)} />
    <Form action="/auth/forgot-password" csrf={s.csrf}>
      <Field name="email" label={en.email} type="email" autocomplete="email" value={s.email} error={fieldError(s, 'email')} autofocus />
      <button class="primary" type="submit">
        {en.forgot.submit}
      </button>
    </Form>
  </Layout>
);

export const ResetPasswordPage: FC<FormState & { token: string; minLength: number }> = (s) => (
  <Layout title={en.reset.title}>
    <Alert message={s.field === 'token' ? s.error : formError(s)} />
    <Form action="/auth/reset-password" csrf={s.csrf}>
      <input type="hidden" name="token" value={s.token} />
      <Field
        name="password"
        label={en.newPassword}
        type="password"
        autocomplete="new-password"
        minlength={s.minLength}
        hint={en.passwordHint(s.minLength)}
        error={fieldError(s, 'password')}
        autofocus
      />
      <button class="primary" type="submit">
        {en.reset.submit}
      </button>
    </Form>
  </Layout>
);

/** Opening a link only shows this form: mail scanners that fetch links do not consume the token. */
export const VerifyEmailPage: FC<FormState & { token: string }> = (s) => (
  <Layout title={en.verify.title}>
    <Alert message={s.error} />
    <p>{en.verify.intro}</p>
    <Form action="/auth/verify-email" csrf={s.csrf}>
      <input type="hidden" name="token" value={s.token} />
      <button class="primary" type="submit">
        {en.verify.submit}
      </button>
    </Form>
  </Layout>
);

export const EmailSignInPage: FC<FormState & { returnTo: string }> = (s) => (
  <Layout title={en.emailSignIn.title}>
    <p>{en.emailSignIn.intro}</p>
    <Alert message={formError(s)} />
    <Form action="/auth/email-sign-in" csrf={s.csrf}>
      <input type="hidden" name="return_to" value={s.returnTo} />
      <Field name="email" label={en.email} type="email" autocomplete="email" value={s.email} error={fieldError(s, 'email')} autofocus />
      <button class="primary" type="submit">
        {en.emailSignIn.submit}
      </button>
    </Form>
  </Layout>
);

/** After asking: the code form (the link in the same mail also works). */
export const EmailCodePage: FC<FormState & { returnTo: string; sentTo?: string }> = (s) => (
  <Layout title={en.emailSignIn.sentTitle}>
    {s.sentTo && <p role="status">{en.emailSignIn.sentBody(s.sentTo)}</p>}
    <Alert message={s.field === 'code' ? undefined : s.error} />
    <CodeForm
      action="/auth/email-sign-in/code"
      csrf={s.csrf}
      returnTo={s.returnTo}
      label={en.emailSignIn.code}
      submit={en.emailSignIn.codeSubmit}
      maxlength={9}
      numeric
      error={fieldError(s, 'code')}
    />
  </Layout>
);

/**
 * A sign-in link opened in a browser other than the one that asked: say who asked, and only sign
 * this browser in when the person confirms (a forwarded or phished link does not sign in silently).
 */
export const ConfirmEmailLinkPage: FC<FormState & { token: string; device: string; when: string; sameBrowser: boolean }> = (s) => (
  <Layout title={s.sameBrowser ? en.emailSignIn.continueTitle : en.emailSignIn.confirmTitle}>
    <Alert message={s.error} />
    {!s.sameBrowser && <p role="status">{en.emailSignIn.confirmBody(s.device, s.when)}</p>}
    <Form action="/auth/email-sign-in/link" csrf={s.csrf}>
      <input type="hidden" name="token" value={s.token} />
      <button class="primary" type="submit">
        {s.sameBrowser ? en.emailSignIn.continueSubmit : en.emailSignIn.confirmSubmit}
      </button>
    </Form>
  </Layout>
);
