import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { codeAt, enrolled, passwordStep } from '../auth/helpers';
import { TestBrowser } from '../browser';
import { APP, createVerifiedUser, ORIGIN } from '../helpers';
import { authorizeUrl, form, pkce, registerClient } from '../oauth/helpers';

/**
 * Handoffs must not launder a sign-in: the device signed in by a handoff keeps the approving
 * session's sign-in time (and is relayed), and a device grant's client gets the sign-in strength it
 * demands. The attacker holds a stale or stolen session, or a device they want trusted.
 */
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const APP_HOST = new URL(APP).host;

// The signing keys are made on first use: by the real clock, before any test moves it forward.
beforeAll(async () => {
  expect((await new TestBrowser().fetch('/.well-known/jwks.json')).status).toBe(200);
});

/** QR sign-in of a new `computer`, approved by `phone`; both share the (possibly frozen) clock of `at`. */
async function qrHandOff(phone: TestBrowser, computer: TestBrowser) {
  const { html } = await computer.open('/auth/handoff/qr');
  const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
  const approved = await phone.submit(
    '/auth/handoff/approve',
    { h: link.searchParams.get('h')!, decision: 'approve' },
    `${link.pathname}${link.search}`,
  );
  expect(approved.status).toBe(200);
  expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(200);
}

describe('a session made by a handoff keeps the sign-in it came from', () => {
  it('carries the approver’s auth_time to the gateway, to max_age and to maxAuthAge routes', async () => {
    const user = await createVerifiedUser();
    const phone = new TestBrowser();
    const signedInAt = Math.floor(Date.now() / 1000);
    await passwordStep(phone, user.email);
    // Five minutes later (still recent enough to approve), the phone approves a new computer.
    const later = () => ({ now: () => Date.now() + 5 * 60_000 });
    const computer = new TestBrowser().at(later);
    await qrHandOff(phone.at(later), computer);
    // On the app host, the computer is who the phone is — signed in when the phone was.
    const { res } = await computer.navigate(`${APP}/demo/me/x`);
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { headers: Record<string, string> };
    expect(Number(seen.headers['x-auth-auth-time'])).toBeGreaterThanOrEqual(signedInAt);
    expect(Number(seen.headers['x-auth-auth-time'])).toBeLessThanOrEqual(signedInAt + 1);
    // A 60-second route: too old, so the computer must sign in itself.
    const recent = await computer.fetch(`${APP}/demo/recent/x`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    expect(recent.status).toBe(303);
    expect(new URL(recent.headers.get('location')!).pathname).toBe('/auth/sign-in');
    expect(computer.cookie('__Host-gatehouse_session', APP_HOST)).toBeDefined();
    // An OIDC request with max_age=60: the same.
    const client = await registerClient();
    const { challenge } = await pkce();
    const authorize = await computer.fetch(authorizeUrl(client.clientId, challenge, { max_age: '60' }), {
      headers: { accept: 'text/html' },
    });
    expect(new URL(authorize.headers.get('location')!, ORIGIN).pathname).toBe('/auth/sign-in');
  });

  it('a continue handoff does the same', async () => {
    const user = await createVerifiedUser();
    const laptop = new TestBrowser();
    const signedInAt = Math.floor(Date.now() / 1000);
    await passwordStep(laptop, user.email);
    const later = () => ({ now: () => Date.now() + 4 * 60_000 });
    const l = laptop.at(later);
    const { html } = await l.open('/auth/handoff/continue?return_to=/auth/account');
    const code = /id="handoff-code">([A-Z]{4}-[A-Z]{4})</.exec(html)![1]!;
    const phone = new TestBrowser().at(later);
    expect((await phone.submit('/auth/handoff/join', { code }, '/auth/handoff/join')).status).toBe(200);
    expect((await l.submit('/auth/handoff/continue/confirm', { decision: 'approve' }, '/auth/handoff/continue/confirm')).status).toBe(200);
    expect((await phone.post('/auth/api/handoff/redeem', { kind: 'continue' })).status).toBe(200);
    const { res } = await phone.navigate(`${APP}/demo/me/x`);
    const seen = (await res.json()) as { headers: Record<string, string> };
    expect(Number(seen.headers['x-auth-auth-time']) - signedInAt).toBeLessThanOrEqual(1);
    // …and cannot remove a second factor or add one.
    expect((await phone.post('/auth/api/passkeys/registration-options', {})).status).toBe(403);
  });
});

describe('the device grant honours what the client demands of the sign-in', () => {
  /** Polls the token endpoint as a device would, `after` ms from now (past the interval since the last poll). */
  const poll = (clientId: string, deviceCode: string, after = 11_000) =>
    new TestBrowser()
      .at(() => ({ now: () => Date.now() + after }))
      .fetch('/auth/token', form({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: clientId }));

  async function startDevice(clientId: string, extra: Record<string, string> = {}) {
    const res = await new TestBrowser().fetch('/auth/device_authorization', form({ client_id: clientId, scope: 'openid', ...extra }));
    expect(res.status).toBe(200);
    return (await res.json()) as { device_code: string; user_code: string };
  }

  it('a client that requires MFA: a password-only approver is sent to step up first, and the tokens say mfa', async () => {
    const client = await registerClient({ public: true, requireMfa: true, grantTypes: [DEVICE_GRANT], scopes: ['openid'] });
    const d = await startDevice(client.clientId);
    const { browser, secret } = await enrolled();
    const email = (await (await browser.fetch('/auth/api/me')).json<{ user: { email: string } }>()).user.email;
    await passwordStep(browser, email); // a known device: a one-factor session
    const attempt = await browser.submit('/auth/device/decide', { code: d.user_code, decision: 'approve' }, '/auth/device');
    expect(attempt.status).toBe(303);
    const stepUp = new URL(attempt.headers.get('location')!, ORIGIN);
    expect(stepUp.pathname).toBe('/auth/second-factor');
    expect(stepUp.searchParams.get('acr')).toBe('urn:gatehouse:acr:mfa');
    expect(await (await poll(client.clientId, d.device_code)).json()).toMatchObject({ error: 'authorization_pending' });
    // Stepped up, the approval goes through.
    const up = await browser.submit(
      '/auth/second-factor',
      { code: codeAt(secret), return_to: stepUp.searchParams.get('return_to')! },
      `${stepUp.pathname}${stepUp.search}`,
    );
    expect(up.status).toBe(303);
    expect((await browser.submit('/auth/device/decide', { code: d.user_code, decision: 'approve' }, '/auth/device')).status).toBe(200);
    const tokens = (await (await poll(client.clientId, d.device_code, 30_000)).json()) as { id_token: string };
    expect(decodeJwt(tokens.id_token)).toMatchObject({ acr: 'urn:gatehouse:acr:mfa' });
  });

  it('acr_values on the device request: stepped up when the account can, otherwise noted in the tokens', async () => {
    const client = await registerClient({ public: true, grantTypes: [DEVICE_GRANT], scopes: ['openid'] });
    const withTotp = await enrolled();
    await passwordStep(withTotp.browser, withTotp.email);
    const d1 = await startDevice(client.clientId, { acr_values: 'urn:gatehouse:acr:mfa' });
    const asked = await withTotp.browser.submit('/auth/device/decide', { code: d1.user_code, decision: 'approve' }, '/auth/device');
    expect(new URL(asked.headers.get('location')!, ORIGIN).pathname).toBe('/auth/second-factor');
    // An account with no second factor cannot meet a voluntary request: it goes on, and says so.
    const plain = await createVerifiedUser();
    const b = new TestBrowser();
    await passwordStep(b, plain.email);
    const d2 = await startDevice(client.clientId, { acr_values: 'urn:gatehouse:acr:mfa' });
    expect((await b.submit('/auth/device/decide', { code: d2.user_code, decision: 'approve' }, '/auth/device')).status).toBe(200);
    const tokens = (await (await poll(client.clientId, d2.device_code)).json()) as { id_token: string };
    expect(decodeJwt(tokens.id_token)).toMatchObject({ acr: 'urn:gatehouse:acr:1fa' });
  });
});
