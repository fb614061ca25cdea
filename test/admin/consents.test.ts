import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Purpose } from '../../src/identity/consent-purposes';
import { appWith, createVerifiedUser, signIn } from '../helpers';
import { basic, getCode, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';
import { admin, adminClient } from './helpers';

/**
 * A user's consents through the admin API: their purpose answers and history, answers an operator
 * enters (held to the self-service rules: declared purposes, the version in force), and the apps
 * they connected, which an operator disconnects — the app's refresh token dies at once. The
 * attackers: a read-only admin token trying the writes, an operator naming another user's app, and
 * a made-up version.
 */

const PURPOSES: Purpose[] = [
  { id: 'terms', title: 'Terms of service', version: '2026-06', required: true, url: null },
  { id: 'marketing_email', title: 'Product news by email', version: '1', required: false, url: null },
];
const withPurposes = appWith((deps) => ({ config: { ...deps.config, purposes: PURPOSES } }));

let ops: Awaited<ReturnType<typeof adminClient>>;
let reader: Awaited<ReturnType<typeof adminClient>>;
beforeAll(async () => {
  ops = await adminClient(['admin:users:read', 'admin:users:write']);
  reader = await adminClient(['admin:users:read']);
});

async function withRefreshToken() {
  const user = await createVerifiedUser();
  const { cookie } = await signIn(user.email);
  const client = await registerClient();
  const { code, verifier } = await getCode(client.clientId, cookie);
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    basic(client.clientId, client.clientSecret),
  );
  const tokens = (await res.json()) as { refresh_token: string };
  expect(tokens.refresh_token).toBeTruthy();
  return { ...user, client, refreshToken: tokens.refresh_token };
}

describe('consent purposes through the admin API', () => {
  it('records an answer given elsewhere as source admin, with the actor, and shows it with the history', async () => {
    const u = await createVerifiedUser();
    const before = await admin(ops.token, 'GET', `/users/${u.userId}/consents`, undefined, { app: withPurposes });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({
      purposes: [
        { id: 'terms', required: true, accepted: false, answer: null },
        { id: 'marketing_email', accepted: false, answer: null },
      ],
      history: [],
    });

    const decisions = [
      { purpose: 'terms', version: '2026-06', granted: true },
      { purpose: 'marketing_email', version: '1', granted: false },
    ];
    const res = await admin(ops.token, 'POST', `/users/${u.userId}/consents`, { decisions }, { app: withPurposes });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      purposes: [
        { id: 'terms', accepted: true, answer: { version: '2026-06', granted: true } },
        { id: 'marketing_email', accepted: false, answer: { version: '1', granted: false } },
      ],
    });
    const history = (res.body as { history: { purpose: string; source: string }[] }).history;
    expect(history.map((h) => [h.purpose, h.source]).sort()).toEqual([
      ['marketing_email', 'admin'],
      ['terms', 'admin'],
    ]);
    const { results } = await env.DB.prepare(
      "SELECT actor, detail FROM audit_events WHERE user_id = ? AND type = 'purpose_consent_changed' ORDER BY id",
    )
      .bind(u.userId)
      .all<{ actor: string; detail: string }>();
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.actor).toBe(`client:${ops.clientId}`);
      expect(JSON.parse(r.detail)).toMatchObject({ source: 'admin' });
    }

    // The same answers again change nothing: no row, no event.
    await admin(ops.token, 'POST', `/users/${u.userId}/consents`, { decisions }, { app: withPurposes });
    const rows = await env.DB.prepare('SELECT COUNT(*) AS n FROM consent_records WHERE user_id = ?').bind(u.userId).first<{ n: number }>();
    expect(rows!.n).toBe(2);
  });

  it('refuses a version not in force, an undeclared purpose and extra fields, naming them, with nothing written', async () => {
    const u = await createVerifiedUser();
    for (const body of [
      { decisions: [{ purpose: 'terms', version: '2025-01', granted: true }] },
      { decisions: [{ purpose: 'newsletter', version: '1', granted: true }] },
      { decisions: [{ purpose: 'terms', version: '2026-06', granted: true }], source: 'sign_in' },
    ]) {
      const res = await admin(ops.token, 'POST', `/users/${u.userId}/consents`, body, { app: withPurposes });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(res.body)).toMatch(/decisions|source/);
    }
    const rows = await env.DB.prepare('SELECT COUNT(*) AS n FROM consent_records WHERE user_id = ?').bind(u.userId).first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });

  it('a read-only token cannot record answers or disconnect apps (403 naming the scope); an unknown user is a 404', async () => {
    const u = await createVerifiedUser();
    const write = await admin(
      reader.token,
      'POST',
      `/users/${u.userId}/consents`,
      { decisions: [{ purpose: 'terms', version: '2026-06', granted: true }] },
      { app: withPurposes },
    );
    expect(write.status).toBe(403);
    expect(write.body).toMatchObject({ code: 'insufficient_scope' });
    expect(JSON.stringify(write.body)).toContain('admin:users:write');
    expect((await admin(reader.token, 'DELETE', `/users/${u.userId}/connected-apps/anything`)).status).toBe(403);
    expect((await admin(ops.token, 'GET', '/users/usr_nobody/consents')).status).toBe(404);
  });
});

describe('connected apps through the admin API', () => {
  it('lists the app and disconnects it: its refresh token is refused at once, audited consent_revoked with the actor', async () => {
    const u = await withRefreshToken();
    const list = await admin(reader.token, 'GET', `/users/${u.userId}/connected-apps`);
    expect(list.status).toBe(200);
    expect((list.body as { items: unknown[] }).items).toEqual([
      expect.objectContaining({ client_id: u.client.clientId, refresh_tokens: 1 }),
    ]);

    expect((await admin(ops.token, 'DELETE', `/users/${u.userId}/connected-apps/${u.client.clientId}`)).status).toBe(204);
    const refreshed = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: u.refreshToken },
      basic(u.client.clientId, u.client.clientSecret),
    );
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    const audit = await env.DB.prepare("SELECT actor, client_id, detail FROM audit_events WHERE user_id = ? AND type = 'consent_revoked'")
      .bind(u.userId)
      .first<{ actor: string; client_id: string; detail: string }>();
    expect(audit).toMatchObject({ actor: `client:${ops.clientId}`, client_id: u.client.clientId });
    expect(JSON.parse(audit!.detail)).toMatchObject({ by: 'admin', refreshTokensRevoked: 1 });
    expect((await admin(reader.token, 'GET', `/users/${u.userId}/connected-apps`)).body).toEqual({ items: [] });
  });

  it('another user’s app named under this user disconnects nothing (404), and that user’s refresh token still works', async () => {
    const owner = await withRefreshToken();
    const other = await createVerifiedUser();
    const res = await admin(ops.token, 'DELETE', `/users/${other.userId}/connected-apps/${owner.client.clientId}`);
    expect(res.status).toBe(404);
    const refreshed = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: owner.refreshToken },
      basic(owner.client.clientId, owner.client.clientSecret),
    );
    expect(refreshed.status).toBe(200);
  });
});
