import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { apiKeys, apiResources, clientResources } from '../../src/db/schema';
import { API_KEY_CACHE_TTL_MS } from '../../src/gateway/api-key-auth';
import { buildApiKey, formatApiKey, parseApiKey, type ApiKeyInput, type ApiKeyOwner } from '../../src/oauth/api-keys';
import { resourceFromRow } from '../../src/oauth/api-resources';
import { APP, appWith, createVerifiedUser, recordingD1, uniqueIp, withinOneLimiterWindow } from '../helpers';
import { API, API_SCOPES, registerClient, registerResource } from '../oauth/helpers';

/**
 * API keys at the gateway (vitest.config.ts: /demo/keys* and /demo/limited take them for API). The
 * attackers: a hostile origin that would keep any key it is sent, a thief with a revoked, expired or
 * altered key, a holder of one API's key (or one owner's) knocking at another, a network peer
 * spraying made-up keys to make Gatehouse read D1 for each.
 */
const db = () => createDb(env.DB);

async function issueKey(owner: ApiKeyOwner, over: Partial<ApiKeyInput> & { resource?: string } = {}) {
  const { resource = API, ...input } = over;
  const row = (await db().select().from(apiResources).all()).find((r) => r.identifier === resource)!;
  const built = await buildApiKey({ name: 'test key', scopes: ['orders:read'], ...input }, owner, resourceFromRow(row), Date.now());
  await db().insert(apiKeys).values(built.row);
  return built;
}

/** A machine client granted API's scopes, and a key of its own. */
async function machineKey(over: Partial<ApiKeyInput> = {}) {
  const client = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [] });
  const key = await issueKey(
    {
      kind: 'client',
      client: {
        clientId: client.clientId,
        isPublic: false,
        grantTypes: ['client_credentials'],
        resources: [API],
        resourceScopes: { [API]: API_SCOPES },
      },
    },
    over,
  );
  return { client, ...key };
}

type Echo = { status: number; headers: Record<string, string> };
const request = appWith(() => ({}));
async function at(path: string, headers: Record<string, string>, send = request): Promise<Echo> {
  const res = await send(`${APP}${path}`, { headers: { accept: 'application/json', ...headers } });
  const body = await res.json<{ headers?: Record<string, string>; detail?: string }>();
  return { status: res.status, headers: body.headers ?? { detail: body.detail ?? '' } };
}

describe('API keys at the gateway', () => {
  it("a client's key opens a machine route in either header the route takes; the origin sees who, never the key", async () => {
    const { client, key, row } = await machineKey();
    for (const headers of [{ authorization: `Bearer ${key}` }, { 'x-api-key': key }] as Record<string, string>[]) {
      const e = await at('/demo/keys/x', headers);
      expect(e.status).toBe(200);
      expect(e.headers).toMatchObject({ 'x-auth-client-id': client.clientId, 'x-auth-key-id': row.id, 'x-auth-scope': 'orders:read' });
      for (const h of ['x-auth-user-id', 'x-auth-roles', 'x-auth-session-id', 'authorization', 'x-api-key'])
        expect(e.headers[h], h).toBeUndefined();
      expect(JSON.stringify(e.headers)).not.toContain(key.slice(20));
      expect(decodeJwt(e.headers['x-auth-assertion']!)).toMatchObject({ sub: `client:${client.clientId}`, machine: true, key_id: row.id });
    }
  });

  it('never forwards a Gatehouse key to an origin, on any route, however the header is spelled', async () => {
    const { key } = await machineKey();
    const spelled: Record<string, string>[] = [{ x_api_key: key }, { 'X.Api.Key': key }, { X_Api_Key: key }];
    // Beside the key that authenticates, and on a public route (where a key is no credential at all).
    for (const extra of spelled)
      for (const [path, headers] of [
        ['/demo/keys/x', { authorization: `Bearer ${key}`, ...extra }],
        ['/demo/public/x', extra],
      ] as const) {
        const e = await at(path, headers);
        expect(e.status, `${path} ${JSON.stringify(extra)}`).toBe(200);
        expect(JSON.stringify(e.headers), `${path} ${JSON.stringify(extra)}`).not.toContain('gk_');
      }
    // A Gatehouse key where the route takes none is refused, not passed on.
    for (const headers of [{ 'x-api-key': key }, { authorization: `bearer ${key}` }] as Record<string, string>[]) {
      const e = await at('/demo/public/x', headers);
      expect(e.status, JSON.stringify(headers)).toBe(401);
      expect(JSON.stringify(e.headers)).not.toContain('gk_');
    }
    // An origin's own X-API-Key (not one of ours) on a route that does not take keys passes untouched.
    expect((await at('/demo/public/x', { 'x-api-key': 'origin-own-key-123' })).headers['x-api-key']).toBe('origin-own-key-123');
  });

  it("a user's key acts as that user (roles and tier, no sign-in), within its scopes", async () => {
    const user = await createVerifiedUser();
    await env.DB.prepare("INSERT INTO user_roles (user_id, role) VALUES (?, 'support')").bind(user.userId).run();
    const { row, key } = await issueKey({ kind: 'user', userId: user.userId });
    const e = await at('/demo/keys-users/x', { authorization: `Bearer ${key}` });
    expect(e.status).toBe(200);
    expect(e.headers).toMatchObject({
      'x-auth-user-id': user.userId,
      'x-auth-roles': 'support',
      'x-auth-tier': 'free',
      'x-auth-key-id': row.id,
    });
    for (const h of ['x-auth-session-id', 'x-auth-amr', 'x-auth-acr', 'x-auth-auth-time', 'x-auth-client-id'])
      expect(e.headers[h], h).toBeUndefined();
    // A client's key is a machine's: refused on a route that serves users.
    const machine = await machineKey();
    const notAUser = await at('/demo/keys-users/x', { authorization: `Bearer ${machine.key}` });
    expect(notAUser.status).toBe(403);
    expect(notAUser.headers.detail).toMatch(/serves users/);
    // A key without the route's scope: 403 insufficient_scope.
    const narrow = await issueKey({ kind: 'user', userId: user.userId }, { scopes: ['orders:write'] });
    const refused = await at('/demo/keys-users/x', { authorization: `Bearer ${narrow.key}` });
    expect(refused.status).toBe(403);
  });

  it('refuses a key that is altered, spliced from two keys, for another API, or sent where the route does not take it', async () => {
    const a = await machineKey();
    const b = await machineKey();
    const orders = await registerResource({
      identifier: 'https://orders.gatehouse.test',
      scopes: [{ name: 'orders:read', description: null }],
    });
    await db().insert(clientResources).values({ clientId: a.client.clientId, resource: orders, scopes: '["orders:read"]' });
    const other = await issueKey(
      {
        kind: 'client',
        client: {
          clientId: a.client.clientId,
          isPublic: false,
          grantTypes: ['client_credentials'],
          resources: [orders],
          resourceScopes: { [orders]: ['orders:read'] },
        },
      },
      { resource: orders },
    );
    const flip = (s: string, i: number) => `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    const { id: idA } = parseApiKey(a.key)!;
    const { secret: secretB } = parseApiKey(b.key)!;
    const cases: [string, string, Record<string, string>, RegExp][] = [
      ['a character of the secret flipped', '/demo/keys/x', { authorization: `Bearer ${flip(a.key, 30)}` }, /not valid/],
      ['a character of the id flipped', '/demo/keys/x', { authorization: `Bearer ${flip(a.key, 5)}` }, /not valid/],
      ['truncated', '/demo/keys/x', { authorization: `Bearer ${a.key.slice(0, -1)}` }, /not valid/],
      ["A's id with B's secret, check recomputed", '/demo/keys/x', { authorization: `Bearer ${formatApiKey(idA, secretB)}` }, /not valid/],
      ["another API's key", '/demo/keys/x', { authorization: `Bearer ${other.key}` }, /not for this API/],
      ["this API's key at another API's route", '/demo/orders/x', { authorization: `Bearer ${a.key}` }, /not for this API/],
      ['a route that takes no keys', '/demo/machine/x', { authorization: `Bearer ${a.key}` }, /does not accept API keys/],
      [
        'Authorization where the route takes X-API-Key only',
        '/demo/keys-header/x',
        { authorization: `Bearer ${a.key}` },
        /only in X-API-Key/,
      ],
      ['two credentials at once', '/demo/keys/x', { 'x-api-key': a.key, authorization: `Bearer ${b.key}` }, /one credential/],
    ];
    for (const [what, path, headers, reason] of cases) {
      const res = await request(`${APP}${path}`, { headers: { accept: 'application/json', ...headers } });
      expect(res.status, what).toBe(401);
      expect(res.headers.get('www-authenticate'), what).toMatch(/^Bearer realm="gatehouse", error="invalid_(token|request)"/);
      expect((await res.json<{ detail: string }>()).detail, what).toMatch(reason);
    }
    // The keys themselves still work where they belong.
    expect((await at('/demo/orders/x', { authorization: `Bearer ${other.key}` })).status).toBe(200);
    expect((await at('/demo/keys-header/x', { 'x-api-key': a.key })).status).toBe(200);
  });

  it('a revoked key is refused at once on a fresh route, and everywhere within the cache bound; an expired key when it expires', async () => {
    const { key, row } = await machineKey({ expiresAt: Date.now() + 3_600_000 });
    expect((await at('/demo/keys/x', { authorization: `Bearer ${key}` })).status).toBe(200);
    expect((await at('/demo/keys-fresh/x', { authorization: `Bearer ${key}` })).status).toBe(200);
    await env.DB.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').bind(Date.now(), row.id).run();
    const fresh = await at('/demo/keys-fresh/x', { authorization: `Bearer ${key}` });
    expect(fresh.status).toBe(401);
    expect(fresh.headers.detail).toMatch(/revoked/);
    // This isolate read the key before the revocation: it may keep trusting it for the documented bound, no longer.
    const later = appWith((deps) => ({ now: () => deps.now() + API_KEY_CACHE_TTL_MS + 1 }));
    expect((await at('/demo/keys/x', { authorization: `Bearer ${key}` }, later)).status).toBe(401);

    const expiring = await machineKey({ expiresAt: Date.now() + 60_000 });
    expect((await at('/demo/keys/x', { authorization: `Bearer ${expiring.key}` })).status).toBe(200);
    const past = appWith((deps) => ({ now: () => deps.now() + 61_000 }));
    const expired = await at('/demo/keys/x', { authorization: `Bearer ${expiring.key}` }, past);
    expect(expired.status).toBe(401);
    expect(expired.headers.detail).toMatch(/expired/);
  });

  it("a key dies with its owner: a deleted user's key is refused", async () => {
    const user = await createVerifiedUser();
    const { key } = await issueKey({ kind: 'user', userId: user.userId });
    await env.DB.prepare('DELETE FROM users WHERE id = ?').bind(user.userId).run();
    expect((await at('/demo/keys-fresh/x', { authorization: `Bearer ${key}` })).status).toBe(401);
  });

  it('verifies a known key with no D1 read, records its use at most once a minute, and costs a made-up key no read at all', async () => {
    const { key, row } = await machineKey();
    const log: string[] = [];
    const d1 = recordingD1(env.DB, log);
    const send = appWith(() => ({ d1, db: createDb(d1) }));
    expect((await at('/demo/keys/x', { authorization: `Bearer ${key}` }, send)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect((await db().select().from(apiKeys).all()).find((k) => k.id === row.id)!.lastUsedAt).toBeGreaterThan(0);
    log.length = 0;
    for (let i = 0; i < 3; i++) expect((await at('/demo/keys/x', { authorization: `Bearer ${key}` }, send)).status).toBe(200);
    expect(log).toEqual([]);
    // Malformed or mis-checked keys are refused before any lookup.
    for (const bad of ['gk_short', `${key.slice(0, -2)}zz`, `gk_${'a'.repeat(16)}_${'A'.repeat(43)}AAAAAA`])
      expect((await at('/demo/keys/x', { authorization: `Bearer ${bad}` }, send)).status).toBe(401);
    expect(log).toEqual([]);
  });

  it('a peer spraying well-formed made-up keys gets one D1 read per key up to the per-IP limit, then 429 and none', async () => {
    const log: string[] = [];
    const d1 = recordingD1(env.DB, log);
    const send = appWith(() => ({ d1, db: createDb(d1) }));
    await withinOneLimiterWindow();
    const ip = uniqueIp();
    const madeUp = () =>
      formatApiKey(
        'abcdefghijklmnop'
          .split('')
          .sort(() => Math.random() - 0.5)
          .join(''),
        'B'.repeat(43),
      );
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++)
      statuses.push((await send(`${APP}/demo/keys/x`, { ip, headers: { authorization: `Bearer ${madeUp()}` } })).status);
    expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(30)).toEqual([429, 429, 429, 429, 429]);
    expect(log.filter((s) => /from "api_keys"/.test(s))).toHaveLength(30);
  });
});

describe('rate limits per key and per client at the gateway', () => {
  it('exactly the limit passes per key, then 429 with Retry-After; another key and a client token count apart', async () => {
    const start = Math.ceil(Date.now() / 60_000) * 60_000 + 1_000;
    const clock = (t: number) => appWith(() => ({ now: () => t }));
    const a = await machineKey();
    const b = await machineKey();
    for (let i = 0; i < 3; i++)
      expect((await at('/demo/limited/x', { authorization: `Bearer ${a.key}` }, clock(start + i))).status).toBe(200);
    const res = await clock(start + 10_000)(`${APP}/demo/limited/x`, {
      headers: { authorization: `Bearer ${a.key}`, accept: 'application/json' },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('49');
    expect(await res.json()).toMatchObject({ code: 'rate_limited', status: 429 });
    expect((await at('/demo/limited/x', { authorization: `Bearer ${b.key}` }, clock(start + 10_000))).status).toBe(200);
    // The next window.
    expect((await at('/demo/limited/x', { authorization: `Bearer ${a.key}` }, clock(start + 60_000))).status).toBe(200);
  });

  it("counts a client's tokens together, whatever token it presents", async () => {
    const client = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [] });
    const start = Math.ceil(Date.now() / 60_000) * 60_000 + 1_000;
    const send = appWith(() => ({ now: () => start }));
    const token = async () => {
      const init = {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: API }).toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${btoa(`${client.clientId}:${client.clientSecret}`)}`,
        },
      };
      return (await (await send('/auth/token', init)).json<{ access_token: string }>()).access_token;
    };
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await at('/demo/limited/x', { authorization: `Bearer ${await token()}` }, send)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });
});
