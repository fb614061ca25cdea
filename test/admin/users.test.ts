import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { appWith, auditOf, call, lastMailTo, STRONG_PASSWORD, tokenFrom, uniqueEmail } from '../helpers';
import { admin, adminClient, adminUser } from './helpers';

/**
 * Users through the admin API: create, read, change, search. Every answer is checked against the
 * served OpenAPI document (helpers.ts), so a field the document does not declare — a password hash,
 * say — fails the test on its own.
 */

const RW = ['admin:users:read', 'admin:users:write'];
let ops: Awaited<ReturnType<typeof adminClient>>;
beforeAll(async () => {
  ops = await adminClient(RW);
});

const row = (id: string) => env.DB.prepare('SELECT * FROM users WHERE id = ?').bind(id).first<Record<string, unknown>>();
const lastAudit = async (userId: string, type: string) => {
  const { results } = await env.DB.prepare('SELECT * FROM audit_events WHERE user_id = ? AND type = ? ORDER BY id DESC')
    .bind(userId, type)
    .all<{ actor: string | null; client_id: string | null; detail: string }>();
  return results[0] && { ...results[0], detail: JSON.parse(results[0].detail) as Record<string, unknown> };
};

async function create(body: Record<string, unknown>) {
  const res = await admin(ops.token, 'POST', '/users', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Record<string, unknown> & { id: string };
}

describe('creating a user', () => {
  it('with a password: the sign-up policy applies, the hash is stored, never shown, and the person can sign in', async () => {
    const email = uniqueEmail('made');
    const weak = await admin(ops.token, 'POST', '/users', { email, password: 'password1' });
    expect(weak.status).toBe(400);
    expect(weak.body).toMatchObject({ code: 'weak_password', field: 'password' });

    const user = await create({ email: email.toUpperCase(), password: STRONG_PASSWORD, email_verified: true, roles: ['b', 'a', 'a'] });
    expect(user).toMatchObject({ email, email_verified: true, has_password: true, roles: ['a', 'b'], tier: 'free', blocked: false });
    expect(JSON.stringify(user)).not.toMatch(/argon|pbkdf2|password_hash/);
    expect(String((await row(user.id))!.password_hash)).toMatch(/^\$/);
    const signIn = await call('/auth/api/sign-in', { method: 'POST', json: { email, password: STRONG_PASSWORD } });
    expect(signIn.status).toBe(200);

    const audit = await lastAudit(user.id, 'user_created');
    expect(audit).toMatchObject({ actor: `client:${ops.clientId}`, client_id: ops.clientId });
    expect(audit!.detail).toMatchObject({ emailVerified: true, password: true, roles: ['a', 'b'] });
    expect(JSON.stringify(audit)).not.toContain(STRONG_PASSWORD);
  });

  it('without a password, with an invitation: the link sets a password once, and signs the person in to nothing else', async () => {
    const email = uniqueEmail('invited');
    const user = await create({ email, send_invitation: true, tier: 'gold', profile: { name: 'Ada', locale: 'fr-CA' } });
    expect(user).toMatchObject({ has_password: false, email_verified: false, tier: 'gold', profile: { name: 'Ada', locale: 'fr-CA' } });
    const mail = await lastMailTo(email);
    expect(mail.subject).toBe('Your new account: choose a password');
    expect(mail.links[0]).toMatch(/\/auth\/reset-password\?token=/);
    const expires = await env.DB.prepare("SELECT expires_at, created_at FROM email_tokens WHERE user_id = ? AND purpose = 'reset_password'")
      .bind(user.id)
      .first<{ expires_at: number; created_at: number }>();
    expect(expires!.expires_at - expires!.created_at).toBe(72 * 3600_000);
    const reset = await call('/auth/api/reset-password', { method: 'POST', json: { token: tokenFrom(mail), password: STRONG_PASSWORD } });
    expect(reset.status, await reset.clone().text()).toBeLessThan(300);
    expect((await row(user.id))!.password_hash).not.toBeNull();
    const again = await call('/auth/api/reset-password', { method: 'POST', json: { token: tokenFrom(mail), password: STRONG_PASSWORD } });
    expect(again.status).toBe(400);
  });

  it('refuses an invitation together with a password, and sends no mail for a refused account', async () => {
    const email = uniqueEmail('both');
    const res = await admin(ops.token, 'POST', '/users', { email, password: STRONG_PASSWORD, send_invitation: true });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ field: 'send_invitation' });
    expect(await env.DB.prepare('SELECT 1 FROM users WHERE email = ?').bind(email).first()).toBeNull();
  });

  it('an address already taken (in any case) is a 409 conflict naming email, and nothing is written', async () => {
    const email = uniqueEmail('taken');
    await create({ email });
    const before = await env.DB.prepare('SELECT COUNT(*) AS n FROM audit_events').first<{ n: number }>();
    for (const variant of [email, email.toUpperCase(), ` ${email} `]) {
      const res = await admin(ops.token, 'POST', '/users', { email: variant, roles: ['admin'] });
      expect(res.status, variant).toBe(409);
      expect(res.body).toMatchObject({ code: 'conflict', field: 'email' });
    }
    // Concurrent creations of one address: exactly one wins, the others are 409s (the unique index), never a 500.
    const racing = uniqueEmail('race');
    const results = await Promise.all([1, 2, 3].map(() => admin(ops.token, 'POST', '/users', { email: racing })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    const after = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE type = 'user_created'").first<{ n: number }>();
    expect(after!.n).toBeLessThanOrEqual(before!.n + 1);
  });

  it('an address taken between the check and the write (a racing sign-up) is still a 409, never a 500', async () => {
    const email = uniqueEmail('raced');
    const racing = appWith((deps) => ({
      passwords: {
        ...deps.passwords,
        // Runs after the address check and before the batch: a sign-up takes the address meanwhile.
        hash: async (password: string) => {
          await env.DB.prepare('INSERT INTO users (id, email, created_at, updated_at) VALUES (?, ?, 1, 1)')
            .bind(crypto.randomUUID(), email)
            .run();
          return deps.passwords.hash(password);
        },
      },
    }));
    const res = await racing('/auth/admin/v1/users', {
      method: 'POST',
      json: { email, password: STRONG_PASSWORD },
      headers: { authorization: `Bearer ${ops.token}` },
    });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: 'conflict', field: 'email' });
  });

  it('refuses the reserved placeholder domain of accounts without an address', async () => {
    const res = await admin(ops.token, 'POST', '/users', { email: 'someone@no-email.invalid' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ field: 'email' });
  });
});

describe('reading a user', () => {
  it('shows profile, roles, tier, metadata, verification, counts — never a secret; a placeholder address is null', async () => {
    const user = await create({
      email: uniqueEmail('read'),
      password: STRONG_PASSWORD,
      email_verified: true,
      user_metadata: { theme: 'dark' },
    });
    await call('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: STRONG_PASSWORD } });
    const got = await admin(ops.token, 'GET', `/users/${user.id}`);
    expect(got.body).toMatchObject({
      id: user.id,
      user_metadata: { theme: 'dark' },
      counts: { sessions: 1, passkeys: 0, linked_identities: 0 },
      second_factors: { totp: false, recovery_codes_left: 0 },
    });
    expect(got.body.last_sign_in_at).toEqual(expect.any(Number));

    const id = crypto.randomUUID();
    await env.DB.prepare('INSERT INTO users (id, email, created_at, updated_at) VALUES (?, ?, 1, 1)')
      .bind(id, `${id}@no-email.invalid`)
      .run();
    const placeholder = await admin(ops.token, 'GET', `/users/${id}`);
    expect(placeholder.body).toMatchObject({ email: null, email_verified: null });
    expect((await admin(ops.token, 'GET', `/users/${crypto.randomUUID()}`)).body).toMatchObject({ code: 'not_found' });
  });
});

describe('changing a user', () => {
  it('changes profile, roles (replaced whole), tier and metadata, audits the field names only, and fires user.updated', async () => {
    await env.DB.prepare(
      "INSERT INTO webhook_endpoints (id, url, event_types, secrets, created_at, updated_at) VALUES (?, 'https://hooks.example/x', '[]', '[]', 1, 1) ON CONFLICT DO NOTHING",
    )
      .bind('wh-users-test')
      .run();
    const user = await create({ email: uniqueEmail('patch'), roles: ['a', 'b'], app_metadata: { plan: 'x' } });
    const res = await admin(ops.token, 'PATCH', `/users/${user.id}`, {
      roles: ['c'],
      tier: 'platinum',
      profile: { given_name: 'Grace', phone_number: '+14155550100', address: { country: 'FR' } },
      app_metadata: { plan: 'y', seats: 3 },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      roles: ['c'],
      tier: 'platinum',
      profile: { given_name: 'Grace', phone_number: '+14155550100', address: { country: 'FR' } },
      app_metadata: { plan: 'y', seats: 3 },
      user_metadata: {},
    });
    const audit = await lastAudit(user.id, 'user_updated');
    expect(audit!.detail.fields).toEqual([
      'roles',
      'tier',
      'profile.given_name',
      'profile.phone_number',
      'profile.address',
      'app_metadata',
    ]);
    expect(JSON.stringify(audit)).not.toContain('platinum');
    const hook = await env.DB.prepare("SELECT user FROM webhook_events WHERE user_id = ? AND type = 'user.updated'")
      .bind(user.id)
      .first<{ user: string }>();
    expect(JSON.parse(hook!.user)).toMatchObject({ id: user.id, tier: 'platinum', roles: ['c'] });

    const cleared = await admin(ops.token, 'PATCH', `/users/${user.id}`, { profile: { given_name: null } });
    expect(cleared.body.profile).not.toHaveProperty('given_name');
  });

  it('a new address with verify: unverified, old links void, a confirmation link to the new address that verifies it', async () => {
    const old = uniqueEmail('old');
    const user = await create({ email: old, email_verified: true, send_invitation: true });
    const invitation = tokenFrom(await lastMailTo(old));
    const email = uniqueEmail('new');
    const res = await admin(ops.token, 'PATCH', `/users/${user.id}`, { email, verify: true });
    expect(res.body).toMatchObject({ email, email_verified: false });
    // The invitation mailed to the old address no longer works.
    const stale = await call('/auth/api/reset-password', { method: 'POST', json: { token: invitation, password: STRONG_PASSWORD } });
    expect(stale.status).toBe(400);
    const mail = await lastMailTo(email);
    expect(mail.subject).toBe('Confirm your email address');
    const verified = await call('/auth/api/verify-email', { method: 'POST', json: { token: tokenFrom(mail) } });
    expect(verified.status).toBe(200);
    expect((await admin(ops.token, 'GET', `/users/${user.id}`)).body).toMatchObject({ email, email_verified: true });
    // Without verify, the operator's word stands.
    const vouched = await admin(ops.token, 'PATCH', `/users/${user.id}`, { email: uniqueEmail('vouched'), email_verified: true });
    expect(vouched.body).toMatchObject({ email_verified: true });
  });

  it('refuses mass assignment: every field that is not the API’s is named, and nothing changes', async () => {
    const user = await create({ email: uniqueEmail('mass') });
    const before = await row(user.id);
    for (const field of [
      'id',
      'password_hash',
      'password',
      'email_verified_at',
      'created_at',
      'blocked_at',
      'blocked',
      'last_sign_in_at',
      'has_password',
    ]) {
      const res = await admin(ops.token, 'PATCH', `/users/${user.id}`, { tier: 'gold', [field]: field === 'blocked' ? true : 'x' });
      expect(res.status, field).toBe(400);
      expect(res.body.detail, field).toContain(field);
      expect(JSON.stringify(res.body.errors), field).toContain(field);
    }
    const nested = await admin(ops.token, 'PATCH', `/users/${user.id}`, { profile: { name: 'x', email_verified: true } });
    expect(nested.status).toBe(400);
    expect(JSON.stringify(nested.body.errors)).toContain('email_verified');
    expect(await row(user.id)).toEqual(before);
  });

  it('refuses metadata that is not an object, too large or too deep, naming the field; nothing changes', async () => {
    const user = await create({ email: uniqueEmail('meta'), user_metadata: { keep: true } });
    const big = { blob: 'x'.repeat(16 * 1024) };
    const deep = { a: { b: { c: { d: { e: { f: 1 } } } } } };
    const cases: [string, unknown, RegExp][] = [
      ['app_metadata', [1, 2], /JSON object/],
      ['app_metadata', 'text', /JSON object/],
      ['user_metadata', null, /JSON object/],
      ['user_metadata', big, /16 KiB/],
      ['app_metadata', deep, /levels deep/],
      ['app_metadata', JSON.parse('{"__proto__": {"admin": true}}'), /__proto__/],
    ];
    for (const [field, value, message] of cases) {
      const res = await admin(ops.token, 'PATCH', `/users/${user.id}`, { [field]: value });
      expect(res.status, JSON.stringify(value).slice(0, 40)).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid_request', field });
      expect(String(res.body.detail)).toMatch(message);
    }
    // Just inside the bounds is fine: five levels, and 16 KiB less the wrapping.
    const fits = await admin(ops.token, 'PATCH', `/users/${user.id}`, {
      app_metadata: { a: { b: { c: { d: 1 } } } },
      user_metadata: { blob: 'x'.repeat(16 * 1024 - 20) },
    });
    expect(fits.status).toBe(200);
    const tooBig = await admin(
      ops.token,
      'PATCH',
      `/users/${user.id}`,
      {},
      { raw: JSON.stringify({ user_metadata: { b: 'x'.repeat(70_000) } }) },
    );
    expect(tooBig.status).toBe(413);
  });

  it('an address another account has is a 409; an empty change a 400; a missing user a 404', async () => {
    const a = await create({ email: uniqueEmail('a') });
    const b = await create({ email: uniqueEmail('b') });
    expect((await admin(ops.token, 'PATCH', `/users/${b.id}`, { email: String(a.email).toUpperCase() })).body).toMatchObject({
      code: 'conflict',
      field: 'email',
    });
    expect((await admin(ops.token, 'PATCH', `/users/${b.id}`, {})).status).toBe(400);
    expect((await admin(ops.token, 'PATCH', `/users/${crypto.randomUUID()}`, { tier: 'gold' })).status).toBe(404);
  });

  it('an admin user cannot take the admin role from themselves (another admin can)', async () => {
    const me = await adminUser(RW);
    const res = await admin(me.token, 'PATCH', `/users/${me.userId}`, { roles: ['support'] });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'conflict', field: 'roles' });
    expect((await admin(me.token, 'PATCH', `/users/${me.userId}`, { roles: ['admin', 'support'] })).status).toBe(200);
    expect((await lastAudit(me.userId, 'user_updated'))!.actor).toBe(`user:${me.userId}`);
  });
});

describe('who may manage users', () => {
  it('a token with only admin:users:read is refused every write, with the scope named, and nothing changes', async () => {
    const reader = await adminClient(['admin:users:read']);
    const user = await create({ email: uniqueEmail('target') });
    const writes: [string, string, unknown?][] = [
      ['POST', '/users', { email: uniqueEmail('nope') }],
      ['PATCH', `/users/${user.id}`, { tier: 'gold' }],
      ['POST', `/users/${user.id}/block`],
      ['POST', `/users/${user.id}/unblock`],
      ['DELETE', `/users/${user.id}`],
      ['DELETE', `/users/${user.id}/sessions`],
      ['DELETE', `/users/${user.id}/sessions/abc`],
      ['DELETE', `/users/${user.id}/totp`],
      ['DELETE', `/users/${user.id}/passkeys/abc`],
    ];
    for (const [method, path, body] of writes) {
      const res = await admin(reader.token, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body).toMatchObject({ code: 'insufficient_scope', scope: 'admin:users:write' });
    }
    expect((await admin(reader.token, 'GET', `/users/${user.id}`)).status).toBe(200);
    expect((await row(user.id))!.tier).toBe('free');
    // A writer without read cannot read.
    const writer = await adminClient(['admin:users:write']);
    expect((await admin(writer.token, 'GET', `/users/${user.id}`)).body).toMatchObject({ scope: 'admin:users:read' });
  });

  it('a user token with the scopes but without the admin role is refused', async () => {
    const plain = await adminUser(RW, { admin: false });
    const res = await admin(plain.token, 'GET', '/users');
    expect(res.status).toBe(403);
    expect((await admin(plain.token, 'PATCH', `/users/${plain.userId}`, { roles: ['admin'] })).status).toBe(403);
    expect(await env.DB.prepare("SELECT 1 FROM user_roles WHERE user_id = ? AND role = 'admin'").bind(plain.userId).first()).toBeNull();
  });
});

describe('searching users', () => {
  const tag = `s${Date.now().toString(36)}`;
  const made: { id: string; email: string }[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 5; i++)
      made.push(
        (await create({
          email: `${tag}-${i}@search.example`,
          roles: i % 2 ? [`${tag}-odd`] : [],
          tier: i < 2 ? `${tag}t` : 'free',
        })) as never,
      );
  });

  async function all(query: string, limit = 2) {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res = await admin(ops.token, 'GET', `/users?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      seen.push(...res.body.items!.map((u) => String(u.email)));
      cursor = res.body.next_cursor as string | null;
      if (!cursor) break;
    }
    return seen;
  }

  it('by exact address and by prefix (in address order, paged), by role, by tier, by id', async () => {
    const emails = made.map((u) => u.email);
    expect(await all(`email=${encodeURIComponent(emails[3]!.toUpperCase())}`)).toEqual([emails[3]]);
    expect(await all(`email_prefix=${tag}-`)).toEqual(emails);
    expect(await all(`email_prefix=${tag}-1`)).toEqual([emails[1]]);
    expect((await all(`role=${tag}-odd`, 1)).sort()).toEqual([emails[1], emails[3]].sort());
    expect((await all(`tier=${tag}t`, 1)).sort()).toEqual([emails[0], emails[1]].sort());
    expect(await all(`id=${made[2]!.id}`)).toEqual([emails[2]]);
    // A prefix with LIKE wildcards is literal.
    expect(await all(`email_prefix=${tag}_`)).toEqual([]);
    expect(await all(`email_prefix=${tag}%25`)).toEqual([]);
  });

  it('by created range (newest first) and last-sign-in range', async () => {
    const created = made.map((u) => Number((u as unknown as { created_at: number }).created_at));
    const window = await all(`created_since=${created[1]}&created_until=${created[4]! + 1}&tier=free`, 1);
    expect(window).toEqual(
      made
        .slice(2)
        .map((u) => u.email)
        .reverse(),
    );
    await env.DB.prepare('UPDATE users SET last_sign_in_at = ? WHERE id = ?').bind(5_000, made[0]!.id).run();
    await env.DB.prepare('UPDATE users SET last_sign_in_at = ? WHERE id = ?').bind(6_000, made[1]!.id).run();
    expect(await all('last_sign_in_since=4000&last_sign_in_until=7000', 1)).toEqual([made[1]!.email, made[0]!.email]);
  });

  it('a tampered cursor, or one from another search, is a 400 naming cursor', async () => {
    const first = await admin(ops.token, 'GET', `/users?email_prefix=${tag}-&limit=1`);
    const cursor = String(first.body.next_cursor);
    const flipped = cursor.slice(0, -2) + (cursor.at(-2) === 'A' ? 'B' : 'A') + cursor.at(-1);
    for (const query of [`email_prefix=${tag}-&cursor=${flipped}`, `email_prefix=${tag}-0&cursor=${cursor}`, `role=x&cursor=${cursor}`]) {
      const res = await admin(ops.token, 'GET', `/users?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body).toMatchObject({ field: 'cursor' });
    }
  });

  it('refuses bad filters with the field named', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=1000', 'limit'],
      ['created_since=yesterday', 'created_since'],
      ['role=Admin%20OR%201', 'role'],
      ['blocked=maybe', 'blocked'],
    ]) {
      const res = await admin(ops.token, 'GET', `/users?${query}`);
      expect(res.status, query).toBe(400);
      expect(String(res.body.field), query).toContain(field);
    }
  });
});

describe('the audit trail of reads', () => {
  it('a read is audited as admin_read with the actor', async () => {
    const user = await create({ email: uniqueEmail('audited') });
    await admin(ops.token, 'GET', `/users/${user.id}`);
    const { results } = await auditOf(user.id);
    expect(results.map((r) => r.type)).toContain('user_created');
    const read = await env.DB.prepare("SELECT actor FROM audit_events WHERE type = 'admin_read' AND actor = ? ORDER BY id DESC")
      .bind(`client:${ops.clientId}`)
      .first<{ actor: string }>();
    expect(read).not.toBeNull();
  });
});
