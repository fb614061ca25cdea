import { describe, expect, it } from 'vitest';
import { call, cookieFrom, createVerifiedUser, CSRF, ORIGIN, SESSION, STRONG_PASSWORD, uniqueEmail } from '../helpers';

/** Loads a page as a browser would: returns its CSRF cookie and the token in its form. */
async function openForm(path: string, cookie?: string) {
  const res = await call(path, cookie ? { cookie } : {});
  const html = await res.text();
  const token = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
  const csrfCookie = cookieFrom(res, CSRF)?.pair;
  return { res, html, token: token!, cookie: [csrfCookie, cookie].filter(Boolean).join('; ') };
}

const post = (path: string, fields: Record<string, string>, cookie: string, headers: Record<string, string> = {}) =>
  call(path, {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, ...headers },
    cookie,
  });

describe('hosted pages', () => {
  it('use labelled fields with the standard autocomplete tokens', async () => {
    const expectations: [string, string[]][] = [
      ['/auth/sign-in', ['autocomplete="username webauthn"', 'autocomplete="current-password"']],
      ['/auth/sign-up', ['autocomplete="email"', 'autocomplete="new-password"']],
      ['/auth/forgot-password', ['autocomplete="email"']],
      ['/auth/reset-password?token=x', ['autocomplete="new-password"']],
    ];
    for (const [path, tokens] of expectations) {
      const { html } = await openForm(path);
      for (const t of tokens) expect(html, path).toContain(t);
      for (const [, id] of html.matchAll(/<input id="([^"]+)"/g)) expect(html, path).toContain(`<label for="${id}">`);
    }
  });

  it('send a CSP that forbids framing and foreign scripts, and no-store', async () => {
    const { res } = await openForm('/auth/sign-in');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(cookieFrom(res, CSRF)!.header).toMatch(/Path=\/; HttpOnly; Secure; SameSite=Lax/);
  });

  it('keep the document headers to what browsers load: every page and the JSON API, not the OAuth back channel', async () => {
    for (const path of ['/auth/sign-up', '/auth/forgot-password', '/auth/api/me', '/auth/authorize', '/auth/nowhere']) {
      const res = await call(path, { headers: { accept: 'text/html' } });
      expect(res.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
    }
    // Servers and scripts calling with client credentials or tokens: JSON that is never a document.
    for (const path of ['/auth/token', '/auth/introspect', '/auth/revoke', '/auth/par', '/auth/device_authorization', '/auth/userinfo']) {
      const res = await call(path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('content-security-policy'), path).toBeNull();
      expect(res.headers.getSetCookie(), path).toEqual([]);
    }
  });

  it('refuse a form post without a valid CSRF token with 403', async () => {
    const { email } = await createVerifiedUser();
    const { token, cookie } = await openForm('/auth/sign-in');
    const fields = { email, password: STRONG_PASSWORD };
    const cases: [string, Record<string, string>, string, Record<string, string>][] = [
      ['no token', fields, cookie, {}],
      ['wrong token', { ...fields, csrf_token: 'A'.repeat(43) }, cookie, {}],
      ['no cookie', { ...fields, csrf_token: token }, '', {}],
      ['another cookie', { ...fields, csrf_token: token }, `${CSRF}=${'B'.repeat(43)}`, {}],
      ['cross-site origin', { ...fields, csrf_token: token }, cookie, { origin: 'https://evil.example' }],
    ];
    for (const [name, body, c, headers] of cases) {
      const res = await post('/auth/sign-in', body, c, headers);
      expect(res.status, name).toBe(403);
      expect(await res.text(), name).toContain('This form expired or was not sent from this site');
      expect(cookieFrom(res, SESSION), name).toBeUndefined();
    }
    const ok = await post('/auth/sign-in', { ...fields, csrf_token: token }, cookie);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/auth/account');
    expect(cookieFrom(ok, SESSION)).toBeDefined();
  });

  it('re-render a failed sign-in with the error tied to the form, keeping the email but not the password', async () => {
    const { token, cookie } = await openForm('/auth/sign-in');
    const email = uniqueEmail('typed');
    const res = await post('/auth/sign-in', { email, password: 'secret-typed-password', csrf_token: token }, cookie);
    expect(res.status).toBe(401);
    const html = await res.text();
    expect(html).toContain('role="alert"');
    expect(html).toContain('The email or password is incorrect.');
    expect(html).toContain(`value="${email}"`);
    expect(html).not.toContain('secret-typed-password');
  });

  it('tie a field error to its input with aria-describedby', async () => {
    const { token, cookie } = await openForm('/auth/sign-up');
    const res = await post('/auth/sign-up', { email: uniqueEmail(), password: 'password1', csrf_token: token }, cookie);
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toMatch(
      /<input id="field-password"[^>]*aria-invalid="true"[^>]*aria-describedby="field-password-hint field-password-error"/,
    );
    expect(html).toContain('<p class="error" id="field-password-error" role="alert">This password is too common; choose another.</p>');
  });

  it('only redirect back to paths on this origin after sign-in', async () => {
    const { email } = await createVerifiedUser();
    for (const [returnTo, expected] of [
      ['/demo/me?x=1', '/demo/me?x=1'],
      ['https://evil.example/', '/auth/account'],
      ['//evil.example/', '/auth/account'],
      ['/\\evil.example', '/auth/account'],
    ]) {
      const { token, cookie } = await openForm('/auth/sign-in');
      const res = await post('/auth/sign-in', { email, password: STRONG_PASSWORD, csrf_token: token, return_to: returnTo! }, cookie);
      expect(res.headers.get('location'), returnTo).toBe(expected);
    }
  });

  it('show the account with its sessions and revoke one from its button', async () => {
    const { email } = await createVerifiedUser();
    const signInOnce = async () => {
      const f = await openForm('/auth/sign-in');
      const res = await post('/auth/sign-in', { email, password: STRONG_PASSWORD, csrf_token: f.token }, f.cookie);
      return cookieFrom(res, SESSION)!.pair;
    };
    const other = await signInOnce();
    const mine = await signInOnce();
    const page = await openForm('/auth/account', mine);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain(`<strong id="account-email">${email}</strong>`);
    const sids = [...page.html.matchAll(/data-sid="([^"]+)"/g)].map((m) => m[1]!);
    expect(sids).toHaveLength(2);
    const otherSid = sids[1]!;
    const revoked = await post(`/auth/account/sessions/${otherSid}/revoke`, { csrf_token: page.token }, page.cookie);
    expect(revoked.status).toBe(303);
    expect(revoked.headers.get('location')).toBe('/auth/account');
    expect((await call('/auth/api/sessions', { cookie: other })).status).toBe(401);
    const after = await openForm('/auth/account', mine);
    expect([...after.html.matchAll(/data-sid="/g)]).toHaveLength(1);

    const out = await post('/auth/sign-out-everywhere', { csrf_token: after.token }, after.cookie);
    expect(out.status).toBe(303);
    expect((await call('/auth/api/sessions', { cookie: mine })).status).toBe(401);
  });

  it('sends a signed-out visitor of the account page to sign in', async () => {
    const res = await call('/auth/account');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/auth/sign-in?return_to=%2Fauth%2Faccount');
  });
});
