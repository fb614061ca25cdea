import type { Context } from 'hono';
import { randomToken } from '../lib/crypto';
import { ContinuePage } from '../ui/components';
import { FormPostPage } from './pages';
import { formActionSource, responseUrl, type AuthorizationResponse } from './authorization-response';

/**
 * Sends an authorization response (a code or an error) the way the request asked: a redirect with
 * the query (or, ending one of our own form posts, the Continue page: CSP form-action 'self'), or
 * an auto-posted form (form_post) whose page's CSP allows exactly one form target — the client's
 * redirect URI — and one script, by nonce.
 */
export function sendAuthorizationResponse(c: Context, r: AuthorizationResponse, fromForm: boolean): Response | Promise<Response> {
  if (r.target.mode === 'form_post') {
    const nonce = randomToken(16);
    c.header(
      'content-security-policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; form-action ${formActionSource(r.target.redirectUri) ?? "'none'"}; base-uri 'none'; frame-ancestors 'none'`,
    );
    c.header('cache-control', 'no-store');
    return c.html(<FormPostPage action={r.target.redirectUri} fields={r.fields} nonce={nonce} />);
  }
  return fromForm ? c.html(<ContinuePage href={responseUrl(r)} />) : c.redirect(responseUrl(r), 302);
}
