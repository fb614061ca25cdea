import { payloadOf } from '../../src/admin/webhook-events';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { Purpose } from '../../src/identity/consent-purposes';
import { TestBrowser } from '../browser';
import { auditOf, createVerifiedUser, ORIGIN, SESSION, STRONG_PASSWORD, type Problem } from '../helpers';
import { authorizeUrl, pkce, registerClient } from '../oauth/helpers';

/**
 * Consent purposes (terms, privacy policy, marketing mail): asked at sign-in when a required one is
 * open, recorded append-only, changeable by the person. The attackers: a person (or script) who
 * skips the prompt and heads for the app, a client asking silently (prompt=none), a made-up or
 * outdated version, and a pending cookie of another step passed off as this one.
 */
const purpose = (id: string, version: string, required: boolean): Purpose => ({ id, title: `The ${id}`, version, required, url: null });
const TERMS_V1 = [purpose('terms', '2026-01', true), purpose('marketing_email', '1', false)];
const TERMS_V2 = [purpose('terms', '2026-06', true), purpose('marketing_email', '1', false)];

/** The same browser, talking to a worker whose CONSENT_PURPOSES is `purposes`. */
const withPurposes = (b: TestBrowser, purposes: Purpose[]) => b.at((deps) => ({ config: { ...deps.config, purposes } }));

interface Body {
  status: string;
  purposes?: { id: string; version: string; required: boolean; accepted: boolean }[];
  next?: string;
}

const recordsOf = (userId: string) =>
  env.DB.prepare('SELECT purpose, version, granted, source, ip FROM consent_records WHERE user_id = ? ORDER BY id')
    .bind(userId)
    .all<{ purpose: string; version: string; granted: number; source: string; ip: string | null }>()
    .then((r) => r.results);

async function promptedUser(purposes = TERMS_V1) {
  const user = await createVerifiedUser();
  const browser = withPurposes(new TestBrowser(), purposes);
  const res = await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD });
  expect(res.status).toBe(200);
  return { ...user, browser, body: (await res.json()) as Body };
}

const accept = (b: TestBrowser, version = '2026-01') =>
  b.post('/auth/api/sign-in/purposes', { decisions: [{ purpose: 'terms', version, granted: true }] });

describe('asked at sign-in', () => {
  it('a required purpose never accepted: no session until it is, then one; the answer is recorded with the sign-in', async () => {
    const u = await promptedUser();
    expect(u.body).toEqual({
      status: 'consent_required',
      purposes: [expect.objectContaining({ id: 'terms', version: '2026-01', required: true, accepted: false })],
      next: '/auth/purposes?return_to=%2Fauth%2Faccount',
    });
    expect(u.browser.cookie(SESSION)).toBeUndefined();
    expect((await u.browser.fetch('/auth/api/me')).status).toBe(401);

    const res = await accept(u.browser);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'signed_in', user: { id: u.userId } });
    expect(u.browser.cookie(SESSION)).toBeDefined();
    expect(u.browser.cookie('__Host-gatehouse_purposes')).toBeUndefined();
    expect(await recordsOf(u.userId)).toEqual([{ purpose: 'terms', version: '2026-01', granted: 1, source: 'sign_in', ip: u.browser.ip }]);
    const events = (await auditOf(u.userId)).results.map((e) => e.type);
    expect(events.slice(-2)).toEqual(['purpose_consent_changed', 'sign_in']);

    // Accepted: the next sign-in is not asked.
    const again = await withPurposes(new TestBrowser(), TERMS_V1).post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD });
    expect(((await again.json()) as Body).status).toBe('signed_in');
  });

  it('a new version asks again at the next sign-in, and the record keeps the history', async () => {
    const u = await promptedUser();
    expect((await accept(u.browser)).status).toBe(200);
    const next = withPurposes(new TestBrowser(), TERMS_V2);
    const res = await next.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD });
    expect(await res.json()).toMatchObject({
      status: 'consent_required',
      purposes: [{ id: 'terms', version: '2026-06', accepted: false, answer: { version: '2026-01', granted: true } }],
    });
    expect((await accept(next, '2026-06')).status).toBe(200);
    const history = await next.fetch('/auth/api/purposes/history');
    expect(((await history.json()) as { history: unknown[] }).history).toEqual([
      expect.objectContaining({ purpose: 'terms', version: '2026-06', granted: true, source: 'sign_in' }),
      expect.objectContaining({ purpose: 'terms', version: '2026-01', granted: true, source: 'sign_in' }),
    ]);
  });

  it('refusing, a version that does not exist, an unknown purpose: 4xx naming it, no session, nothing recorded', async () => {
    const u = await promptedUser();
    const cases: [unknown, number, string, string, RegExp][] = [
      [[{ purpose: 'terms', version: '2026-01', granted: false }], 400, 'consent_required', 'decisions', /accept The terms/],
      [
        [{ purpose: 'terms', version: '2025-01', granted: true }],
        400,
        'invalid_request',
        'decisions.0.version',
        /"2025-01" of terms does not exist/,
      ],
      [[{ purpose: 'terms', version: '9999', granted: true }], 400, 'invalid_request', 'decisions.0.version', /"9999"/],
      [[{ purpose: 'cookies', version: '1', granted: true }], 400, 'invalid_request', 'decisions.0.purpose', /no purpose "cookies"/],
      [
        [
          { purpose: 'terms', version: '2026-01', granted: true },
          { purpose: 'terms', version: '2026-01', granted: true },
        ],
        400,
        'invalid_request',
        'decisions.1.purpose',
        /twice/,
      ],
      [[], 400, 'consent_required', 'decisions', /accept/],
      ['terms', 400, 'invalid_request', 'decisions', /decisions/],
      [[{ purpose: 'terms', version: '2026-01', granted: 'yes' }], 400, 'invalid_request', 'decisions.0.granted', /granted/],
    ];
    for (const [decisions, status, code, field, detail] of cases) {
      const res = await u.browser.post('/auth/api/sign-in/purposes', { decisions });
      const body = (await res.json()) as Problem;
      expect(res.status, JSON.stringify(decisions)).toBe(status);
      expect(body, JSON.stringify(decisions)).toMatchObject({ code, field });
      expect(body.detail).toMatch(detail);
    }
    expect(u.browser.cookie(SESSION)).toBeUndefined();
    expect(await recordsOf(u.userId)).toEqual([]);
    // The prompt is still there to answer.
    expect((await accept(u.browser)).status).toBe(200);
  });

  it('skipping the prompt reaches nothing: the account, an app, a client’s authorize; the pending cookie is no session', async () => {
    const u = await promptedUser();
    const account = await u.browser.open('/auth/account');
    expect(account.res.status).toBe(303);
    expect(account.res.headers.get('location')).toMatch(/^\/auth\/sign-in/);
    const app = await u.browser.fetch('https://app.gatehouse.test/demo/me/x', { headers: { accept: 'application/json' } });
    expect(app.status).toBe(401);
    const { clientId } = await registerClient({});
    const { challenge } = await pkce();
    const silent = await u.browser.fetch(authorizeUrl(clientId, challenge, { prompt: 'none' }));
    expect(new URL(silent.headers.get('location')!).searchParams.get('error')).toBe('login_required');
    // Presented as a session cookie, the pending one is refused.
    const forged = new TestBrowser();
    forged.cookies.set(SESSION, u.browser.cookie('__Host-gatehouse_purposes')!);
    expect((await forged.fetch('/auth/api/me')).status).toBe(401);
  });

  it('only a pending sign-in of this step finishes it: none, a forged one, or the second-factor step’s cookie is refused', async () => {
    const none = await withPurposes(new TestBrowser(), TERMS_V1).post('/auth/api/sign-in/purposes', {
      decisions: [{ purpose: 'terms', version: '2026-01', granted: true }],
    });
    expect(none.status).toBe(401);
    const u = await promptedUser();
    const other = withPurposes(new TestBrowser(), TERMS_V1);
    const token = u.browser.cookie('__Host-gatehouse_purposes')!;
    other.cookies.set('__Host-gatehouse_purposes', `${token.slice(0, -4)}AAAA`);
    expect((await accept(other)).status).toBe(401);
    other.cookies.delete('__Host-gatehouse_purposes');
    other.cookies.set('__Host-gatehouse_2fa', token);
    expect((await other.post('/auth/api/sign-in/second-factor', { code: '123456' })).status).toBe(401);
    expect(await recordsOf(u.userId)).toEqual([]);
  });

  it('the pending sign-in expires after ten minutes', async () => {
    const u = await promptedUser();
    const later = u.browser.at((deps) => ({ config: { ...deps.config, purposes: TERMS_V1 }, now: () => Date.now() + 11 * 60_000 }));
    expect((await accept(later)).status).toBe(401);
  });

  it('a client’s authorize with a session from before the new version: prompt=none gets consent_required, otherwise a sign-in', async () => {
    const u = await promptedUser();
    expect((await accept(u.browser)).status).toBe(200);
    const bumped = withPurposes(u.browser, TERMS_V2);
    const { clientId } = await registerClient({});
    const { challenge } = await pkce();
    const silent = await bumped.fetch(authorizeUrl(clientId, challenge, { prompt: 'none' }));
    expect(new URL(silent.headers.get('location')!).searchParams.get('error')).toBe('consent_required');
    const asked = await bumped.fetch(authorizeUrl(clientId, challenge));
    expect(asked.status).toBe(302);
    expect(asked.headers.get('location')).toMatch(/^\/auth\/sign-in\?return_to=%2Fauth%2Fauthorize/);
    // With the terms it knew, the same session gets its code.
    const code = await u.browser.fetch(authorizeUrl(clientId, challenge, { prompt: 'none' }));
    expect(new URL(code.headers.get('location')!).searchParams.get('code')).toBeTruthy();
  });

  it('the hosted pages: sign-in goes to the prompt, which refuses an unchecked box and then continues where the sign-in was going', async () => {
    const user = await createVerifiedUser();
    const browser = withPurposes(new TestBrowser(), TERMS_V1);
    const signIn = await browser.submit('/auth/sign-in', { email: user.email, password: STRONG_PASSWORD, return_to: '/auth/account' });
    expect(signIn.status).toBe(303);
    expect(signIn.headers.get('location')).toBe('/auth/purposes?return_to=%2Fauth%2Faccount');
    const { html } = await browser.open('/auth/purposes?return_to=%2Fauth%2Faccount');
    expect(html).toContain('name="version_terms" value="2026-01"');
    expect(html).toMatch(/<input type="checkbox" name="accept" value="terms" required/);
    const refused = await browser.submit('/auth/purposes', { return_to: '/auth/account', version_terms: '2026-01' }, '/auth/purposes');
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('To continue, accept The terms.');
    const outdated = await browser.submit(
      '/auth/purposes',
      { return_to: '/auth/account', version_terms: '2025-01', accept: 'terms' },
      '/auth/purposes',
    );
    expect(outdated.status).toBe(400);
    const ok = await browser.submit(
      '/auth/purposes',
      { return_to: '/auth/account', version_terms: '2026-01', accept: 'terms' },
      '/auth/purposes',
    );
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/auth/account');
    expect((await browser.open('/auth/account')).res.status).toBe(200);
  });
});

describe('on the account page and the API', () => {
  async function signedIn() {
    const u = await promptedUser();
    expect((await accept(u.browser)).status).toBe(200);
    return u;
  }

  it('lists each purpose with its answer; a change is one row and one event, a repeat records nothing', async () => {
    const u = await signedIn();
    const list = await u.browser.fetch('/auth/api/purposes');
    expect(((await list.json()) as Body).purposes).toEqual([
      expect.objectContaining({ id: 'terms', accepted: true, answer: expect.objectContaining({ version: '2026-01', granted: true }) }),
      expect.objectContaining({ id: 'marketing_email', required: false, accepted: false, answer: null }),
    ]);
    const yes = { decisions: [{ purpose: 'marketing_email', version: '1', granted: true }] };
    const put = (json: unknown) => u.browser.fetch('/auth/api/purposes', { method: 'PUT', json, headers: { origin: ORIGIN } });
    expect((await put(yes)).status).toBe(200);
    expect((await put(yes)).status).toBe(200);
    const no = await put({ decisions: [{ purpose: 'marketing_email', version: '1', granted: false }] });
    expect(((await no.json()) as Body).purposes![1]).toMatchObject({ id: 'marketing_email', accepted: false });
    expect((await recordsOf(u.userId)).filter((r) => r.purpose === 'marketing_email')).toEqual([
      { purpose: 'marketing_email', version: '1', granted: 1, source: 'api', ip: u.browser.ip },
      { purpose: 'marketing_email', version: '1', granted: 0, source: 'api', ip: u.browser.ip },
    ]);
    const changes = (await auditOf(u.userId)).results.filter((e) => e.type === 'purpose_consent_changed').map((e) => JSON.parse(e.detail!));
    expect(changes.slice(-2)).toEqual([
      { purpose: 'marketing_email', version: '1', granted: true, source: 'api', previous: null },
      { purpose: 'marketing_email', version: '1', granted: false, source: 'api', previous: { version: '1', granted: true } },
    ]);
    const bad = await put({ decisions: [{ purpose: 'marketing_email', version: '2', granted: true }] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'invalid_request', field: 'decisions.0.version' });
    const cross = await u.browser.fetch('/auth/api/purposes', { method: 'PUT', json: yes, headers: { origin: 'https://evil.example' } });
    expect(cross.status).toBe(403);
  });

  it('withdrawing a required purpose is recorded, and the next sign-in asks again', async () => {
    const u = await signedIn();
    const res = await u.browser.fetch('/auth/api/purposes', {
      method: 'PUT',
      json: { decisions: [{ purpose: 'terms', version: '2026-01', granted: false }] },
      headers: { origin: ORIGIN },
    });
    expect(res.status).toBe(200);
    const next = await withPurposes(new TestBrowser(), TERMS_V1).post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD });
    expect(((await next.json()) as Body).status).toBe('consent_required');
  });

  it('the account page shows the choices and saves them', async () => {
    const u = await signedIn();
    const { html } = await u.browser.open('/auth/account');
    expect(html).toMatch(/data-purpose="terms"/);
    expect(html).toMatch(/<input type="checkbox" name="accept" value="terms" checked/);
    const saved = await u.browser.submit(
      '/auth/account/purposes',
      { version_terms: '2026-01', accept: 'terms', version_marketing_email: '1' },
      '/auth/account',
    );
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/auth/account?purposes=saved');
    // Saving again changes nothing, so records nothing: the sign-in's terms row, and the unchecked
    // marketing box saved once as a refusal.
    const again = await u.browser.submit(
      '/auth/account/purposes',
      { version_terms: '2026-01', accept: 'terms', version_marketing_email: '1' },
      '/auth/account',
    );
    expect(again.status).toBe(303);
    expect(await recordsOf(u.userId)).toEqual([
      expect.objectContaining({ purpose: 'terms', granted: 1, source: 'sign_in' }),
      expect.objectContaining({ purpose: 'marketing_email', granted: 0, source: 'account' }),
    ]);
    expect((await u.browser.open('/auth/account?purposes=saved')).html).toContain('Your choices are saved.');
  });

  it('the record is append-only: an update is refused by the database', async () => {
    const u = await signedIn();
    await expect(env.DB.prepare('UPDATE consent_records SET granted = 0 WHERE user_id = ?').bind(u.userId).run()).rejects.toThrow(
      /append-only/,
    );
  });

  it('a change is a consent.updated webhook event when an endpoint listens', async () => {
    const u = await signedIn();
    const id = `we_${crypto.randomUUID()}`;
    await env.DB.prepare(
      "INSERT INTO webhook_endpoints (id, url, event_types, secrets, enabled, created_at, updated_at) VALUES (?, 'https://hooks.example/x', '[\"*\"]', '[]', 1, 0, 0)",
    )
      .bind(id)
      .run();
    try {
      const res = await u.browser.fetch('/auth/api/purposes', {
        method: 'PUT',
        json: { decisions: [{ purpose: 'marketing_email', version: '1', granted: true }] },
        headers: { origin: ORIGIN },
      });
      expect(res.status).toBe(200);
      const event = await env.DB.prepare(
        "SELECT id, type, user_id, user, detail, created_at FROM webhook_events WHERE user_id = ? AND type = 'consent.updated'",
      )
        .bind(u.userId)
        .first<{ id: number; type: string; user_id: string; user: string; detail: string; created_at: number }>();
      expect(JSON.parse(event!.detail)).toMatchObject({ purpose: 'marketing_email', version: '1', granted: true });
      // The payload a receiver gets (docs/webhooks.md): the answer, where it was given, and the one before.
      const payload = payloadOf({
        id: event!.id,
        type: event!.type,
        userId: event!.user_id,
        user: event!.user,
        detail: event!.detail,
        createdAt: event!.created_at,
        auditType: 'purpose_consent_changed',
        actor: null,
      });
      expect(payload).toMatchObject({
        type: 'consent.updated',
        data: { user_id: u.userId, purpose: 'marketing_email', version: '1', granted: true, source: 'api', previous: null },
      });
    } finally {
      await env.DB.prepare('DELETE FROM webhook_endpoints WHERE id = ?').bind(id).run();
    }
  });
});
