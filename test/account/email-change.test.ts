import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { type OutboxEvent, payloadOf } from '../../src/admin/webhook-events';
import { COOKIES } from '../../src/lib/cookies';
import { TestBrowser } from '../browser';
import { createVerifiedUser, lastMailTo, type Mail, type Problem, STRONG_PASSWORD, uniqueEmail } from '../helpers';

/**
 * Changing the address. Who attacks it: a stolen session no longer recent (moving the account to
 * an address the thief reads would take it over), someone holding the mail but not the browser
 * (the link opened elsewhere), a replay of the link, another account's owner being probed for
 * (enumeration), and the thief who did change it — the old address puts it back and ends everything.
 */

const later = (minutes: number) => () => ({ now: () => Date.now() + minutes * 60_000 });

beforeAll(async () => {
  await env.DB.prepare(
    "INSERT INTO webhook_endpoints (id, url, event_types, secrets, created_at, updated_at) VALUES ('wh-email', 'https://hooks.example/e', '[]', '[]', 1, 1) ON CONFLICT DO NOTHING",
  ).run();
});

async function person() {
  const u = await createVerifiedUser();
  const browser = new TestBrowser();
  expect((await browser.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
  return { ...u, browser };
}

async function mailboxOf(to: string): Promise<Mail[]> {
  const res = await new TestBrowser().fetch(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(to)}`);
  return ((await res.json()) as { messages: Mail[] }).messages;
}

const linkIn = (mail: Mail, path: string) => {
  const link = mail.links.find((l) => new URL(l).pathname === path);
  if (!link) throw new Error(`no ${path} link in “${mail.subject}”`);
  return new URL(link).searchParams.get('token')!;
};

/** Opens a mailed link's page in `browser` and presses its button. */
async function follow(browser: TestBrowser, path: string, token: string) {
  const page = `${path}?token=${encodeURIComponent(token)}`;
  const { res, html } = await browser.open(page);
  expect(res.status).toBe(200);
  expect(html).toContain(`action="${path}"`);
  return browser.submit(path, { token }, page);
}

const emailOf = async (id: string) =>
  (await env.DB.prepare('SELECT email, email_verified_at FROM users WHERE id = ?').bind(id).first<{
    email: string;
    email_verified_at: number | null;
  }>())!;
const signInStatus = async (email: string) =>
  (await new TestBrowser().post('/auth/api/sign-in', { email, password: STRONG_PASSWORD })).status;

describe('changing the address', () => {
  it('takes effect only once the new address confirms in this browser: other sessions end, the old address is told, a webhook fires', async () => {
    const p = await person();
    const thief = new TestBrowser();
    expect((await thief.post('/auth/api/sign-in', { email: p.email, password: STRONG_PASSWORD })).status).toBe(200);
    const next = uniqueEmail('moved');
    const res = await p.browser.post('/auth/api/email', { email: next.toUpperCase() });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ status: 'confirmation_sent' });
    expect(p.browser.cookie(COOKIES.emailChange)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await emailOf(p.userId)).email).toBe(p.email);

    const confirm = await lastMailTo(next);
    expect(confirm.subject).toBe('Confirm your new address');
    const before = (await lastMailTo(p.email)).id;
    const done = await follow(p.browser, '/auth/account/email/confirm', linkIn(confirm, '/auth/account/email/confirm'));
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/auth/account?email=changed');
    expect(p.browser.cookie(COOKIES.emailChange)).toBeUndefined();

    const row = await emailOf(p.userId);
    expect(row.email).toBe(next);
    expect(row.email_verified_at).not.toBeNull();
    expect((await thief.fetch('/auth/api/me')).status).toBe(401);
    expect((await p.browser.fetch('/auth/api/me')).status).toBe(200);
    expect(await signInStatus(next)).toBe(200);
    expect(await signInStatus(p.email)).toBe(401);

    const told = await lastMailTo(p.email, before);
    expect(told.subject).toBe('The address of your account was changed');
    expect(told.text).toContain(next);
    const hook = await env.DB.prepare(
      "SELECT w.id, w.type, w.user_id AS userId, w.user, w.detail, w.created_at AS createdAt, a.type AS auditType, a.actor FROM webhook_events w JOIN audit_events a ON a.id = w.id WHERE w.user_id = ? AND w.type = 'user.updated'",
    )
      .bind(p.userId)
      .first<OutboxEvent>();
    // The payload integrators get: what changed (never the addresses themselves beyond the user snapshot).
    expect(payloadOf(hook!)).toMatchObject({ type: 'user.updated', data: { changed: ['email'], user: { email: next }, actor: null } });
    const audit = await env.DB.prepare("SELECT type FROM audit_events WHERE user_id = ? AND type LIKE 'email_change%' ORDER BY id")
      .bind(p.userId)
      .all<{ type: string }>();
    expect(audit.results.map((r) => r.type)).toEqual(['email_change_requested', 'email_changed']);
  });

  it('the link works once: a second use is invalid_link', async () => {
    const p = await person();
    const next = uniqueEmail('twice');
    await p.browser.post('/auth/api/email', { email: next });
    const token = linkIn(await lastMailTo(next), '/auth/account/email/confirm');
    const binding = p.browser.cookie(COOKIES.emailChange)!;
    expect((await follow(p.browser, '/auth/account/email/confirm', token)).status).toBe(303);
    p.browser.cookies.set(COOKIES.emailChange, binding); // a replay with the cookie copied back
    const again = await follow(p.browser, '/auth/account/email/confirm', token);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('This link is not valid');
  });

  it('two tabs pressing the button at once: exactly one takes effect', async () => {
    const p = await person();
    const next = uniqueEmail('race');
    await p.browser.post('/auth/api/email', { email: next });
    const token = linkIn(await lastMailTo(next), '/auth/account/email/confirm');
    const { html } = await p.browser.open(`/auth/account/email/confirm?token=${token}`);
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const press = () =>
      p.browser.fetch('/auth/account/email/confirm', {
        method: 'POST',
        body: new URLSearchParams({ csrf_token: csrf, token }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://gatehouse.test', accept: 'text/html' },
      });
    const statuses = (await Promise.all([press(), press(), press()])).map((r) => r.status).sort();
    expect(statuses).toEqual([303, 400, 400]);
    const changed = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE user_id = ? AND type = 'email_changed'")
      .bind(p.userId)
      .first<{ n: number }>();
    expect(changed!.n).toBe(1);
  });

  it('opened in another browser (or one signed in to another account) it changes nothing — and still works where it was asked', async () => {
    const p = await person();
    const next = uniqueEmail('elsewhere');
    await p.browser.post('/auth/api/email', { email: next });
    const token = linkIn(await lastMailTo(next), '/auth/account/email/confirm');
    const stranger = new TestBrowser();
    expect((await follow(stranger, '/auth/account/email/confirm', token)).status).toBe(400);
    // One with a binding cookie of its own (a request it made), not this one's.
    stranger.cookies.set(COOKIES.emailChange, 'A'.repeat(43));
    expect((await follow(stranger, '/auth/account/email/confirm', token)).status).toBe(400);
    // Another account's browser holding a copy of the binding cookie.
    const other = await person();
    other.browser.cookies.set(COOKIES.emailChange, p.browser.cookie(COOKIES.emailChange)!);
    expect((await follow(other.browser, '/auth/account/email/confirm', token)).status).toBe(400);
    expect((await emailOf(p.userId)).email).toBe(p.email);
    expect((await emailOf(other.userId)).email).toBe(other.email);
    expect((await follow(p.browser, '/auth/account/email/confirm', token)).status).toBe(303);
    expect((await emailOf(p.userId)).email).toBe(next);
  });

  it('an address another account holds: the same answer, its owner is told, no link exists, nothing changes', async () => {
    const p = await person();
    const holder = await createVerifiedUser();
    const free = uniqueEmail('free');
    const answers = [];
    for (const email of [holder.email, free]) {
      const res = await p.browser.post('/auth/api/email', { email });
      answers.push({
        status: res.status,
        body: await res.json(),
        cookies: res.headers
          .getSetCookie()
          .map((c) => c.replace(/=[^;]*/, '='))
          .sort(),
      });
    }
    expect(answers[0]).toEqual(answers[1]);
    const toHolder = await lastMailTo(holder.email);
    expect(toHolder.subject).toBe('This address already has an account');
    expect(toHolder.links.some((l) => l.includes('/auth/account/email/confirm'))).toBe(false);
    expect((await emailOf(p.userId)).email).toBe(p.email);
    expect((await emailOf(holder.userId)).email).toBe(holder.email);
  });

  it('a stolen session signed in eleven minutes ago cannot ask; no mail goes out', async () => {
    const p = await person();
    const next = uniqueEmail('stale');
    const res = await p.browser.at(later(11)).post('/auth/api/email', { email: next });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'recent_sign_in_required' });
    expect(await mailboxOf(next)).toEqual([]);
    // The owner, whose sign-in is just as old, confirms with the password instead.
    const proven = await p.browser.at(later(11)).post('/auth/api/email', { email: next, proof: { password: STRONG_PASSWORD } });
    expect(proven.status).toBe(202);
    expect((await lastMailTo(next)).subject).toBe('Confirm your new address');
  });

  it('bad input is a 400 naming email: not an address, the reserved domain, the current one', async () => {
    const p = await person();
    for (const email of ['not an address', 'x@no-email.invalid', p.email, 42]) {
      const res = await p.browser.post('/auth/api/email', { email });
      expect(res.status, String(email)).toBe(400);
      expect(((await res.json()) as Problem).field).toBe('email');
    }
  });

  it('the old address’s undo link puts it back and ends every session; it works once', async () => {
    const p = await person();
    const next = uniqueEmail('undo');
    await p.browser.post('/auth/api/email', { email: next });
    const before = (await lastMailTo(p.email)).id;
    await follow(p.browser, '/auth/account/email/confirm', linkIn(await lastMailTo(next), '/auth/account/email/confirm'));
    const undo = linkIn(await lastMailTo(p.email, before), '/auth/account/email/undo');
    const owner = new TestBrowser(); // the real owner, signed out, reading the old mailbox
    const res = await follow(owner, '/auth/account/email/undo', undo);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Your old address is back');
    expect((await emailOf(p.userId)).email).toBe(p.email);
    expect((await p.browser.fetch('/auth/api/me')).status).toBe(401);
    expect(await signInStatus(p.email)).toBe(200);
    expect(await signInStatus(next)).toBe(401);
    expect((await follow(owner, '/auth/account/email/undo', undo)).status).toBe(400);
  });

  it('an account without an address (made from an upstream) adds one this way; no undo mail (there is nowhere to send it)', async () => {
    const p = await person();
    await env.DB.prepare('UPDATE users SET email = ? WHERE id = ?').bind(`${p.userId}@no-email.invalid`, p.userId).run();
    const next = uniqueEmail('added');
    expect((await p.browser.post('/auth/api/email', { email: next })).status).toBe(202);
    expect(
      (await follow(p.browser, '/auth/account/email/confirm', linkIn(await lastMailTo(next), '/auth/account/email/confirm'))).status,
    ).toBe(303);
    expect((await emailOf(p.userId)).email).toBe(next);
    expect(await mailboxOf(`${p.userId}@no-email.invalid`)).toEqual([]);
  });

  it('the account page form: a field error re-renders with the message; a good one says the link is on its way', async () => {
    const p = await person();
    const bad = await p.browser.submit('/auth/account/email', { email: 'nope' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('email is not a valid address');
    const next = uniqueEmail('page');
    const ok = await p.browser.submit('/auth/account/email', { email: next });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('a link is on its way');
    expect((await lastMailTo(next)).subject).toBe('Confirm your new address');
  });
});
