import type { FC } from 'hono/jsx';
import type { AccountView } from './account-sessions';
import type { PasskeyView } from '../auth/passkeys';
import type { SecondFactors } from '../auth/totp';
import { SecuritySection } from '../auth/second-factor-pages';
import { LinkedAccountsSection, type IdentityRow, type ProviderButton } from '../auth/upstream-pages';
import { shownEmail } from '../identity/email';
import { Form, Layout, Notice, ProofFields } from '../ui/layout';
import type { ConnectedApp } from '../oauth/connected-apps';
import type { PurposeState } from '../identity/consent-records';
import { PurposesSection } from '../auth/purposes-pages';
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
  hasPassword: boolean;
  apps: ConnectedApp[];
  purposes: PurposeState[];
}> = ({ account, csrf, security, identities, setupPasskey, notice, askProof, hasPassword, apps, purposes }) => (
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
      )}{' '}
      <a href="/auth/account/email">{shownEmail(account.user.email) === null ? en.emailChange.add : en.emailChange.link}</a>
    </p>
    <p>
      {account.user.profile.name && <>{account.user.profile.name} · </>}
      <a href="/auth/account/profile">{en.profile.link}</a>
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
    <h2>{en.passwordChange.title}</h2>
    <p>
      {!hasPassword && <>{en.passwordChange.none} </>}
      <a href="/auth/account/password">{hasPassword ? en.passwordChange.change : en.passwordChange.set}</a>
    </p>
    <LinkedAccountsSection identities={identities.linked} linkable={identities.linkable} csrf={csrf} askProof={askProof} />
    <ConnectedAppsSection apps={apps} csrf={csrf} askProof={askProof} />
    <PurposesSection purposes={purposes} csrf={csrf} />
    <DataSection csrf={csrf} askProof={askProof} />
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

/** The apps with access to the account, each with what it may do and a way to take that back. */
const ConnectedAppsSection: FC<{ apps: ConnectedApp[]; csrf: string; askProof: boolean }> = ({ apps, csrf, askProof }) => (
  <section aria-labelledby="connected-apps">
    <h2 id="connected-apps">{en.apps.title}</h2>
    {apps.length === 0 ? (
      <p>{en.apps.none}</p>
    ) : (
      <ul class="apps">
        {apps.map((app) => (
          <li data-client-id={app.clientId}>
            <strong>{app.name}</strong>
            {app.grantedAt !== null && (
              <>
                {' '}
                · {en.apps.granted} {when(app.grantedAt)}
              </>
            )}
            <br />
            {en.apps.scopes}:{' '}
            {[...app.scopes, ...Object.entries(app.apis).map(([api, scopes]) => `${api} (${scopes.join(', ') || '—'})`)].join(', ') || '—'}
            <Form action={`/auth/account/connected-apps/${encodeURIComponent(app.clientId)}/revoke`} csrf={csrf} class="inline">
              {askProof && <ProofFields />}
              <button type="submit" aria-label={`${en.apps.revoke}: ${app.name}`}>
                {en.apps.revoke}
              </button>
            </Form>
          </li>
        ))}
      </ul>
    )}
  </section>
);

/** Download the account's data (a sensitive action: the proof fields where an origin shares the host), and the way to delete it. */
const DataSection: FC<{ csrf: string; askProof: boolean }> = ({ csrf, askProof }) => (
  <section aria-labelledby="your-data">
    <h2 id="your-data">{en.data.title}</h2>
    <p>{en.data.exportIntro}</p>
    <Form action="/auth/account/export" csrf={csrf} class="inline">
      {askProof && <ProofFields />}
      <button type="submit">{en.data.export}</button>
    </Form>
    <p>
      {en.data.deleteIntro} <a href="/auth/account/delete">{en.data.delete}</a>
    </p>
  </section>
);
