import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { APP, appWith, createVerifiedUser } from '../helpers';
import { API, registerClient } from '../oauth/helpers';
import { admin, adminClient } from './helpers';

/**
 * API keys through the admin API. The attackers: whoever reads lists, answers and the audit log
 * hoping for a key or its hash; a thief using a key the operator revoked or deleted (on a gateway
 * isolate that had it cached); an admin client asking for a key with scopes the owner was never
 * given.
 */

const RW = ['admin:api_keys:read', 'admin:api_keys:write'];
const request = appWith(() => ({}));
const gateway = async (key: string) =>
  (await request(`${APP}/demo/keys/x`, { headers: { authorization: `Bearer ${key}`, accept: 'application/json' } })).status;

async function machineOwner() {
  return registerClient({ grantTypes: ['client_credentials'], redirectUris: [] }); // granted API's orders:read and orders:write
}

describe('API keys', () => {
  it('issues a key shown once; it opens the gateway; no read, list or audit event carries it or its hash', async () => {
    const robot = await adminClient(RW);
    const owner = await machineOwner();
    const issued = await admin(robot.token, 'POST', '/api-keys', {
      name: 'ERP import',
      client_id: owner.clientId,
      resource: API,
      scopes: ['orders:read'],
    });
    expect(issued.status).toBe(201);
    const key = issued.body.key as string;
    const id = issued.body.id as string;
    expect(key.startsWith(`gk_${id}_`)).toBe(true);
    expect(issued.body).toMatchObject({
      prefix: `gk_${id}`,
      name: 'ERP import',
      owner: { client_id: owner.clientId },
      resource: API,
      scopes: ['orders:read'],
      revoked_at: null,
    });
    expect(await gateway(key)).toBe(200);
    const { hash } = (await env.DB.prepare('SELECT * FROM api_keys WHERE id = ?').bind(id).first<Record<string, string>>()) as Record<
      string,
      string
    >;
    const secretPart = key.slice(`gk_${id}_`.length);
    const reads = [
      await admin(robot.token, 'GET', `/api-keys/${id}`),
      await admin(robot.token, 'GET', `/api-keys/gk_${id}`),
      await admin(robot.token, 'GET', `/api-keys?client_id=${owner.clientId}`),
    ];
    for (const r of reads) {
      expect(r.status).toBe(200);
      const text = JSON.stringify(r.body);
      expect(text).not.toContain(secretPart);
      if (hash) expect(text).not.toContain(hash);
    }
    expect(reads[2]!.body.items!.map((k) => k.id)).toEqual([id]);
    const audit = await env.DB.prepare("SELECT detail, client_id FROM audit_events WHERE json_extract(detail, '$.keyId') = ?")
      .bind(id)
      .all();
    expect(audit.results).toHaveLength(1);
    expect(audit.results[0]).toMatchObject({ client_id: owner.clientId });
    expect(JSON.stringify(audit.results)).not.toContain(secretPart);
  });

  it('a revoked key is refused at once, though the gateway had it cached; revoking again changes nothing; delete removes it', async () => {
    const robot = await adminClient(RW);
    const owner = await machineOwner();
    const issued = await admin(robot.token, 'POST', '/api-keys', { name: 'temp', client_id: owner.clientId, resource: API, scopes: [] });
    const { key, id } = issued.body as { key: string; id: string };
    expect(await gateway(key)).toBe(200);
    const revoked = await admin(robot.token, 'POST', `/api-keys/${id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(typeof revoked.body.revoked_at).toBe('number');
    expect(await gateway(key)).toBe(401);
    const again = await admin(robot.token, 'POST', `/api-keys/${id}/revoke`);
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);
    // Pasting the whole key as the id reaches the same key (its secret goes no further).
    expect((await admin(robot.token, 'DELETE', `/api-keys/${encodeURIComponent(key)}`)).status).toBe(204);
    expect((await admin(robot.token, 'GET', `/api-keys/${id}`)).status).toBe(404);
    const actions = await env.DB.prepare(
      "SELECT json_extract(detail, '$.action') AS a FROM audit_events WHERE json_extract(detail, '$.keyId') = ? ORDER BY id",
    )
      .bind(id)
      .all<{ a: string }>();
    expect(actions.results.map((r) => r.a)).toEqual(['api_key_issued', 'api_key_revoked', 'api_key_deleted']);
  });

  it('a deleted key is refused at once too; renaming changes only the name', async () => {
    const robot = await adminClient(RW);
    const owner = await machineOwner();
    const { key, id } = (await admin(robot.token, 'POST', '/api-keys', { name: 'a', client_id: owner.clientId, resource: API })).body as {
      key: string;
      id: string;
    };
    const renamed = await admin(robot.token, 'PATCH', `/api-keys/${id}`, { name: 'b' });
    expect(renamed.body).toMatchObject({ id, name: 'b', scopes: [] });
    const widen = await admin(robot.token, 'PATCH', `/api-keys/${id}`, { name: 'c', scopes: ['orders:write'] });
    expect(widen.body).toMatchObject({ code: 'invalid_request', field: 'body' });
    expect(await gateway(key)).toBe(200);
    expect((await admin(robot.token, 'DELETE', `/api-keys/${id}`)).status).toBe(204);
    expect(await gateway(key)).toBe(401);
  });

  it('a client’s key stops working at once when the client loses the API, or is moved off client_credentials', async () => {
    const robot = await adminClient([...RW, 'admin:clients:write']);
    for (const take of [
      (id: string) => admin(robot.token, 'DELETE', `/clients/${id}/grants/${encodeURIComponent(API)}`),
      (id: string) =>
        admin(robot.token, 'PATCH', `/clients/${id}`, {
          grant_types: ['authorization_code'],
          redirect_uris: ['https://app.example.com/cb'],
        }),
    ]) {
      const owner = await machineOwner();
      const { key } = (await admin(robot.token, 'POST', '/api-keys', { name: 'k', client_id: owner.clientId, resource: API })).body as {
        key: string;
      };
      expect(await gateway(key)).toBe(200);
      expect((await take(owner.clientId)).status).toBeLessThan(300);
      expect(await gateway(key)).toBe(401);
    }
  });

  it('refuses a key beyond what its owner holds, an owner that does not exist, or two owners — naming the field', async () => {
    const robot = await adminClient(RW);
    const narrow = await registerClient({
      grantTypes: ['client_credentials'],
      redirectUris: [],
      resources: [{ resource: API, scopes: ['orders:read'] }],
    });
    const user = await createVerifiedUser();
    const cases: [Record<string, unknown>, string][] = [
      [{ client_id: narrow.clientId, scopes: ['orders:read', 'orders:write'] }, 'scopes.1'],
      [{ user_id: user.userId, scopes: ['orders:nuke'] }, 'scopes.0'],
      [{ client_id: 'nobody' }, 'client_id'],
      [{ user_id: 'nobody' }, 'user_id'],
      [{ client_id: narrow.clientId, user_id: user.userId }, 'user_id'],
      [{ client_id: narrow.clientId, resource: 'https://unregistered.gatehouse.test' }, 'resource'],
      [{ client_id: narrow.clientId, expires_at: 1 }, 'expires_at'],
      [{ client_id: narrow.clientId, hash: 'x' }, 'body'],
    ];
    const count = () => env.DB.prepare('SELECT COUNT(*) AS n FROM api_keys').first<{ n: number }>();
    const before = await count();
    for (const [over, field] of cases) {
      const res = await admin(robot.token, 'POST', '/api-keys', { name: 'x', resource: API, ...over });
      expect(res.status, JSON.stringify(over)).toBe(400);
      expect(res.body.field, JSON.stringify(over)).toBe(field);
      expect(res.body.key).toBeUndefined();
    }
    expect(await count()).toEqual(before);
  });
});
