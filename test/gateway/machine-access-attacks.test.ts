import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { apiKeys, apiResources } from '../../src/db/schema';
import { API_KEY_CACHE_TTL_MS } from '../../src/gateway/api-key-auth';
import { routeSchema } from '../../src/gateway/routes-config';
import { buildApiKey, type ApiKeyInput, type ApiKeyOwner } from '../../src/oauth/api-keys';
import { buildResource, resourceFromRow } from '../../src/oauth/api-resources';
import { APP, appWith, call, createVerifiedUser, signIn, uniqueIp, withinOneLimiterWindow } from '../helpers';
import { API, API_SCOPES, basic, getCode, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';

/**
 * Attacks an outside review ran against API keys and per-caller rate limits, kept as regression
 * tests: stale authority behind a key, a key reaching an origin by another way in, a user spending
 * another's budget, routes that share a count, a public client dressed as a machine.
 */
const db = () => createDb(env.DB);
const machineOwner = (clientId: string): ApiKeyOwner => ({
  kind: 'client',
  client: { clientId, isPublic: false, grantTypes: ['client_credentials'], resources: [API], resourceScopes: { [API]: API_SCOPES } },
});

async function issueKey(owner: ApiKeyOwner, over: Partial<ApiKeyInput> = {}) {
  const row = (await db().select().from(apiResources).all()).find((r) => r.identifier === API)!;
  const built = await buildApiKey({ name: 'attack key', scopes: ['orders:read'], ...over }, owner, resourceFromRow(row), Date.now());
  await db().insert(apiKeys).values(built.row);
  return built;
}

async function machineKey() {
  const client = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [] });
  return { client, ...(await issueKey(machineOwner(client.clientId))) };
}

type Echo = { status: number; headers: Record<string, string> };
async function at(path: string, headers: HeadersInit, send = appWith(() => ({})), ip?: string): Promise<Echo> {
  const h = new Headers(headers);
  h.set('accept', 'application/json');
  const res = await send(`${APP}${path}`, { headers: h, ...(ip ? { ip } : {}) });
  const body = await res.json<{ headers?: Record<string, string>; detail?: string }>();
  return { status: res.status, headers: body.headers ?? { detail: body.detail ?? '' } };
}

const later = () => appWith((deps) => ({ now: () => deps.now() + API_KEY_CACHE_TTL_MS + 1_000 }));

describe('a key speaks for no more than its owner may do now', () => {
  it("a client's key stops opening the API once the client's grant at that API is revoked — at once on a fresh route", async () => {
    const { client, key } = await machineKey();
    expect((await at('/demo/keys-fresh/x', { authorization: `Bearer ${key}` })).status).toBe(200);
    expect((await at('/demo/keys/x', { authorization: `Bearer ${key}` })).status).toBe(200);
    // The operator cuts the client off the API: `npm run resources -- revoke --id API --client ID`.
    await env.DB.prepare('DELETE FROM client_resources WHERE client_id = ? AND resource = ?').bind(client.clientId, API).run();
    const fresh = await at('/demo/keys-fresh/x', { authorization: `Bearer ${key}` });
    expect(fresh.status).toBe(401);
    expect(fresh.headers.detail).toBe('The client that owns this API key may no longer use its API.');
    // Elsewhere within the key cache's bound, no later.
    expect((await at('/demo/keys/x', { authorization: `Bearer ${key}` }, later())).status).toBe(401);
  });

  it("a client's key carries only the scopes the client is still granted at the API, and the API still defines", async () => {
    const { client, key } = await machineKey();
    await env.DB.prepare("UPDATE client_resources SET scopes = '[]' WHERE client_id = ? AND resource = ?").bind(client.clientId, API).run();
    const e = await at('/demo/keys-fresh/x', { authorization: `Bearer ${key}` });
    expect(e.status).toBe(200);
    expect(e.headers['x-auth-scope']).toBeUndefined();
    // On a route that needs the scope, refused.
    expect((await at('/demo/keys-users/x', { authorization: `Bearer ${key}` }, later())).status).toBe(403);
  });

  it("a user's key carries only scopes the API still defines", async () => {
    const api = `https://narrowing-${crypto.randomUUID()}.gatehouse.test`;
    await db()
      .insert(apiResources)
      .values(buildResource({ identifier: api, name: 'Narrowing', scopes: [{ name: 'n:read', description: null }] }, Date.now()));
    const user = await createVerifiedUser();
    const row = (await db().select().from(apiResources).all()).find((r) => r.identifier === api)!;
    const built = await buildApiKey(
      { name: 'k', scopes: ['n:read'] },
      { kind: 'user', userId: user.userId },
      resourceFromRow(row),
      Date.now(),
    );
    await db().insert(apiKeys).values(built.row);
    await env.DB.prepare("UPDATE api_resources SET scopes = '[]' WHERE identifier = ?").bind(api).run();
    const route = routeSchema.parse({
      match: '/narrowing/*',
      host: 'app.gatehouse.test',
      origin: 'service:ORIGIN_ECHO',
      policy: { audiences: [api], apiKeys: ['authorization'], fresh: true },
    });
    const send = appWith((deps) => ({ config: { ...deps.config, gateway: { ...deps.config.gateway, routes: [route] } } }));
    const e = await at('/narrowing/x', { authorization: `Bearer ${built.key}` }, send);
    expect(e.status).toBe(200);
    expect(e.headers['x-auth-scope']).toBeUndefined();
  });

  it('a public client gets no machine identity through a key: refused at issue, and at use if one was stored', async () => {
    const client = await registerClient({ public: true, grantTypes: ['authorization_code'] });
    const owner: ApiKeyOwner = {
      kind: 'client',
      client: {
        clientId: client.clientId,
        isPublic: true,
        grantTypes: ['authorization_code'],
        resources: [API],
        resourceScopes: { [API]: API_SCOPES },
      },
    };
    await expect(issueKey(owner)).rejects.toThrow(/only a confidential client with the client_credentials grant may own a key/);
    // A key written to D1 by other means still opens nothing.
    const smuggled = await buildApiKey(
      { name: 'x', scopes: ['orders:read'] },
      machineOwner(client.clientId),
      resourceFromRow((await db().select().from(apiResources).all()).find((r) => r.identifier === API)!),
      Date.now(),
    );
    await db().insert(apiKeys).values(smuggled.row);
    expect((await at('/demo/keys/x', { authorization: `Bearer ${smuggled.key}` })).status).toBe(401);
  });
});

describe('API keys and the per-IP credential limit', () => {
  it('a valid, known key on a fresh route is not capped at the per-IP credential limit, and leaves sign-in to others at its address', async () => {
    const { key } = await machineKey();
    const user = await createVerifiedUser();
    await withinOneLimiterWindow();
    const ip = uniqueIp();
    const send = appWith(() => ({}));
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++)
      statuses.push((await send(`${APP}/demo/keys-fresh/x`, { ip, headers: { authorization: `Bearer ${key}` } })).status);
    const signInStatus = (await call('/auth/api/sign-in', { method: 'POST', ip, json: { email: user.email, password: user.password } }))
      .status;
    expect({ refused: statuses.filter((s) => s !== 200), signInStatus }).toEqual({ refused: [], signInStatus: 200 });
  });
});

describe('per-caller rate limits', () => {
  it("one user's bearer tokens do not use up another user's budget on a rate-limited route", async () => {
    const client = await registerClient();
    const tokenOf = async () => {
      const { cookie } = await signIn((await createVerifiedUser()).email);
      const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid orders:read', resource: API });
      const res = await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API },
        basic(client.clientId, client.clientSecret),
      );
      expect(res.status).toBe(200);
      return (await res.json<{ access_token: string }>()).access_token;
    };
    const alice = await tokenOf();
    const bob = await tokenOf();
    const start = Math.ceil(Date.now() / 60_000) * 60_000 + 1_000;
    const send = appWith(() => ({ now: () => start }));
    for (let i = 0; i < 3; i++) expect((await at('/demo/limited/x', { authorization: `Bearer ${alice}` }, send)).status).toBe(200);
    expect((await at('/demo/limited/x', { authorization: `Bearer ${alice}` }, send)).status).toBe(429);
    expect((await at('/demo/limited/x', { authorization: `Bearer ${bob}` }, send)).status).toBe(200);
  });

  it('routes that share a bucket share one count, whichever is called', async () => {
    const bucket = `shared-${crypto.randomUUID()}`;
    const route = (match: string) =>
      routeSchema.parse({
        match,
        host: 'app.gatehouse.test',
        origin: 'service:ORIGIN_ECHO',
        policy: { audiences: [API], machine: true, apiKeys: ['authorization'] },
        rateLimit: { requests: 4, period: 60, bucket },
      });
    const start = Math.ceil(Date.now() / 60_000) * 60_000 + 1_000;
    const send = appWith((deps) => ({
      now: () => start,
      config: { ...deps.config, gateway: { ...deps.config.gateway, routes: [route('/shared/read/*'), route('/shared/write/*')] } },
    }));
    const { key } = await machineKey();
    const statuses: number[] = [];
    for (const path of ['/shared/read/x', '/shared/write/x', '/shared/read/x', '/shared/write/x', '/shared/read/x', '/shared/write/x'])
      statuses.push((await at(path, { authorization: `Bearer ${key}` }, send)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  });
});

describe('headers an origin sees', () => {
  it('a real Gatehouse key never reaches an origin: X-API-Key sent twice (joined with ", "), another header name, a cookie, the URL', async () => {
    const { key } = await machineKey();
    const cases: [string, string, HeadersInit][] = [
      [
        'X-API-Key twice',
        '/demo/public/x',
        [
          ['x-api-key', 'origin-own-key'],
          ['x-api-key', key],
        ],
      ],
      ['Api-Key', '/demo/public/x', { 'api-key': key }],
      ['a cookie', '/demo/public/x', { cookie: `theme=dark; k=${key}` }],
      ['beside a key that authenticates', '/demo/keys/x', { authorization: `Bearer ${key}`, 'x-token': `token ${key}` }],
      ['?api_key=', `/demo/public/x?api_key=${key}`, {}],
      ['in the path', `/demo/public/${key}`, {}],
    ];
    for (const [what, path, headers] of cases) {
      const res = await appWith(() => ({}))(`${APP}${path}`, {
        headers: { accept: 'application/json', ...Object.fromEntries(new Headers(headers)) },
      });
      const seen = await res.text();
      expect(seen, what).not.toContain(key.slice(20));
      // In the URL: refused with a reason, not forwarded without it.
      if (path.includes(key)) {
        expect(res.status, what).toBe(400);
        expect(seen, what).toContain('does not belong in a URL');
      } else expect(res.status, what).toBe(200);
    }
  });
});
