import { createScheduledController, env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { GatehouseError } from '../../src/lib/errors';
import { createSessionStore } from '../../src/sessions/session-store';
import type { UserSessions } from '../../src/sessions/user-sessions';
import { TestBrowser } from '../browser';
import { brokenSessionsNamespace, createVerifiedUser, failingD1, lastMailTo, SESSION, STRONG_PASSWORD, type Problem } from '../helpers';
import { basic, getCode, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';

/**
 * Self-service deletion. Who attacks it: a stolen session no longer recent, another site posting
 * the form or the JSON, a sign-in racing the deletion, and failure itself — a D1 batch or the
 * session object failing part-way must leave the account whole, or blocked and finished later.
 */

const later = (minutes: number) => () => ({ now: () => Date.now() + minutes * 60_000 });
const withGrace = (days: number) => (b: TestBrowser) => b.at((deps) => ({ config: { ...deps.config, deletionGraceDays: days } }));

async function person() {
  const u = await createVerifiedUser();
  const browser = new TestBrowser();
  expect((await browser.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
  const client = await registerClient({ scopes: ['openid', 'offline_access'] });
  const { code, verifier } = await getCode(client.clientId, `${SESSION}=${browser.cookie(SESSION)}`, { scope: 'openid offline_access' });
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    basic(client.clientId, client.clientSecret),
  );
  const tokens = (await res.json()) as { access_token: string; refresh_token: string };
  await env.DB.prepare(
    "INSERT INTO consent_records (user_id, purpose, version, granted, source, created_at) VALUES (?, 'marketing_email', '1', 1, 'api', 1)",
  )
    .bind(u.userId)
    .run();
  return { ...u, browser, client, tokens };
}
type Person = Awaited<ReturnType<typeof person>>;

const userRow = (id: string) =>
  env.DB.prepare('SELECT blocked_at, deletion_due_at FROM users WHERE id = ?')
    .bind(id)
    .first<{ blocked_at: number | null; deletion_due_at: number | null }>();
const count = async (table: string, id: string) =>
  (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE user_id = ?`).bind(id).first<{ n: number }>())!.n;
const liveSessions = (id: string) =>
  runInDurableObject(
    env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(id)),
    (_: UserSessions, state) => state.storage.sql.exec('SELECT sid FROM sessions').toArray().length,
  );
const refresh = (p: Person) =>
  tokenRequest({ grant_type: 'refresh_token', refresh_token: p.tokens.refresh_token }, basic(p.client.clientId, p.client.clientSecret));
const signInStatus = async (email: string) =>
  (await new TestBrowser().post('/auth/api/sign-in', { email, password: STRONG_PASSWORD })).status;
/** Subjects of the mail to `to` after message `after`. */
async function subjectsSince(to: string, after: number): Promise<string[]> {
  await lastMailTo(to, after);
  const res = await new TestBrowser().fetch(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(to)}`);
  const { messages } = (await res.json()) as { messages: { id: number; subject: string }[] };
  return messages.filter((m) => m.id > after).map((m) => m.subject);
}
const runCron = async () => {
  const worker = (await import('../../src/index')).default;
  await worker.scheduled(createScheduledController({ cron: '17 * * * *' }), env);
};

async function expectGone(p: Person) {
  expect(await userRow(p.userId)).toBeNull();
  for (const table of ['consents', 'consent_records', 'user_roles', 'email_tokens']) expect(await count(table, p.userId), table).toBe(0);
  expect(await liveSessions(p.userId)).toBe(0);
  expect(await (await refresh(p)).json()).toMatchObject({ error: 'invalid_grant' });
  expect(await signInStatus(p.email)).toBe(401);
}

async function expectIntact(p: Person) {
  expect(await userRow(p.userId)).toEqual({ blocked_at: null, deletion_due_at: null });
  expect(await count('consent_records', p.userId)).toBe(1);
  expect((await p.browser.fetch('/auth/api/me')).status).toBe(200);
  expect((await refresh(p)).status).toBe(200);
}

describe('deleting one’s own account (JSON API)', () => {
  it('with a recent sign-in and the address typed: D1 rows, the session object’s state and every token go; mailed; audit rows pseudonymised', async () => {
    const p = await person();
    const before = (await lastMailTo(p.email)).id;
    const res = await p.browser.post('/auth/api/delete-account', { confirm: p.email.toUpperCase() });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'deleted' });
    expect(res.headers.getSetCookie().some((c) => c.startsWith(`${SESSION}=;`) || /Max-Age=0/i.test(c))).toBe(true);
    await expectGone(p);
    expect((await p.browser.fetch('/auth/api/me')).status).toBe(401);
    expect((await lastMailTo(p.email, before)).subject).toBe('Your account was deleted');
    const rows = await env.DB.prepare('SELECT type, ip, user_agent, actor FROM audit_events WHERE user_id = ?')
      .bind(p.userId)
      .all<{ type: string; ip: string | null; user_agent: string | null; actor: string | null }>();
    expect(rows.results.map((r) => r.type)).toContain('user_deleted');
    expect(rows.results.every((r) => r.ip === null && r.user_agent === null)).toBe(true);
    const hook = await env.DB.prepare("SELECT 1 AS n FROM webhook_event_types WHERE audit_type = 'user_deleted'").first();
    expect(hook).not.toBeNull();
  });

  it('a stolen session signed in eleven minutes ago cannot delete; nothing changes', async () => {
    const p = await person();
    const res = await p.browser.at(later(11)).post('/auth/api/delete-account', { confirm: p.email });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'recent_sign_in_required' });
    await expectIntact(p);
  });

  it('where an origin shares the host a fresh session needs a proof too; a stale one with the password may', async () => {
    const p = await person();
    const shared = p.browser.at((deps) => ({ config: { ...deps.config, gateway: { ...deps.config.gateway, sharedHost: true } } }));
    const script = await shared.post('/auth/api/delete-account', { confirm: p.email });
    expect(script.status).toBe(403);
    expect(await script.json()).toMatchObject({ code: 'proof_required', field: 'proof' });
    const wrong = await p.browser
      .at(later(11))
      .post('/auth/api/delete-account', { confirm: p.email, proof: { password: 'a wrong guess here' } });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ code: 'invalid_proof' });
    await expectIntact(p);
    const proven = await p.browser
      .at(later(11))
      .post('/auth/api/delete-account', { confirm: p.email, proof: { password: STRONG_PASSWORD } });
    expect(proven.status).toBe(200);
    await expectGone(p);
  });

  it('a wrong, missing or overlong confirmation is a 400 naming confirm; nothing changes', async () => {
    const p = await person();
    for (const body of [{ confirm: 'someone-else@example.com' }, { confirm: 'delete' }, {}, { confirm: 'x'.repeat(400) }, { confirm: 7 }]) {
      const res = await p.browser.post('/auth/api/delete-account', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as Problem).field).toBe('confirm');
    }
    await expectIntact(p);
  });

  it('another site’s JSON post and another site’s form post are refused; nothing changes', async () => {
    const p = await person();
    const json = await p.browser.fetch('/auth/api/delete-account', {
      method: 'POST',
      json: { confirm: p.email },
      headers: { origin: 'https://evil.example' },
    });
    expect(json.status).toBe(403);
    expect(await json.json()).toMatchObject({ code: 'csrf_failed' });
    const form = await p.browser.fetch('/auth/account/delete', {
      method: 'POST',
      body: new URLSearchParams({ confirm: p.email, csrf_token: 'forged' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', accept: 'text/html' },
    });
    expect(form.status).toBe(403);
    await expectIntact(p);
  });

  it('a D1 failure at the last step: 503, the account is blocked and due, and the scheduled handler finishes it', async () => {
    const p = await person();
    const broken = p.browser.at(() => ({ db: createDb(failingD1(env.DB, 'batch')), d1: failingD1(env.DB, 'batch') }));
    const res = await broken.post('/auth/api/delete-account', { confirm: p.email });
    expect(res.status).toBe(503);
    const row = await userRow(p.userId);
    expect(row!.blocked_at).not.toBeNull();
    expect(row!.deletion_due_at).not.toBeNull();
    expect(await signInStatus(p.email)).toBe(403);
    await runCron();
    await expectGone(p);
  });

  it('the session object unreachable: 503 and nothing changes', async () => {
    const p = await person();
    const broken = p.browser.at(() => ({ sessions: createSessionStore(brokenSessionsNamespace(p.userId)) }));
    const res = await broken.post('/auth/api/delete-account', { confirm: p.email });
    expect(res.status).toBe(503);
    await runCron();
    await expectIntact(p);
  });

  it('the session object failing as it forgets: 503, the account is blocked and due, and the scheduled handler finishes it', async () => {
    const p = await person();
    const broken = p.browser.at((deps) => ({
      sessions: {
        ...deps.sessions,
        forget: () => Promise.reject(new GatehouseError('temporarily_unavailable', 'The session store failed.')),
      },
    }));
    const res = await broken.post('/auth/api/delete-account', { confirm: p.email });
    expect(res.status).toBe(503);
    expect((await userRow(p.userId))!.deletion_due_at).not.toBeNull();
    expect(await signInStatus(p.email)).toBe(403);
    await runCron();
    await expectGone(p);
  });

  it('a sign-in racing the deletion never leaves a live session on a deleted account', async () => {
    for (let round = 0; round < 3; round++) {
      const p = await person();
      const racer = new TestBrowser();
      const [deleted, signedIn] = await Promise.all([
        p.browser.post('/auth/api/delete-account', { confirm: p.email }),
        racer.post('/auth/api/sign-in', { email: p.email, password: STRONG_PASSWORD }),
      ]);
      expect(deleted.status).toBe(200);
      expect([200, 401, 403]).toContain(signedIn.status);
      expect((await racer.fetch('/auth/api/me')).status).toBe(401);
      await expectGone(p);
    }
  });
});

describe('deleting one’s own account (account page)', () => {
  it('the page asks for the address; a wrong one re-renders with the message; the right one deletes', async () => {
    const p = await person();
    const { html } = await p.browser.open('/auth/account');
    expect(html).toContain('href="/auth/account/delete"');
    const wrong = await p.browser.submit('/auth/account/delete', { confirm: 'nope' });
    expect(wrong.status).toBe(400);
    expect(await wrong.text()).toContain('Type your address to confirm.');
    await expectIntact(p);
    const done = await p.browser.submit('/auth/account/delete', { confirm: p.email });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Your account was deleted.');
    await expectGone(p);
  });
});

describe('with a grace period (ACCOUNT_DELETION_GRACE_DAYS)', () => {
  it('schedules it: every session and refresh token ends, mailed; signing in again cancels it, mailed', async () => {
    const p = await person();
    const other = new TestBrowser();
    expect((await other.post('/auth/api/sign-in', { email: p.email, password: STRONG_PASSWORD })).status).toBe(200);
    const before = (await lastMailTo(p.email)).id;
    const res = await withGrace(7)(p.browser).post('/auth/api/delete-account', { confirm: p.email });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { status: string; dueAt: number };
    expect(body.status).toBe('scheduled');
    expect(body.dueAt).toBeGreaterThan(Date.now() + 6.9 * 86_400_000);
    expect(await userRow(p.userId)).toEqual({ blocked_at: null, deletion_due_at: body.dueAt });
    expect((await other.fetch('/auth/api/me')).status).toBe(401);
    expect((await p.browser.fetch('/auth/api/me')).status).toBe(401);
    expect(await (await refresh(p)).json()).toMatchObject({ error: 'invalid_grant' });
    const scheduled = await lastMailTo(p.email, before);
    expect(scheduled.subject).toBe('Your account will be deleted');

    // The cron before the day leaves it alone.
    await runCron();
    expect(await userRow(p.userId)).not.toBeNull();

    expect(await signInStatus(p.email)).toBe(200);
    expect(await userRow(p.userId)).toEqual({ blocked_at: null, deletion_due_at: null });
    expect(await subjectsSince(p.email, scheduled.id)).toContain('Your account will not be deleted');
    const types = await env.DB.prepare("SELECT type FROM audit_events WHERE user_id = ? AND type LIKE 'deletion_%' ORDER BY id")
      .bind(p.userId)
      .all<{ type: string }>();
    expect(types.results.map((r) => r.type)).toEqual(['deletion_scheduled', 'deletion_cancelled']);
    await runCron();
    expect(await userRow(p.userId)).not.toBeNull();
  });

  it('the scheduled handler deletes an account whose day has come, and one cancelled just before it runs stays', async () => {
    const [due, cancelled] = await Promise.all([person(), person()]);
    for (const p of [due, cancelled])
      expect((await withGrace(3)(p.browser).post('/auth/api/delete-account', { confirm: p.email })).status).toBe(202);
    await env.DB.prepare('UPDATE users SET deletion_due_at = ? WHERE id IN (?, ?)')
      .bind(Date.now() - 1000, due.userId, cancelled.userId)
      .run();
    expect(await signInStatus(cancelled.email)).toBe(200);
    await runCron();
    await expectGone(due);
    expect(await userRow(cancelled.userId)).toEqual({ blocked_at: null, deletion_due_at: null });
  });

  it('a sign-in once the handler has begun (the account blocked for deletion) is refused, and the deletion wins', async () => {
    const p = await person();
    await env.DB.prepare('UPDATE users SET deletion_due_at = ?, blocked_at = ? WHERE id = ?')
      .bind(Date.now() - 1000, Date.now(), p.userId)
      .run();
    expect(await signInStatus(p.email)).toBe(403);
    await runCron();
    await expectGone(p);
  });
});
