import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import { en } from './messages';

export const STYLESHEET_PATH = '/auth/assets/gatehouse.css';

export const PASSKEY_SCRIPT_PATH = '/auth/assets/passkeys.js';
export const HANDOFF_SCRIPT_PATH = '/auth/assets/handoff.js';

/**
 * `passkeys`: load the bundled WebAuthn script (buttons with data-passkey attributes);
 * `handoff`: the cross-device waiting script (an element #handoff says what to wait for).
 */
export const Layout: FC<PropsWithChildren<{ title: string; refreshTo?: string; passkeys?: boolean; handoff?: boolean }>> = ({
  title,
  refreshTo,
  passkeys,
  handoff,
  children,
}) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="same-origin" />
      <title>{`${title} · ${en.product}`}</title>
      <link rel="stylesheet" href={STYLESHEET_PATH} />
      {refreshTo && <meta http-equiv="refresh" content={`0;url=${refreshTo}`} />}
      {passkeys && <script type="module" src={PASSKEY_SCRIPT_PATH} />}
      {handoff && <script type="module" src={HANDOFF_SCRIPT_PATH} />}
    </head>
    <body>
      <main>
        <h1>{title}</h1>
        {children}
      </main>
    </body>
  </html>
);

/** A labelled input whose error text is tied to it (aria-describedby, aria-invalid). */
export const Field: FC<{
  name: string;
  label: string;
  type?: string;
  autocomplete: string;
  value?: string;
  error?: string | undefined;
  hint?: string;
  required?: boolean;
  minlength?: number;
  autofocus?: boolean;
  inputmode?: 'numeric' | 'text';
  maxlength?: number;
}> = (p) => {
  const id = `field-${p.name}`;
  const described = [p.hint ? `${id}-hint` : '', p.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={id}>{p.label}</label>
      <input
        id={id}
        name={p.name}
        type={p.type ?? 'text'}
        autocomplete={p.autocomplete}
        value={p.value}
        required={p.required ?? true}
        minlength={p.minlength}
        autofocus={p.autofocus}
        inputmode={p.inputmode}
        maxlength={p.maxlength}
        aria-invalid={p.error ? 'true' : undefined}
        aria-describedby={described || undefined}
      />
      {p.hint && (
        <p class="hint" id={`${id}-hint`}>
          {p.hint}
        </p>
      )}
      {p.error && (
        <p class="error" id={`${id}-error`} role="alert">
          {p.error}
        </p>
      )}
    </div>
  );
};

/** A POST form carrying the CSRF token. */
export const Form: FC<PropsWithChildren<{ action: string; csrf: string; class?: string }>> = (p) => (
  <form method="post" action={p.action} class={p.class}>
    <input type="hidden" name="csrf_token" value={p.csrf} />
    {p.children}
  </form>
);

/**
 * The proof a sensitive action asks for where an origin shares Gatehouse's host (auth/recent-auth.ts):
 * the password, or a code from the authenticator app (or a recovery code), typed at that moment.
 */
export const ProofFields: FC<{ error?: string | undefined }> = ({ error }) => (
  <fieldset class="proof">
    <legend>{en.proof.legend}</legend>
    <Field name="proof_password" label={en.proof.password} type="password" autocomplete="current-password" required={false} />
    <Field name="proof_code" label={en.proof.code} autocomplete="one-time-code" maxlength={32} required={false} error={error} />
  </fieldset>
);

/** A one-time-code form (TOTP, recovery or email code) that returns to `returnTo`; `error` sits by the field. */
export const CodeForm: FC<
  PropsWithChildren<{
    action: string;
    csrf: string;
    returnTo: string;
    label: string;
    submit: string;
    maxlength: number;
    numeric: boolean;
    hint?: string;
    error?: string | undefined;
  }>
> = (p) => (
  <Form action={p.action} csrf={p.csrf}>
    <input type="hidden" name="return_to" value={p.returnTo} />
    <Field
      name="code"
      label={p.label}
      autocomplete="one-time-code"
      inputmode={p.numeric ? 'numeric' : 'text'}
      maxlength={p.maxlength}
      {...(p.hint ? { hint: p.hint } : {})}
      error={p.error}
      autofocus
    />
    {p.children}
    <button class="primary" type="submit">
      {p.submit}
    </button>
  </Form>
);

/** An error not tied to one field. */
export const Alert: FC<{ message?: string | undefined }> = ({ message }) =>
  message ? (
    <p class="alert" role="alert">
      {message}
    </p>
  ) : null;

export const Notice: FC<PropsWithChildren> = ({ children }) => (
  <div class="notice" role="status">
    {children as Child}
  </div>
);

export const STYLESHEET = `
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { margin: 0; display: flex; justify-content: center; }
main { width: 100%; max-width: 42rem; padding: 2rem 1.25rem; }
td.when { white-space: nowrap; }
h1 { font-size: 1.6rem; }
.field { margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input[type=email], input[type=password], input[type=text] { width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem; border: 1px solid #888; border-radius: .35rem; }
input[aria-invalid=true] { border-color: #c0162b; }
button { padding: .6rem 1.1rem; font-size: 1rem; border-radius: .35rem; border: 1px solid #444; cursor: pointer; }
button.primary { background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
.hint { margin: .25rem 0 0; font-size: .9rem; opacity: .8; }
.error, .alert { color: #c0162b; margin: .25rem 0 0; }
.alert { padding: .6rem; border: 1px solid #c0162b; border-radius: .35rem; }
.notice { padding: .75rem; border: 1px solid #1d7a3a; border-radius: .35rem; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
th, td { text-align: left; padding: .4rem; border-bottom: 1px solid #8884; vertical-align: top; }
form.inline { display: inline; }
.mail-text { white-space: pre-wrap; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
fieldset.proof { border: 1px solid #8886; border-radius: .35rem; margin: 0 0 1rem; }
.actions { display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1.5rem; }
`;

/** The way back to the account page, under a form of it. */
export const BackToAccount: FC = () => (
  <p>
    <a href="/auth/account">{en.mfa.codesDone}</a>
  </p>
);
