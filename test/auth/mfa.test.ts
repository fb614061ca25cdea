import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { appWith, auditOf, createVerifiedUser, lastMailTo, ORIGIN, SESSION, tokenFrom, type Problem } from '../helpers';
import { codeAt, enrolled, passwordStep, PENDING } from './helpers';

describe('TOTP and recovery codes', () => {
  it('enrols with a QR code and the secret as text; the secret is sealed at rest; ten recovery codes', async () => {
    const { userId, secret, codes } = await enrolled();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    const row = await env.DB.prepare('SELECT secret_encrypted, confirmed_at FROM totp_credentials WHERE user_id = ?')
      .bind(userId)
      .first<{ secret_encrypted: string; confirmed_at: number }>();
    expect(row!.confirmed_at).toBeGreaterThan(0);
    expect(row!.secret_encrypted).not.toContain(secret);
    const stored = await env.DB.prepare('SELECT code_hash FROM recovery_codes WHERE user_id = ?').bind(userId).all<{ code_hash: string }>();
    expect(stored.results).toHaveLength(10);
    for (const c of codes) expect(JSON.stringify(stored.results)).not.toContain(c.replace('-', ''));
    expect((await auditOf(userId)).results.map((r) => r.type)).toContain('mfa_enrolled');
  });

  it('a new device must pass the second factor; the known device need not (adaptive)', async () => {
    const { email, secret, browser } = await enrolled();
    // The enrolling browser is a known device: password alone.
    expect(await passwordStep(browser, email)).toMatchObject({
      status: 'signed_in',
      session: { amr: ['pwd'], acr: 'urn:gatehouse:acr:1fa' },
    });

    const phone = new TestBrowser();
    const first = await passwordStep(phone, email);
    expect(first.status).toBe('second_factor_required');
    expect(phone.cookie(SESSION)).toBeUndefined();
    expect(phone.cookie(PENDING)).toBeDefined();
    const done = await phone.post('/auth/api/sign-in/second-factor', { code: codeAt(secret) });
    expect(done.status).toBe(200);
    expect(((await done.json()) as { session: { amr: string[]; acr: string } }).session).toMatchObject({
      amr: ['mfa', 'otp', 'pwd'],
      acr: 'urn:gatehouse:acr:mfa',
    });
    expect(phone.cookie(SESSION)).toBeDefined();
    expect(phone.cookie(PENDING)).toBeUndefined();
  });

  it('refuses a TOTP code replayed in the same time step, also under concurrency (exactly one wins)', async () => {
    const { email, secret } = await enrolled();
    const code = codeAt(secret);
    const racers = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const b = new TestBrowser();
        await passwordStep(b, email);
        return b;
      }),
    );
    const results = await Promise.all(racers.map((b) => b.post('/auth/api/sign-in/second-factor', { code })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const refused = await Promise.all(results.filter((r) => r.status !== 200).map(async (r) => ((await r.json()) as Problem).code));
    // Refused as reused — and, since reused codes count as failures, the later ones hit the lock.
    expect(refused).toContain('code_reused');
    for (const code of refused) expect(['code_reused', 'account_locked']).toContain(code);
  });

  it('a recovery code works once', async () => {
    const { email, codes } = await enrolled();
    const a = new TestBrowser();
    await passwordStep(a, email);
    expect((await a.post('/auth/api/sign-in/second-factor', { code: codes[0]!.toLowerCase() })).status).toBe(200);
    const b = new TestBrowser();
    await passwordStep(b, email);
    const again = await b.post('/auth/api/sign-in/second-factor', { code: codes[0]! });
    expect(again.status).toBe(400);
    expect(((await again.json()) as Problem).detail).toMatch(/already used/);
    expect(b.cookie(SESSION)).toBeUndefined();
  });

  it('stops guessing: five wrong codes lock the second factor, even for the right code', async () => {
    const { email, secret, userId } = await enrolled();
    const b = new TestBrowser();
    await passwordStep(b, email);
    for (let i = 0; i < 5; i++) expect((await b.post('/auth/api/sign-in/second-factor', { code: '000000' })).status).toBe(400);
    const locked = await b.post('/auth/api/sign-in/second-factor', { code: codeAt(secret) });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(b.cookie(SESSION)).toBeUndefined();
    expect((await auditOf(userId)).results.filter((r) => r.type === 'second_factor_failed')).toHaveLength(5);
  });

  it('a pending sign-in lapses after five minutes; a forged one is refused', async () => {
    const { email, secret } = await enrolled();
    const b = new TestBrowser();
    await passwordStep(b, email);
    const later = appWith(() => ({ now: () => Date.now() + 6 * 60_000 }));
    const late = await later('/auth/api/sign-in/second-factor', { method: 'POST', json: { code: codeAt(secret) }, cookie: b.cookieHeader });
    expect(late.status).toBe(401);
    // Flip a character at the start of the signature (the last one may only carry padding bits).
    const [h, p, sig] = b.cookie(PENDING)!.split('.');
    b.cookies.set(PENDING, `${h}.${p}.${sig![0] === 'A' ? 'B' : 'A'}${sig!.slice(1)}`);
    expect((await b.post('/auth/api/sign-in/second-factor', { code: codeAt(secret) })).status).toBe(401);
  });

  it('a password reset never bypasses the second factor', async () => {
    const { email } = await enrolled();
    const attacker = new TestBrowser();
    expect((await attacker.post('/auth/api/forgot-password', { email })).status).toBe(202);
    const token = tokenFrom(await lastMailTo(email));
    expect((await attacker.post('/auth/api/reset-password', { token, password: 'a brand new passphrase 77' })).status).toBe(200);
    expect(attacker.cookie(SESSION)).toBeUndefined();
    const res = await attacker.post('/auth/api/sign-in', { email, password: 'a brand new passphrase 77' });
    expect(((await res.json()) as { status: string }).status).toBe('second_factor_required');
    expect(attacker.cookie(SESSION)).toBeUndefined();
  });

  it('removing the authenticator app needs a recent sign-in', async () => {
    const { browser, userId } = await enrolled();
    const stale = appWith(() => ({ now: () => Date.now() + 11 * 60_000 }));
    const { html } = await browser.open('/auth/account');
    const token = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const form = {
      method: 'POST',
      cookie: browser.cookieHeader,
      body: new URLSearchParams({ csrf_token: token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    };
    // Without the CSRF token nothing happens (the security pages sit under the pages' CSRF check).
    const forged = await browser.fetch('/auth/account/totp/remove', {
      method: 'POST',
      body: '',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
    });
    expect(forged.status).toBe(403);
    const old = await stale('/auth/account/totp/remove', form);
    expect(old.status).toBe(303);
    expect(old.headers.get('location')).toMatch(/^\/auth\/sign-in\?return_to=%2Fauth%2Faccount/);
    expect(await env.DB.prepare('SELECT 1 FROM totp_credentials WHERE user_id = ?').bind(userId).first()).not.toBeNull();
    expect((await browser.submit('/auth/account/totp/remove', {}, '/auth/account')).status).toBe(303);
    expect(await env.DB.prepare('SELECT 1 FROM totp_credentials WHERE user_id = ?').bind(userId).first()).toBeNull();
    expect(await env.DB.prepare('SELECT count(*) AS n FROM recovery_codes WHERE user_id = ?').bind(userId).first('n')).toBe(0);
  });
});

describe('second factors over the JSON API', () => {
  it('enrols TOTP, lists factors, regenerates codes and removes the app', async () => {
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    expect((await passwordStep(browser, user.email)).status).toBe('signed_in');
    const started = await browser.post('/auth/api/totp', {});
    expect(started.status).toBe(201);
    const { secret, uri } = (await started.json()) as { secret: string; uri: string };
    expect(uri).toMatch(/^otpauth:\/\/totp\/.*secret=[A-Z2-7]+/);
    expect(((await (await browser.post('/auth/api/totp/confirm', { code: '123' })).json()) as Problem).field).toBe('code');
    const confirmed = await browser.post('/auth/api/totp/confirm', { code: codeAt(secret, Date.now() - 30_000) });
    const { recoveryCodes } = (await confirmed.json()) as { recoveryCodes: string[] };
    expect(recoveryCodes).toHaveLength(10);
    expect(await (await browser.fetch('/auth/api/second-factors')).json()).toEqual({ totp: true, recoveryCodesLeft: 10, passkeys: 0 });
    expect((await browser.post('/auth/api/totp', {})).status).toBe(409); // one app at a time

    const fresh = (await (await browser.post('/auth/api/recovery-codes', {})).json()) as { recoveryCodes: string[] };
    expect(fresh.recoveryCodes.some((c) => recoveryCodes.includes(c))).toBe(false);
    const b = new TestBrowser();
    await passwordStep(b, user.email);
    expect((await b.post('/auth/api/sign-in/second-factor', { code: recoveryCodes[0]! })).status).toBe(400); // the old ones stopped working

    expect((await browser.fetch('/auth/api/totp', { method: 'DELETE' })).status).toBe(204);
    expect(await (await browser.fetch('/auth/api/second-factors')).json()).toEqual({ totp: false, recoveryCodesLeft: 0, passkeys: 0 });
    expect((await new TestBrowser().fetch('/auth/api/second-factors')).status).toBe(401);
  });
});

describe('adaptive sign-in', () => {
  it('a new country or network asks for the second factor, sends a new-sign-in mail and audits the inputs', async () => {
    const browser = new TestBrowser({ cf: { country: 'NL', asn: 1136 } });
    const { email, userId, secret } = await enrolled(browser);
    expect((await passwordStep(browser, email)).status).toBe('signed_in');
    const before = (await lastMailTo(email)).id;

    browser.cf = { country: 'BR', asn: 1136 };
    expect((await passwordStep(browser, email)).status).toBe('second_factor_required');
    expect((await browser.post('/auth/api/sign-in/second-factor', { code: codeAt(secret) })).status).toBe(200);
    const mail = await lastMailTo(email, before);
    expect(mail.subject).toBe('New sign-in to your account');
    expect(mail.text).toContain('BR');

    const risk = (await auditOf(userId)).results.filter((r) => r.type === 'sign_in_risk').map((r) => JSON.parse(r.detail!));
    expect(risk.at(-1)).toMatchObject({
      newDevice: false,
      newCountry: true,
      newAsn: false,
      country: 'BR',
      asn: 1136,
      decision: 'second_factor',
    });
    expect(risk.at(-2)).toMatchObject({ newDevice: false, newCountry: false, decision: 'allow' });
  });

  it('without a second factor enrolled, a new device signs in with a password and gets a mail', async () => {
    const user = await createVerifiedUser();
    const home = new TestBrowser();
    expect((await passwordStep(home, user.email)).status).toBe('signed_in');
    const away = new TestBrowser();
    expect((await passwordStep(away, user.email)).status).toBe('signed_in');
    expect((await lastMailTo(user.email)).subject).toBe('New sign-in to your account');
  });
});
