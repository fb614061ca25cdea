import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { enrolled } from '../auth/helpers';
import { TestBrowser } from '../browser';
import { call, createVerifiedUser, ORIGIN, SESSION, signIn, STRONG_PASSWORD } from '../helpers';
import { SoftAuthenticator } from '../webauthn';
import { admin, adminClient } from './helpers';

/** A user's sessions and credentials through the admin API: listed without secrets, ended and removed with an audit trail. */

const RW = ['admin:users:read', 'admin:users:write'];
let ops: Awaited<ReturnType<typeof adminClient>>;
beforeAll(async () => {
  ops = await adminClient(RW);
});

const auditRow = (userId: string, type: string) =>
  env.DB.prepare('SELECT actor, detail FROM audit_events WHERE user_id = ? AND type = ? ORDER BY id DESC')
    .bind(userId, type)
    .first<{ actor: string; detail: string }>();

async function withPasskey() {
  const user = await createVerifiedUser();
  const browser = new TestBrowser();
  await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD });
  type Options = { challengeId: string; options: never };
  const reg = (await (await browser.post('/auth/api/passkeys/registration-options', {})).json()) as Options;
  const auth = await SoftAuthenticator.create();
  const res = await browser.post('/auth/api/passkeys', {
    challengeId: reg.challengeId,
    name: 'Laptop',
    response: await auth.register(reg.options, { origin: ORIGIN }),
  });
  expect(res.status).toBe(201);
  const { id } = (await env.DB.prepare('SELECT id FROM passkeys WHERE user_id = ?').bind(user.userId).first<{ id: string }>())!;
  return { ...user, browser, auth, passkeyId: id };
}

describe('a user’s sessions', () => {
  it('lists them newest first, ends one (the cookie stops working), then all; audited with the actor', async () => {
    const user = await createVerifiedUser();
    const a = await signIn(user.email);
    const b = await signIn(user.email);
    const list = await admin(ops.token, 'GET', `/users/${user.userId}/sessions`);
    expect(list.body.items!.map((s) => s.sid)).toEqual([b.body.session.sid, a.body.session.sid]);
    expect(list.body.items![0]).toMatchObject({ amr: ['pwd'], relayed: false, host: null });
    expect(JSON.stringify(list.body)).not.toMatch(/secret|hash/);

    expect((await admin(ops.token, 'DELETE', `/users/${user.userId}/sessions/${a.body.session.sid}`)).status).toBe(204);
    expect((await call('/auth/api/me', { cookie: a.cookie })).status).toBe(401);
    expect((await call('/auth/api/me', { cookie: b.cookie })).status).toBe(200);
    expect(JSON.parse((await auditRow(user.userId, 'session_revoked'))!.detail)).toMatchObject({ sid: a.body.session.sid });
    expect((await auditRow(user.userId, 'session_revoked'))!.actor).toBe(`client:${ops.clientId}`);
    expect((await admin(ops.token, 'DELETE', `/users/${user.userId}/sessions/${a.body.session.sid}`)).body).toMatchObject({
      code: 'not_found',
      field: 'sid',
    });

    const all = await admin(ops.token, 'DELETE', `/users/${user.userId}/sessions`);
    expect(all.body).toEqual({ ended: 1 });
    expect((await call('/auth/api/me', { cookie: b.cookie })).status).toBe(401);
    expect((await auditRow(user.userId, 'sessions_revoked_all'))!.actor).toBe(`client:${ops.clientId}`);
  });

  it('a session id of another user ends nothing', async () => {
    const victim = await createVerifiedUser();
    const other = await createVerifiedUser();
    const s = await signIn(victim.email);
    const res = await admin(ops.token, 'DELETE', `/users/${other.userId}/sessions/${s.body.session.sid}`);
    expect(res.status).toBe(404);
    expect((await call('/auth/api/me', { cookie: s.cookie })).status).toBe(200);
  });
});

describe('a user’s credentials', () => {
  it('lists the authenticator app, recovery codes left and passkeys by metadata only', async () => {
    const user = await enrolled();
    const list = await admin(ops.token, 'GET', `/users/${user.userId}/credentials`);
    expect(list.body).toEqual({ totp: true, recovery_codes_left: 10, passkeys: [] });
    const p = await withPasskey();
    const keys = await admin(ops.token, 'GET', `/users/${p.userId}/credentials`);
    expect(keys.body.passkeys).toEqual([
      { id: p.passkeyId, name: 'Laptop', backed_up: expect.any(Boolean), created_at: expect.any(Number), last_used_at: null },
    ]);
    expect(JSON.stringify(keys.body)).not.toMatch(/public_key|publicKey|counter/);
  });

  it('removes the authenticator app and recovery codes (as reset-mfa): the person signs in with the password alone', async () => {
    const user = await enrolled();
    expect((await admin(ops.token, 'DELETE', `/users/${user.userId}/totp`)).status).toBe(204);
    expect((await admin(ops.token, 'GET', `/users/${user.userId}/credentials`)).body).toMatchObject({
      totp: false,
      recovery_codes_left: 0,
    });
    const audit = await auditRow(user.userId, 'mfa_disabled');
    expect(audit!.actor).toBe(`client:${ops.clientId}`);
    expect(JSON.parse(audit!.detail)).toMatchObject({ method: 'totp', clientId: ops.clientId });
    const browser = new TestBrowser();
    const res = await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD });
    expect(await res.json()).toMatchObject({ status: 'signed_in' });
    expect(browser.cookie(SESSION)).toBeDefined();
    // Removing again is a 404.
    expect((await admin(ops.token, 'DELETE', `/users/${user.userId}/totp`)).body).toMatchObject({ code: 'not_found', field: 'totp' });
  });

  it('removes one passkey: it signs in no more; another user’s passkey id removes nothing', async () => {
    const p = await withPasskey();
    const stranger = await createVerifiedUser();
    expect((await admin(ops.token, 'DELETE', `/users/${stranger.userId}/passkeys/${p.passkeyId}`)).status).toBe(404);
    expect(await env.DB.prepare('SELECT 1 FROM passkeys WHERE id = ?').bind(p.passkeyId).first()).not.toBeNull();

    expect((await admin(ops.token, 'DELETE', `/users/${p.userId}/passkeys/${p.passkeyId}`)).status).toBe(204);
    expect((await auditRow(p.userId, 'passkey_removed'))!.actor).toBe(`client:${ops.clientId}`);
    type Options = { challengeId: string; options: never };
    const other = new TestBrowser();
    const opts = (await (await other.post('/auth/api/passkeys/authentication-options', {})).json()) as Options;
    const res = await other.post('/auth/api/passkeys/sign-in', {
      challengeId: opts.challengeId,
      response: await p.auth.assert(opts.options, { origin: ORIGIN }),
    });
    expect(res.status).toBe(400);
    expect(other.cookie(SESSION)).toBeUndefined();
  });

  it('unknown users are 404s on every credential and session operation', async () => {
    const id = crypto.randomUUID();
    for (const [method, path] of [
      ['GET', `/users/${id}/sessions`],
      ['DELETE', `/users/${id}/sessions`],
      ['GET', `/users/${id}/credentials`],
      ['DELETE', `/users/${id}/totp`],
    ] as const) {
      const res = await admin(ops.token, method, path);
      expect(res.status, path).toBe(404);
    }
  });
});
