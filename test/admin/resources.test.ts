import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { randomToken } from '../../src/lib/crypto';
import { basic, registerClient, tokenRequest } from '../oauth/helpers';
import { admin, adminClient } from './helpers';

/**
 * APIs (RFC 8707 resources) through the admin API. The attackers: a client still asking for a
 * scope its API no longer defines (from a token endpoint whose isolate cached the old API), an
 * admin client sending fields the endpoint does not take, an identifier that would make tokens
 * ambiguous (a fragment, not absolute).
 */

const RW = ['admin:resources:read', 'admin:resources:write'];
const uniqueApi = () =>
  `https://api-${randomToken(6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}.gatehouse.test`;
const scopes = (...names: string[]) => names.map((name) => ({ name, description: `May ${name}` }));

async function apiWithClient(robotToken: string) {
  const identifier = uniqueApi();
  const created = await admin(robotToken, 'POST', '/resources', {
    identifier,
    name: 'Inventory',
    scopes: scopes('stock:read', 'stock:write'),
  });
  expect(created.status).toBe(201);
  const client = await registerClient({
    grantTypes: ['client_credentials'],
    redirectUris: [],
    resources: [{ resource: identifier, scopes: ['stock:read', 'stock:write'] }],
  });
  const ask = (scope?: string) =>
    tokenRequest(
      { grant_type: 'client_credentials', resource: identifier, ...(scope ? { scope } : {}) },
      basic(client.clientId, client.clientSecret),
    );
  return { identifier, client, ask, path: `/resources/${encodeURIComponent(identifier)}` };
}

describe('APIs', () => {
  it('registers, reads (with the clients granted it), lists and audits an API', async () => {
    const robot = await adminClient(RW);
    const { identifier, client, path } = await apiWithClient(robot.token);
    const got = await admin(robot.token, 'GET', path);
    expect(got.body).toMatchObject({
      identifier,
      name: 'Inventory',
      scopes: scopes('stock:read', 'stock:write'),
      access_token_format: 'jwt',
      clients: [{ client_id: client.clientId, scopes: ['stock:read', 'stock:write'] }],
    });
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await admin(robot.token, 'GET', `/resources?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      listed.push(...page.body.items!.map((r) => r.identifier as string));
      cursor = page.body.next_cursor as string | null;
    } while (cursor);
    expect(listed).toContain(identifier);
    expect(new Set(listed).size).toBe(listed.length);
    const audit = await env.DB.prepare(
      "SELECT actor, detail FROM audit_events WHERE type = 'admin_change' AND json_extract(detail, '$.resource') = ?",
    )
      .bind(identifier)
      .all<{ actor: string; detail: string }>();
    expect(audit.results.map((r) => [r.actor, JSON.parse(r.detail).action])).toEqual([[`client:${robot.clientId}`, 'resource_created']]);
    const again = await admin(robot.token, 'POST', '/resources', { identifier, name: 'Again' });
    expect(again.body).toMatchObject({ code: 'conflict', field: 'identifier' });
  });

  it('a scope dropped from an API leaves every grant with it and stops being issued at once, though the token endpoint had cached it', async () => {
    const robot = await adminClient(RW);
    const { identifier, client, ask, path } = await apiWithClient(robot.token);
    const before = await (await ask('stock:read stock:write')).json<{ access_token: string }>();
    expect(String(decodeJwt(before.access_token).scope).split(' ').sort()).toEqual(['stock:read', 'stock:write']);

    const changed = await admin(robot.token, 'PATCH', path, { scopes: scopes('stock:read'), access_token_ttl: 120 });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ scopes: scopes('stock:read'), access_token_ttl: 120 });
    const grant = await env.DB.prepare('SELECT scopes FROM client_resources WHERE client_id = ? AND resource = ?')
      .bind(client.clientId, identifier)
      .first<{ scopes: string }>();
    expect(JSON.parse(grant!.scopes)).toEqual(['stock:read']);
    const after = await ask('stock:read stock:write');
    expect(after.status).toBe(400);
    expect(await after.json()).toMatchObject({ error: 'invalid_scope' });
    const narrowed = await (await ask()).json<{ access_token: string; expires_in: number }>();
    expect(decodeJwt(narrowed.access_token).scope).toBe('stock:read');
    expect(narrowed.expires_in).toBe(120);
    const audit = await env.DB.prepare(
      "SELECT detail FROM audit_events WHERE type = 'admin_change' AND json_extract(detail, '$.action') = 'resource_updated' AND json_extract(detail, '$.resource') = ?",
    )
      .bind(identifier)
      .all<{ detail: string }>();
    expect(JSON.parse(audit.results[0]!.detail)).toMatchObject({
      fields: ['access_token_ttl', 'scopes'],
      clientsNarrowed: [client.clientId],
    });
  });

  it('deleting an API takes it from its clients at once; its tokens are no longer issued', async () => {
    const robot = await adminClient(RW);
    const { identifier, client, ask, path } = await apiWithClient(robot.token);
    expect((await ask()).status).toBe(200); // client and API cached
    expect((await admin(robot.token, 'DELETE', path)).status).toBe(204);
    const refused = await ask();
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_target' });
    const grants = await env.DB.prepare('SELECT COUNT(*) AS n FROM client_resources WHERE client_id = ?')
      .bind(client.clientId)
      .first<{ n: number }>();
    expect(grants!.n).toBe(0);
    expect((await admin(robot.token, 'GET', path)).status).toBe(404);
    expect((await admin(robot.token, 'DELETE', path)).status).toBe(404);
    expect(identifier).toBeTruthy();
  });

  it('bad input is a 400 naming the field, nothing written: unsafe identifiers, fields it does not take, bad scopes', async () => {
    const robot = await adminClient(RW);
    const count = () => env.DB.prepare('SELECT COUNT(*) AS n FROM api_resources').first<{ n: number }>();
    const before = await count();
    const cases: [Record<string, unknown>, string][] = [
      [{ identifier: 'https://api.example.com/#frag', name: 'x' }, 'identifier'],
      [{ identifier: 'relative/path', name: 'x' }, 'identifier'],
      [{ identifier: uniqueApi(), name: 'x', created_at: 1 }, 'body'],
      [{ identifier: uniqueApi(), name: 'x', clients: [{ client_id: 'x' }] }, 'body'],
      [{ identifier: uniqueApi(), name: 'x', scopes: [{ name: 'openid' }] }, 'scopes.0.name'],
      [{ identifier: uniqueApi(), name: 'x', scopes: [{ name: 'a' }, { name: 'a' }] }, 'scopes'],
    ];
    for (const [body, field] of cases) {
      const res = await admin(robot.token, 'POST', '/resources', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.field, JSON.stringify(body)).toMatch(new RegExp(`^${field.replace(/\./g, '\\.')}`));
    }
    expect(await count()).toEqual(before);
    const { path } = await apiWithClient(robot.token);
    for (const body of [{ identifier: uniqueApi() }, { updated_at: 1 }]) {
      const res = await admin(robot.token, 'PATCH', path, body);
      expect(res.body).toMatchObject({ code: 'invalid_request', field: 'body' });
    }
  });
});
