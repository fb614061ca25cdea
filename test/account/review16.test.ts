import { env } from 'cloudflare:workers';
import { COOKIES } from '../../src/lib/cookies';
import { describe, expect, it } from 'vitest';
import type { Purpose } from '../../src/identity/consent-purposes';
import type { ProfileAttribute } from '../../src/identity/profile-attributes';
import { TestBrowser } from '../browser';
import { appWith, createVerifiedUser, lastMailTo, STRONG_PASSWORD, uniqueEmail } from '../helpers';
import { authorizeUrl, form, pkce, registerClient } from '../oauth/helpers';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const purpose = (id: string, version: string, required: boolean): Purpose => ({ id, title: `The ${id}`, version, required, url: null });
const TERMS_V1 = [purpose('terms', '2026-01', true)];
const TERMS_V2 = [purpose('terms', '2026-06', true)];

async function deviceFlow(clientId: string, browser: TestBrowser) {
  const started = await new TestBrowser().fetch('/auth/device_authorization', form({ client_id: clientId, scope: 'openid profile' }));
  expect(started.status).toBe(200);
  const d = (await started.json()) as Record<string, string | number>;
  const code = String(d['user_code']);
  await browser.submit('/auth/device', { code }, `/auth/device?user_code=${code}`);
  const approved = await browser.submit('/auth/device/decide', { code, decision: 'approve' }, '/auth/device');
  const poll = await appWith(() => ({ now: () => Date.now() + 6_000 }))(
    '/auth/token',
    form({ grant_type: DEVICE_GRANT, device_code: String(d['device_code']), client_id: clientId }),
  );
  return { approved: approved.status, poll };
}

describe('the device grant holds tokens back as authorize does (terms re-consent, progressive profiling)', () => {
  it('a session from before a new terms version cannot approve a device: the app gets no tokens, as /authorize gives no code', async () => {
    const u = await createVerifiedUser();
    const v1 = new TestBrowser().at((deps) => ({ config: { ...deps.config, purposes: TERMS_V1 } }));
    const res = await v1.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD });
    expect(((await res.json()) as { status: string }).status).toBe('consent_required');
    expect(
      (await v1.post('/auth/api/sign-in/purposes', { decisions: [{ purpose: 'terms', version: '2026-01', granted: true }] })).status,
    ).toBe(200);

    // The operator publishes terms v2: the same browser's session now talks to a worker with TERMS_V2.
    const v2 = v1.at((deps) => ({ config: { ...deps.config, purposes: TERMS_V2 } }));
    const { clientId } = await registerClient({
      public: true,
      grantTypes: [DEVICE_GRANT, 'refresh_token', 'authorization_code'],
      scopes: ['openid', 'profile'],
    });

    // The documented defence, through /authorize: no code, a sign-in is asked.
    const { challenge } = await pkce();
    const authz = await v2.fetch(authorizeUrl(clientId, challenge, { prompt: 'none', scope: 'openid profile' }));
    expect(authz.status).toBe(302);
    expect(authz.headers.get('location')).toContain('error=consent_required');

    // Through the device grant the same session gets the app tokens: there must be none.
    const { approved, poll } = await deviceFlow(clientId, v2);
    const body = (await poll.json()) as Record<string, string>;
    expect(approved).toBe(400);
    expect(poll.status).toBe(400);
    expect(body).toMatchObject({ error: 'authorization_pending' });
  });

  it('an app that needs a profile attribute the person never gave gets no device tokens', async () => {
    const { clientId } = await registerClient({
      public: true,
      grantTypes: [DEVICE_GRANT, 'refresh_token', 'authorization_code'],
      scopes: ['openid', 'profile'],
    });
    const attributes = [
      { id: 'company', title: 'Company', type: 'string', maxLength: 20, required: false, clients: [clientId] },
    ] as ProfileAttribute[];
    const u = await createVerifiedUser();
    const b = new TestBrowser().at((deps) => ({ config: { ...deps.config, attributes } }));
    expect((await b.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);

    const { challenge } = await pkce();
    const authz = await b.fetch(authorizeUrl(clientId, challenge, { prompt: 'none', scope: 'openid profile' }));
    expect(authz.headers.get('location')).toContain('error=interaction_required');

    const { approved, poll } = await deviceFlow(clientId, b);
    const body = (await poll.json()) as Record<string, string>;
    expect(approved).toBe(400);
    expect(body).toMatchObject({ error: 'authorization_pending' });
  });
});

describe('a pending address change ends with the session that asked for it', () => {
  it('the thief cannot confirm an address change once the owner changed the password and the thief’s session ended', async () => {
    const u = await createVerifiedUser();
    const owner = new TestBrowser();
    expect((await owner.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
    // The thief holds a session of the account (recent: a freshly stolen cookie, or the password) and asks to move it.
    const thief = new TestBrowser();
    expect((await thief.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
    const thiefAddress = uniqueEmail('thief');
    expect((await thief.post('/auth/api/email', { email: thiefAddress })).status).toBe(202);
    expect(thief.cookie(COOKIES.emailChange)).toBeDefined();
    const mail = await lastMailTo(thiefAddress);
    const token = new URL(mail.links.find((l) => new URL(l).pathname === '/auth/account/email/confirm')!).searchParams.get('token')!;

    // The owner reacts as docs/security.md says: a new password, every other session (the thief's) ends.
    const changed = await owner.post('/auth/api/password', {
      currentPassword: STRONG_PASSWORD,
      newPassword: 'an entirely new passphrase 42',
    });
    expect(changed.status).toBe(200);
    expect((await thief.fetch('/auth/api/me')).status).toBe(401);

    // The thief's browser still has the binding cookie and the link: the change must not take effect.
    const page = `/auth/account/email/confirm?token=${encodeURIComponent(token)}`;
    await thief.open(page);
    await thief.submit('/auth/account/email/confirm', { token }, page);
    const row = await env.DB.prepare('SELECT email FROM users WHERE id = ?').bind(u.userId).first<{ email: string }>();
    expect(row!.email).toBe(u.email);
  });
});
