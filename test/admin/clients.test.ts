import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { call, signIn, createVerifiedUser } from '../helpers';
import { API, API_SCOPES, basic, getCode, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';
import { admin, adminClient } from './helpers';

/**
 * Clients through the admin API. The attackers: an admin client that sends fields the endpoint
 * does not take (mass assignment: a secret hash of its choosing, another client_id, a creation
 * date); an operator's typo that would store an unsafe redirect URI; whoever reads answers and
 * logs hoping for a secret (another client's, or one typed into the wrong field); a client whose
 * secret leaked and was rotated, still presenting the old one; a deleted client still holding
 * refresh tokens.
 */

const WRITE = ['admin:clients:read', 'admin:clients:write'];
type Problem = { code: string; field?: string; detail: string; errors?: { field: string; message: string }[] };

const machine = (name = 'Billing sync') => ({
  name,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['client_credentials'],
  scopes: [],
  resources: [{ resource: API, scopes: ['orders:read'] }],
});

const clientCredentials = (clientId: string, secret: string) =>
  tokenRequest({ grant_type: 'client_credentials', resource: API }, basic(clientId, secret));

const row = (clientId: string) => env.DB.prepare('SELECT * FROM oauth_clients WHERE client_id = ?').bind(clientId).first();
const auditOfClient = (clientId: string) =>
  env.DB.prepare("SELECT actor, detail FROM audit_events WHERE client_id = ? AND type = 'admin_change' ORDER BY id")
    .bind(clientId)
    .all<{ actor: string; detail: string }>()
    .then((r) =>
      r.results.map((e) => ({ actor: e.actor, ...(JSON.parse(e.detail) as Record<string, unknown>) }) as Record<string, unknown>),
    );

describe('clients: create, read, list', () => {
  it('creates a confidential client: its secret is in that answer only, works at the token endpoint, and is audited', async () => {
    const robot = await adminClient(WRITE);
    await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] }); // API registered with its scopes
    const created = await admin(robot.token, 'POST', '/clients', machine());
    expect(created.status).toBe(201);
    const { client_id, client_secret } = created.body as { client_id: string; client_secret: string };
    expect(client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.body).toMatchObject({
      name: 'Billing sync',
      has_secret: true,
      token_endpoint_auth_method: 'client_secret_basic',
      resources: [{ resource: API, scopes: ['orders:read'] }],
      providers: [],
      self_registered: false,
    });
    expect(Object.keys(created.body)).not.toContain('secret_hash');
    expect((await clientCredentials(client_id, client_secret)).status).toBe(200);

    const got = await admin(robot.token, 'GET', `/clients/${client_id}`);
    expect(got.status).toBe(200);
    expect(got.body.client_secret).toBeUndefined();
    const stored = await row(client_id);
    expect(JSON.stringify(got.body)).not.toContain(String(stored!.secret_hash));
    expect(await auditOfClient(client_id)).toEqual([
      { actor: `client:${robot.clientId}`, action: 'client_created', clientId: client_id, name: 'Billing sync' },
    ]);
  });

  it('keeps a secret the caller brings (not repeated back) and a client_id it chooses; a taken client_id is a 409, nothing written', async () => {
    const robot = await adminClient(WRITE);
    const secret = 'moved-from-another-server-0123456789abcdef';
    const id = `migrated-${Date.now().toString(36)}`;
    const created = await admin(robot.token, 'POST', '/clients', { ...machine(), client_id: id, client_secret: secret });
    expect(created.status).toBe(201);
    expect(created.body.client_id).toBe(id);
    expect(JSON.stringify(created.body)).not.toContain(secret);
    expect((await clientCredentials(id, secret)).status).toBe(200);
    const again = await admin(robot.token, 'POST', '/clients', { ...machine('Other'), client_id: id });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'conflict', field: 'client_id' });
    expect((await row(id))!.name).toBe('Billing sync');
    expect((await auditOfClient(id)).map((e) => e.action)).toEqual(['client_created']);
  });

  it('two creates racing for one client_id: exactly one wins, the other is a 409 and writes nothing', async () => {
    const robot = await adminClient(WRITE);
    const id = `race-${Date.now().toString(36)}`;
    const answers = await Promise.all(
      ['A', 'B', 'C'].map((n) => admin(robot.token, 'POST', '/clients', { ...machine(`Racer ${n}`), client_id: id })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409]);
    const winner = answers.find((a) => a.status === 201)!;
    expect((await row(id))!.name).toBe(winner.body.name);
    expect((await clientCredentials(id, winner.body.client_secret as string)).status).toBe(200);
    expect(await auditOfClient(id)).toHaveLength(1);
  });

  it('lists newest first with a signed cursor; no answer carries any client’s secret or hash', async () => {
    const robot = await adminClient(WRITE);
    const made: { id: string; secret: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await admin(robot.token, 'POST', '/clients', machine(`Paged ${i}`));
      made.push({ id: c.body.client_id as string, secret: c.body.client_secret as string });
    }
    const seen: string[] = [];
    const hashes = await env.DB.prepare('SELECT secret_hash FROM oauth_clients WHERE secret_hash IS NOT NULL').all<{
      secret_hash: string;
    }>();
    let cursor: string | null = null;
    do {
      const page = await admin(robot.token, 'GET', `/clients?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items!.length).toBeLessThanOrEqual(2);
      const text = JSON.stringify(page.body);
      for (const m of made) expect(text).not.toContain(m.secret);
      for (const h of hashes.results) expect(text).not.toContain(h.secret_hash);
      for (const item of page.body.items!) expect(item.client_secret).toBeUndefined();
      seen.push(...page.body.items!.map((c) => c.client_id as string));
      cursor = page.body.next_cursor as string | null;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    const order = made.map((m) => seen.indexOf(m.id));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => b - a)).toEqual(order); // newest first
    const tampered = await admin(robot.token, 'GET', '/clients?limit=2&cursor=eyJ4IjoxfQ.AAAA');
    expect(tampered.status).toBe(400);
    expect(tampered.body.field).toBe('cursor');
  });

  it('is 404 for a client that does not exist, and needs admin:clients:read to read, admin:clients:write to write', async () => {
    const reader = await adminClient(['admin:clients:read']);
    expect((await admin(reader.token, 'GET', '/clients/nope')).body).toMatchObject({ code: 'not_found' });
    const write = await admin(reader.token, 'POST', '/clients', machine());
    expect(write.status).toBe(403);
    expect(write.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:clients:write' });
    const writerOnly = await adminClient(['admin:clients:write']);
    expect((await admin(writerOnly.token, 'GET', '/clients')).body).toMatchObject({
      code: 'insufficient_scope',
      scope: 'admin:clients:read',
    });
  });
});

describe('clients: bad input is a 400 naming the field, nothing written, nothing echoed', () => {
  it('refuses fields the endpoint does not take (mass assignment), on create and on change', async () => {
    const robot = await adminClient(WRITE);
    const before = await env.DB.prepare('SELECT COUNT(*) AS n FROM oauth_clients').first<{ n: number }>();
    for (const extra of [
      { secret_hash: 'f'.repeat(64) },
      { created_at: 1 },
      { registration_token_hash: 'x' },
      { has_secret: false },
      { self_registered: true },
    ]) {
      const res = await admin(robot.token, 'POST', '/clients', { ...machine(), ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.field).toBe('body');
      expect((res.body as Problem).errors![0]!.message).toContain(Object.keys(extra)[0]!);
    }
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM oauth_clients').first<{ n: number }>()).toEqual(before);

    const { client_id } = (await admin(robot.token, 'POST', '/clients', machine())).body as { client_id: string };
    const stored = await row(client_id);
    for (const extra of [
      { client_id: 'hijacked' },
      { client_secret: 'a'.repeat(40) },
      { secret_hash: 'f'.repeat(64) },
      { created_at: 1 },
    ]) {
      const res = await admin(robot.token, 'PATCH', `/clients/${client_id}`, { name: 'Renamed', ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.field).toBe('body');
      expect(JSON.stringify(res.body)).not.toContain('a'.repeat(40));
    }
    expect(await row(client_id)).toEqual(stored);
    expect(await row('hijacked')).toBeNull();
  });

  it('refuses the redirect URIs clientInput refuses, naming which one, without echoing it', async () => {
    const robot = await adminClient(WRITE);
    const web = { name: 'Web', grant_types: ['authorization_code'], scopes: ['openid'], resources: [] };
    for (const [uris, field] of [
      [['http://app.example.com/cb?token=PRIVATE1'], 'redirect_uris.0'],
      [['https://app.example.com/cb', 'https://app.example.com/cb#PRIVATE2'], 'redirect_uris.1'],
      [['not a url PRIVATE3'], 'redirect_uris.0'],
      [['https://*.example.com/PRIVATE4'], 'redirect_uris.0'],
    ] as const) {
      const res = await admin(robot.token, 'POST', '/clients', { ...web, redirect_uris: uris });
      expect(res.status, uris.join()).toBe(400);
      expect(res.body, uris.join()).toMatchObject({ code: 'invalid_request', field });
      expect(JSON.stringify(res.body)).not.toMatch(/PRIVATE/);
    }
    // The same rule on a change; the client keeps what it had.
    const { client_id } = (await admin(robot.token, 'POST', '/clients', { ...web, redirect_uris: [REDIRECT] })).body as {
      client_id: string;
    };
    const res = await admin(robot.token, 'PATCH', `/clients/${client_id}`, { redirect_uris: [REDIRECT, 'http://evil.example/PRIVATE5'] });
    expect(res.body).toMatchObject({ code: 'invalid_request', field: 'redirect_uris.1' });
    expect(JSON.stringify(res.body)).not.toContain('PRIVATE5');
    expect(JSON.parse(String((await row(client_id))!.redirect_uris))).toEqual([REDIRECT]);
  });

  it('never echoes a secret sent where it is refused', async () => {
    const robot = await adminClient(WRITE);
    const short = 'tooShortSecretXYZ';
    const res = await admin(robot.token, 'POST', '/clients', { ...machine(), client_secret: short });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('client_secret');
    expect(JSON.stringify(res.body)).not.toContain(short);
    // A secret pasted into a field of the wrong type.
    const pasted = await admin(robot.token, 'POST', '/clients', { ...machine(), name: { secret: 'sk_live_PASTED' } });
    expect(pasted.body.field).toBe('name');
    expect(JSON.stringify(pasted.body)).not.toContain('PASTED');
  });

  it('refuses grants of an API that is not registered, or of a scope it does not define, naming the grant', async () => {
    const robot = await adminClient(WRITE);
    const res = await admin(robot.token, 'POST', '/clients', {
      ...machine(),
      resources: [
        { resource: API, scopes: ['orders:read', 'orders:delete'] },
        { resource: 'https://unregistered.gatehouse.test', scopes: [] },
      ],
    });
    expect(res.status).toBe(400);
    expect((res.body as Problem).errors!.map((e) => e.field)).toEqual(['resources.0.scopes.1', 'resources.1.resource']);
    expect(JSON.stringify(res.body)).not.toContain('unregistered');
  });
});

describe('clients: change, rotate, delete', () => {
  it('a change takes effect at once on this isolate: a new redirect URI works, the dropped one is refused', async () => {
    const robot = await adminClient(WRITE);
    const { clientId } = await registerClient({ redirectUris: [REDIRECT] });
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    await getCode(clientId, cookie); // the client's record is now cached in this isolate
    const moved = 'https://app.example.com/new-callback';
    const res = await admin(robot.token, 'PATCH', `/clients/${clientId}`, { redirect_uris: [moved], name: 'Moved' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ redirect_uris: [moved], name: 'Moved', has_secret: true });
    expect(res.body.client_secret).toBeUndefined(); // the secret method is kept, and so is the secret
    expect((await getCode(clientId, cookie, { redirect_uri: moved })).location.origin).toBe('https://app.example.com');
    const old = await call(`/auth/authorize?client_id=${clientId}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code`, {
      cookie,
    });
    expect(old.status).toBe(400);
    expect((await auditOfClient(clientId)).at(-1)).toMatchObject({ action: 'client_updated', fields: ['name', 'redirect_uris'] });
  });

  it('rotating a secret shows the new one once; the old one is refused at once, the new one works', async () => {
    const robot = await adminClient(WRITE);
    const created = await admin(robot.token, 'POST', '/clients', machine());
    const { client_id, client_secret: old } = created.body as { client_id: string; client_secret: string };
    expect((await clientCredentials(client_id, old)).status).toBe(200); // cached in this isolate
    const rotated = await admin(robot.token, 'POST', `/clients/${client_id}/secret`);
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.client_secret as string;
    expect(fresh).not.toBe(old);
    const refused = await clientCredentials(client_id, old);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_client' });
    expect((await clientCredentials(client_id, fresh)).status).toBe(200);
    expect(JSON.stringify((await admin(robot.token, 'GET', `/clients/${client_id}`)).body)).not.toContain(fresh);
    expect((await auditOfClient(client_id)).map((e) => e.action)).toEqual(['client_created', 'client_secret_rotated']);
    const audit = await env.DB.prepare('SELECT detail FROM audit_events WHERE client_id = ?').bind(client_id).all<{ detail: string }>();
    expect(JSON.stringify(audit.results)).not.toContain(fresh);
  });

  it('a client without a secret has none to rotate (409); moving it to a secret method issues one, shown once', async () => {
    const robot = await adminClient(WRITE);
    const spa = await admin(robot.token, 'POST', '/clients', {
      name: 'SPA',
      token_endpoint_auth_method: 'none',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      scopes: ['openid'],
      resources: [],
    });
    expect(spa.body).toMatchObject({ has_secret: false, require_pkce: true });
    expect(spa.body.client_secret).toBeUndefined();
    const id = spa.body.client_id as string;
    expect((await admin(robot.token, 'POST', `/clients/${id}/secret`)).body).toMatchObject({ code: 'conflict' });
    const moved = await admin(robot.token, 'PATCH', `/clients/${id}`, {
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      redirect_uris: [],
    });
    expect(moved.status).toBe(200);
    expect(moved.body.has_secret).toBe(true);
    expect((await tokenRequest({ grant_type: 'client_credentials' }, basic(id, moved.body.client_secret as string))).status).toBe(200);
  });

  it('deleting a client ends what it holds: refresh tokens, consents, grants, keys; its admin token stops working', async () => {
    const robot = await adminClient([...WRITE, 'admin:api_keys:write', 'admin:keys:read']);
    const { clientId, clientSecret } = await registerClient();
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    const { code, verifier } = await getCode(clientId, cookie, { scope: 'openid offline_access' });
    const tokens = await (
      await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
        basic(clientId, clientSecret),
      )
    ).json<{ refresh_token: string }>();
    expect(tokens.refresh_token).toBeTruthy();
    const key = await admin(robot.token, 'POST', '/api-keys', { name: 'k', client_id: clientId, resource: API, scopes: ['orders:read'] });
    expect(key.status).toBe(201);

    expect((await admin(robot.token, 'DELETE', `/clients/${clientId}`)).status).toBe(204);
    expect(await row(clientId)).toBeNull();
    for (const table of ['client_resources', 'consents', 'api_keys', 'client_providers'])
      expect(
        await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE client_id = ?`).bind(clientId).first<{ n: number }>(),
        table,
      ).toEqual({
        n: 0,
      });
    const refresh = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, basic(clientId, clientSecret));
    expect(refresh.status).toBe(401);
    expect(await refresh.json()).toMatchObject({ error: 'invalid_client' });
    expect((await admin(robot.token, 'DELETE', `/clients/${clientId}`)).status).toBe(404);
    expect((await auditOfClient(clientId)).at(-1)).toMatchObject({ action: 'client_deleted', actor: `client:${robot.clientId}` });

    // A robot deleted through the API: its admin token is refused from its next call.
    const doomed = await adminClient(['admin:keys:read']);
    expect((await admin(doomed.token, 'GET', '/signing-keys')).status).toBe(200);
    expect((await admin(robot.token, 'DELETE', `/clients/${doomed.clientId}`)).status).toBe(204);
    expect((await admin(doomed.token, 'GET', '/signing-keys')).status).toBe(401);
  });
});

describe('clients: API grants and sign-in providers', () => {
  it('sets, narrows and removes a grant; a token then carries only what is granted', async () => {
    const robot = await adminClient(WRITE);
    const created = await admin(robot.token, 'POST', '/clients', { ...machine(), resources: [] });
    const { client_id, client_secret } = created.body as { client_id: string; client_secret: string };
    expect((await clientCredentials(client_id, client_secret)).status).toBe(400); // not granted yet
    const path = `/clients/${client_id}/grants/${encodeURIComponent(API)}`;
    const set = await admin(robot.token, 'PUT', path, { scopes: ['orders:read', 'orders:write'] });
    expect(set.body).toEqual({ resource: API, scopes: ['orders:read', 'orders:write'] });
    const wide = await (await clientCredentials(client_id, client_secret)).json<{ scope: string }>();
    expect(wide.scope.split(' ').sort()).toEqual(['orders:read', 'orders:write']);
    await admin(robot.token, 'PUT', path, { scopes: ['orders:read'] });
    expect((await (await clientCredentials(client_id, client_secret)).json<{ scope: string }>()).scope).toBe('orders:read');
    const bad = await admin(robot.token, 'PUT', path, { scopes: ['orders:read', 'orders:nuke'] });
    expect(bad.body).toMatchObject({ code: 'invalid_request', field: 'scopes.1' });
    const unknown = await admin(
      robot.token,
      'PUT',
      `/clients/${client_id}/grants/${encodeURIComponent('https://nowhere.gatehouse.test')}`,
      {
        scopes: [],
      },
    );
    expect(unknown.body).toMatchObject({ code: 'invalid_request', field: 'path.resource' });
    expect((await admin(robot.token, 'DELETE', path)).status).toBe(204);
    expect((await clientCredentials(client_id, client_secret)).status).toBe(400);
    expect((await admin(robot.token, 'DELETE', path)).status).toBe(404);
    expect((await auditOfClient(client_id)).map((e) => e.action)).toEqual([
      'client_created',
      'client_grant_set',
      'client_grant_set',
      'client_grant_removed',
    ]);
  });

  it('shows a provider on a client’s sign-in page and takes it off; an unknown provider is a 404', async () => {
    const robot = await adminClient([...WRITE, 'admin:providers:write']);
    const provider = await admin(robot.token, 'POST', '/providers', {
      id: `gh${Date.now().toString(36)}`,
      kind: 'github',
      display_name: 'GitHub',
      client_id: 'gh-client',
      client_secret: 'gh-secret-value',
    });
    expect(provider.status).toBe(201);
    const pid = provider.body.id as string;
    const { clientId } = await registerClient();
    const link = await admin(robot.token, 'PUT', `/clients/${clientId}/providers/${pid}`, { share_tokens: false });
    expect(link.body).toEqual({ provider_id: pid, share_tokens: false });
    expect((await admin(robot.token, 'GET', `/clients/${clientId}`)).body.providers).toEqual([{ provider_id: pid, share_tokens: false }]);
    expect((await admin(robot.token, 'PUT', `/clients/${clientId}/providers/nope`, {})).status).toBe(404);
    expect((await admin(robot.token, 'DELETE', `/clients/${clientId}/providers/${pid}`)).status).toBe(204);
    expect((await admin(robot.token, 'GET', `/clients/${clientId}`)).body.providers).toEqual([]);
  });
});
