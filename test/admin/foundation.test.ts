import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { ADMIN_SCOPES } from '../../src/admin/operations';
import { call } from '../helpers';
import { adminClient, adminUser, admin, BASE, servedDocument } from './helpers';
import { basic, registerClient, tokenRequest } from '../oauth/helpers';

describe('the admin API document', () => {
  it('is OpenAPI 3.1, names a scope for every operation, and describes the OAuth flows that give those scopes', async () => {
    const doc = await servedDocument();
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.values(doc.paths as Record<string, Record<string, Record<string, unknown>>>).flatMap((m) => Object.values(m));
    expect(ops.length).toBeGreaterThan(2);
    for (const op of ops) {
      expect(ADMIN_SCOPES).toContain(op['x-required-scope']);
      expect(op.security).toEqual([{ oauth2: [op['x-required-scope']] }]);
    }
    const flows = (doc.components as { securitySchemes: { oauth2: { flows: Record<string, { scopes: Record<string, string> }> } } })
      .securitySchemes.oauth2.flows;
    expect(Object.keys(flows.clientCredentials!.scopes).sort()).toEqual([...ADMIN_SCOPES].sort());
  });

  it('has a reference page that needs no script or CDN', async () => {
    const res = await call(`${BASE}/reference`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<code>GET</code> <code>/audit-events</code>');
    expect(html).toContain('admin:audit:read');
    expect(html).not.toMatch(/<script/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  });
});

describe('who may call it', () => {
  it('wants a token: none is a 401 Bearer challenge in problem+json', async () => {
    const res = await admin(null, 'GET', '/audit-events');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="gatehouse-admin", error="invalid_token"/);
    expect(res.body).toMatchObject({ code: 'invalid_token' });
  });

  it('refuses a token without the operation’s scope, naming the scope it needs', async () => {
    const { token } = await adminClient(['admin:keys:read']);
    const res = await admin(token, 'GET', '/audit-events');
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:audit:read' });
    expect(res.body.detail).toContain('admin:audit:read');
    expect(res.headers.get('www-authenticate')).toContain('scope="admin:audit:read"');
  });

  it('refuses a token for another API, even with a scope of the same name', async () => {
    const client = await registerClient({
      grantTypes: ['client_credentials'],
      redirectUris: [],
      scopes: [],
      resources: [{ resource: 'https://orders.gatehouse.test', scopes: [] }],
    });
    const res = await tokenRequest(
      { grant_type: 'client_credentials', resource: 'https://orders.gatehouse.test' },
      basic(client.clientId, client.clientSecret),
    );
    const { access_token } = (await res.json()) as { access_token: string };
    expect((await admin(access_token, 'GET', '/audit-events')).status).toBe(401);
  });

  it('takes an admin user’s token; a user without the admin role, or who lost it, is refused', async () => {
    const user = await adminUser(['admin:audit:read']);
    expect((await admin(user.token, 'GET', `/audit-events?user_id=${user.userId}`)).status).toBe(200);
    await env.DB.prepare("DELETE FROM user_roles WHERE user_id = ? AND role = 'admin'").bind(user.userId).run();
    const after = await admin(user.token, 'GET', '/audit-events');
    expect(after.status).toBe(403);
    expect(after.body.code).toBe('forbidden');
    const plain = await adminUser(['admin:audit:read'], { admin: false });
    expect((await admin(plain.token, 'GET', '/audit-events')).status).toBe(403);
  });

  it('refuses a revoked token at once', async () => {
    const robot = await adminClient(['admin:keys:read']);
    expect((await admin(robot.token, 'GET', '/signing-keys')).status).toBe(200);
    const revoked = await call('/auth/revoke', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(robot.clientId, robot.clientSecret) },
      body: new URLSearchParams({ token: robot.token }).toString(),
    });
    expect(revoked.status).toBe(200);
    expect((await admin(robot.token, 'GET', '/signing-keys')).status).toBe(401);
  });

  it('audits reads and writes with who made them', async () => {
    const robot = await adminClient(['admin:keys:read', 'admin:keys:write']);
    await admin(robot.token, 'GET', '/signing-keys');
    const rotated = await admin(robot.token, 'POST', '/signing-keys/rotate', { algs: ['ES256'] });
    expect(rotated.status).toBe(200);
    const rows = await env.DB.prepare('SELECT type, actor, detail FROM audit_events WHERE actor = ? ORDER BY id')
      .bind(`client:${robot.clientId}`)
      .all<{ type: string; actor: string; detail: string }>();
    expect(rows.results.map((r) => r.type)).toEqual(['admin_read', 'admin_change']);
    expect(JSON.parse(rows.results[1]!.detail)).toMatchObject({ action: 'signing_keys_rotated' });
  });
});

describe('bad input', () => {
  it('names every failing field in one problem, and refuses fields an operation does not take', async () => {
    const { token } = await adminClient(['admin:keys:write']);
    const res = await admin(token, 'POST', '/signing-keys/rotate', { algs: ['HS256'], kid: 'mine' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_request');
    const errors = res.body.errors as { field: string; message: string }[];
    expect(errors.map((e) => e.field).sort()).toEqual(['algs.0', 'body']);
    expect(errors.find((e) => e.field === 'body')!.message).toContain('kid');
    // The values sent are never echoed back.
    expect(JSON.stringify(res.body)).not.toContain('HS256');
  });

  it('answers JSON that is not JSON, or not sent as JSON, with a 4xx', async () => {
    const { token } = await adminClient(['admin:keys:write']);
    expect((await admin(token, 'POST', '/signing-keys/rotate', undefined, { raw: '{"algs":' })).body.code).toBe('invalid_json');
    expect(
      (
        await admin(token, 'POST', '/signing-keys/rotate', undefined, {
          raw: 'algs=ES256',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
      ).status,
    ).toBe(415);
  });
});

describe('audit events', () => {
  it('pages newest first with a cursor; a tampered cursor, or one used with other filters, is a 400 naming it', async () => {
    const robot = await adminClient(['admin:audit:read', 'admin:keys:read']);
    for (let i = 0; i < 3; i++) await admin(robot.token, 'GET', '/signing-keys');
    const actor = `client:${robot.clientId}`;
    const first = await admin(robot.token, 'GET', `/audit-events?client_id=${robot.clientId}&type=admin_read&limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.items).toHaveLength(2);
    expect(first.body.items!.every((e) => e.actor === actor)).toBe(true);
    const cursor = first.body.next_cursor as string;
    expect(cursor).toBeTruthy();
    const second = await admin(
      robot.token,
      'GET',
      `/audit-events?client_id=${robot.clientId}&type=admin_read&limit=2&cursor=${encodeURIComponent(cursor)}`,
    );
    expect(second.body.items!.length).toBeGreaterThanOrEqual(1);
    const ids = [...first.body.items!, ...second.body.items!].map((e) => e.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(ids.length);
    const [payload, mac] = cursor.split('.');
    const forged = `${payload!.slice(0, -2)}${payload!.endsWith('A') ? 'B' : 'A'}A.${mac}`;
    const tampered = await admin(
      robot.token,
      'GET',
      `/audit-events?client_id=${robot.clientId}&type=admin_read&limit=2&cursor=${encodeURIComponent(forged)}`,
    );
    expect(tampered.status).toBe(400);
    expect(tampered.body.field).toBe('cursor');
    const otherFilters = await admin(robot.token, 'GET', `/audit-events?type=admin_read&limit=2&cursor=${encodeURIComponent(cursor)}`);
    expect(otherFilters.status).toBe(400);
    expect(otherFilters.body.field).toBe('cursor');
  });
});
