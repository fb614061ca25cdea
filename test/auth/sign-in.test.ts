import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../src/auth/argon2';
import { loadArgon2 } from '../../src/auth/argon2-worker';
import { createDb } from '../../src/db/client';
import { createSessionStore } from '../../src/sessions/session-store';
import {
  appWith,
  brokenSessionsNamespace,
  auditOf,
  call,
  cookieFrom,
  createVerifiedUser,
  failingD1,
  SESSION,
  signIn,
  STRONG_PASSWORD,
  uniqueEmail,
  uniqueIp,
  withinOneLimiterWindow,
} from '../helpers';
import type { Problem } from '../helpers';

const signInCall = (email: string, password: string, ip = uniqueIp()) =>
  call('/auth/api/sign-in', { method: 'POST', json: { email, password }, ip });

const withoutInstance = (b: Record<string, unknown>) => ({ ...b, instance: undefined });

describe('password sign-in', () => {
  it('answers an unknown email and a wrong password identically', async () => {
    const { email } = await createVerifiedUser();
    const wrong = await signInCall(email, 'not the right password');
    const unknown = await signInCall(uniqueEmail('nobody'), 'not the right password');
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const [a, b] = [withoutInstance(await wrong.json()), withoutInstance(await unknown.json())];
    expect(a).toEqual(b);
    expect(a).toMatchObject({ code: 'invalid_credentials', detail: 'The email or password is incorrect.' });
    expect(cookieFrom(wrong, SESSION)).toBeUndefined();
  });

  it('matches the email whatever its case and surrounding spaces', async () => {
    const { email } = await createVerifiedUser();
    const res = await signInCall(`  ${email.toUpperCase()}\t`, STRONG_PASSWORD);
    expect(res.status).toBe(200);
  });

  it('accepts a 128-character Unicode password exactly, without truncation', async () => {
    const password = 'Ünïcødé pässwörd 🔐 with ç and 漢字 — '.repeat(4).slice(0, 128);
    expect([...password].length).toBeGreaterThanOrEqual(120);
    const { email } = await createVerifiedUser(uniqueEmail(), password);
    expect((await signInCall(email, password)).status).toBe(200);
    expect((await signInCall(email, password.slice(0, -1))).status).toBe(401);
    expect((await signInCall(email, `${password}x`)).status).toBe(401);
  });

  it('locks an account key after 5 failures, with Retry-After, and treats unknown emails the same', async () => {
    const { email } = await createVerifiedUser();
    const unknown = uniqueEmail('ghost');
    for (let i = 0; i < 5; i++) {
      expect((await signInCall(email, `wrong-password-${i}`)).status).toBe(401);
      expect((await signInCall(unknown, `wrong-password-${i}`)).status).toBe(401);
    }
    const locked = await signInCall(email, STRONG_PASSWORD);
    const lockedUnknown = await signInCall(unknown, STRONG_PASSWORD);
    expect(locked.status).toBe(429);
    expect(lockedUnknown.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    expect((await locked.json<Problem>()).code).toBe('account_locked');
    expect((await lockedUnknown.json<Problem>()).code).toBe('account_locked');
    const row = await env.DB.prepare('SELECT failures FROM credential_failures ORDER BY updated_at DESC LIMIT 2').all();
    expect(row.results.map((r) => r.failures)).toEqual([5, 5]);
  });

  it('backs off exponentially and clears the counter on success', async () => {
    const { email, userId } = await createVerifiedUser();
    let now = Date.now();
    const request = appWith(() => ({ now: () => now }));
    const attempt = (password: string) => request('/auth/api/sign-in', { method: 'POST', json: { email, password } });
    for (let i = 0; i < 5; i++) await attempt('wrong password here');
    expect((await attempt(STRONG_PASSWORD)).status).toBe(429);
    now += 31_000;
    expect((await attempt('wrong password again')).status).toBe(401);
    const second = await attempt(STRONG_PASSWORD);
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(30);
    now += 61_000;
    expect((await attempt(STRONG_PASSWORD)).status).toBe(200);
    now += 1;
    expect((await attempt('wrong once more')).status).toBe(401);
    expect((await attempt(STRONG_PASSWORD)).status).toBe(200);
    const types = (await auditOf(userId)).results.map((r) => r.type);
    expect(types.filter((t) => t === 'sign_in_failed')).toHaveLength(7);
  });

  it('limits requests per IP with the rate limiting binding', async () => {
    await withinOneLimiterWindow();
    const ip = uniqueIp();
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) statuses.push((await call('/auth/api/sign-in', { method: 'POST', body: 'x', ip })).status);
    expect(statuses.slice(0, 30).every((s) => s === 415)).toBe(true);
    expect(statuses.slice(30)).toEqual([429, 429, 429, 429, 429]);
    const limited = await call('/auth/api/sign-in', { method: 'POST', body: 'x', ip });
    expect(limited.headers.get('retry-after')).toBe('60');
    expect((await limited.json<Problem>()).code).toBe('rate_limited');
    // Another address is unaffected.
    expect((await call('/auth/api/sign-in', { method: 'POST', body: 'x' })).status).toBe(415);
  });

  it('refuses an unverified account after checking its password', async () => {
    const email = uniqueEmail('unverified');
    const hash = await createPasswordHasher(loadArgon2).hash(STRONG_PASSWORD);
    await env.DB.prepare(`INSERT INTO users (id, email, password_hash, tier, created_at, updated_at) VALUES (?, ?, ?, 'free', 0, 0)`)
      .bind(crypto.randomUUID(), email, hash)
      .run();
    expect((await signInCall(email, 'the wrong password!')).status).toBe(401);
    const res = await signInCall(email, STRONG_PASSWORD);
    expect(res.status).toBe(403);
    expect((await res.json<Problem>()).code).toBe('email_not_verified');
    expect(cookieFrom(res, SESSION)).toBeUndefined();
  });

  it('re-hashes a password stored with weaker parameters', async () => {
    const email = uniqueEmail('rehash');
    const weak = await createPasswordHasher(loadArgon2, { m: 1024, t: 1, p: 1 }).hash(STRONG_PASSWORD);
    const id = crypto.randomUUID();
    await env.DB.prepare(
      `INSERT INTO users (id, email, email_verified_at, password_hash, tier, created_at, updated_at) VALUES (?, ?, 1, ?, 'free', 0, 0)`,
    )
      .bind(id, email, weak)
      .run();
    await signIn(email);
    const row = await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?').bind(id).first<{ password_hash: string }>();
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect((await signInCall(email, STRONG_PASSWORD)).status).toBe(200);
  });

  it('stores the password as an argon2id PHC string, never in clear', async () => {
    const { userId } = await createVerifiedUser();
    const row = await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?').bind(userId).first<{ password_hash: string }>();
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(row!.password_hash).not.toContain(STRONG_PASSWORD);
  });
});

describe('sign-in when a store fails', () => {
  const sessionsOf = async (userId: string) => {
    const stub = env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId));
    return stub.list(Date.now());
  };

  it('answers 503 and creates no session when D1 is down', async () => {
    const { email, userId } = await createVerifiedUser();
    const request = appWith(() => ({ db: createDb(failingD1(env.DB)), d1: failingD1(env.DB) }));
    const res = await request('/auth/api/sign-in', { method: 'POST', json: { email, password: STRONG_PASSWORD } });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect((await res.json<Problem>()).code).toBe('temporarily_unavailable');
    expect(cookieFrom(res, SESSION)).toBeUndefined();
    expect(await sessionsOf(userId)).toEqual([]);
  });

  it('revokes the new session and writes nothing when the final D1 batch fails', async () => {
    const { email, userId } = await createVerifiedUser();
    const broken = failingD1(env.DB, 'batch');
    const request = appWith(() => ({ db: createDb(broken), d1: broken }));
    const res = await request('/auth/api/sign-in', { method: 'POST', json: { email, password: STRONG_PASSWORD } });
    expect(res.status).toBe(503);
    expect(cookieFrom(res, SESSION)).toBeUndefined();
    expect(await sessionsOf(userId)).toEqual([]);
    expect((await auditOf(userId)).results.map((r) => r.type)).not.toContain('sign_in');
  });

  it('answers 503 and writes nothing when the session Durable Object fails', async () => {
    const { email, userId } = await createVerifiedUser();
    const request = appWith(() => ({ sessions: createSessionStore(brokenSessionsNamespace()) }));
    const res = await request('/auth/api/sign-in', { method: 'POST', json: { email, password: STRONG_PASSWORD } });
    expect(res.status).toBe(503);
    expect((await res.json<Problem>()).code).toBe('temporarily_unavailable');
    expect(cookieFrom(res, SESSION)).toBeUndefined();
    expect((await auditOf(userId)).results.map((r) => r.type)).not.toContain('sign_in');
  });
});
