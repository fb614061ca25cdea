import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it } from 'vitest';
import { SECRET_OVERLAP_MS } from '../../src/admin/webhook-endpoints';
import { admin, adminClient, adminUser } from './helpers';

/**
 * Webhook endpoints through the admin API, as an operator's robot calls it (every answer checked
 * against the served OpenAPI document). Attackers: a compromised admin client holding fewer scopes
 * (read only, or another area's), a user without the admin role, a caller replaying a cursor from
 * another list, and anyone reading the database or the API hoping to find a signing secret.
 */

const made: string[] = [];
afterEach(async () => {
  for (const id of made.splice(0)) await env.DB.prepare('DELETE FROM webhook_endpoints WHERE id = ?').bind(id).run();
});

const RW = ['admin:webhooks:read', 'admin:webhooks:write', 'admin:users:read'];

async function create(token: string, body: Record<string, unknown> = {}) {
  const res = await admin(token, 'POST', '/webhooks', { url: 'https://hooks.example.com/in', event_types: ['user.deleted'], ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  made.push(res.body.id as string);
  return res.body as Record<string, unknown> & { id: string; secret: string };
}

const auditOfEndpoint = (id: string) =>
  env.DB.prepare(
    "SELECT actor, detail FROM audit_events WHERE type = 'admin_change' AND json_extract(detail, '$.endpointId') = ? ORDER BY id",
  )
    .bind(id)
    .all<{ actor: string; detail: string }>()
    .then((r) =>
      r.results.map((a) => ({ actor: a.actor, ...(JSON.parse(a.detail) as { action: string; changed?: string[]; url?: string }) })),
    );

describe('creating an endpoint', () => {
  it('shows a Standard Webhooks secret once, stores it sealed, and audits who made it', async () => {
    const robot = await adminClient(RW);
    const made = await create(robot.token, { description: 'CRM sync', event_types: ['user.created', 'user.deleted', 'user.created'] });
    expect(made.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(made).toMatchObject({ url: 'https://hooks.example.com/in', event_types: ['user.created', 'user.deleted'], enabled: true });
    expect(made.previous_secret_expires_at).toBeNull();
    const got = await admin(robot.token, 'GET', `/webhooks/${made.id}`);
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('secret');
    expect(JSON.stringify(got.body)).not.toContain(made.secret.slice(6));
    const row = await env.DB.prepare('SELECT secrets FROM webhook_endpoints WHERE id = ?').bind(made.id).first<{ secrets: string }>();
    expect(row!.secrets).not.toContain(made.secret.slice(6, 20));
    expect(await auditOfEndpoint(made.id)).toEqual([
      expect.objectContaining({
        actor: `client:${robot.clientId}`,
        action: 'webhook_endpoint_created',
        url: 'https://hooks.example.com/in',
      }),
    ]);
  });

  it('refuses bad input naming the field, and writes nothing', async () => {
    const { token } = await adminClient(RW);
    const before = await env.DB.prepare('SELECT count(*) AS n FROM webhook_endpoints').first<{ n: number }>();
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'ftp://hooks.example.com/', event_types: ['*'] }, 'url'],
      [{ url: 'https://user:pw@hooks.example.com/', event_types: ['*'] }, 'url'],
      [{ url: 'not a url', event_types: ['*'] }, 'url'],
      [{ url: 'https://hooks.example.com/', event_types: ['user.exploded'] }, 'event_types.0'],
      [{ url: 'https://hooks.example.com/', event_types: [] }, 'event_types'],
      [{ url: 'https://hooks.example.com/', event_types: ['*', 'user.created'] }, 'event_types'],
      [{ url: 'https://hooks.example.com/', event_types: ['*'], secret: 'whsec_mine' }, 'body'],
    ];
    for (const [body, field] of cases) {
      const res = await admin(token, 'POST', '/webhooks', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const fields = [res.body.field, ...((res.body.errors as { field: string }[] | undefined) ?? []).map((e) => e.field)];
      expect(fields, JSON.stringify(res.body)).toContain(field);
    }
    const after = await env.DB.prepare('SELECT count(*) AS n FROM webhook_endpoints').first<{ n: number }>();
    expect(after!.n).toBe(before!.n);
  });
});

describe('who may manage endpoints', () => {
  it('a client that may only read cannot add, change, rotate, replay or delete', async () => {
    const writer = await adminClient(RW);
    const endpoint = await create(writer.token);
    const reader = await adminClient(['admin:webhooks:read']);
    expect((await admin(reader.token, 'GET', `/webhooks/${endpoint.id}`)).status).toBe(200);
    const attempts: [string, string, unknown][] = [
      ['POST', '/webhooks', { url: 'https://evil.example.com/', event_types: ['*'] }],
      ['PATCH', `/webhooks/${endpoint.id}`, { url: 'https://evil.example.com/' }],
      ['POST', `/webhooks/${endpoint.id}/rotate-secret`, undefined],
      ['POST', `/webhooks/${endpoint.id}/replay`, { event_id: 1 }],
      ['DELETE', `/webhooks/${endpoint.id}`, undefined],
    ];
    for (const [method, path, body] of attempts) {
      const res = await admin(reader.token, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:webhooks:write' });
    }
    const row = await env.DB.prepare('SELECT url, secrets FROM webhook_endpoints WHERE id = ?').bind(endpoint.id).first<{ url: string }>();
    expect(row!.url).toBe('https://hooks.example.com/in');
  });

  it('pointing an endpoint somewhere or replaying events reads user data: admin:webhooks:write alone is not enough', async () => {
    const writer = await adminClient(RW);
    const endpoint = await create(writer.token);
    const hooksOnly = await adminClient(['admin:webhooks:read', 'admin:webhooks:write']);
    const attempts: [string, string, unknown][] = [
      ['POST', '/webhooks', { url: 'https://evil.example.com/', event_types: ['*'] }],
      ['PATCH', `/webhooks/${endpoint.id}`, { url: 'https://evil.example.com/' }],
      ['POST', `/webhooks/${endpoint.id}/replay`, { event_id: 1 }],
    ];
    for (const [method, path, body] of attempts) {
      const res = await admin(hooksOnly.token, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:users:read' });
    }
    const row = await env.DB.prepare('SELECT url FROM webhook_endpoints WHERE id = ?').bind(endpoint.id).first<{ url: string }>();
    expect(row!.url).toBe('https://hooks.example.com/in');
    // What reads no user data stays within admin:webhooks:write.
    const described = await admin(hooksOnly.token, 'PATCH', `/webhooks/${endpoint.id}`, { description: 'CRM sync' });
    expect(described.status).toBe(200);
    expect(described.body).toMatchObject({ description: 'CRM sync', url: 'https://hooks.example.com/in' });
  });

  it('a client for another area cannot even read them; nor can a user without the admin role', async () => {
    const writer = await adminClient(RW);
    const endpoint = await create(writer.token);
    const auditor = await adminClient(['admin:audit:read']);
    const res = await admin(auditor.token, 'GET', '/webhooks');
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ scope: 'admin:webhooks:read' });
    const plain = await adminUser(RW, { admin: false });
    expect((await admin(plain.token, 'GET', `/webhooks/${endpoint.id}`)).status).toBe(403);
    const operator = await adminUser(RW);
    expect((await admin(operator.token, 'GET', `/webhooks/${endpoint.id}`)).status).toBe(200);
  });
});

describe('listing, changing, rotating and removing', () => {
  it('lists newest first with a signed cursor; a cursor from another list is refused', async () => {
    const { token } = await adminClient(RW);
    const ids = [(await create(token)).id, (await create(token)).id, (await create(token)).id];
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await admin(token, 'GET', `/webhooks?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items!.length).toBeLessThanOrEqual(2);
      for (const item of page.body.items!) expect(item).not.toHaveProperty('secret');
      seen.push(...page.body.items!.map((i) => i.id as string));
      cursor = page.body.next_cursor as string | null;
    } while (cursor);
    expect(seen.filter((id) => ids.includes(id))).toEqual([...ids].reverse());
    const first = await admin(token, 'GET', '/webhooks?limit=1');
    const foreign = await admin(
      token,
      'GET',
      `/webhooks/${ids[0]}/deliveries?cursor=${encodeURIComponent(first.body.next_cursor as string)}`,
    );
    expect(foreign.status).toBe(400);
    expect(foreign.body.field).toBe('cursor');
  });

  it('pages an endpoint’s deliveries, filtered by status; a cursor is bound to its endpoint and filter', async () => {
    const { token } = await adminClient(RW);
    const { id } = await create(token);
    const base = 3_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
    const statuses = ['failed', 'succeeded', 'failed', 'failed', 'pending'];
    for (const [i, status] of statuses.entries()) {
      await env.DB.batch([
        env.DB.prepare("INSERT INTO webhook_events (id, type, created_at, dispatched_at) VALUES (?1, 'user.deleted', ?2, ?2)").bind(
          base + i,
          1000 + i,
        ),
        env.DB.prepare(
          "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts, last_status, last_error, created_at) VALUES (?1, ?2, ?3, ?4, 3, 500, 'HTTP 500', ?5)",
        ).bind(`dlv_page_${base + i}`, base + i, id, status, 1000 + i),
      ]);
    }
    const first = await admin(token, 'GET', `/webhooks/${id}/deliveries?status=failed&limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.items!.map((d) => d.id)).toEqual([`dlv_page_${base + 3}`, `dlv_page_${base + 2}`]);
    expect(first.body.items![0]).toMatchObject({
      event_type: 'user.deleted',
      status: 'failed',
      attempts: 3,
      last_status: 500,
      last_error: 'HTTP 500',
    });
    const cursor = encodeURIComponent(first.body.next_cursor as string);
    const second = await admin(token, 'GET', `/webhooks/${id}/deliveries?status=failed&limit=2&cursor=${cursor}`);
    expect(second.body.items!.map((d) => d.id)).toEqual([`dlv_page_${base}`]);
    expect(second.body.next_cursor).toBeNull();
    expect((await admin(token, 'GET', `/webhooks/${id}/deliveries?status=succeeded&limit=2&cursor=${cursor}`)).body.field).toBe('cursor');
    const other = await create(token);
    expect((await admin(token, 'GET', `/webhooks/${other.id}/deliveries?status=failed&limit=2&cursor=${cursor}`)).body.field).toBe(
      'cursor',
    );
    expect((await admin(token, 'GET', `/webhooks/${id}/deliveries?status=lost`)).status).toBe(400);
  });

  it('changes URL, types and state; turning it off records who did, turning it on clears the failures', async () => {
    const robot = await adminClient(RW);
    const { id } = await create(robot.token);
    const changed = await admin(robot.token, 'PATCH', `/webhooks/${id}`, { url: 'https://crm.example.com/hooks', event_types: ['*'] });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ url: 'https://crm.example.com/hooks', event_types: ['*'], enabled: true });
    const off = await admin(robot.token, 'PATCH', `/webhooks/${id}`, { enabled: false });
    expect(off.body).toMatchObject({ enabled: false, disabled_reason: `Turned off by client:${robot.clientId}.` });
    await env.DB.prepare('UPDATE webhook_endpoints SET failures_in_a_row = 7 WHERE id = ?').bind(id).run();
    const on = await admin(robot.token, 'PATCH', `/webhooks/${id}`, { enabled: true });
    expect(on.body).toMatchObject({ enabled: true, disabled_reason: null, failures_in_a_row: 0 });
    const audit = await auditOfEndpoint(id);
    expect(audit.map((a) => [a.action, a.changed])).toEqual([
      ['webhook_endpoint_created', undefined],
      ['webhook_endpoint_updated', ['url', 'eventTypes']],
      ['webhook_endpoint_updated', ['enabled']],
      ['webhook_endpoint_updated', ['enabled']],
    ]);
    expect((await admin(robot.token, 'PATCH', `/webhooks/${id}`, {})).status).toBe(400);
    expect((await admin(robot.token, 'PATCH', `/webhooks/${id}`, { url: 'gopher://x.example.com/' })).body.field).toBe('url');
    const missing = await admin(robot.token, 'PATCH', '/webhooks/whe_nope', { enabled: false });
    expect(missing.status).toBe(404);
    expect(
      await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE json_extract(detail, '$.endpointId') = 'whe_nope'").first(),
    ).toEqual({
      n: 0,
    });
  });

  it('rotates the secret: a new one shown once, the previous one signing for 24 hours', async () => {
    const robot = await adminClient(RW);
    const endpoint = await create(robot.token);
    const before = Date.now();
    const rotated = await admin(robot.token, 'POST', `/webhooks/${endpoint.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    const until = rotated.body.previous_secret_expires_at as number;
    expect(until).toBeGreaterThanOrEqual(before + SECRET_OVERLAP_MS);
    expect(until).toBeLessThan(Date.now() + SECRET_OVERLAP_MS + 1000);
    expect((await admin(robot.token, 'GET', `/webhooks/${endpoint.id}`)).body.previous_secret_expires_at).toBe(until);
    // A second rotation drops the first secret at once: never more than two sign.
    await admin(robot.token, 'POST', `/webhooks/${endpoint.id}/rotate-secret`);
    const row = await env.DB.prepare('SELECT secrets FROM webhook_endpoints WHERE id = ?').bind(endpoint.id).first<{ secrets: string }>();
    expect(JSON.parse(row!.secrets)).toHaveLength(2);
    expect((await auditOfEndpoint(endpoint.id)).filter((a) => a.action === 'webhook_secret_rotated')).toHaveLength(2);
  });

  it('deletes an endpoint with its deliveries; it is gone after', async () => {
    const robot = await adminClient(RW);
    const { id } = await create(robot.token);
    const removed = await admin(robot.token, 'DELETE', `/webhooks/${id}`);
    expect(removed.status).toBe(204);
    expect((await admin(robot.token, 'GET', `/webhooks/${id}`)).status).toBe(404);
    expect((await admin(robot.token, 'DELETE', `/webhooks/${id}`)).status).toBe(404);
    expect((await admin(robot.token, 'GET', `/webhooks/${id}/deliveries`)).status).toBe(404);
    expect((await auditOfEndpoint(id)).map((a) => a.action)).toEqual(['webhook_endpoint_created', 'webhook_endpoint_deleted']);
  });
});
