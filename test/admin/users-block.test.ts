import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { codeAt, enrolled } from '../auth/helpers';
import { newPerson, upstreamProvider, viaUpstream } from '../auth/upstream-helpers';
import { TestBrowser } from '../browser';
import { APP, appSession, call, createVerifiedUser, lastMailTo, ORIGIN, type Problem, SESSION, signIn, STRONG_PASSWORD } from '../helpers';
import { authorizeUrl, basic, form, getCode, pkce, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';
import { SoftAuthenticator } from '../webauthn';
import { admin, adminClient, adminUser } from './helpers';

/**
 * Blocking: who attacks it is the blocked person themselves (or whoever holds their credentials) —
 * with a password, a mailed code, a passkey, an upstream identity, a refresh token that needs no
 * D1 read, a session cookie or an access token obtained before the block. Every path must stop.
 */

const RW = ['admin:users:read', 'admin:users:write'];
let ops: Awaited<ReturnType<typeof adminClient>>;
beforeAll(async () => {
  ops = await adminClient(RW);
});

const block = async (id: string) => {
  const res = await admin(ops.token, 'POST', `/users/${id}/block`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body).toMatchObject({ blocked: true, blocked_at: expect.any(Number) });
  return res;
};
const unblock = async (id: string) => {
  const res = await admin(ops.token, 'POST', `/users/${id}/unblock`);
  expect(res.body).toMatchObject({ blocked: false, blocked_at: null });
};
const expectBlocked = async (res: Response) => {
  expect(res.status).toBe(403);
  const body = (await res.json()) as Problem;
  expect(body.code).toBe('account_blocked');
  expect(body.detail).toMatch(/blocked/);
};

async function tokensFor(cookie: string) {
  const client = await registerClient();
  const { code, verifier } = await getCode(client.clientId, cookie);
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    basic(client.clientId, client.clientSecret),
  );
  expect(res.status).toBe(200);
  return { client, tokens: (await res.json()) as { access_token: string; refresh_token: string } };
}

describe('a blocked user', () => {
  it('cannot sign in with the password (a wrong password still says only that), and every session and token ends now', async () => {
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    const app = await appSession(cookie);
    const { client, tokens } = await tokensFor(cookie);
    const pending = await getCode(client.clientId, cookie); // a code issued but not yet redeemed
    expect((await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(200);

    const res = await block(user.userId);
    expect((await admin(ops.token, 'GET', `/users/${user.userId}`)).body).toMatchObject({ counts: { sessions: 0 } });
    const audit = await env.DB.prepare("SELECT actor, detail FROM audit_events WHERE user_id = ? AND type = 'user_blocked'")
      .bind(user.userId)
      .all<{ actor: string; detail: string }>();
    expect(audit.results).toHaveLength(1);
    expect(audit.results[0]!.actor).toBe(`client:${ops.clientId}`);
    expect(JSON.parse(audit.results[0]!.detail)).toMatchObject({ sessionsEnded: 1 }); // Gatehouse sessions (the app host's went with it)
    expect(res.body.blocked_at).toEqual(expect.any(Number));

    await expectBlocked(await call('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: STRONG_PASSWORD } }));
    const wrong = await call('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: `${STRONG_PASSWORD}!` } });
    expect(wrong.status).toBe(401); // no hint that the account exists or is blocked without its password

    // The refresh grant reads no D1: the user's object refuses it.
    const refreshed = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      basic(client.clientId, client.clientSecret),
    );
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    // The code issued before the block is gone.
    const redeemed = await tokenRequest(
      { grant_type: 'authorization_code', code: pending.code, redirect_uri: REDIRECT, code_verifier: pending.verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(await redeemed.json()).toMatchObject({ error: 'invalid_grant' });
    // The access token issued before the block: dead at userinfo (which asks the user's object).
    const info = await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(info.status).toBe(401);
    // The session cookie: refused by everything that asks the object (the account API, fresh routes)…
    expect((await call('/auth/api/me', { cookie })).status).toBe(401);
    const page = await call('/auth/account', { cookie, headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toMatch(/^\/auth\/sign-in/);
    expect((await call(`${APP}/demo/fresh/x`, { cookie: app })).status).not.toBe(200);
    // …and a new authorization with it makes no code.
    const { challenge } = await pkce();
    const again = await call(authorizeUrl(client.clientId, challenge), { cookie });
    expect(again.headers.get('location') ?? '').not.toMatch(/[?&]code=/);
  });

  it('a token issued before the block stays dead after the unblock; the person signs in again afresh', async () => {
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    const { client, tokens } = await tokensFor(cookie);
    await block(user.userId);
    await block(user.userId); // idempotent: one event, not two
    const events = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE user_id = ? AND type = 'user_blocked'")
      .bind(user.userId)
      .first<{ n: number }>();
    expect(events!.n).toBe(1);
    await unblock(user.userId);
    expect((await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
    const refreshed = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      basic(client.clientId, client.clientSecret),
    );
    expect(refreshed.status).toBe(400);
    const fresh = await signIn(user.email);
    const { tokens: now } = await tokensFor(fresh.cookie);
    expect((await call('/auth/userinfo', { headers: { authorization: `Bearer ${now.access_token}` } })).status).toBe(200);
    expect(
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE user_id = ? AND type = 'user_unblocked'")
        .bind(user.userId)
        .first<{ n: number }>())!.n,
    ).toBe(1);
  });

  it('cannot sign in with a mailed code', async () => {
    const user = await createVerifiedUser();
    await block(user.userId);
    const browser = new TestBrowser();
    expect((await browser.post('/auth/api/email-sign-in', { email: user.email })).status).toBe(202);
    const code = /code: (\d{4}) (\d{4})/
      .exec((await lastMailTo(user.email)).text)!
      .slice(1)
      .join('');
    await expectBlocked(await browser.post('/auth/api/email-sign-in/code', { code }));
    expect(browser.cookie(SESSION)).toBeUndefined();
  });

  it('cannot sign in with a passkey', async () => {
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD });
    const auth = await SoftAuthenticator.create();
    type Options = { challengeId: string; options: never };
    const reg = (await (await browser.post('/auth/api/passkeys/registration-options', {})).json()) as Options;
    expect(
      (
        await browser.post('/auth/api/passkeys', {
          challengeId: reg.challengeId,
          name: 'Key',
          response: await auth.register(reg.options, { origin: ORIGIN }),
        })
      ).status,
    ).toBe(201);
    await block(user.userId);
    const other = new TestBrowser();
    const opts = (await (await other.post('/auth/api/passkeys/authentication-options', {})).json()) as Options;
    await expectBlocked(
      await other.post('/auth/api/passkeys/sign-in', {
        challengeId: opts.challengeId,
        response: await auth.assert(opts.options, { origin: ORIGIN }),
      }),
    );
    expect(other.cookie(SESSION)).toBeUndefined();
  });

  it('with a second factor: refused at the password step (not asked for the factor), and at the factor when blocked in between', async () => {
    const user = await enrolled();
    await block(user.userId);
    await expectBlocked(await new TestBrowser().post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD }));
    await unblock(user.userId);
    const browser = new TestBrowser();
    expect(await (await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).json()).toMatchObject({
      status: 'second_factor_required',
    });
    await block(user.userId);
    await expectBlocked(await browser.post('/auth/api/sign-in/second-factor', { code: codeAt(user.secret) }));
    expect(browser.cookie(SESSION)).toBeUndefined();
  });

  it('cannot sign in through an upstream identity provider', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const person = newPerson();
    expect((await viaUpstream(new TestBrowser(), p, person)).res.status).toBe(303);
    const { id } = (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(person.email).first<{ id: string }>())!;
    await block(id);
    const browser = new TestBrowser();
    const { res } = await viaUpstream(browser, p, person);
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/blocked/);
    expect(browser.cookie(SESSION)).toBeUndefined();
  });

  it('a device approved before the block gets no tokens when it polls after (the device grant)', async () => {
    const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
    const { clientId } = await registerClient({ public: true, grantTypes: [DEVICE_GRANT, 'refresh_token'], scopes: ['openid'] });
    const withoutRefresh = await registerClient({ public: true, grantTypes: [DEVICE_GRANT], scopes: ['openid'] });
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD });
    const approved = [];
    for (const client of [clientId, withoutRefresh.clientId]) {
      const started = await new TestBrowser().fetch('/auth/device_authorization', form({ client_id: client, scope: 'openid' }));
      const d = (await started.json()) as { device_code: string; user_code: string };
      expect((await browser.submit('/auth/device/decide', { code: d.user_code, decision: 'approve' }, '/auth/device')).status).toBe(200);
      approved.push({ client, deviceCode: d.device_code });
    }
    await block(user.userId);
    for (const { client, deviceCode } of approved) {
      const res = await call('/auth/token', { ...form({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: client }) });
      expect(res.status, client).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    }
  });

  it('an admin who is blocked loses the admin API at once (their token is dead); an admin cannot block themselves', async () => {
    const me = await adminUser(RW);
    const self = await admin(me.token, 'POST', `/users/${me.userId}/block`);
    expect(self.status).toBe(409);
    expect(self.body).toMatchObject({ code: 'conflict' });
    expect((await admin(me.token, 'DELETE', `/users/${me.userId}`)).status).toBe(409);
    await block(me.userId);
    const res = await admin(me.token, 'GET', '/users');
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'invalid_token' });
  });

  it('blocking an unknown user is a 404 and touches no object', async () => {
    expect((await admin(ops.token, 'POST', `/users/${crypto.randomUUID()}/block`)).body).toMatchObject({ code: 'not_found' });
  });
});
