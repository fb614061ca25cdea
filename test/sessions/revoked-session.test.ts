import { describe, expect, it } from 'vitest';
import { codeAt, enrolled } from '../auth/helpers';
import { TestBrowser } from '../browser';
import { APP, appSession, call, ORIGIN, STRONG_PASSWORD, type Problem } from '../helpers';

/**
 * A revoked session keeps a valid session token for up to SESSION_TOKEN_TTL (the gateway's hot
 * path trusts it). Nothing that creates a credential or a session may be done with it.
 */
describe('a session revoked a moment ago (token still fresh)', () => {
  async function revokedBrowser() {
    const user = await enrolled(); // browser: signed in with a password, TOTP enrolled
    const other = new TestBrowser();
    expect((await other.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
    expect((await other.post('/auth/api/sign-in/second-factor', { code: codeAt(user.secret) })).status).toBe(200);
    const victimSid = ((await (await user.browser.fetch('/auth/api/me')).json()) as { session: { sid: string } }).session.sid;
    const appCookie = await appSession(user.browser.cookieHeader);
    expect((await other.fetch(`/auth/api/sessions/${victimSid}`, { method: 'DELETE' })).status).toBe(204);
    // The revoked browser's tokens still verify in the isolate: the gateway lets its app session through.
    expect((await call(`${APP}/demo/me/x`, { cookie: appCookie })).status).toBe(200);
    return user;
  }

  it('cannot add a passkey or an authenticator app, nor step up', async () => {
    const { browser, secret } = await revokedBrowser();
    for (const [path, body] of [
      ['/auth/api/passkeys/registration-options', {}],
      ['/auth/api/totp', {}],
      ['/auth/api/step-up', { code: codeAt(secret) }],
    ] as const) {
      const res = await browser.post(path, body);
      expect(res.status, path).toBe(401);
      expect(((await res.json()) as Problem).code).toBe('unauthenticated');
    }
  });

  it('cannot approve a QR sign-in or hand itself to another device', async () => {
    const { browser } = await revokedBrowser();
    const computer = new TestBrowser();
    const { html } = await computer.open('/auth/handoff/qr');
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
    const { html: page } = await browser.open('/auth/sign-in'); // any page, for a CSRF token
    const token = /name="csrf_token" value="([^"]+)"/.exec(page)![1]!;
    const approve = await browser.fetch('/auth/handoff/approve', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: token, h: link.searchParams.get('h')!, decision: 'approve' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
    });
    expect(approve.status).toBe(303);
    expect(approve.headers.get('location')).toMatch(/^\/auth\/sign-in\?return_to=/);
    expect(await (await computer.fetch('/auth/api/handoff/status?kind=qr&role=wait')).json()).toMatchObject({ state: 'pending' });

    const handOver = await browser.open('/auth/handoff/continue');
    expect(handOver.res.status).toBe(303);
  });
});
