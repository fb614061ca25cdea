import { describe, expect, it } from 'vitest';
import { passwordStep } from '../auth/helpers';
import { TestBrowser } from '../browser';
import { call, createVerifiedUser, ORIGIN } from '../helpers';
import { authorizeUrl, basic, formPostOf, pkce, REDIRECT, registerClient, RFC6749_TEXT, signedInUser, tokenRequest } from './helpers';

/**
 * OAuth 2.0 Form Post Response Mode, as a relying party receives it and as an attacker shapes the
 * request: the page must post exactly the response to exactly the client, and nothing in the
 * request may escape into the page.
 */
const html = { accept: 'text/html' };
const CSP =
  /^default-src 'none'; script-src 'nonce-([A-Za-z0-9_-]{22})'; form-action https:\/\/app\.example\.com; base-uri 'none'; frame-ancestors 'none'$/;

async function formPost(url: string, cookie?: string) {
  const res = await call(url, { headers: html, ...(cookie ? { cookie } : {}) });
  const body = await res.text();
  expect(res.status, body.slice(0, 300)).toBe(200);
  expect(res.headers.get('location')).toBeNull();
  expect(res.headers.get('cache-control')).toBe('no-store');
  return { ...formPostOf(res, body), body };
}

describe('response_mode=form_post', () => {
  it('auto-posts exactly code, state and iss to the redirect URI, under a CSP that allows only that origin and the nonced script', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const { verifier, challenge } = await pkce();
    const page = await formPost(authorizeUrl(client.clientId, challenge, { response_mode: 'form_post', state: 'st-1' }), user.cookie);
    expect(page.action).toBe(REDIRECT);
    expect(Object.keys(page.fields).sort()).toEqual(['code', 'iss', 'state']);
    expect(page.fields).toMatchObject({ state: 'st-1', iss: ORIGIN });
    expect(page.fields.code).toMatch(/^ac1\./);
    // One CSP, the page's own (the default policy's form-action 'self' would block the post).
    const nonce = CSP.exec(page.csp ?? '')?.[1];
    expect(nonce, page.csp ?? '').toBeTruthy();
    expect(page.scripts).toEqual([` nonce="${nonce}"`]);
    expect(page.body).toContain('<meta name="referrer" content="no-referrer"/>');
    expect(page.body).toContain('<noscript><button type="submit">Continue</button></noscript>');
    // The code is an ordinary one: it redeems once, for this redirect URI.
    const tokens = await tokenRequest(
      { grant_type: 'authorization_code', code: page.fields.code!, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(tokens.status).toBe(200);
    // A fresh nonce on every page.
    const again = await formPost(authorizeUrl(client.clientId, challenge, { response_mode: 'form_post' }), user.cookie);
    expect(CSP.exec(again.csp!)![1]).not.toBe(nonce);
  });

  it('escapes what the request carries: a state that tries to close the attribute stays a value', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    for (const state of [
      '"><script>alert(1)</script>',
      "'><img src=x onerror=alert(1)>",
      '</form><form action="https://evil.example">',
      '&quot;&#39;&lt;',
    ]) {
      const page = await formPost(authorizeUrl(client.clientId, challenge, { response_mode: 'form_post', state }), user.cookie);
      expect(page.fields.state).toBe(state);
      expect(page.scripts, state).toHaveLength(1);
      expect(page.body).not.toContain('<img');
      expect(page.body).not.toContain('evil.example">');
    }
  });

  it('sends errors found after client and redirect URI are validated the same way, with state and iss', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    for (const [over, error] of [
      [{ scope: 'nothing-known' }, 'invalid_scope'],
      [{ code_challenge_method: 'plain' }, 'invalid_request'],
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ prompt: 'bogus"\\é' }, 'invalid_request'],
      [{ resource: 'https://not-registered.example' }, 'invalid_target'],
    ] as const) {
      const page = await formPost(
        authorizeUrl(client.clientId, challenge, { response_mode: 'form_post', state: 's"<', ...over }),
        user.cookie,
      );
      expect(page.action).toBe(REDIRECT);
      expect(Object.keys(page.fields).sort(), JSON.stringify(over)).toEqual(['error', 'error_description', 'iss', 'state']);
      expect(page.fields).toMatchObject({ error, state: 's"<', iss: ORIGIN });
      expect(page.fields.error_description).toMatch(RFC6749_TEXT);
      expect(page.fields.error_description).not.toContain('bogus');
    }
  });

  it('answers prompt=none by form post: login_required signed out, consent_required for a client not yet approved', async () => {
    const firstParty = await registerClient();
    const { challenge } = await pkce();
    const out = await formPost(
      authorizeUrl(firstParty.clientId, challenge, { response_mode: 'form_post', prompt: 'none', state: 'silent' }),
    );
    expect(out.fields).toMatchObject({ error: 'login_required', state: 'silent', iss: ORIGIN });
    expect(out.fields.code).toBeUndefined();
    const thirdParty = await registerClient({ firstParty: false });
    const user = await signedInUser();
    const consent = await formPost(
      authorizeUrl(thirdParty.clientId, challenge, { response_mode: 'form_post', prompt: 'none' }),
      user.cookie,
    );
    expect(consent.fields).toMatchObject({ error: 'consent_required' });
  });

  it('ends the consent page the same way: approve posts the code, deny posts access_denied', async () => {
    const client = await registerClient({ firstParty: false, name: 'Third Party' });
    const { email } = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, email);
    const { challenge } = await pkce();
    for (const decision of ['deny', 'approve']) {
      const { res, html: page } = await browser.open(
        authorizeUrl(client.clientId, challenge, { response_mode: 'form_post', state: decision }),
      );
      expect(res.status).toBe(200);
      const request = /name="request" value="([^"]+)"/.exec(page)![1]!;
      const answer = await browser.submit('/auth/authorize/decision', { request, decision }, '/auth/sign-in');
      const posted = formPostOf(answer, await answer.text());
      expect(posted.csp).toMatch(CSP);
      expect(posted.action).toBe(REDIRECT);
      if (decision === 'deny') expect(posted.fields).toMatchObject({ error: 'access_denied', state: 'deny', iss: ORIGIN });
      else expect(Object.keys(posted.fields).sort()).toEqual(['code', 'iss', 'state']);
    }
  });

  it('keeps the mode through sign-in: the way back to /authorize still asks for form_post', async () => {
    const client = await registerClient();
    const { challenge } = await pkce();
    const res = await call(authorizeUrl(client.clientId, challenge, { response_mode: 'form_post' }), { headers: html });
    expect(res.status).toBe(302);
    const back = new URL(new URL(res.headers.get('location')!, ORIGIN).searchParams.get('return_to')!, ORIGIN);
    expect(back.searchParams.get('response_mode')).toBe('form_post');
  });

  it('never posts before the client and redirect URI are known good: an error page instead', async () => {
    const client = await registerClient();
    const { challenge } = await pkce();
    for (const over of [{ redirect_uri: 'https://evil.example/callback' }, { client_id: 'no-such-client' }, { redirect_uri: undefined }]) {
      const res = await call(authorizeUrl(client.clientId, challenge, { response_mode: 'form_post', ...over }), { headers: html });
      const body = await res.text();
      expect(res.status, JSON.stringify(over)).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(body).not.toContain('<form method="post"');
      expect(body).not.toContain('evil.example');
      expect(res.headers.get('content-security-policy')).toContain("form-action 'self'");
    }
  });

  it('refuses a response mode it does not know — at the redirect URI, by query — and still does query when asked', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    for (const mode of ['fragment', 'web_message', 'query.jwt', 'form_post.jwt', 'FORM_POST', '']) {
      const res = await call(authorizeUrl(client.clientId, challenge, { response_mode: mode, state: 'm' }), { cookie: user.cookie });
      expect(res.status, mode).toBe(302);
      const to = new URL(res.headers.get('location')!);
      expect(to.origin + to.pathname).toBe(REDIRECT);
      expect(Object.fromEntries(to.searchParams)).toMatchObject({
        error: 'invalid_request',
        error_description: 'response_mode must be query or form_post.',
        state: 'm',
        iss: ORIGIN,
      });
    }
    const query = await call(authorizeUrl(client.clientId, challenge, { response_mode: 'query', state: 'q' }), { cookie: user.cookie });
    expect(query.status).toBe(302);
    const to = new URL(query.headers.get('location')!);
    expect(to.searchParams.get('code')).toMatch(/^ac1\./);
    expect(to.searchParams.get('state')).toBe('q');
  });

  it('is refused, by query, for a redirect URI a page’s CSP cannot name as a form target (a native app’s scheme, an IPv6 literal)', async () => {
    const user = await signedInUser();
    const { challenge } = await pkce();
    for (const redirect of ['com.example.app:/callback', 'http://[::1]/callback']) {
      const client = await registerClient({ public: true, redirectUris: [redirect], grantTypes: ['authorization_code'] });
      const res = await call(authorizeUrl(client.clientId, challenge, { redirect_uri: redirect, response_mode: 'form_post', state: 'n' }), {
        cookie: user.cookie,
        headers: html,
      });
      expect(res.status, `${redirect}: ${(await res.clone().text()).slice(0, 200)}`).toBe(302);
      const to = new URL(res.headers.get('location')!);
      expect(to.href.startsWith(redirect), to.href).toBe(true);
      expect(Object.fromEntries(to.searchParams)).toMatchObject({ error: 'invalid_request', state: 'n', iss: ORIGIN });
      expect(to.searchParams.get('code')).toBeNull();
    }
  });

  it('is advertised in discovery', async () => {
    const meta = await (await call('/.well-known/openid-configuration')).json<{ response_modes_supported: string[] }>();
    expect(meta.response_modes_supported).toEqual(['query', 'form_post']);
  });
});
