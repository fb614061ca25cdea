import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { depsFor } from '../../src/deps';
import { formatCode, joinedContinue, newCode, normaliseCode, parseHandle, pendingHandoff } from '../../src/handoff/handoffs';
import { TestBrowser } from '../browser';
import { appWith, createVerifiedUser, ORIGIN, SESSION, STRONG_PASSWORD, type Problem } from '../helpers';
import { form, registerClient } from '../oauth/helpers';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const WAIT = '__Host-gatehouse_handoff_wait';
const OWN = '__Host-gatehouse_handoff_own';

async function signedIn(browser = new TestBrowser()) {
  const user = await createVerifiedUser();
  expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
  return { browser, ...user };
}

const stubFor = (code: string) => env.HANDOFFS.get(env.HANDOFFS.idFromName(`handoff:${normaliseCode(code)}`));

/** Opens the waiting device's socket; resolves messages as they come. */
async function listen(browser: TestBrowser, kind: string, role = 'wait', origin = ORIGIN) {
  const res = await browser.fetch(`/auth/handoff/socket?kind=${kind}&role=${role}`, { headers: { upgrade: 'websocket', origin } });
  if (res.status !== 101) return { res, next: async () => null as unknown as { state: string } };
  const ws = res.webSocket!;
  ws.accept();
  const queue: { state: string; joined?: boolean }[] = [];
  const waiters: ((m: { state: string }) => void)[] = [];
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data));
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const next = () =>
    new Promise<{ state: string; joined?: boolean }>((resolve, reject) => {
      const m = queue.shift();
      if (m) return resolve(m);
      waiters.push(resolve);
      setTimeout(() => reject(new Error('no message within 5 s')), 5000);
    });
  return { res, next, ws };
}

/** The new device opens the QR page; returns the approval link a phone would scan. */
async function qrSignIn(computer = new TestBrowser()) {
  const { html } = await computer.open('/auth/handoff/qr');
  const link = /id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&');
  const code = /id="handoff-code">([A-Z]{4}-[A-Z]{4})</.exec(html)![1]!;
  return { computer, link: new URL(link), code };
}

describe('QR sign-in', () => {
  it('the phone sees the device and code, approves, and the computer is told at once and gets its own session', async () => {
    const { browser: phone, userId } = await signedIn();
    const { computer, link, code } = await qrSignIn(new TestBrowser({ cf: { country: 'DE', city: 'Berlin' } as never }));
    const socket = await listen(computer, 'qr');
    expect(socket.res.status).toBe(101);
    expect(await socket.next()).toMatchObject({ state: 'pending' });

    const page = await phone.open(`${link.pathname}${link.search}`);
    expect(page.html).toContain(code);
    expect(page.html).toContain('a browser on Linux'); // the requesting device, from its User-Agent
    expect(page.html).toContain('near Berlin, DE');
    const approved = await phone.submit(
      '/auth/handoff/approve',
      { h: link.searchParams.get('h')!, decision: 'approve' },
      `${link.pathname}${link.search}`,
    );
    expect(approved.status).toBe(200);
    expect(await socket.next()).toMatchObject({ state: 'approved' });

    const redeemed = await computer.post('/auth/api/handoff/redeem', { kind: 'qr' });
    expect(redeemed.status).toBe(200);
    const body = (await redeemed.json()) as { session: { sid: string } };
    expect(computer.cookie(SESSION)).toBeDefined();
    const me = (await (await computer.fetch('/auth/api/me')).json()) as { user: { id: string }; session: { sid: string } };
    expect(me.user.id).toBe(userId);
    const phoneSid = ((await (await phone.fetch('/auth/api/me')).json()) as { session: { sid: string } }).session.sid;
    expect(body.session.sid).not.toBe(phoneSid); // a separate, revocable session
    expect(await socket.next()).toMatchObject({ state: 'consumed' });
    // Once.
    expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(403); // its cookie is gone
  });

  it('100 concurrent approvals and 100 concurrent redemptions: exactly one of each', async () => {
    const { browser: phone } = await signedIn();
    const { computer, link } = await qrSignIn();
    const { html } = await phone.open(`${link.pathname}${link.search}`);
    const token = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const body = new URLSearchParams({ csrf_token: token, h: link.searchParams.get('h')!, decision: 'approve' }).toString();
    const approvals = await Promise.all(
      Array.from({ length: 100 }, () =>
        phone.fetch('/auth/handoff/approve', {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
        }),
      ),
    );
    expect(approvals.filter((r) => r.status === 200)).toHaveLength(1);
    expect(approvals.filter((r) => r.status === 409)).toHaveLength(99);

    const cookie = computer.cookieHeader;
    const redemptions = await Promise.all(
      Array.from({ length: 100 }, () => appWith((d) => d)('/auth/api/handoff/redeem', { method: 'POST', json: { kind: 'qr' }, cookie })),
    );
    expect(redemptions.filter((r) => r.status === 200)).toHaveLength(1);
  });

  it('an expired handoff cannot be approved or redeemed; the alarm expires it and tells the waiting device', async () => {
    const { browser: phone } = await signedIn();
    const { computer, link, code } = await qrSignIn();
    const socket = await listen(computer, 'qr');
    await socket.next();
    const later = appWith(() => ({ now: () => Date.now() + 6 * 60_000 }));
    const page = await phone.open(`${link.pathname}${link.search}`);
    const token = /name="csrf_token" value="([^"]+)"/.exec(page.html)![1]!;
    const late = await later('/auth/handoff/approve', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: token, h: link.searchParams.get('h')!, decision: 'approve' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      cookie: phone.cookieHeader,
    });
    const lateText = await late.text();
    expect(late.status, lateText.slice(-400)).toBe(400);
    expect(lateText).toContain('expired');

    expect(await runDurableObjectAlarm(stubFor(code))).toBe(true);
    expect(await socket.next()).toMatchObject({ state: 'expired' });
    const status = await computer.fetch('/auth/api/handoff/status?kind=qr&role=wait');
    expect(await status.json()).toMatchObject({ state: 'expired' });
    expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(400);
    // It forgot what it held.
    const stored = await runInDurableObject(stubFor(code), (_: unknown, state: DurableObjectState) =>
      state.storage.sql
        .exec<{ approval: string | null; requester: string | null; detail: string }>('SELECT approval, requester, detail FROM handoff')
        .one(),
    );
    expect(stored).toEqual({ approval: null, requester: null, detail: '{}' });
  });

  it("refuses a socket from another origin or for another handoff, and a redemption with another handoff's secret", async () => {
    const a = await qrSignIn();
    const b = await qrSignIn();
    expect((await listen(a.computer, 'qr', 'wait', 'https://evil.example')).res.status).toBe(403);
    // A cookie naming handoff A with handoff B's secret.
    const mixed = new TestBrowser();
    mixed.cookies.set(WAIT, `${a.computer.cookie(WAIT)!.split('.')[0]}.${b.computer.cookie(WAIT)!.split('.')[1]}`);
    expect((await listen(mixed, 'qr')).res.status).toBe(403);
    const { browser: phone } = await signedIn();
    await phone.submit(
      '/auth/handoff/approve',
      { h: a.link.searchParams.get('h')!, decision: 'approve' },
      `${a.link.pathname}${a.link.search}`,
    );
    expect((await mixed.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(403);
    expect(mixed.cookie(SESSION)).toBeUndefined();
    // A forged approval link (right code, wrong secret) cannot approve.
    const forged = new URL(b.link);
    forged.searchParams.set('h', `${b.link.searchParams.get('h')!.split('.')[0]}.${'A'.repeat(43)}`);
    const res = await phone.submit(
      '/auth/handoff/approve',
      { h: forged.searchParams.get('h')!, decision: 'approve' },
      `${b.link.pathname}${b.link.search}`,
    );
    expect(res.status).toBe(403);
    // …nor see who is asking.
    const peek = await phone.open(`${forged.pathname}${forged.search}`);
    expect(peek.res.status).toBe(404);
    expect(peek.html).not.toContain('Requested from');
  });
});

describe('continue on another device', () => {
  it('hands the session to another device after confirmation on the original one, as a separate revocable session', async () => {
    const { browser: laptop, userId } = await signedIn();
    const start = await laptop.open('/auth/handoff/continue?return_to=%2Fauth%2Faccount%3Ftab%3Dsessions');
    const code = /id="handoff-code">([A-Z]{4}-[A-Z]{4})</.exec(start.html)![1]!;
    const owner = await listen(laptop, 'continue', 'own');
    expect(await owner.next()).toMatchObject({ state: 'pending', joined: false });

    const phone = new TestBrowser();
    const joined = await phone.submit('/auth/handoff/join', { code: code.toLowerCase() }, `/auth/handoff/join?code=${code}`);
    expect(joined.status).toBe(200);
    expect(await owner.next()).toMatchObject({ state: 'pending', joined: true });
    const waiting = await listen(phone, 'continue');
    await waiting.next();

    // Someone else cannot confirm it, even holding the original device's cookie.
    const { browser: other } = await signedIn();
    other.cookies.set(OWN, laptop.cookie(OWN)!);
    expect((await other.submit('/auth/handoff/continue/confirm', { decision: 'approve' }, '/auth/account')).status).toBe(403);

    const confirm = await laptop.open('/auth/handoff/continue/confirm');
    expect(confirm.html).toContain('Requested from');
    expect((await laptop.submit('/auth/handoff/continue/confirm', { decision: 'approve' })).status).toBe(200);
    expect(await waiting.next()).toMatchObject({ state: 'approved' });
    const redeemed = await phone.post('/auth/api/handoff/redeem', { kind: 'continue' });
    expect(await redeemed.json()).toMatchObject({ status: 'signed_in', next: '/auth/account?tab=sessions' });
    const phoneSid = (await (await phone.fetch('/auth/api/me')).json()) as { user: { id: string }; session: { sid: string } };
    expect(phoneSid.user.id).toBe(userId);
    const sessions = (await (await laptop.fetch('/auth/api/sessions')).json()) as { sessions: { sid: string }[] };
    expect(sessions.sessions.map((s) => s.sid)).toContain(phoneSid.session.sid);
    expect((await laptop.fetch(`/auth/api/sessions/${phoneSid.session.sid}`, { method: 'DELETE' })).status).toBe(204);
    expect((await phone.fetch('/auth/api/sessions')).status).toBe(401);
  });

  it('a wrong code says so, and guessing is rate limited per IP', async () => {
    const guesser = new TestBrowser();
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++)
      statuses.push((await guesser.submit('/auth/handoff/join', { code: newCode() }, '/auth/handoff/join')).status);
    expect(statuses[0]).toBe(404);
    expect(statuses).toContain(429);
  });
});

describe('device authorization grant (RFC 8628)', () => {
  async function deviceClient() {
    return registerClient({ public: true, grantTypes: [DEVICE_GRANT, 'refresh_token'], scopes: ['openid', 'profile', 'email'] });
  }
  const poll = (clientId: string, deviceCode: string, app = appWith((d) => d)) =>
    app('/auth/token', { ...form({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: clientId }) });

  it('issues codes, answers pending / slow_down as the RFC says, then tokens for the approving user once', async () => {
    const discovery = (await (await new TestBrowser().fetch('/.well-known/openid-configuration')).json()) as Record<string, unknown>;
    expect(discovery['device_authorization_endpoint']).toBe(`${ORIGIN}/auth/device_authorization`);
    expect(discovery['grant_types_supported']).toContain(DEVICE_GRANT);

    const { clientId } = await deviceClient();
    const started = await new TestBrowser().fetch('/auth/device_authorization', form({ client_id: clientId, scope: 'openid profile' }));
    expect(started.status).toBe(200);
    const d = (await started.json()) as Record<string, string | number>;
    expect(d).toMatchObject({ verification_uri: `${ORIGIN}/auth/device`, expires_in: 300, interval: 5 });
    expect(d['user_code']).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(d['verification_uri_complete']).toBe(`${ORIGIN}/auth/device?user_code=${d['user_code']}`);
    const deviceCode = String(d['device_code']);

    const first = await poll(clientId, deviceCode);
    expect(first.status).toBe(400);
    expect(await first.json()).toMatchObject({ error: 'authorization_pending' });
    const fast = await poll(clientId, deviceCode);
    expect(await fast.json()).toMatchObject({ error: 'slow_down' });

    const { browser, userId } = await signedIn();
    const review = await browser.submit(
      '/auth/device',
      { code: String(d['user_code']).toLowerCase().replace('-', ' ') },
      `/auth/device?user_code=${d['user_code']}`,
    );
    const html = await review.text();
    expect(html).toContain('Test App');
    expect(html).toContain('<li>profile</li>');
    expect(
      (await browser.submit('/auth/device/decide', { code: String(d['user_code']), decision: 'approve' }, '/auth/device')).status,
    ).toBe(200);

    // The interval grew to 10 s after slow_down: poll as a well-behaved device would.
    const later = appWith(() => ({ now: () => Date.now() + 11_000 }));
    const done = await poll(clientId, deviceCode, later);
    expect(done.status).toBe(200);
    const tokens = (await done.json()) as { access_token: string; id_token: string; refresh_token: string };
    expect(decodeJwt(tokens.id_token)).toMatchObject({ sub: userId, aud: clientId, amr: ['pwd'], acr: 'urn:gatehouse:acr:1fa' });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: userId, client_id: clientId, scope: 'openid profile' });
    expect(tokens.refresh_token).toBeTruthy();
    const again = await poll(
      clientId,
      deviceCode,
      appWith(() => ({ now: () => Date.now() + 30_000 })),
    );
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('answers access_denied and expired_token; another client cannot use the device code', async () => {
    const { clientId } = await deviceClient();
    const other = await deviceClient();
    const start = async () =>
      (await (await new TestBrowser().fetch('/auth/device_authorization', form({ client_id: clientId }))).json()) as Record<string, string>;
    const denied = await start();
    const { browser } = await signedIn();
    await browser.submit('/auth/device', { code: denied['user_code']! }, '/auth/device');
    await browser.submit('/auth/device/decide', { code: denied['user_code']!, decision: 'deny' }, '/auth/device');
    expect(await (await poll(clientId, denied['device_code']!)).json()).toMatchObject({ error: 'access_denied' });

    const stolen = await start();
    expect(await (await poll(other.clientId, stolen['device_code']!)).json()).toMatchObject({ error: 'invalid_grant' });
    const expired = await poll(
      clientId,
      stolen['device_code']!,
      appWith(() => ({ now: () => Date.now() + 6 * 60_000 })),
    );
    expect(await expired.json()).toMatchObject({ error: 'expired_token' });
    const tooLate = await browser.submit('/auth/device', { code: stolen['user_code']! }, '/auth/device');
    expect(tooLate.status).toBe(200); // still pending by the live clock here…
    const lateApp = appWith(() => ({ now: () => Date.now() + 6 * 60_000 }));
    const page = await browser.open('/auth/device');
    const token = /name="csrf_token" value="([^"]+)"/.exec(page.html)![1]!;
    const late = await lateApp('/auth/device/decide', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: token, code: stolen['user_code']!, decision: 'approve' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      cookie: browser.cookieHeader,
    });
    expect(late.status).toBe(400); // …but not after expiry
  });

  it('user codes have the entropy RFC 8628 §5.1 asks for, and a client without the grant is refused', async () => {
    const codes = Array.from({ length: 2000 }, newCode);
    expect(codes.every((c) => /^[BCDFGHJKLMNPQRSTVWXZ]{8}$/.test(c))).toBe(true);
    expect(new Set(codes).size).toBe(2000);
    expect(8 * Math.log2(20)).toBeGreaterThan(34); // bits per code
    const counts = new Map<string, number>();
    for (const c of codes.join('')) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(20); // every letter is used…
    for (const n of counts.values()) expect(n).toBeGreaterThan(16000 / 20 / 2); // …about evenly

    const { clientId, clientSecret } = await registerClient();
    const res = await new TestBrowser().fetch('/auth/device_authorization', {
      ...form({}),
      headers: { ...form({}).headers, authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}` },
    });
    expect(await res.json()).toMatchObject({ error: 'unauthorized_client' });
    const problem = (await (await new TestBrowser().fetch('/auth/device_authorization', form({ client_id: 'nope' }))).json()) as {
      error: string;
    };
    expect(problem.error).toBe('invalid_client');
    expect(((await (await new TestBrowser().post('/auth/api/handoff/redeem', { kind: 'device' })).json()) as Problem).field).toBe('kind');
  });
});

describe('the handoff rules, at the domain functions', () => {
  it('pendingHandoff answers a waiting handoff and refuses one already answered (409), for every kind', async () => {
    const deps = await depsFor(env);
    const { browser: phone } = await signedIn();
    const { link } = await qrSignIn();
    const { code, secret } = parseHandle(link.searchParams.get('h'))!;
    expect((await pendingHandoff(deps, 'qr', code, secret)).state).toBe('pending');
    expect(
      (await phone.submit('/auth/handoff/approve', { h: link.searchParams.get('h')!, decision: 'deny' }, `${link.pathname}${link.search}`))
        .status,
    ).toBe(200);
    const refused = await pendingHandoff(deps, 'qr', code, secret).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'conflict', status: 409, message: 'This request was already answered.' });
    // The page that would offer to answer it says so instead of showing the buttons.
    const page = await phone.fetch(`${link.pathname}${link.search}`);
    expect(page.status).toBe(409);
    expect(await page.text()).not.toContain('name="decision"');
  });

  it('joinedContinue refuses until another device has joined, and after the answer', async () => {
    const deps = await depsFor(env);
    const { browser: computer } = await signedIn();
    const started = await computer.open('/auth/handoff/continue?return_to=/auth/account');
    const own = parseHandle(computer.cookie(OWN))!;
    expect(started.html).toContain(formatCode(own.code));
    expect(await joinedContinue(deps, own).catch((e: unknown) => e)).toMatchObject({
      code: 'conflict',
      message: 'There is nothing to confirm now.',
    });
    const other = new TestBrowser();
    expect((await other.submit('/auth/handoff/join', { code: formatCode(own.code) }, '/auth/handoff/join')).status).toBe(200);
    expect(await joinedContinue(deps, own)).toMatchObject({ state: 'pending', joined: true });
  });
});
