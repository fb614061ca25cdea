import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { auditOf, createVerifiedUser, SESSION, STRONG_PASSWORD, uniqueEmail, type Problem } from '../helpers';
import { basic, getCode, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';
import { admin, adminClient } from '../admin/helpers';
import type { ExportDocument } from '../../src/account/data-export';

/**
 * The data export. Who attacks it: a stolen session that is no longer recent (it must not walk off
 * with everything), a script on an origin sharing the host (a proof every time), another site
 * posting the account page's form, and the document itself — it must carry no secret of any kind
 * and nothing of another person.
 */

const later = (minutes: number) => () => ({ now: () => Date.now() + minutes * 60_000 });
const shared = (b: TestBrowser) => b.at((deps) => ({ config: { ...deps.config, gateway: { ...deps.config.gateway, sharedHost: true } } }));

/** A person with every kind of data: a password, TOTP and recovery codes, a passkey, an upstream identity with kept tokens, an app with a refresh token, an agreement. */
async function richUser() {
  const u = await createVerifiedUser();
  const browser = new TestBrowser();
  expect((await browser.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
  const now = Date.now();
  const secrets = {
    totp: `SEALED-TOTP-${crypto.randomUUID()}`,
    recovery: `RECOVERY-HASH-${crypto.randomUUID()}`,
    publicKey: `COSE-PUBLIC-KEY-${crypto.randomUUID()}`,
    upstreamTokens: `SEALED-UPSTREAM-${crypto.randomUUID()}`,
  };
  const asn = String(4_200_000_000 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 90_000_000));
  await env.DB.batch([
    env.DB.prepare(
      'INSERT INTO totp_credentials (user_id, secret_encrypted, last_step, confirmed_at, created_at) VALUES (?, ?, 0, ?, ?)',
    ).bind(u.userId, secrets.totp, now, now),
    env.DB.prepare('INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)').bind(u.userId, secrets.recovery, now),
    env.DB.prepare(
      "INSERT INTO passkeys (id, user_id, name, public_key, counter, transports, created_at) VALUES (?, ?, 'Laptop', ?, 0, '[]', ?)",
    ).bind(`pk-${u.userId}`, u.userId, secrets.publicKey, now),
    env.DB.prepare(
      "INSERT INTO linked_identities (id, user_id, provider_id, issuer, subject, email, email_verified, name, tokens_encrypted, created_at) VALUES (?, ?, 'acme', 'https://idp.acme.test', ?, ?, 1, 'Ada', ?, ?)",
    ).bind(`li-${u.userId}`, u.userId, `sub-${u.userId}`, u.email, secrets.upstreamTokens, now),
    env.DB.prepare('INSERT INTO sign_in_history (user_id, marker, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)').bind(
      u.userId,
      `asn:${asn}`,
      now,
      now,
    ),
    env.DB.prepare(
      "INSERT INTO consent_records (user_id, purpose, version, granted, source, ip, user_agent, created_at) VALUES (?, 'marketing_email', '1', 1, 'api', '192.0.2.9', 'UA', ?)",
    ).bind(u.userId, now),
  ]);
  const client = await registerClient({ scopes: ['openid', 'offline_access'] });
  const { code, verifier } = await getCode(client.clientId, `${SESSION}=${browser.cookie(SESSION)}`, { scope: 'openid offline_access' });
  const tokenRes = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    basic(client.clientId, client.clientSecret),
  );
  const tokens = (await tokenRes.json()) as { access_token: string; refresh_token: string; id_token: string };
  expect(tokens.refresh_token).toBeTruthy();
  const hash = await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?').bind(u.userId).first<{ password_hash: string }>();
  return { ...u, browser, client, tokens, asn, secrets: { ...secrets, passwordHash: hash!.password_hash } };
}

/** Every secret of the person, as it sits in storage or in their hands. */
const secretsOf = (u: Awaited<ReturnType<typeof richUser>>) => [
  u.secrets.passwordHash,
  u.secrets.totp,
  u.secrets.recovery,
  u.secrets.publicKey,
  u.secrets.upstreamTokens,
  u.browser.cookie(SESSION)!,
  u.tokens.refresh_token,
  u.tokens.access_token,
  u.tokens.id_token,
  u.client.clientSecret,
  STRONG_PASSWORD,
];

let person: Awaited<ReturnType<typeof richUser>>;
let other: Awaited<ReturnType<typeof richUser>>;
beforeAll(async () => {
  [person, other] = await Promise.all([richUser(), richUser()]);
});

describe('downloading one’s data (JSON API)', () => {
  it('is one attachment with the account, identities, credentials as metadata, sessions, apps, agreements and audit events — audited', async () => {
    const res = await person.browser.fetch('/auth/api/export');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="gatehouse-export-\d{4}-\d{2}-\d{2}\.json"$/);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('cache-control')).toContain('no-store');
    const doc = (await res.json()) as ExportDocument;
    expect(doc).toMatchObject({ format: 'gatehouse.export', version: 1 });
    expect(doc.account).toMatchObject({
      id: person.userId,
      email: person.email,
      roles: [],
      tier: 'free',
      user_metadata: {},
      app_metadata: {},
    });
    expect(doc.emails).toEqual([{ address: person.email, primary: true, verified: true }]);
    expect(doc.linked_identities).toEqual([
      expect.objectContaining({ provider: 'acme', subject: `sub-${person.userId}`, name: 'Ada', tokens_kept: true }),
    ]);
    expect(doc.credentials).toEqual({
      password: true,
      passkeys: [{ id: `pk-${person.userId}`, name: 'Laptop', created_at: expect.any(Number), last_used_at: null, backed_up: false }],
      totp: true,
      recovery_codes_left: 1,
    });
    expect(doc.sessions).toHaveLength(1);
    expect(doc.sessions[0]).toMatchObject({ amr: ['pwd'], ip: person.browser.ip, userAgent: person.browser.userAgent });
    expect(doc.connected_apps).toEqual([expect.objectContaining({ clientId: person.client.clientId, refreshTokens: 1 })]);
    expect(doc.consents.history).toEqual([
      { purpose: 'marketing_email', version: '1', granted: true, source: 'api', ip: '192.0.2.9', user_agent: 'UA', at: expect.any(Number) },
    ]);
    const types = doc.audit_events.items.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['sign_in', 'sign_up', 'email_verified']));
    expect(doc.audit_events).toMatchObject({ limit: 1000, truncated: false });
    expect((await auditOf(person.userId)).results.filter((e) => e.type === 'data_exported')).toHaveLength(1);
  });

  it('holds no secret of any kind: no hash, sealed secret, public key, upstream token, session or OAuth token', async () => {
    const text = await (await person.browser.fetch('/auth/api/export')).text();
    for (const secret of secretsOf(person)) expect(text, 'a secret in the export').not.toContain(secret);
    // The session cookie's secret part (its last 43 characters) and the refresh token's (its last segment), each alone.
    expect(text).not.toContain(person.browser.cookie(SESSION)!.slice(-43));
    expect(text).not.toContain(person.tokens.refresh_token.split('.').at(-1));
    expect(text).not.toMatch(/password_hash|secret_encrypted|code_hash|public_key|tokens_encrypted|"secret"/);
  });

  it('holds nothing of another person', async () => {
    const text = await (await person.browser.fetch('/auth/api/export')).text();
    for (const theirs of [
      other.userId,
      other.email,
      `pk-${other.userId}`,
      `sub-${other.userId}`,
      other.client.clientId,
      other.browser.ip,
      other.asn,
    ])
      expect(text).not.toContain(theirs);
    // Their own network is there, as the control.
    expect(text).toContain(`"value": "${person.asn}"`);
  });

  it('a stolen session signed in eleven minutes ago is refused (nothing leaves), and a proof given now lets the owner through', async () => {
    const u = await richUser();
    const stale = u.browser.at(later(11));
    const refused = await stale.fetch('/auth/api/export');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-disposition')).toBeNull();
    expect(await refused.json()).toMatchObject({ code: 'recent_sign_in_required' });
    const wrong = await stale.post('/auth/api/export', { proof: { password: 'not the password at all' } });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ code: 'invalid_proof', field: 'proof' });
    expect((await auditOf(u.userId)).results.filter((e) => e.type === 'data_exported')).toHaveLength(0);

    const proven = await stale.post('/auth/api/export', { proof: { password: STRONG_PASSWORD } });
    expect(proven.status).toBe(200);
    expect(proven.headers.get('content-disposition')).toMatch(/^attachment/);
  });

  it('where an origin shares the host, a fresh session’s script needs a proof too', async () => {
    const res = await shared(person.browser).fetch('/auth/api/export');
    expect(res.status).toBe(403);
    expect((await res.json()) as Problem).toMatchObject({ code: 'proof_required', field: 'proof' });
  });

  it('a revoked session, a signed-out browser and another site’s POST get nothing', async () => {
    const u = await richUser();
    expect((await new TestBrowser().fetch('/auth/api/export')).status).toBe(401);
    const crossSite = await u.browser.fetch('/auth/api/export', {
      method: 'POST',
      json: {},
      headers: { origin: 'https://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    expect(await crossSite.json()).toMatchObject({ code: 'csrf_failed' });
    expect((await u.browser.post('/auth/api/sign-out', {})).status).toBe(204);
    // The cookie the thief copied before the sign-out.
    const thief = new TestBrowser();
    thief.cookies.set(SESSION, u.browser.cookie(SESSION) ?? '');
    expect((await thief.fetch('/auth/api/export')).status).toBe(401);
  });

  it('bad proof input is a 400 naming the field', async () => {
    const res = await person.browser.post('/auth/api/export', { proof: { password: 42 } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Problem).field).toMatch(/^proof/);
  });
});

describe('downloading one’s data (account page)', () => {
  it('the page offers it, and its form answers with the attachment', async () => {
    const { html } = await person.browser.open('/auth/account');
    expect(html).toContain('action="/auth/account/export"');
    const res = await person.browser.submit('/auth/account/export', {}, '/auth/account');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
    expect(((await res.json()) as { account: { id: string } }).account.id).toBe(person.userId);
  });

  it('another site’s form post (no CSRF token) is refused', async () => {
    const res = await person.browser.fetch('/auth/account/export', {
      method: 'POST',
      body: 'csrf_token=forged',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', accept: 'text/html' },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-disposition')).toBeNull();
  });
});

describe('exporting a user (admin API)', () => {
  it('answers the same document (validated against the served schema), audited with who asked', async () => {
    const ops = await adminClient(['admin:users:read']);
    const res = await admin(ops.token, 'GET', `/users/${person.userId}/export`);
    expect(res.status).toBe(200);
    const mine = (await (await person.browser.fetch('/auth/api/export')).json()) as Record<string, unknown>;
    expect(Object.keys(res.body).sort()).toEqual(Object.keys(mine).sort());
    expect(res.body.account).toEqual(mine.account);
    expect(res.body.credentials).toEqual(mine.credentials);
    const text = JSON.stringify(res.body);
    for (const secret of secretsOf(person)) expect(text).not.toContain(secret);
    const row = await env.DB.prepare("SELECT actor FROM audit_events WHERE user_id = ? AND type = 'data_exported' AND actor IS NOT NULL")
      .bind(person.userId)
      .first<{ actor: string }>();
    expect(row?.actor).toBe(`client:${ops.clientId}`);
  });

  it('needs admin:users:read, and an unknown user is a 404', async () => {
    const writer = await adminClient(['admin:clients:read']);
    expect((await admin(writer.token, 'GET', `/users/${person.userId}/export`)).status).toBe(403);
    const ops = await adminClient(['admin:users:read']);
    expect((await admin(ops.token, 'GET', `/users/nobody-${uniqueEmail()}/export`)).status).toBe(404);
  });
});
