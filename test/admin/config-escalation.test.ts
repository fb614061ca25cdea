import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { ADMIN_AUDIENCE, ADMIN_SCOPES } from '../../src/admin/operations';
import { createVerifiedUser } from '../helpers';
import { API, registerClient } from '../oauth/helpers';
import { admin, adminClient, adminUser } from './helpers';

/**
 * Who attacks: an admin client with fewer scopes — a CRM sync holding admin:clients:write, say —
 * compromised or misused, trying to reach admin power it was never given: by granting it to itself
 * or to a client it makes, by taking over a more powerful client (its secret, its redirect URIs),
 * by rewriting or deleting the admin API's own resource, by minting an API key for the admin API,
 * or by adding an upstream provider that vouches for an administrator's address.
 */

const CLIENTS = ['admin:clients:read', 'admin:clients:write'];
const adminGrant = (scopes: string[]) => [{ resource: ADMIN_AUDIENCE, scopes }];
const grantOf = (clientId: string) =>
  env.DB.prepare('SELECT scopes FROM client_resources WHERE client_id = ? AND resource = ?')
    .bind(clientId, ADMIN_AUDIENCE)
    .first<{ scopes: string }>()
    .then((r) => (r ? (JSON.parse(r.scopes) as string[]) : null));
const machine = (resources: unknown[]) => ({
  name: 'New robot',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  scopes: [],
  resources,
});

describe('a client writer cannot reach admin power it does not hold', () => {
  it('cannot make a client with admin scopes it lacks (403 naming them, nothing written); it may pass on those it has', async () => {
    const robot = await adminClient(CLIENTS);
    const count = () => env.DB.prepare('SELECT COUNT(*) AS n FROM oauth_clients').first<{ n: number }>();
    const before = await count();
    for (const scopes of [['admin:users:write'], ['admin:clients:read', 'admin:keys:write'], ['admin:audit:read', 'admin:users:read']]) {
      const res = await admin(robot.token, 'POST', '/clients', machine(adminGrant(scopes)));
      expect(res.status, scopes.join()).toBe(403);
      const missing = scopes.filter((s) => !CLIENTS.includes(s));
      expect(res.body).toMatchObject({ code: 'insufficient_scope', scope: missing.join(' ') });
    }
    expect(await count()).toEqual(before);
    const ok = await admin(robot.token, 'POST', '/clients', machine(adminGrant(['admin:clients:read'])));
    expect(ok.status).toBe(201);
    expect(await grantOf(ok.body.client_id as string)).toEqual(['admin:clients:read']);
  });

  it('cannot widen its own admin grant, by PATCH or by PUT on the grant', async () => {
    const robot = await adminClient(CLIENTS);
    const wider = adminGrant([...CLIENTS, 'admin:users:write']);
    const patched = await admin(robot.token, 'PATCH', `/clients/${robot.clientId}`, { resources: wider });
    expect(patched.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:users:write' });
    const put = await admin(robot.token, 'PUT', `/clients/${robot.clientId}/grants/${encodeURIComponent(ADMIN_AUDIENCE)}`, {
      scopes: [...CLIENTS, 'admin:users:write'],
    });
    expect(put.status).toBe(403);
    expect(put.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:users:write' });
    expect(await grantOf(robot.clientId)).toEqual(CLIENTS);
  });

  it('cannot take over a more powerful client: no change, secret rotation, grant, provider or delete', async () => {
    const robot = await adminClient(CLIENTS);
    const strong = await adminClient(['admin:users:write']);
    const path = `/clients/${strong.clientId}`;
    const attempts: [string, string, unknown][] = [
      ['PATCH', path, { redirect_uris: ['https://attacker.example/cb'], grant_types: ['authorization_code', 'client_credentials'] }],
      ['PATCH', path, { name: 'Renamed' }],
      ['POST', `${path}/secret`, undefined],
      ['PUT', `${path}/grants/${encodeURIComponent(API)}`, { scopes: [] }],
      ['DELETE', `${path}/grants/${encodeURIComponent(ADMIN_AUDIENCE)}`, undefined],
      ['DELETE', path, undefined],
    ];
    const before = await env.DB.prepare('SELECT * FROM oauth_clients WHERE client_id = ?').bind(strong.clientId).first();
    for (const [method, p, body] of attempts) {
      const res = await admin(robot.token, method, p, body);
      expect(res.status, `${method} ${p}`).toBe(403);
      expect(res.body, `${method} ${p}`).toMatchObject({ code: 'insufficient_scope', scope: 'admin:users:write' });
    }
    expect(await env.DB.prepare('SELECT * FROM oauth_clients WHERE client_id = ?').bind(strong.clientId).first()).toEqual(before);
    expect(await grantOf(strong.clientId)).toEqual(['admin:users:write']);
  });

  it('an admin user’s token is held to the same rule', async () => {
    const user = await adminUser(CLIENTS);
    const res = await admin(user.token, 'POST', '/clients', machine(adminGrant(['admin:users:write'])));
    expect(res.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:users:write' });
    const self = await admin(user.token, 'PATCH', `/clients/${user.clientId}`, { resources: adminGrant([...CLIENTS, 'admin:keys:write']) });
    expect(self.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:keys:write' });
  });

  it('no client may serve (introspect the tokens of) the admin API', async () => {
    const robot = await adminClient(CLIENTS);
    const res = await admin(robot.token, 'POST', '/clients', { ...machine([]), serves: [API, ADMIN_AUDIENCE] });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'forbidden', field: 'serves.1' });
  });

  it('admin scopes taken from a client are gone from the tokens it already holds, at its next call', async () => {
    const boss = await adminClient([...CLIENTS, 'admin:keys:read', 'admin:audit:read']);
    const robot = await adminClient(['admin:keys:read', 'admin:audit:read']);
    expect((await admin(robot.token, 'GET', '/signing-keys')).status).toBe(200);
    const narrowed = await admin(boss.token, 'PUT', `/clients/${robot.clientId}/grants/${encodeURIComponent(ADMIN_AUDIENCE)}`, {
      scopes: ['admin:audit:read'],
    });
    expect(narrowed.status).toBe(200);
    const res = await admin(robot.token, 'GET', '/signing-keys');
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:keys:read' });
    expect((await admin(robot.token, 'GET', '/audit-events')).status).toBe(200);
    expect((await admin(boss.token, 'DELETE', `/clients/${robot.clientId}/grants/${encodeURIComponent(ADMIN_AUDIENCE)}`)).status).toBe(204);
    expect((await admin(robot.token, 'GET', '/audit-events')).status).toBe(401);
  });
});

describe('the admin API’s own resource and keys', () => {
  it('urn:gatehouse:admin cannot be made, changed or deleted through the API, whatever the caller holds', async () => {
    const all = await adminClient(['admin:resources:read', 'admin:resources:write', 'admin:users:write', 'admin:clients:write']);
    const id = encodeURIComponent(ADMIN_AUDIENCE);
    const before = await env.DB.prepare('SELECT * FROM api_resources WHERE identifier = ?').bind(ADMIN_AUDIENCE).first();
    const created = await admin(all.token, 'POST', '/resources', {
      identifier: ADMIN_AUDIENCE,
      name: 'Mine',
      scopes: [{ name: 'admin:root' }],
    });
    expect(created.status).toBe(403);
    expect(created.body).toMatchObject({ code: 'forbidden', field: 'identifier' });
    const patched = await admin(all.token, 'PATCH', `/resources/${id}`, {
      scopes: [{ name: 'admin:users:write' }, { name: 'admin:root' }],
    });
    expect(patched.body).toMatchObject({ code: 'forbidden' });
    expect((await admin(all.token, 'DELETE', `/resources/${id}`)).body).toMatchObject({ code: 'forbidden' });
    expect(await env.DB.prepare('SELECT * FROM api_resources WHERE identifier = ?').bind(ADMIN_AUDIENCE).first()).toEqual(before);
    // It can be read.
    const got = await admin(all.token, 'GET', `/resources/${id}`);
    expect(got.status).toBe(200);
    expect((got.body.scopes as { name: string }[]).map((s) => s.name)).toContain('admin:users:write');
  });

  it('no API key is issued for the admin API, to a user or a client', async () => {
    const robot = await adminClient(['admin:api_keys:write', 'admin:users:write']);
    const user = await createVerifiedUser();
    const strong = await registerClient({
      grantTypes: ['client_credentials'],
      redirectUris: [],
      resources: adminGrant(['admin:users:write']),
    });
    for (const owner of [{ user_id: user.userId }, { client_id: strong.clientId }]) {
      const res = await admin(robot.token, 'POST', '/api-keys', { name: 'backdoor', resource: ADMIN_AUDIENCE, scopes: [], ...owner });
      expect(res.status, JSON.stringify(owner)).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid_request', field: 'resource' });
      expect(res.body.key).toBeUndefined();
    }
    const keys = await env.DB.prepare('SELECT COUNT(*) AS n FROM api_keys WHERE resource = ?').bind(ADMIN_AUDIENCE).first<{ n: number }>();
    expect(keys!.n).toBe(0);
  });
});

describe('a provider writer cannot vouch for addresses without admin:users:write (and the admin apps’ scopes)', () => {
  const provider = (id: string, over: Record<string, unknown> = {}) => ({
    id,
    kind: 'github',
    display_name: 'GitHub',
    client_id: 'gh',
    client_secret: 'gh-secret',
    ...over,
  });

  it('cannot add one that trusts a domain, turn one on, or change one; with admin:users:write and every admin scope it can', async () => {
    const weak = await adminClient(['admin:providers:read', 'admin:providers:write']);
    // Vouching reaches admins' accounts: whoever may do it holds what an admin's token can carry (escalation.ts).
    const strong = await adminClient([...ADMIN_SCOPES]);
    const id = `tr${Date.now().toString(36)}`;
    const refused = await admin(weak.token, 'POST', '/providers', provider(id, { trusted_email_domains: ['example.com'] }));
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'insufficient_scope', field: 'trusted_email_domains' });
    expect(String(refused.body.scope).split(' ')).toContain('admin:users:write');
    expect((await admin(weak.token, 'GET', `/providers/${id}`)).status).toBe(404);

    const made = await admin(strong.token, 'POST', '/providers', provider(id, { trusted_email_domains: ['example.com'], enabled: false }));
    expect(made.status).toBe(201);
    for (const [method, path, body] of [
      ['POST', `/providers/${id}/enable`, undefined],
      ['PATCH', `/providers/${id}`, { client_id: 'attacker-app', client_secret: 'attacker-secret' }],
      ['PATCH', `/providers/${id}`, { trusted_email_domains: ['*'] }],
    ] as const) {
      const res = await admin(weak.token, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(String(res.body.scope).split(' ')).toContain('admin:users:write');
    }
    const after = await admin(weak.token, 'GET', `/providers/${id}`);
    expect(after.body).toMatchObject({ enabled: false, client_id: 'gh', trusted_email_domains: ['example.com'] });
    // Turning it off takes power away: allowed; so is a provider that vouches for no one.
    expect((await admin(weak.token, 'POST', `/providers/${id}/disable`)).status).toBe(200);
    const plain = `pl${Date.now().toString(36)}`;
    expect((await admin(weak.token, 'POST', '/providers', provider(plain))).status).toBe(201);
  });
});
