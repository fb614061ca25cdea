import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/lib/crypto';
import { appWith, auditOf, call, createVerifiedUser, lastMailTo, signIn, tokenFrom, uniqueEmail } from '../helpers';
import type { Problem } from '../helpers';

const NEW_PASSWORD = 'a brand new passphrase 2026';

const forgot = (email: string) => call('/auth/api/forgot-password', { method: 'POST', json: { email } });
const reset = (token: string, password = NEW_PASSWORD) => call('/auth/api/reset-password', { method: 'POST', json: { token, password } });
const signInStatus = async (email: string, password: string) =>
  (await call('/auth/api/sign-in', { method: 'POST', json: { email, password } })).status;
const mailCount = async (to: string) =>
  (await env.DB.prepare('SELECT count(*) AS n FROM dev_mail WHERE "to" = ?').bind(to).first<{ n: number }>())!.n;

async function resetToken(email: string) {
  const before = (await lastMailTo(email).catch(() => ({ id: 0 }))).id;
  expect((await forgot(email)).status).toBe(202);
  return tokenFrom(await lastMailTo(email, before));
}

describe('password reset', () => {
  it('answers known and unknown addresses identically and mails only the known one', async () => {
    const { email } = await createVerifiedUser();
    const before = (await lastMailTo(email)).id;
    const unknown = uniqueEmail('unknown');
    const [a, b] = [await forgot(email), await forgot(unknown)];
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(await a.json()).toEqual(await b.json());
    expect((await lastMailTo(email, before)).subject).toBe('Reset your password');
    expect(await mailCount(unknown)).toBe(0);
  });

  it('still answers 202, after the same work, when the mail provider fails (the failure is logged)', async () => {
    const { email } = await createVerifiedUser();
    let attempted = 0;
    const request = appWith(() => ({
      mailer: {
        send: () => {
          attempted++;
          return Promise.reject(new Error('provider down'));
        },
      },
    }));
    const res = await request('/auth/api/forgot-password', { method: 'POST', json: { email } });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'check_email' });
    expect(attempted).toBe(1);
  });

  it('stores only a hash of the token, valid for at most 30 minutes', async () => {
    const { email, userId } = await createVerifiedUser();
    const before = Date.now();
    const token = await resetToken(email);
    const row = await env.DB.prepare("SELECT * FROM email_tokens WHERE user_id = ? AND purpose = 'reset_password'")
      .bind(userId)
      .first<{ token_hash: string; expires_at: number }>();
    expect(row!.token_hash).toBe(await sha256(token));
    expect(JSON.stringify(row)).not.toContain(token);
    expect(row!.expires_at - before).toBeLessThanOrEqual(30 * 60_000 + 5_000);
  });

  it('sets the new password, revokes every session, and records it', async () => {
    const { email, userId } = await createVerifiedUser();
    const first = await signIn(email);
    await signIn(email);
    const token = await resetToken(email);
    const res = await reset(token);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'password_reset' });
    const stub = env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId));
    expect(await stub.list(Date.now())).toEqual([]);
    expect((await call('/auth/api/sessions', { cookie: first.cookie })).status).toBe(401);
    expect(await signInStatus(email, 'correct horse battery staple 42')).toBe(401);
    expect(await signInStatus(email, NEW_PASSWORD)).toBe(200);
    expect((await auditOf(userId)).results.map((r) => r.type)).toContain('password_reset');
  });

  it('refuses a reused, tampered or malformed token with a clear 400', async () => {
    const { email } = await createVerifiedUser();
    const token = await resetToken(email);
    expect((await reset(token)).status).toBe(200);
    const reused = await reset(token, 'yet another passphrase');
    expect(reused.status).toBe(400);
    expect(await reused.json()).toMatchObject({ code: 'invalid_link', field: 'token' });
    const tampered = await reset(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`);
    expect((await tampered.json<Problem>()).code).toBe('invalid_link');
    for (const bad of ['', 'x', 'a'.repeat(300), "' OR 1=1 --"]) {
      const res = await reset(bad);
      expect(res.status, bad).toBe(400);
    }
    expect(await signInStatus(email, 'yet another passphrase')).toBe(401);
  });

  it('refuses an expired token and leaves the password unchanged', async () => {
    const { email } = await createVerifiedUser();
    const token = await resetToken(email);
    const request = appWith(() => ({ now: () => Date.now() + 31 * 60_000 }));
    const res = await request('/auth/api/reset-password', { method: 'POST', json: { token, password: NEW_PASSWORD } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'expired_token', field: 'token' });
    expect(await signInStatus(email, NEW_PASSWORD)).toBe(401);
    expect((await reset(token)).status).toBe(400); // and it is gone
  });

  it('lets exactly one of two concurrent uses of a token win', async () => {
    const { email, userId } = await createVerifiedUser();
    const token = await resetToken(email);
    const results = await Promise.all([reset(token, 'first concurrent passphrase'), reset(token, 'second concurrent passphrase')]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 400]);
    const winner = results[0]!.status === 200 ? 'first concurrent passphrase' : 'second concurrent passphrase';
    const loser = winner.startsWith('first') ? 'second concurrent passphrase' : 'first concurrent passphrase';
    expect(await signInStatus(email, winner)).toBe(200);
    expect(await signInStatus(email, loser)).toBe(401);
    expect((await auditOf(userId)).results.filter((r) => r.type === 'password_reset')).toHaveLength(1);
  });

  it('refuses a weak new password, naming the field, and keeps the token usable', async () => {
    const { email } = await createVerifiedUser();
    const token = await resetToken(email);
    for (const weak of ['short', 'password123', 'qwertyuiop']) {
      const res = await reset(token, weak);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'weak_password', field: 'password' });
    }
    expect((await reset(token)).status).toBe(200);
  });

  it('invalidates other outstanding reset links once one is used', async () => {
    const { email } = await createVerifiedUser();
    const older = await resetToken(email);
    const newer = await resetToken(email);
    expect((await reset(newer)).status).toBe(200);
    expect((await reset(older, 'some other passphrase')).status).toBe(400);
  });
});
