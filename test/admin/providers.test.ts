import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { clientSecretOf, providerFromRow } from '../../src/auth/upstream-providers';
import type { IdentityProviderRow } from '../../src/db/schema';
import { call } from '../helpers';
import { admin, adminClient } from './helpers';

/**
 * Upstream providers through the admin API. The attackers: whoever reads answers, lists or the
 * audit log hoping for a provider's client secret or Apple key; an admin client sending fields the
 * endpoint does not take; a sign-in page that would keep offering a provider the operator turned off.
 */

const RW = ['admin:providers:read', 'admin:providers:write'];
const SECRET = 'upstream-secret-NEVER-SHOWN';
const uniqueId = (tag: string) => `${tag}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`.slice(0, 32);
const oidc = (id: string) => ({
  id,
  kind: 'oidc',
  display_name: `Acme ${id}`,
  issuer: 'https://id.acme.example',
  client_id: 'gatehouse-at-acme',
  client_secret: SECRET,
});
const stored = (id: string) => env.DB.prepare('SELECT * FROM identity_providers WHERE id = ?').bind(id).first();
const signInPage = async () => (await call('/auth/sign-in', { headers: { accept: 'text/html' } })).text();
/** The provider's secret as Gatehouse opens it (sealed under KEY_ENCRYPTION_KEY in D1). */
async function openedSecret(id: string): Promise<string | null> {
  const rows = await env.DB.prepare('SELECT * FROM identity_providers WHERE id = ?').bind(id).raw({ columnNames: true });
  const [names, values] = rows as unknown as [string[], unknown[]];
  const camel = Object.fromEntries(names.map((n, i) => [n.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), values[i]]));
  const row = { ...camel, enabled: Boolean(camel.enabled), storeTokens: Boolean(camel.storeTokens) } as unknown as IdentityProviderRow;
  return clientSecretOf(providerFromRow(row), env.KEY_ENCRYPTION_KEY!);
}

describe('upstream providers', () => {
  it('adds a provider: its secret sealed in D1 and in no answer, list or audit event; its callback URL in the answer', async () => {
    const robot = await adminClient(RW);
    const id = uniqueId('acme');
    const created = await admin(robot.token, 'POST', '/providers', oidc(id));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id,
      kind: 'oidc',
      issuer: 'https://id.acme.example',
      client_id: 'gatehouse-at-acme',
      enabled: true,
      callback_url: `https://gatehouse.test/auth/upstream/${id}/callback`,
    });
    expect(JSON.stringify(await stored(id))).not.toContain(SECRET);
    expect(await openedSecret(id)).toBe(SECRET);
    const list = await admin(robot.token, 'GET', '/providers?limit=100');
    expect(list.body.items!.map((p) => p.id)).toContain(id);
    const answers = [created.body, list.body, (await admin(robot.token, 'GET', `/providers/${id}`)).body];
    for (const a of answers) expect(JSON.stringify(a)).not.toContain(SECRET);
    const audit = await env.DB.prepare("SELECT detail FROM audit_events WHERE json_extract(detail, '$.providerId') = ?").bind(id).all();
    expect(JSON.stringify(audit.results)).not.toContain(SECRET);
    expect(audit.results).toHaveLength(1);
    const again = await admin(robot.token, 'POST', '/providers', oidc(id));
    expect(again.body).toMatchObject({ code: 'conflict', field: 'id' });
  });

  it('a change keeps the secret it does not send, re-sealed; a new secret replaces it; id and kind never change', async () => {
    const robot = await adminClient(RW);
    const id = uniqueId('chg');
    await admin(robot.token, 'POST', '/providers', oidc(id));
    const renamed = await admin(robot.token, 'PATCH', `/providers/${id}`, { display_name: 'Acme SSO', scopes: ['openid', 'email'] });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ display_name: 'Acme SSO', scopes: ['openid', 'email'] });
    expect(await openedSecret(id)).toBe(SECRET);
    const NEW = 'rotated-upstream-secret-ALSO-HIDDEN';
    const rotated = await admin(robot.token, 'PATCH', `/providers/${id}`, { client_secret: NEW });
    expect(JSON.stringify(rotated.body)).not.toContain(NEW);
    expect(await openedSecret(id)).toBe(NEW);
    for (const body of [{ id: 'other' }, { kind: 'github' }, { created_at: 1 }, { client_secret_sealed: 'x' }]) {
      const res = await admin(robot.token, 'PATCH', `/providers/${id}`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.field).toBe('body');
    }
  });

  it('bad input names the field and echoes no secret; nothing is written', async () => {
    const robot = await adminClient(RW);
    const id = uniqueId('bad');
    const cases: [Record<string, unknown>, string][] = [
      [{ ...oidc(id), issuer: 'http://id.acme.example' }, 'issuer'],
      [{ ...oidc(id), id: 'Bad Id!' }, 'id'],
      [{ ...oidc(id), kind: 'google', issuer: 'https://accounts.example' }, 'issuer'],
      [{ ...oidc(id), client_secret: undefined }, 'client_secret'],
      [
        { ...oidc(id), kind: 'apple', issuer: undefined, apple: { team_id: 'T', key_id: 'K', private_key: 'not a key SECRETPEM' } },
        'apple',
      ],
    ];
    for (const [body, field] of cases) {
      const res = await admin(robot.token, 'POST', '/providers', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(String(res.body.field), JSON.stringify(body)).toMatch(new RegExp(`^${field}`));
      expect(JSON.stringify(res.body)).not.toContain(SECRET);
      expect(JSON.stringify(res.body)).not.toContain('SECRETPEM');
    }
    expect(await stored(id)).toBeNull();
  });

  it('turning a provider off takes its button off the sign-in page at once, turning it on brings it back; delete removes it', async () => {
    const robot = await adminClient(RW);
    const id = uniqueId('btn');
    await admin(robot.token, 'POST', '/providers', oidc(id));
    expect(await signInPage()).toContain(`/auth/upstream/${id}`); // the provider list is now cached in this isolate
    const off = await admin(robot.token, 'POST', `/providers/${id}/disable`);
    expect(off.body.enabled).toBe(false);
    expect(await signInPage()).not.toContain(`/auth/upstream/${id}`);
    expect((await admin(robot.token, 'POST', `/providers/${id}/enable`)).body.enabled).toBe(true);
    expect(await signInPage()).toContain(`/auth/upstream/${id}`);
    expect((await admin(robot.token, 'DELETE', `/providers/${id}`)).status).toBe(204);
    expect(await signInPage()).not.toContain(`/auth/upstream/${id}`);
    expect((await admin(robot.token, 'GET', `/providers/${id}`)).status).toBe(404);
    const actions = await env.DB.prepare(
      "SELECT json_extract(detail, '$.action') AS action FROM audit_events WHERE json_extract(detail, '$.providerId') = ? ORDER BY id",
    )
      .bind(id)
      .all<{ action: string }>();
    expect(actions.results.map((r) => r.action)).toEqual(['provider_created', 'provider_disabled', 'provider_enabled', 'provider_deleted']);
  });
});
