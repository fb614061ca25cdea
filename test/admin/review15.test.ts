import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { ADMIN_AUDIENCE, ADMIN_SCOPES } from '../../src/admin/operations';
import { createDb } from '../../src/db/client';
import { apiKeys, apiResources } from '../../src/db/schema';
import { buildApiKey } from '../../src/oauth/api-keys';
import { resourceFromRow } from '../../src/oauth/api-resources';
import { APP, appWith, createVerifiedUser, signIn, STRONG_PASSWORD, uniqueEmail } from '../helpers';
import { API, basic, getCode, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';
import { admin, adminClient, adminUser } from './helpers';

/**
 * Review of issue 15, each test shaped like its attacker: a blocked person still holding an API key,
 * and a compromised admin client with only admin:users:write climbing to every admin scope through
 * the `admin` role.
 */

const db = () => createDb(env.DB);
const ALL = [...ADMIN_SCOPES];

/** A key that acts as `userId` at API (orders:read), as the admin API would issue it. */
async function userKey(userId: string) {
  await registerClient(); // registers API (kept if it exists)
  const row = (await db().select().from(apiResources).all()).find((r) => r.identifier === API)!;
  const built = await buildApiKey(
    { name: 'integration', scopes: ['orders:read'] },
    { kind: 'user', userId },
    resourceFromRow(row),
    Date.now(),
  );
  await db().insert(apiKeys).values(built.row);
  return built.key;
}

const request = appWith(() => ({}));
const through = (path: string, key: string) =>
  request(`${APP}${path}`, { headers: { accept: 'application/json', authorization: `Bearer ${key}` } });

describe('a blocked user holding an API key', () => {
  it('is refused with it at once, on fresh routes and on this isolate’s cached ones, and until the unblock', async () => {
    const ops = await adminClient(['admin:users:write']);
    const user = await createVerifiedUser();
    const key = await userKey(user.userId);
    // The key works, and this isolate now holds its record.
    expect((await through('/demo/keys-users/x', key)).status).toBe(200);
    expect((await admin(ops.token, 'POST', `/users/${user.userId}/block`)).status).toBe(200);
    for (const path of ['/demo/keys-users/x', '/demo/keys-fresh/x']) {
      const res = await through(path, key);
      expect(res.status, path).toBe(401);
      expect(JSON.stringify(await res.json())).not.toContain(user.userId);
    }
    expect((await admin(ops.token, 'POST', `/users/${user.userId}/unblock`)).status).toBe(200);
    expect((await through('/demo/keys-fresh/x', key)).status).toBe(200);
  });
});

describe('a compromised admin client with only admin:users:write', () => {
  /** An admin app people sign in through, holding every admin scope (the operators' console). */
  const consoleApp = () => registerClient({ resources: [{ resource: ADMIN_AUDIENCE, scopes: ALL }], firstParty: true });

  /** The console's token for whoever signs in as `email`, asking every admin scope. */
  async function consoleToken(app: Awaited<ReturnType<typeof consoleApp>>, email: string) {
    const { cookie } = await signIn(email);
    const { code, verifier } = await getCode(app.clientId, cookie, { resource: ADMIN_AUDIENCE, scope: `openid ${ALL.join(' ')}` });
    const res = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: ADMIN_AUDIENCE },
      basic(app.clientId, app.clientSecret),
    );
    return ((await res.json()) as { access_token: string }).access_token;
  }

  it('the climb: an account of its own made admin, signed in through the console, every admin scope — cut at the first step', async () => {
    const app = await consoleApp();
    const crm = await adminClient(['admin:users:write']);
    const email = uniqueEmail();
    const made = await admin(crm.token, 'POST', '/users', { email, password: STRONG_PASSWORD, email_verified: true, roles: ['admin'] });
    if (made.status === 201) {
      // Without the rule: the attacker signs in as the admin it made and reads every client's setup.
      const token = await consoleToken(app, email);
      const clients = await admin(token, 'GET', '/clients');
      expect(clients.status, 'admin:users:write became admin:clients:read and every other admin scope').not.toBe(200);
    }
    expect(made.status).toBe(403);
    expect(await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first()).toBeNull();
  });

  it('cannot make an account of its own an admin, on create or by PATCH', async () => {
    await consoleApp();
    const crm = await adminClient(['admin:users:read', 'admin:users:write']);
    const made = await admin(crm.token, 'POST', '/users', {
      email: uniqueEmail(),
      password: STRONG_PASSWORD,
      email_verified: true,
      roles: ['admin'],
    });
    expect(made.status, JSON.stringify(made.body)).toBe(403);
    expect(made.body).toMatchObject({ code: 'insufficient_scope', field: 'roles' });
    expect(String(made.body.scope)).toContain('admin:clients:write');

    const mine = await createVerifiedUser();
    const patched = await admin(crm.token, 'PATCH', `/users/${mine.userId}`, { roles: ['support', 'admin'] });
    expect(patched.status, JSON.stringify(patched.body)).toBe(403);
    expect(patched.body).toMatchObject({ code: 'insufficient_scope', field: 'roles' });
    const roles = await env.DB.prepare('SELECT role FROM user_roles WHERE user_id = ?').bind(mine.userId).all();
    expect(roles.results).toEqual([]);
  });

  it('cannot take over an existing admin: their address, second factors, sessions and block are out of its reach', async () => {
    const boss = await adminUser(ALL);
    const crm = await adminClient(['admin:users:read', 'admin:users:write']);
    const attempts: [string, string, unknown?][] = [
      ['PATCH', `/users/${boss.userId}`, { email: uniqueEmail(), email_verified: true }],
      ['PATCH', `/users/${boss.userId}`, { roles: [] }],
      ['DELETE', `/users/${boss.userId}/totp`],
      ['DELETE', `/users/${boss.userId}/sessions`],
      ['POST', `/users/${boss.userId}/block`],
      ['DELETE', `/users/${boss.userId}`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await admin(crm.token, method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(res.body)}`).toBe(403);
      expect(res.body).toMatchObject({ code: 'insufficient_scope' });
    }
    // Reading stays open to it, and the admin is untouched.
    const read = await admin(crm.token, 'GET', `/users/${boss.userId}`);
    expect(read.body).toMatchObject({ email: boss.email, roles: ['admin'], blocked: false });
  });

  it('a caller holding every admin scope an admin’s token can carry may still do all of it', async () => {
    await consoleApp();
    const root = await adminClient(ALL);
    const made = await admin(root.token, 'POST', '/users', { email: uniqueEmail(), password: STRONG_PASSWORD, roles: ['admin'] });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const id = String(made.body.id);
    expect((await admin(root.token, 'POST', `/users/${id}/block`)).status).toBe(200);
    expect((await admin(root.token, 'DELETE', `/users/${id}`)).status).toBe(204);
  });
});

describe('a compromised admin client with admin:providers:write and admin:users:write, no more', () => {
  it('cannot add a provider that vouches for addresses (an admin’s among them) while an admin app holds more', async () => {
    await registerClient({ resources: [{ resource: ADMIN_AUDIENCE, scopes: ALL }], firstParty: true });
    const crm = await adminClient(['admin:providers:write', 'admin:users:write']);
    const id = `vouch${Date.now().toString(36)}`.slice(0, 32);
    const res = await admin(crm.token, 'POST', '/providers', {
      id,
      kind: 'oidc',
      display_name: 'Acme',
      issuer: 'https://id.acme.example',
      client_id: 'gatehouse-at-acme',
      client_secret: 'upstream-secret',
      trusted_email_domains: ['*'],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(403);
    expect(res.body).toMatchObject({ code: 'insufficient_scope', field: 'trusted_email_domains' });
    expect(await env.DB.prepare('SELECT id FROM identity_providers WHERE id = ?').bind(id).first()).toBeNull();
  });
});
