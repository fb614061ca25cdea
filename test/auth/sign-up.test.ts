import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { appWith, call, createVerifiedUser, lastMailTo, SESSION, STRONG_PASSWORD, tokenFrom, uniqueEmail } from '../helpers';
import { newPerson, upstreamProvider, viaUpstream } from './upstream-helpers';

const signUp = (email: string, password = STRONG_PASSWORD) => call('/auth/api/sign-up', { method: 'POST', json: { email, password } });
const verify = (token: string) => call('/auth/api/verify-email', { method: 'POST', json: { token } });
const signInStatus = async (email: string, password: string) =>
  (await call('/auth/api/sign-in', { method: 'POST', json: { email, password } })).status;
const userCount = async (email: string) =>
  (await env.DB.prepare('SELECT count(*) AS n FROM users WHERE email = ?').bind(email).first<{ n: number }>())!.n;

describe('sign-up', () => {
  it('answers a new and an existing address identically; the existing one gets a note, not a link', async () => {
    const { email } = await createVerifiedUser();
    const fresh = uniqueEmail('fresh');
    const [a, b] = [await signUp(email, 'some other passphrase'), await signUp(fresh)];
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(await a.json()).toEqual(await b.json());
    const note = await lastMailTo(email);
    expect(note.subject).toBe('You already have an account');
    expect(note.text).not.toContain('token=');
    expect(await userCount(email)).toBe(1);
    expect(await signInStatus(email, 'some other passphrase')).toBe(401);
  });

  it('refuses short and common passwords, naming the field, and creates nothing', async () => {
    const email = uniqueEmail('weak');
    for (const [password, detail] of [
      ['seven77', 'at least 8'],
      ['password1', 'too common'],
      ['iloveyou', 'too common'],
      ['Qwerty123', 'too common'],
    ] as const) {
      const res = await signUp(email, password);
      expect(res.status).toBe(400);
      const body = await res.json<{ code: string; field: string; detail: string }>();
      expect(body).toMatchObject({ code: 'weak_password', field: 'password' });
      expect(body.detail).toContain(detail);
    }
    expect((await env.DB.prepare('SELECT count(*) AS n FROM email_tokens WHERE email = ?').bind(email).first())!.n).toBe(0);
  });

  it('honours a configured minimum length', async () => {
    const request = appWith((deps) => ({ config: { ...deps.config, passwordMinLength: 16 } }));
    const res = await request('/auth/api/sign-up', { method: 'POST', json: { email: uniqueEmail(), password: 'fifteen chars!!' } });
    expect(res.status).toBe(400);
    expect((await res.json<{ detail: string }>()).detail).toContain('at least 16');
  });

  it('stores SQL metacharacters and Unicode literally', async () => {
    const raw = `  Robert');DROP/**/TABLE/**/users;--"Ünïcødé@Exämple.COM `;
    const email = raw.trim().normalize('NFC').toLowerCase();
    const password = `pa'ss"; DROP TABLE users;-- 🔑 ü`;
    expect((await signUp(raw, password)).status).toBe(202);
    const token = tokenFrom(await lastMailTo(email));
    expect((await verify(token)).status).toBe(200);
    const row = await env.DB.prepare('SELECT email FROM users WHERE email = ?').bind(email).first<{ email: string }>();
    expect(row!.email).toBe(`robert');drop/**/table/**/users;--"ünïcødé@exämple.com`);
    expect(await signInStatus(raw, password)).toBe(200);
    const me = await call('/auth/api/sign-in', { method: 'POST', json: { email, password } });
    expect((await me.json<{ user: { email: string } }>()).user.email).toBe(email);
  });

  it('binds the account to the sign-up whose link is opened (no pre-hijacked accounts)', async () => {
    const email = uniqueEmail('victim');
    expect((await signUp(email, 'attacker chosen passphrase')).status).toBe(202);
    const attackerToken = tokenFrom(await lastMailTo(email));
    expect((await signUp(email, 'victim chosen passphrase')).status).toBe(202);
    const victimToken = tokenFrom(await lastMailTo(email));
    expect(await userCount(email)).toBe(0); // nothing exists before a link is opened
    expect((await verify(victimToken)).status).toBe(200);
    expect(await signInStatus(email, 'victim chosen passphrase')).toBe(200);
    expect(await signInStatus(email, 'attacker chosen passphrase')).toBe(401);
    const late = await verify(attackerToken);
    expect(late.status).toBe(400);
    expect(await signInStatus(email, 'attacker chosen passphrase')).toBe(401);
  });
});

describe('sign-up alongside an upstream sign-up for the same address', () => {
  it('the owner’s own sign-up voids a stranger’s upstream one: nothing of it is linked, even in the browser that started it', async () => {
    const p = await upstreamProvider(); // trusted for nothing: its addresses are confirmed by mail
    const email = uniqueEmail('owner');
    // A stranger's upstream account claims the address: a pending sign-up, bound to the stranger's browser.
    const stranger = new TestBrowser();
    const attacker = newPerson({ email });
    expect((await viaUpstream(stranger, p, attacker)).res.status).toBe(202);
    const strangerMail = await lastMailTo(email);
    expect(strangerMail.text).toContain(`through ${p.name}`);
    // The owner signs up with a password and opens their own link.
    expect((await signUp(email, 'owner chosen passphrase')).status).toBe(202);
    const ownToken = tokenFrom(await lastMailTo(email, strangerMail.id));
    expect(await userCount(email)).toBe(0);
    expect(await (await verify(ownToken)).json()).toMatchObject({ status: 'email_verified', email, accountCreated: true });
    expect(await signInStatus(email, 'owner chosen passphrase')).toBe(200);
    // The stranger's pending sign-up is void, even opened in the browser holding its cookie.
    const late = await stranger.post('/auth/api/verify-email', { token: tokenFrom(strangerMail) });
    expect(late.status).toBe(400);
    expect(await late.json()).toMatchObject({ code: 'invalid_link' });
    const linked = await env.DB.prepare('SELECT count(*) AS n FROM linked_identities WHERE subject = ?')
      .bind(attacker.sub)
      .first<{ n: number }>();
    expect(linked!.n).toBe(0);
    // The stranger's upstream account signs in to nothing: the owner is asked, by mail.
    const again = new TestBrowser();
    expect((await viaUpstream(again, p, attacker)).res.status).toBe(202);
    expect(again.cookie(SESSION)).toBeUndefined();
    expect((await lastMailTo(email)).subject).toBe(`Link ${p.name} to your account?`);
  });
});

describe('email verification', () => {
  it('refuses a reused, tampered or expired link with a clear 400', async () => {
    const email = uniqueEmail();
    await signUp(email);
    const token = tokenFrom(await lastMailTo(email));
    const expired = await appWith(() => ({ now: () => Date.now() + 31 * 60_000 }))('/auth/api/verify-email', {
      method: 'POST',
      json: { token },
    });
    expect(expired.status).toBe(400);
    expect(await expired.json()).toMatchObject({ code: 'expired_token', field: 'token' });
    expect(await userCount(email)).toBe(0);

    await signUp(email);
    const second = tokenFrom(await lastMailTo(email));
    const tampered = await verify(second.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')));
    expect(await tampered.json()).toMatchObject({ code: 'invalid_link' });
    const ok = await verify(second);
    expect(await ok.json()).toMatchObject({ status: 'email_verified', email, accountCreated: true });
    const reused = await verify(second);
    expect(reused.status).toBe(400);
    expect(await reused.json()).toMatchObject({ code: 'invalid_link' });
  });

  it('lets exactly one of two concurrent verifications win and creates one account', async () => {
    const email = uniqueEmail();
    await signUp(email);
    const token = tokenFrom(await lastMailTo(email));
    const results = await Promise.all([verify(token), verify(token), verify(token)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    expect(await userCount(email)).toBe(1);
    const events = await env.DB.prepare('SELECT type FROM audit_events WHERE user_id = (SELECT id FROM users WHERE email = ?) ORDER BY id')
      .bind(email)
      .all<{ type: string }>();
    expect(events.results.map((r) => r.type)).toEqual(['sign_up', 'email_verified']);
  });

  it('verifies an operator-created, unverified account without changing its password', async () => {
    const email = uniqueEmail('operator');
    const id = crypto.randomUUID();
    await env.DB.prepare(`INSERT INTO users (id, email, tier, created_at, updated_at) VALUES (?, ?, 'free', 0, 0)`).bind(id, email).run();
    await signUp(email, 'ignored passphrase here');
    const res = await verify(tokenFrom(await lastMailTo(email)));
    expect(await res.json()).toMatchObject({ accountCreated: false });
    const row = await env.DB.prepare('SELECT email_verified_at, password_hash FROM users WHERE id = ?').bind(id).first();
    expect(row!.email_verified_at).not.toBeNull();
    expect(row!.password_hash).toBeNull();
  });
});
