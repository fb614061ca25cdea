import type { FC } from 'hono/jsx';
import { Form, Layout } from '../ui/layout';
import type { ConsentApi } from './consent';

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are (your account id)',
  email: 'See your email address',
  profile: 'See your profile',
  address: 'See your postal address',
  phone: 'See your phone number',
  roles: 'See your roles and tier',
  offline_access: 'Stay connected while you are away (until you revoke it)',
};

/**
 * Consent: the client's name, what it asks for (and for which APIs), approve or deny. The form
 * carries only the id of the request held server-side, never the request itself.
 */
export const ConsentPage: FC<{
  clientName: string;
  /** Where approving sends you: the redirect URI's host, which the name cannot fake. */
  destination: string;
  selfRegistered: boolean;
  scope: string[];
  /** The APIs the tokens will be for, with the scopes of each the request asks. */
  apis: ConsentApi[];
  requestId: string;
  csrf: string;
  email: string;
}> = (p) => (
  <Layout title={`Allow ${p.clientName}?`}>
    <p>
      Signed in as <strong>{p.email}</strong>. <strong>{p.clientName}</strong> (<code id="consent-destination">{p.destination}</code>) asks
      to:
    </p>
    {p.selfRegistered && (
      <p id="consent-unreviewed">
        This app registered itself: its name was not checked by whoever runs this service. Allow it only if you know{' '}
        <code>{p.destination}</code>.
      </p>
    )}
    <ul>
      {p.scope
        .filter((s) => !p.apis.some((api) => api.scopes.some((x) => x.name === s)))
        .map((s) => (
          <li>{SCOPE_TEXT[s] ?? s}</li>
        ))}
      {p.apis.map((api) => (
        <li class="consent-api">
          Use them with <strong>{api.name}</strong> (<code>{api.identifier}</code>)
          {api.scopes.length > 0 && (
            <ul>
              {api.scopes.map((s) => (
                <li>
                  {s.description ?? s.name} <code>{s.name}</code>
                </li>
              ))}
            </ul>
          )}
        </li>
      ))}
    </ul>
    <Form action="/auth/authorize/decision" csrf={p.csrf}>
      <input type="hidden" name="request" value={p.requestId} />
      <div class="actions">
        <button class="primary" type="submit" name="decision" value="approve">
          Allow
        </button>
        <button type="submit" name="decision" value="deny">
          Deny
        </button>
      </div>
    </Form>
  </Layout>
);

/** Asks before signing out when the request could not prove it came from the signed-in user's app. */
export const LogoutConfirmPage: FC<{ params: Record<string, string>; csrf: string }> = (p) => (
  <Layout title="Sign out?">
    <p>An application asked to sign you out of Gatehouse.</p>
    <Form action="/auth/logout/confirm" csrf={p.csrf}>
      {Object.entries(p.params).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      <div class="actions">
        <button class="primary" type="submit">
          Sign out
        </button>
        <a href="/auth/account">Stay signed in</a>
      </div>
    </Form>
  </Layout>
);

/**
 * OAuth 2.0 Form Post Response Mode: the response fields auto-posted to the client's redirect URI.
 * The one inline script carries the response's CSP nonce; without script, the button posts it.
 */
export const FormPostPage: FC<{ action: string; fields: Record<string, string>; nonce: string }> = (p) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="referrer" content="no-referrer" />
      <title>Signing you in…</title>
    </head>
    <body>
      <form method="post" action={p.action}>
        {Object.entries(p.fields).map(([k, v]) => (
          <input type="hidden" name={k} value={v} />
        ))}
        <noscript>
          <button type="submit">Continue</button>
        </noscript>
      </form>
      <script nonce={p.nonce} dangerouslySetInnerHTML={{ __html: 'document.forms[0].submit();' }} />
    </body>
  </html>
);
