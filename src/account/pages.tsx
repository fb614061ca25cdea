import type { FC } from 'hono/jsx';
import type { AccountView } from './account-sessions';
import type { PasskeyView } from '../auth/passkeys';
import type { SecondFactors } from '../auth/totp';
import { SecuritySection } from '../auth/second-factor-pages';
import { LinkedAccountsSection, type IdentityRow, type ProviderButton } from '../auth/upstream-pages';
import { shownEmail } from '../identity/email';
import { Form, Layout, Notice } from '../ui/layout';
import { en } from '../ui/messages';

const when = (ms: number) => `${new Date(ms).toISOString().replace('T', ' ').slice(0, 16)} UTC`;

export const AccountPage: FC<{
  account: AccountView;
  csrf: string;
  security: { factors: SecondFactors; passkeys: PasskeyView[] };
  identities: { linked: IdentityRow[]; linkable: ProviderButton[] };
  setupPasskey?: boolean;
  /** A line at the top: what the last action did. */
  notice?: string | undefined;
  /** An origin shares Gatehouse's host: adding a passkey asks for the password or a code too. */
  askProof: boolean;
}> = ({ account, csrf, security, identities, setupPasskey, notice, askProof }) => (
  <Layout title={en.account.title} passkeys>
    {setupPasskey && <Notice>{en.security.setupPasskey}</Notice>}
    {notice && <Notice>{notice}</Notice>}
    <p>
      {shownEmail(account.user.email) === null ? (
        <strong id="account-email">{en.account.noEmail}</strong>
      ) : (
        <>
          <strong id="account-email">{account.user.email}</strong> (
          {account.user.emailVerified ? en.account.verified : en.account.unverified})
        </>
      )}
    </p>
    <h2>{en.account.sessions}</h2>
    <table aria-label={en.account.sessions}>
      <thead>
        <tr>
          <th scope="col">{en.account.started}</th>
          <th scope="col">{en.account.lastSeen}</th>
          <th scope="col">{en.account.from}</th>
          <th scope="col">
            <span class="visually-hidden">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {account.sessions.map((s) => (
          <tr data-sid={s.sid} data-host={s.host ?? undefined}>
            <td class="when">
              {s.host && (
                <>
                  {en.account.onHost(s.host)}
                  <br />
                </>
              )}
              {when(s.createdAt)}
              {s.sid === account.current.sid && (
                <>
                  <br />
                  <strong>{en.account.thisDevice}</strong>
                </>
              )}
            </td>
            <td class="when">{when(s.lastSeenAt)}</td>
            <td>{[s.ip, s.userAgent].filter(Boolean).join(' · ')}</td>
            <td>
              <Form action={`/auth/account/sessions/${encodeURIComponent(s.sid)}/revoke`} csrf={csrf} class="inline">
                <button type="submit" aria-label={`${en.account.revoke} started ${when(s.createdAt)}`}>
                  {en.account.revoke}
                </button>
              </Form>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    <SecuritySection csrf={csrf} factors={security.factors} passkeys={security.passkeys} askProof={askProof} />
    <LinkedAccountsSection identities={identities.linked} linkable={identities.linkable} csrf={csrf} askProof={askProof} />
    <div class="actions">
      <Form action="/auth/sign-out" csrf={csrf} class="inline">
        <button type="submit" class="primary">
          {en.account.signOut}
        </button>
      </Form>
      <Form action="/auth/sign-out-everywhere" csrf={csrf} class="inline">
        <button type="submit">{en.account.signOutEverywhere}</button>
      </Form>
      <a href="/auth/handoff/continue?return_to=%2Fauth%2Faccount">{en.account.continueElsewhere}</a>
    </div>
  </Layout>
);
