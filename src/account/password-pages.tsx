import type { FC } from 'hono/jsx';
import { Alert, BackToAccount, Field, Form, Layout, ProofFields } from '../ui/layout';
import type { FormState } from '../ui/components';
import { en } from '../ui/messages';
import { shownEmail } from '../identity/email';

const fieldError = (s: FormState, name: string) => (s.field === name ? s.error : undefined);

/**
 * Change the password, or set a first one. The current password is the proof for a change; a first
 * password needs a recent sign-in — or, where an origin shares Gatehouse's host, a code (ProofFields).
 */
export const PasswordPage: FC<FormState & { hasPassword: boolean; minLength: number; askProof: boolean }> = (s) => (
  <Layout title={s.hasPassword ? en.passwordChange.change : en.passwordChange.set}>
    <Alert
      message={
        s.field === 'currentPassword' || s.field === 'newPassword' || (s.field === 'proof' && s.askProof && !s.hasPassword)
          ? undefined
          : s.error
      }
    />
    {!s.hasPassword && <p>{en.passwordChange.none}</p>}
    <Form action="/auth/account/password" csrf={s.csrf}>
      {/* A hidden username lets password managers file the new password under the right account. */}
      {s.email && shownEmail(s.email) && <input type="email" name="username" autocomplete="username" value={s.email} hidden readonly />}
      {s.hasPassword && (
        <Field
          name="current_password"
          label={en.passwordChange.current}
          type="password"
          autocomplete="current-password"
          required={s.askProof}
          {...(s.askProof ? {} : { hint: en.passwordChange.currentHint })}
          error={fieldError(s, 'currentPassword')}
        />
      )}
      <Field
        name="new_password"
        label={en.newPassword}
        type="password"
        autocomplete="new-password"
        minlength={s.minLength}
        hint={en.passwordHint(s.minLength)}
        error={fieldError(s, 'newPassword')}
        autofocus
      />
      {s.askProof && !s.hasPassword && <ProofFields error={fieldError(s, 'proof')} />}
      <button class="primary" type="submit">
        {s.hasPassword ? en.passwordChange.submitChange : en.passwordChange.submitSet}
      </button>
    </Form>
    <BackToAccount />
  </Layout>
);
