import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { ORIGIN, STRONG_PASSWORD, type Problem } from '../helpers';
import { SoftAuthenticator } from '../webauthn';
import { codeAt, enrolled } from './helpers';

/**
 * Every action that creates or removes a credential, or signs another device in, checks one rule
 * (auth/recent-auth.ts) inside the domain function: a live session signed in on this device
 * recently — or a proof given at that moment. The attackers: a stolen session that is no longer
 * recent, a session relayed to the thief's device by a handoff, and (where an origin shares
 * Gatehouse's host) a script of that origin acting with the person's cookies.
 */
type Browser = TestBrowser;

/** A user with TOTP and a passkey, signed in on `browser` (fresh), with everything an action needs. */
async function fullySetUp() {
  const u = await enrolled();
  const auth = await SoftAuthenticator.create();
  const { challengeId, options } = await (await u.browser.post('/auth/api/passkeys/registration-options', {})).json<{
    challengeId: string;
    options: never;
  }>();
  const reg = await u.browser.post('/auth/api/passkeys', {
    challengeId,
    name: 'Laptop',
    response: await auth.register(options, { origin: ORIGIN }),
  });
  expect(reg.status).toBe(201);
  return { ...u, auth, passkeyId: auth.id };
}

/** The JSON face of every sensitive action (what a script would call). */
function jsonActions(u: Awaited<ReturnType<typeof fullySetUp>>) {
  return [
    ['start TOTP enrolment', (b: Browser) => b.post('/auth/api/totp', {})],
    ['confirm TOTP enrolment', (b: Browser) => b.post('/auth/api/totp/confirm', { code: '123456' })],
    ['remove TOTP', (b: Browser) => b.fetch('/auth/api/totp', { method: 'DELETE', headers: { origin: ORIGIN } })],
    ['new recovery codes', (b: Browser) => b.post('/auth/api/recovery-codes', {})],
    ['passkey options', (b: Browser) => b.post('/auth/api/passkeys/registration-options', {})],
    [
      'add a passkey',
      (b: Browser) =>
        b.post('/auth/api/passkeys', {
          challengeId: 'A'.repeat(22),
          name: 'x',
          response: { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON: 'AAAA', attestationObject: 'AAAA' } },
        }),
    ],
    ['remove a passkey', (b: Browser) => b.fetch(`/auth/api/passkeys/${u.passkeyId}`, { method: 'DELETE', headers: { origin: ORIGIN } })],
  ] as const;
}

/** The hosted pages' face (forms). */
function pageActions(u: Awaited<ReturnType<typeof fullySetUp>>) {
  return [
    ['TOTP page', (b: Browser) => b.open('/auth/account/totp').then((r) => r.res)],
    ['remove TOTP', (b: Browser) => b.submit('/auth/account/totp/remove', {}, '/auth/account')],
    ['new recovery codes', (b: Browser) => b.submit('/auth/account/recovery-codes', {}, '/auth/account')],
    ['remove a passkey', (b: Browser) => b.submit(`/auth/account/passkeys/${encodeURIComponent(u.passkeyId)}/remove`, {}, '/auth/account')],
  ] as const;
}

async function expectRefused(res: Response, what: string) {
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    expect(res.status, what).toBe(403);
    expect(((await res.json()) as Problem).code, what).toBe('recent_sign_in_required');
  } else {
    expect(res.status, what).toBe(303);
    expect(res.headers.get('location'), what).toMatch(/^\/auth\/sign-in\?return_to=.*&reason=recent$/);
  }
}

/** The factors are all still there after the attempts. */
async function stillIntact(b: Browser) {
  const f = await (await b.fetch('/auth/api/second-factors')).json<{ totp: boolean; recoveryCodesLeft: number; passkeys: number }>();
  expect(f).toMatchObject({ totp: true, recoveryCodesLeft: 10, passkeys: 1 });
}

describe('sensitive actions need a recent sign-in on this device', () => {
  it('a session signed in eleven minutes ago can do none of them, through the API or the pages', async () => {
    const u = await fullySetUp();
    const old = u.browser.at(() => ({ now: () => Date.now() + 11 * 60_000 }));
    for (const [what, act] of [...jsonActions(u), ...pageActions(u)]) await expectRefused(await act(old), what);
    await stillIntact(u.browser);
  });

  it('a session relayed by a handoff can do none of them, however recent the approval', async () => {
    const u = await fullySetUp();
    // The person approves a QR sign-in on their phone (u.browser, fresh): the computer is signed in.
    const computer = new TestBrowser();
    const { html } = await computer.open('/auth/handoff/qr');
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
    expect(
      (
        await u.browser.submit(
          '/auth/handoff/approve',
          { h: link.searchParams.get('h')!, decision: 'approve' },
          `${link.pathname}${link.search}`,
        )
      ).status,
    ).toBe(200);
    expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(200);
    for (const [what, act] of [...jsonActions(u), ...pageActions(u)]) await expectRefused(await act(computer), what);
    // Nor may it hand itself on: approving another device's QR sign-in needs a sign-in here.
    const third = new TestBrowser();
    const { html: qr } = await third.open('/auth/handoff/qr');
    const link2 = new URL(/id="approve-link" href="([^"]+)"/.exec(qr)![1]!.replace(/&amp;/g, '&'));
    await expectRefused(
      await computer.submit(
        '/auth/handoff/approve',
        { h: link2.searchParams.get('h')!, decision: 'approve' },
        `${link2.pathname}${link2.search}`,
      ),
      'approve a QR sign-in',
    );
    expect(await (await third.fetch('/auth/api/handoff/status?kind=qr&role=wait')).json()).toMatchObject({ state: 'pending' });
    await stillIntact(u.browser);
  });

  it('a stale session cannot approve its own QR handoff (and so come out as a recent sign-in)', async () => {
    const u = await fullySetUp();
    const later = () => ({ now: () => Date.now() + 20 * 60_000 });
    const stale = u.browser.at(later);
    const thiefDevice = new TestBrowser().at(later);
    const { html } = await thiefDevice.open('/auth/handoff/qr');
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
    await expectRefused(
      await stale.submit(
        '/auth/handoff/approve',
        { h: link.searchParams.get('h')!, decision: 'approve' },
        `${link.pathname}${link.search}`,
      ),
      'approve',
    );
    expect((await thiefDevice.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(409);
  });

  it('a fresh session may (positive control): remove a passkey, then TOTP', async () => {
    const u = await fullySetUp();
    expect((await u.browser.fetch(`/auth/api/passkeys/${u.passkeyId}`, { method: 'DELETE', headers: { origin: ORIGIN } })).status).toBe(
      204,
    );
    expect((await u.browser.fetch('/auth/api/totp', { method: 'DELETE', headers: { origin: ORIGIN } })).status).toBe(204);
  });

  it('a proof given now stands in for a recent sign-in (password, code, passkey)', async () => {
    const u = await fullySetUp();
    const old = u.browser.at(() => ({ now: () => Date.now() + 11 * 60_000 }));
    const wrong = await old.post('/auth/api/recovery-codes', { proof: { password: 'not the password at all' } });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ code: 'invalid_proof', field: 'proof' });
    expect((await old.post('/auth/api/recovery-codes', { proof: { password: STRONG_PASSWORD } })).status).toBe(200);
    const totp = await old.post('/auth/api/recovery-codes', { proof: { code: codeAt(u.secret, Date.now() + 11 * 60_000) } });
    expect(totp.status).toBe(200);
  });
});

describe('where an origin shares Gatehouse’s host, every sensitive action asks for a proof at that moment', () => {
  const shared = (b: Browser) => b.at((deps) => ({ config: { ...deps.config, gateway: { ...deps.config.gateway, sharedHost: true } } }));

  it('a same-origin script with the person’s fresh cookies gets proof_required from every JSON action', async () => {
    const u = await fullySetUp();
    const script = shared(u.browser);
    for (const [what, act] of jsonActions(u)) {
      const res = await act(script);
      if (what === 'start TOTP enrolment' || what === 'passkey options') {
        // Showing or starting reveals nothing that could be used without the proof the next step asks.
        expect(res.status, what).not.toBe(403);
        continue;
      }
      expect(res.status, what).toBe(403);
      expect(((await res.json()) as Problem).code, what).toBe('proof_required');
    }
    await stillIntact(u.browser);
  });

  it('takes the password, a TOTP code or a passkey as the proof, and refuses a wrong one', async () => {
    const u = await fullySetUp();
    const b = shared(u.browser);
    const bad = await b.post('/auth/api/recovery-codes', { proof: { code: '000000' } });
    expect(await bad.json()).toMatchObject({ code: 'invalid_proof' });
    expect((await b.post('/auth/api/recovery-codes', { proof: { password: STRONG_PASSWORD } })).status).toBe(200);
    expect((await b.post('/auth/api/recovery-codes', { proof: { code: codeAt(u.secret) } })).status).toBe(200);
    const { challengeId, options } = await (await b.post('/auth/api/passkeys/authentication-options', {})).json<{
      challengeId: string;
      options: never;
    }>();
    const passkey = { challengeId, response: await u.auth.assert(options, { origin: ORIGIN }) };
    expect((await b.post('/auth/api/recovery-codes', { proof: { passkey } })).status).toBe(200);
  });

  it('the pages ask for it on the same action, keeping its fields', async () => {
    const u = await fullySetUp();
    const b = shared(u.browser);
    const asked = await b.submit(`/auth/account/passkeys/${encodeURIComponent(u.passkeyId)}/remove`, {}, '/auth/account');
    expect(asked.status).toBe(403);
    const html = await asked.text();
    expect(html).toContain(`action="/auth/account/passkeys/${encodeURIComponent(u.passkeyId)}/remove"`);
    expect(html).toContain('autocomplete="current-password"');
    await stillIntact(u.browser);
    const done = await b.submit(
      `/auth/account/passkeys/${encodeURIComponent(u.passkeyId)}/remove`,
      { proof_password: STRONG_PASSWORD },
      '/auth/account',
    );
    expect(done.status).toBe(303);
    expect((await (await u.browser.fetch('/auth/api/second-factors')).json<{ passkeys: number }>()).passkeys).toBe(0);
  });
});
