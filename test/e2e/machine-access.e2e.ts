import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeysCli, clientsCli, listenOnFreePort, resolveLocalhostNames, resourcesCli, startGatehouse } from './harness';

/**
 * Machine access end to end, as an operator and a partner would do it: the CLIs register an API,
 * a machine-only client and a key against `wrangler dev`'s D1; openid-client (a certified RP) gets
 * client_credentials tokens for the API; an origin on loopback records what reaches it.
 */
const API = 'https://orders.machine.test';
const seen: IncomingHttpHeaders[] = [];
let origin: Server;
let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let config: oidc.Configuration;
let clientId: string;

const must = (r: { code: number | null; stdout: string; stderr: string }) => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};
const persist = () => ['--persist-to', gatehouse.persistTo];
const call = (path: string, headers: Record<string, string>) =>
  fetch(`${gatehouse.appBase}${path}`, { headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(15_000) });

beforeAll(async () => {
  resolveLocalhostNames();
  origin = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ headers: req.headers }));
  });
  const port = await listenOnFreePort(origin);
  const to = `http://127.0.0.1:${port}`;
  gatehouse = await startGatehouse(({ appHost }) => ({
    ROUTES: JSON.stringify([
      {
        match: '/orders/*',
        host: appHost,
        origin: to,
        policy: { audiences: [API], machine: true, apiKeys: ['authorization', 'x-api-key'], scopes: ['orders:read'] },
        rateLimit: { requests: 4, period: 60, bucket: 'orders-limited' },
      },
      { match: '/live/*', host: appHost, origin: to, policy: { audiences: [API], machine: true, apiKeys: ['x-api-key'], fresh: true } },
    ]),
  }));
  must(
    resourcesCli([
      'create',
      '--id',
      API,
      '--name',
      'Orders',
      '--scope',
      'orders:read=Read orders',
      '--scope',
      'orders:write=Change orders',
      ...persist(),
    ]),
  );
  // A machine-only client: no redirect URI, only client_credentials, granted one scope of the API.
  const client = must(
    clientsCli(['create', '--name', 'Billing job', '--grant', 'client_credentials', '--resource', `${API}=orders:read`, ...persist()]),
  );
  expect(client).toMatchObject({
    redirect_uris: [],
    grant_types: ['client_credentials'],
    resources: [API],
    resource_scopes: { [API]: ['orders:read'] },
  });
  clientId = client.client_id as string;
  config = await oidc.discovery(new URL(gatehouse.base), clientId, undefined, oidc.ClientSecretBasic(client.client_secret as string), {
    execute: [oidc.allowInsecureRequests],
  });
});

afterAll(async () => {
  await gatehouse?.stop();
  origin?.close();
});

describe('machine access through wrangler dev', () => {
  it('the CLIs refuse what would not work, naming the flag', () => {
    const badScope = clientsCli([
      'create',
      '--name',
      'x',
      '--grant',
      'client_credentials',
      '--resource',
      `${API}=orders:delete`,
      ...persist(),
    ]);
    expect(badScope.code).toBe(2);
    expect(badScope.stderr).toContain(`--resource: orders:delete is not a scope of ${API}`);
    const unregistered = clientsCli([
      'create',
      '--name',
      'x',
      '--grant',
      'client_credentials',
      '--resource',
      'https://nowhere.test',
      ...persist(),
    ]);
    expect(unregistered.stderr).toContain('https://nowhere.test is not a registered API');
    const openidScope = resourcesCli(['create', '--id', 'https://x.machine.test', '--name', 'X', '--scope', 'openid', ...persist()]);
    expect(openidScope.code).toBe(2);
    expect(openidScope.stderr).toContain('--scope (0.name): is an OpenID Connect scope, not an API scope');
    const publicMachine = clientsCli(['create', '--name', 'x', '--public', '--grant', 'client_credentials', ...persist()]);
    expect(publicMachine.stderr).toContain('a public client cannot use client_credentials');
  });

  it('openid-client gets a token for the API with the granted scope, and is refused a scope it was not granted', async () => {
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'orders:read', resource: API });
    expect(tokens.scope).toBe('orders:read');
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ aud: API, sub: clientId, scope: 'orders:read', gty: 'client_credentials' });
    await expect(oidc.clientCredentialsGrant(config, { scope: 'orders:write', resource: API })).rejects.toMatchObject({
      error: 'invalid_scope',
    });
    await expect(oidc.clientCredentialsGrant(config, { resource: 'https://other.machine.test' })).rejects.toMatchObject({
      error: 'invalid_target',
    });

    const res = await call('/orders/list', { authorization: `Bearer ${tokens.access_token}` });
    expect(res.status).toBe(200);
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers).toMatchObject({ 'x-auth-client-id': clientId, 'x-auth-scope': 'orders:read' });
    expect(headers['x-auth-user-id']).toBeUndefined();
  });

  it('an API key issued with the CLI opens the API in either header, never reaches the origin, and stops at once on a fresh route when revoked', async () => {
    const created = must(
      apiKeysCli(['create', '--resource', API, '--client', clientId, '--name', 'nightly sync', '--scope', 'orders:read', ...persist()]),
    );
    const key = created.key as string;
    expect(key).toMatch(/^gk_[a-z2-7]{16}_[A-Za-z0-9_-]{49}$/);
    expect(created).toMatchObject({
      prefix: `gk_${created.id}`,
      owner: { client_id: clientId },
      scopes: ['orders:read'],
      revoked_at: null,
    });
    const before = seen.length;
    for (const headers of [{ 'x-api-key': key }, { authorization: `Bearer ${key}` }] as Record<string, string>[]) {
      const res = await call('/orders/list', headers);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { headers: Record<string, string> }).headers['x-auth-key-id']).toBe(created.id);
    }
    expect((await call('/live/x', { 'x-api-key': key })).status).toBe(200);
    expect(JSON.stringify(seen.slice(before))).not.toContain(key.slice(3, 30));
    // The list shows the key by its prefix, never its secret.
    const listed = apiKeysCli(['list', '--client', clientId, ...persist()]);
    expect(listed.stdout).toContain(created.id as string);
    expect(listed.stdout).not.toContain(key);

    must(apiKeysCli(['revoke', '--id', `gk_${created.id}`, ...persist()]));
    const refused = await call('/live/x', { 'x-api-key': key });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { detail: string }).detail).toBe('The API key has been revoked.');
  });

  it('the route counts each caller apart: exactly the limit passes, then 429 with Retry-After', async () => {
    const key = must(
      apiKeysCli(['create', '--resource', API, '--client', clientId, '--name', 'burst', '--scope', 'orders:read', ...persist()]),
    ).key as string;
    // Windows are aligned to the clock: start the burst well inside one.
    const into = Date.now() % 60_000;
    if (into > 50_000) await new Promise((r) => setTimeout(r, 60_000 - into + 500));
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 6; i++) {
      const res = await call('/orders/list', { 'x-api-key': key });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
  });
});
