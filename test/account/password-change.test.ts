import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { auditOf, createVerifiedUser, lastMailTo, ORIGIN, STRONG_PASSWORD, type Problem } from '../helpers';

/**
 * Password change and a first password, through the JSON API and the account page. The attackers:
 * a stolen session that is no longer recent (or, where an origin shares the host, a script with
 * fresh cookies), someone guessing the current password through this route instead of sign-in,
 * another site posting a form, and the thief's own session, which must end with the change.
 */
const NEW_PASSWORD = 'a brand new passphrase for this account';
const later = (minutes: number) => () => ({ now: () => Date.now() + minutes * 60_000 });
const shared = (b: TestBrowser) => b.at((deps) => ({ config: { ...deps.config, gateway: { ...deps.config.gateway, sharedHost: true } } }));

async function signedIn(email: string, password = STRONG_PASSWORD) {
  const browser = new TestBrowser();
  const res = await browser.post('/auth/api/sign-in', { email, password });
  expect(res.status).toBe(200);
  return browser;
}

async function user() {
  const u = await createVerifiedUser();
  return { ...u, browser: await signedIn(u.email) };
}

const signInStatus = async (email: string, password: string) =>
  (await new TestBrowser().post('/auth/api/sign-in', { email, password })).status;

const passwordEvents = async (userId: string) =>
  (await auditOf(userId)).results.filter((e) => e.type === 'password_changed').map((e) => JSON.parse(e.detail!));

describe('changing the password (JSON API)', () => {
  it('with the current password: the new one works, the old one does not, other sessions end, the account is mailed and audited', async () => {
    const u = await user();
    const thief = await signedIn(u.email);
    expect((await thief.fetch('/auth/api/me')).status).toBe(200);
    const before = (await lastMailTo(u.email)).id;

    const res = await u.browser.post('/auth/api/password', { currentPassword: STRONG_PASSWORD, newPassword: NEW_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(await res.json()).toEqual({ status: 'password_changed', sessionsEnded: 1 });
    const mail = await lastMailTo(u.email, before);
    expect(mail.subject).toBe('Your password was changed');
    expect(mail.text).not.toContain(NEW_PASSWORD);

    expect((await thief.fetch('/auth/api/me')).status).toBe(401);
    expect((await u.browser.fetch('/auth/api/me')).status).toBe(200);
    expect(await signInStatus(u.email, STRONG_PASSWORD)).toBe(401);
    expect(await signInStatus(u.email, NEW_PASSWORD)).toBe(200);

    expect(await passwordEvents(u.userId)).toEqual([{ first: false, sid: expect.any(String), sessionsEnded: 1, proof: 'password' }]);
    const row = await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?').bind(u.userId).first<{ password_hash: string }>();
    expect(row!.password_hash).toMatch(/^\$/);
    expect(row!.password_hash).not.toContain(NEW_PASSWORD);
  });

  it('after a recent sign-in, without the current password', async () => {
    const u = await user();
    const res = await u.browser.post('/auth/api/password', { newPassword: NEW_PASSWORD });
    expect(await res.json()).toEqual({ status: 'password_changed', sessionsEnded: 0 });
    expect(await passwordEvents(u.userId)).toEqual([{ first: false, sid: expect.any(String), sessionsEnded: 0, proof: 'recent_sign_in' }]);
  });

  it('a stolen session signed in eleven minutes ago is refused without a proof, and nothing changes', async () => {
    const u = await user();
    const stale = u.browser.at(later(11));
    const res = await stale.post('/auth/api/password', { newPassword: NEW_PASSWORD });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'recent_sign_in_required' });
    // Where an origin shares the host, even a fresh session's script needs a proof.
    const script = await shared(u.browser).post('/auth/api/password', { newPassword: NEW_PASSWORD });
    expect(script.status).toBe(403);
    expect(await script.json()).toMatchObject({ code: 'proof_required', field: 'proof' });
    expect(await signInStatus(u.email, STRONG_PASSWORD)).toBe(200);
    expect(await passwordEvents(u.userId)).toEqual([]);
  });

  it('a stale session that knows the current password may (it is a proof given now)', async () => {
    const u = await user();
    const stale = u.browser.at(later(11));
    const res = await stale.post('/auth/api/password', { currentPassword: STRONG_PASSWORD, newPassword: NEW_PASSWORD });
    expect(res.status).toBe(200);
  });

  it('wrong current passwords count toward the account’s sign-in throttle: guessing here locks sign-in too', async () => {
    const u = await user();
    const stale = u.browser.at(later(11));
    for (let i = 0; i < 5; i++) {
      const res = await stale.post('/auth/api/password', { currentPassword: `wrong guess number ${i}`, newPassword: NEW_PASSWORD });
      expect(res.status, `guess ${i}`).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'invalid_proof', field: 'currentPassword' });
    }
    const locked = await stale.post('/auth/api/password', { currentPassword: STRONG_PASSWORD, newPassword: NEW_PASSWORD });
    expect(locked.status).toBe(429);
    expect(await locked.json()).toMatchObject({ code: 'account_locked' });
    // The same counter guards sign-in: the right password is refused there too while locked.
    expect(await signInStatus(u.email, STRONG_PASSWORD)).toBe(429);
    expect(await passwordEvents(u.userId)).toEqual([]);
    const failures = (await auditOf(u.userId)).results.filter((e) => e.type === 'proof_failed');
    expect(failures).toHaveLength(5);
  });

  it('a new password that fails the policy is a 400 naming newPassword, and nothing changes', async () => {
    const u = await user();
    const thief = await signedIn(u.email);
    for (const [newPassword, message] of [
      ['short', /at least 8/],
      ['password123', /too common/],
      ['x'.repeat(1025), /at most 1024/],
    ] as const) {
      const res = await u.browser.post('/auth/api/password', { currentPassword: STRONG_PASSWORD, newPassword });
      expect(res.status, newPassword).toBe(400);
      const body = (await res.json()) as Problem;
      expect(body).toMatchObject({ code: 'weak_password', field: 'newPassword' });
      expect(body.detail).toMatch(message);
    }
    for (const [json, field] of [
      [{ currentPassword: STRONG_PASSWORD }, 'newPassword'],
      [{ newPassword: 42 }, 'newPassword'],
      [{ currentPassword: '', newPassword: NEW_PASSWORD }, 'currentPassword'],
      [{ newPassword: NEW_PASSWORD, proof: { pin: '1' } }, 'proof'],
    ] as const) {
      const res = await u.browser.post('/auth/api/password', json);
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'invalid_request', field });
    }
    expect((await thief.fetch('/auth/api/me')).status).toBe(200);
    expect(await signInStatus(u.email, STRONG_PASSWORD)).toBe(200);
    expect(await passwordEvents(u.userId)).toEqual([]);
  });

  it('another site cannot post it: a cross-origin JSON call and a form without the CSRF token are refused', async () => {
    const u = await user();
    const json = await u.browser.fetch('/auth/api/password', {
      method: 'POST',
      json: { newPassword: NEW_PASSWORD },
      headers: { origin: 'https://evil.example' },
    });
    expect(json.status).toBe(403);
    expect(await json.json()).toMatchObject({ code: 'csrf_failed' });
    const form = await u.browser.fetch('/auth/account/password', {
      method: 'POST',
      body: new URLSearchParams({ new_password: NEW_PASSWORD }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', accept: 'text/html' },
    });
    expect(form.status).toBe(403);
    // The form with a valid token but posted from another origin is refused too.
    const { html } = await u.browser.open('/auth/account/password');
    const token = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const forged = await u.browser.fetch('/auth/account/password', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: token, new_password: NEW_PASSWORD }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', accept: 'text/html' },
    });
    expect(forged.status).toBe(403);
    expect(await signInStatus(u.email, STRONG_PASSWORD)).toBe(200);
    expect(await passwordEvents(u.userId)).toEqual([]);
  });

  it('needs a session: signed out is a 401', async () => {
    const res = await new TestBrowser().post('/auth/api/password', { newPassword: NEW_PASSWORD });
    expect(res.status).toBe(401);
  });
});

describe('setting a first password (an account without one)', () => {
  async function passwordless() {
    const u = await user();
    await env.DB.prepare('UPDATE users SET password_hash = NULL WHERE id = ?').bind(u.userId).run();
    return u;
  }

  it('after a recent sign-in: the account can then sign in with it; mailed and audited as first', async () => {
    const u = await passwordless();
    expect(await signInStatus(u.email, STRONG_PASSWORD)).toBe(401);
    const before = (await lastMailTo(u.email)).id;
    const res = await u.browser.post('/auth/api/password', { newPassword: NEW_PASSWORD });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'password_set', sessionsEnded: 0 });
    expect((await lastMailTo(u.email, before)).subject).toBe('A password was set for your account');
    expect(await signInStatus(u.email, NEW_PASSWORD)).toBe(200);
    expect(await passwordEvents(u.userId)).toEqual([{ first: true, sid: expect.any(String), sessionsEnded: 0, proof: 'recent_sign_in' }]);
  });

  it('the same rule: a stale session is refused, and a "current password" it does not have is no proof', async () => {
    const u = await passwordless();
    const stale = u.browser.at(later(11));
    expect((await stale.post('/auth/api/password', { newPassword: NEW_PASSWORD })).status).toBe(403);
    const guessed = await stale.post('/auth/api/password', { currentPassword: STRONG_PASSWORD, newPassword: NEW_PASSWORD });
    expect(guessed.status).toBe(403);
    expect(await guessed.json()).toMatchObject({ code: 'invalid_proof', field: 'currentPassword' });
    expect(await passwordEvents(u.userId)).toEqual([]);
  });
});

describe('the account page', () => {
  it('offers the change with the standard autocomplete tokens, changes it and says so', async () => {
    const u = await user();
    const { html: account } = await u.browser.open('/auth/account');
    expect(account).toContain('href="/auth/account/password"');
    const { html } = await u.browser.open('/auth/account/password');
    expect(html).toMatch(/<label for="field-current_password">/);
    expect(html).toContain('autocomplete="current-password"');
    expect(html).toContain('autocomplete="new-password"');
    const weak = await u.browser.submit('/auth/account/password', { current_password: STRONG_PASSWORD, new_password: 'password123' });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toMatch(/id="field-new_password-error" role="alert">This password is too common/);
    const wrong = await u.browser.submit('/auth/account/password', { current_password: 'not it at all', new_password: NEW_PASSWORD });
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toMatch(/id="field-current_password-error" role="alert">That password is not right/);
    const res = await u.browser.submit('/auth/account/password', { current_password: STRONG_PASSWORD, new_password: NEW_PASSWORD });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/auth/account?password=changed');
    expect((await u.browser.open('/auth/account?password=changed')).html).toContain('Your password was changed.');
    expect(await signInStatus(u.email, NEW_PASSWORD)).toBe(200);
  });

  it('a stale session is sent to sign in again, and nothing changes', async () => {
    const u = await user();
    const { html } = await u.browser.open('/auth/account/password');
    const token = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const res = await u.browser.at(later(11)).fetch('/auth/account/password', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: token, new_password: NEW_PASSWORD }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html' },
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^\/auth\/sign-in\?return_to=.*&reason=recent$/);
    expect(await signInStatus(u.email, STRONG_PASSWORD)).toBe(200);
  });
});
