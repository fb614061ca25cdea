import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import {
  appWith,
  auditOf,
  createVerifiedUser,
  lastMailTo,
  ORIGIN,
  SESSION,
  STRONG_PASSWORD,
  tokenFrom,
  uniqueEmail,
  type Problem,
} from '../helpers';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { SoftAuthenticator } from '../webauthn';

/** The options as the server sends them: registration's or authentication's, by the endpoint asked. */
type Options = { challengeId: string; options: PublicKeyCredentialCreationOptionsJSON & PublicKeyCredentialRequestOptionsJSON };

async function signedIn(browser = new TestBrowser()) {
  const user = await createVerifiedUser();
  const res = await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD });
  expect(res.status).toBe(200);
  return { browser, ...user };
}

async function addPasskey(browser: TestBrowser, name = 'Laptop') {
  const auth = await SoftAuthenticator.create();
  const { challengeId, options } = (await (await browser.post('/auth/api/passkeys/registration-options', {})).json()) as Options;
  const res = await browser.post('/auth/api/passkeys', { challengeId, name, response: await auth.register(options, { origin: ORIGIN }) });
  expect(res.status).toBe(201);
  return auth;
}

async function passkeySignIn(
  browser: TestBrowser,
  auth: SoftAuthenticator,
  o: Parameters<SoftAuthenticator['assert']>[1] = { origin: ORIGIN },
) {
  const { challengeId, options } = (await (await browser.post('/auth/api/passkeys/authentication-options', {})).json()) as Options;
  const response = await auth.assert(options, o);
  return { res: await browser.post('/auth/api/passkeys/sign-in', { challengeId, response }), challengeId, options };
}

const counterOf = async (id: string) =>
  (await env.DB.prepare('SELECT counter FROM passkeys WHERE id = ?').bind(id).first<{ counter: number }>())?.counter;

describe('passkeys', () => {
  it('registers a named passkey, lists it, and signs in with it as a discoverable credential (phishing-resistant acr)', async () => {
    const { browser, userId } = await signedIn();
    const auth = await addPasskey(browser, 'Work laptop');
    const list = (await (await browser.fetch('/auth/api/passkeys')).json()) as { passkeys: { id: string; name: string }[] };
    expect(list.passkeys).toEqual([expect.objectContaining({ id: auth.id, name: 'Work laptop' })]);

    const fresh = new TestBrowser();
    const { res } = await passkeySignIn(fresh, auth);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; user: { id: string }; session: { amr: string[]; acr: string } };
    expect(body).toMatchObject({ status: 'signed_in', user: { id: userId } });
    expect(body.session.amr).toEqual(['hwk', 'mfa', 'user']);
    expect(body.session.acr).toBe('urn:gatehouse:acr:phr');
    expect(fresh.cookie(SESSION)).toBeDefined();
    expect(await counterOf(auth.id)).toBe(1);
    // The account page lists it by name.
    const { html } = await fresh.open('/auth/account');
    expect(html).toContain('Work laptop');
    expect(html).toContain('data-passkey="register"');
  });

  it('refuses a reused challenge and an expired one', async () => {
    const { browser } = await signedIn();
    const auth = await addPasskey(browser);
    const first = await passkeySignIn(new TestBrowser(), auth);
    expect(first.res.status).toBe(200);
    // The same challenge again, with a fresh (otherwise valid) signature over it.
    const replay = await new TestBrowser().post('/auth/api/passkeys/sign-in', {
      challengeId: first.challengeId,
      response: await auth.assert(first.options, { origin: ORIGIN }),
    });
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as Problem).code).toBe('invalid_challenge');

    // Expired: the same request six minutes later.
    const { challengeId, options } = (await (await browser.post('/auth/api/passkeys/authentication-options', {})).json()) as Options;
    const later = appWith(() => ({ now: () => Date.now() + 6 * 60_000 }));
    const late = await later('/auth/api/passkeys/sign-in', {
      method: 'POST',
      json: { challengeId, response: await auth.assert(options, { origin: ORIGIN }) },
    });
    expect(late.status).toBe(400);
    expect(((await late.json()) as Problem).code).toBe('invalid_challenge');
  });

  it('refuses an assertion made for another origin or another RP ID, and audits it', async () => {
    const { browser, userId } = await signedIn();
    const auth = await addPasskey(browser);
    for (const o of [{ origin: 'https://evil.example' }, { origin: ORIGIN, rpId: 'evil.example' }, { origin: 'http://gatehouse.test' }]) {
      const fresh = new TestBrowser();
      const { res } = await passkeySignIn(fresh, auth, o);
      expect(res.status, JSON.stringify(o)).toBe(400);
      const problem = (await res.json()) as Problem;
      expect(problem.code).toBe('invalid_passkey');
      expect(problem.detail).toMatch(/origin|RP ID/i);
      expect(fresh.cookie(SESSION)).toBeUndefined();
    }
    const rejected = (await auditOf(userId)).results.filter((r) => r.type === 'passkey_rejected');
    expect(rejected).toHaveLength(3);
  });

  it('refuses a cloned authenticator (signature counter going backwards)', async () => {
    const { browser, userId } = await signedIn();
    const auth = await addPasskey(browser);
    expect((await passkeySignIn(new TestBrowser(), auth, { origin: ORIGIN, counter: 5 })).res.status).toBe(200);
    expect(await counterOf(auth.id)).toBe(5);
    for (const counter of [5, 3]) {
      const { res } = await passkeySignIn(new TestBrowser(), auth, { origin: ORIGIN, counter });
      expect(res.status).toBe(400);
      expect(((await res.json()) as Problem).detail).toMatch(/counter/i);
    }
    expect(await counterOf(auth.id)).toBe(5);
    const details = (await auditOf(userId)).results.filter((r) => r.type === 'passkey_rejected').map((r) => JSON.parse(r.detail!));
    expect(details).toHaveLength(2);
  });

  it('registration checks the origin too, and needs a session', async () => {
    const { browser } = await signedIn();
    const auth = await SoftAuthenticator.create();
    const { challengeId, options } = (await (await browser.post('/auth/api/passkeys/registration-options', {})).json()) as Options;
    const bad = await browser.post('/auth/api/passkeys', {
      challengeId,
      name: 'x',
      response: await auth.register(options, { origin: 'https://evil.example' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Problem).code).toBe('invalid_passkey');
    const anonymous = await new TestBrowser().post('/auth/api/passkeys/registration-options', {});
    expect(anonymous.status).toBe(401);
    const malformed = await browser.post('/auth/api/passkeys', { challengeId, name: 'x', response: { id: '!!', type: 'public-key' } });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as Problem).field).toMatch(/^response/);
  });

  it('a removed passkey stops working; removing needs a recent sign-in', async () => {
    const { browser } = await signedIn();
    const auth = await addPasskey(browser);
    const stale = appWith(() => ({ now: () => Date.now() + 11 * 60_000 }));
    const tooOld = await stale(`/auth/api/passkeys/${auth.id}`, { method: 'DELETE', cookie: browser.cookieHeader });
    expect(tooOld.status).toBe(403);
    expect(((await tooOld.json()) as Problem).code).toBe('recent_sign_in_required');

    const removed = await browser.fetch(`/auth/api/passkeys/${auth.id}`, { method: 'DELETE' });
    expect(removed.status).toBe(204);
    expect(await counterOf(auth.id)).toBeUndefined();
    const { res } = await passkeySignIn(new TestBrowser(), auth);
    expect(res.status).toBe(400);
    expect(((await res.json()) as Problem).detail).toMatch(/not registered/);
  });

  it('never removes the last way to sign in: the last passkey of an account with no password and no address stays (409)', async () => {
    // A passkey sign-up: no password, but an address email sign-in reaches — its passkey can go.
    const email = uniqueEmail('passkey-only');
    const browser = new TestBrowser();
    expect((await browser.post('/auth/api/sign-up', { email, method: 'passkey' })).status).toBe(202);
    expect((await browser.post('/auth/api/verify-email', { token: tokenFrom(await lastMailTo(email)) })).status).toBe(200);
    const first = await addPasskey(browser, 'First');
    expect((await browser.fetch(`/auth/api/passkeys/${first.id}`, { method: 'DELETE' })).status).toBe(204);
    // Without the address (an account made through an upstream that shared none, its link gone),
    // passkeys are all that is left: all but the last can be removed.
    const { id: userId } = (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!;
    await env.DB.prepare('UPDATE users SET email = ? WHERE id = ?').bind(`${userId}@no-email.invalid`, userId).run();
    const [a, b] = [await addPasskey(browser, 'A'), await addPasskey(browser, 'B')];
    expect((await browser.fetch(`/auth/api/passkeys/${a.id}`, { method: 'DELETE' })).status).toBe(204);
    const last = await browser.fetch(`/auth/api/passkeys/${b.id}`, { method: 'DELETE' });
    expect(last.status).toBe(409);
    expect((await last.json()) as Problem).toMatchObject({
      code: 'last_sign_in_method',
      detail: 'This passkey is the only way to sign in to your account: add another first.',
    });
    expect(await counterOf(b.id)).toBeDefined();
    const removed = (await auditOf(userId)).results.filter((r) => r.type === 'passkey_removed').map((r) => JSON.parse(r.detail!).passkey);
    expect(removed).toEqual([first.id, a.id]);
    // Another account's passkey, or none at all, is still not found.
    expect((await browser.fetch('/auth/api/passkeys/AAAA', { method: 'DELETE' })).status).toBe(404);
    const { res } = await passkeySignIn(new TestBrowser(), b);
    expect(await res.json()).toMatchObject({ status: 'signed_in', user: { id: userId } });
  });

  it('signs up with a passkey alone: no password, signed in by the confirmed address, then the passkey', async () => {
    const email = uniqueEmail('passkey');
    const browser = new TestBrowser();
    const up = await browser.post('/auth/api/sign-up', { email, method: 'passkey' });
    expect(up.status).toBe(202);
    const verified = await browser.post('/auth/api/verify-email', { token: tokenFrom(await lastMailTo(email)) });
    expect(verified.status).toBe(200);
    expect(await verified.json()).toMatchObject({
      status: 'email_verified',
      accountCreated: true,
      next: '/auth/account?setup=passkey',
      session: { amr: ['email'] },
    });
    const row = await env.DB.prepare('SELECT id, password_hash FROM users WHERE email = ?')
      .bind(email)
      .first<{ id: string; password_hash: string | null }>();
    expect(row!.password_hash).toBeNull();
    expect((await browser.open('/auth/account?setup=passkey')).html).toContain('Add a passkey below to finish');

    const auth = await addPasskey(browser);
    expect((await browser.fetch('/auth/api/sign-out', { method: 'POST', json: {} })).status).toBe(204);
    const { res } = await passkeySignIn(new TestBrowser(), auth);
    expect(await res.json()).toMatchObject({ status: 'signed_in', user: { id: row!.id } });
    // There is no password to guess.
    const guess = await new TestBrowser().post('/auth/api/sign-in', { email, password: `${STRONG_PASSWORD}` });
    expect(guess.status).toBe(401);
  });
});
