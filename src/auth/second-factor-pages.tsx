import type { FC } from 'hono/jsx';
import type { PasskeyView } from './passkeys';
import type { SecondFactors } from './totp';
import { Alert, CodeForm, Form, Layout, ProofFields } from '../ui/layout';
import { en } from '../ui/messages';
import type { FormState } from '../ui/components';

const when = (ms: number) => `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC`;

/** The second step of a sign-in, or a step-up of the current session (`stepUp`). */
export const SecondFactorPage: FC<FormState & { returnTo: string; factors: SecondFactors; stepUp: boolean }> = (s) => (
  <Layout title={en.mfa.title} passkeys={s.factors.passkeys > 0}>
    <p>{s.stepUp ? en.mfa.stepUpIntro : en.mfa.intro}</p>
    <Alert message={s.error} />
    {(s.factors.totp || s.factors.recoveryCodesLeft > 0) && (
      <CodeForm
        action="/auth/second-factor"
        csrf={s.csrf}
        returnTo={s.returnTo}
        label={en.mfa.code}
        submit={en.mfa.submit}
        maxlength={32}
        numeric={false}
        hint={en.mfa.codeHint}
      />
    )}
    {s.factors.passkeys > 0 && (
      <p>
        <button type="button" data-passkey="verify" data-return-to={s.returnTo}>
          {en.mfa.usePasskey}
        </button>
      </p>
    )}
    <p class="alert" role="alert" data-passkey-error hidden />
  </Layout>
);

/** Shown when a route or client needs a second factor the account does not have yet. */
export const NoSecondFactorPage: FC<{ returnTo: string }> = ({ returnTo }) => (
  <Layout title={en.mfa.title}>
    <p role="status">{en.mfa.noFactor}</p>
    <p>
      <a href={`/auth/account/totp?${new URLSearchParams({ return_to: returnTo })}`}>{en.mfa.setUp}</a>
    </p>
  </Layout>
);

export const TotpEnrollPage: FC<FormState & { secret: string; qr: string; returnTo: string; askProof: boolean }> = (s) => (
  <Layout title={en.mfa.enrollTitle}>
    <p>{en.mfa.enrollIntro}</p>
    <p>
      <img src={s.qr} alt="QR code for your authenticator app" width={220} height={220} />
    </p>
    <p>
      {en.mfa.secretLabel} <code id="totp-secret">{s.secret.replace(/(.{4})/g, '$1 ').trim()}</code>
    </p>
    <Alert message={s.field === 'code' || s.field === 'proof' ? undefined : s.error} />
    <CodeForm
      action="/auth/account/totp"
      csrf={s.csrf}
      returnTo={s.returnTo}
      label={en.mfa.code}
      submit={en.mfa.enrollSubmit}
      maxlength={6}
      numeric
      error={s.field === 'code' ? s.error : undefined}
    >
      {s.askProof && <ProofFields error={s.field === 'proof' ? s.error : undefined} />}
    </CodeForm>
  </Layout>
);

export const RecoveryCodesPage: FC<{ codes: string[]; returnTo: string }> = ({ codes, returnTo }) => (
  <Layout title={en.mfa.codesTitle}>
    <p>{en.mfa.codesIntro}</p>
    <ul class="codes" aria-label={en.mfa.codesTitle}>
      {codes.map((c) => (
        <li>
          <code>{c}</code>
        </li>
      ))}
    </ul>
    <p>
      <a href={returnTo}>{en.mfa.codesDone}</a>
    </p>
  </Layout>
);

/** The account page's security section: authenticator app, recovery codes, passkeys. */
export const SecuritySection: FC<{ csrf: string; factors: SecondFactors; passkeys: PasskeyView[]; askProof: boolean }> = ({
  csrf,
  factors,
  passkeys,
  askProof,
}) => (
  <section aria-labelledby="security-heading">
    <h2 id="security-heading">{en.security.title}</h2>
    <p id="totp-status">{factors.totp ? en.security.totpOn : en.security.totpOff}</p>
    {factors.totp ? (
      <div class="actions">
        <span>{en.security.codesLeft(factors.recoveryCodesLeft)}</span>
        <Form action="/auth/account/recovery-codes" csrf={csrf} class="inline">
          <button type="submit">{en.security.regenerate}</button>
        </Form>
        <Form action="/auth/account/totp/remove" csrf={csrf} class="inline">
          <button type="submit">{en.security.totpRemove}</button>
        </Form>
      </div>
    ) : (
      <p>
        <a href="/auth/account/totp">{en.security.totpAdd}</a>
      </p>
    )}
    <h3>{en.security.passkeys}</h3>
    {passkeys.length === 0 ? (
      <p>{en.security.noPasskeys}</p>
    ) : (
      <ul aria-label={en.security.passkeys} id="passkey-list">
        {passkeys.map((p) => (
          <li data-passkey-id={p.id}>
            <strong>{p.name}</strong> — {en.security.created} {when(p.createdAt)}
            {p.lastUsedAt ? `, ${en.security.lastUsed} ${when(p.lastUsedAt)}` : ''}{' '}
            <Form action={`/auth/account/passkeys/${encodeURIComponent(p.id)}/remove`} csrf={csrf} class="inline">
              <button type="submit" aria-label={`${en.security.removePasskey} ${p.name}`}>
                {en.security.removePasskey}
              </button>
            </Form>
          </li>
        ))}
      </ul>
    )}
    <div class="field">
      <label for="passkey-name">{en.security.passkeyName}</label>
      <input id="passkey-name" name="passkey_name" type="text" autocomplete="off" maxlength={64} value="Passkey" />
    </div>
    {askProof && <ProofFields />}
    <p>
      <button type="button" data-passkey="register">
        {en.security.addPasskey}
      </button>
    </p>
    <p class="alert" role="alert" data-passkey-error hidden />
  </section>
);
