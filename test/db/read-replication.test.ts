import { env } from 'cloudflare:workers';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import type { Env } from '../../src/config';
import { openBookmark, openSession, sealBookmark } from '../../src/db/replication';
import { depsFor } from '../../src/deps';
import { COOKIES } from '../../src/lib/cookies';
import { adminClient } from '../admin/helpers';
import { APP, cookieFrom, createVerifiedUser, ORIGIN, STRONG_PASSWORD, uniqueEmail, uniqueIp } from '../helpers';

/**
 * Issue 17, D1 read replication. Local D1 has no replicas (a session's queries all reach the one
 * database and any bookmark is accepted), so these tests watch the Sessions API calls themselves:
 * the start each kind of request gets, where the checks of who is calling run, and the bookmark's
 * round trip through the caller.
 */
const seen = { starts: [] as string[], onSession: [] as string[], onBinding: [] as string[] };
const spied = new Proxy(env.DB, {
  get(target, prop) {
    if (prop === 'withSession')
      return (start: string) => {
        seen.starts.push(start);
        const session = target.withSession(start);
        return {
          prepare: (sql: string) => {
            seen.onSession.push(sql);
            return session.prepare(sql);
          },
          batch: (statements: D1PreparedStatement[]) => session.batch(statements),
          getBookmark: () => session.getBookmark(),
        };
      };
    if (prop === 'prepare')
      return (sql: string) => {
        seen.onBinding.push(sql);
        return target.prepare(sql);
      };
    const value = Reflect.get(target, prop);
    return typeof value === 'function' ? value.bind(target) : value;
  },
});
const spiedEnv = { ...env, DB: spied } as Env;
const app = createApp();
const send = (path: string, init: RequestInit & { json?: unknown } = {}) => {
  const headers = new Headers(init.headers);
  headers.set('cf-connecting-ip', uniqueIp());
  if (init.json !== undefined) headers.set('content-type', 'application/json');
  const body = init.json !== undefined ? JSON.stringify(init.json) : (init.body ?? null);
  return Promise.resolve(
    app.fetch(
      new Request(path.startsWith('https://') ? path : `${ORIGIN}${path}`, { ...init, headers, body, redirect: 'manual' }),
      spiedEnv,
    ),
  );
};
beforeEach(() => {
  seen.starts.length = 0;
  seen.onSession.length = 0;
  seen.onBinding.length = 0;
});

async function signedIn() {
  const user = await createVerifiedUser();
  const res = await send('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: STRONG_PASSWORD } });
  expect(res.status).toBe(200);
  return { user, session: cookieFrom(res, COOKIES.session)!.pair, bookmark: cookieFrom(res, COOKIES.bookmark) };
}

let KEK = '';
const kek = () => KEK;
/** Another deployment's key-encryption key (32 zero bytes). */
const OTHER_KEK = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
beforeAll(async () => {
  KEK = (await depsFor(env)).config.keyEncryptionKey;
});

const BOOKMARK_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

describe('the session each request starts', () => {
  it('state changes and credential checks start on the primary; admin reads and the account page may read a replica', async () => {
    const { session } = await signedIn();
    expect(seen.starts).toEqual(['first-primary']);

    const ops = await adminClient(['admin:users:read']);
    seen.starts.length = 0;
    expect((await send('/auth/admin/v1/users?limit=5', { headers: { authorization: `Bearer ${ops.token}` } })).status).toBe(200);
    expect((await send('/auth/account', { headers: { cookie: session } })).status).toBe(200);
    expect((await send('/auth/api/me', { headers: { cookie: session } })).status).toBe(200);
    expect(seen.starts).toEqual(['first-unconstrained', 'first-unconstrained', 'first-unconstrained']);

    seen.starts.length = 0;
    await send('/auth/sign-in');
    await send('/auth/api/email-sign-in', { method: 'POST', json: { email: uniqueEmail('nobody') } });
    await send('/auth/token', { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x' }) });
    await send('/auth/userinfo', { headers: { authorization: 'Bearer x' } });
    expect(seen.starts).toEqual(['first-primary', 'first-primary', 'first-primary', 'first-primary']);
  });

  it('an admin read’s check of who is calling (grant, user, roles) runs on the primary, not in the replica session', async () => {
    const ops = await adminClient(['admin:users:read']);
    seen.onSession.length = 0;
    seen.onBinding.length = 0;
    expect((await send('/auth/admin/v1/users?limit=5', { headers: { authorization: `Bearer ${ops.token}` } })).status).toBe(200);
    expect(seen.starts).toEqual(['first-unconstrained']);
    expect(seen.onBinding.some((sql) => /client_resources/.test(sql))).toBe(true);
    expect(seen.onSession.some((sql) => /client_resources/.test(sql))).toBe(false);
    expect(seen.onSession.some((sql) => /from "users"/i.test(sql))).toBe(true);
  });

  it('the gateway opens no session (its hot path does no D1 work of a person’s)', async () => {
    await send(`${APP}/public/x`);
    expect(seen.starts).toEqual([]);
  });
});

describe('the bookmark, after a write', () => {
  it('a browser gets it in a Gatehouse cookie and its next replica read starts at it', async () => {
    const { session, bookmark } = await signedIn();
    expect(bookmark?.header).toMatch(/^__Host-gatehouse_d1_bookmark=[^;]+; Max-Age=300; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    const value = bookmark!.pair.slice(bookmark!.pair.indexOf('=') + 1);
    // Opaque to the browser: D1's bookmark is not in it in the clear.
    expect(value).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{8}/);
    const raw = (await openBookmark(kek(), value))!;
    expect(raw).toMatch(BOOKMARK_SHAPE);

    seen.starts.length = 0;
    const res = await send('/auth/account', { headers: { cookie: `${session}; ${bookmark!.pair}` } });
    expect(res.status).toBe(200);
    expect(seen.starts).toEqual([raw]);
    // A read hands none back.
    expect(cookieFrom(res, COOKIES.bookmark)).toBeUndefined();
  });

  it('an admin API caller gets it in x-d1-bookmark and, echoing it, reads at it', async () => {
    const ops = await adminClient(['admin:users:read', 'admin:users:write']);
    const auth = { authorization: `Bearer ${ops.token}` };
    seen.starts.length = 0;
    const made = await send('/auth/admin/v1/users', { method: 'POST', headers: auth, json: { email: uniqueEmail('made') } });
    expect(made.status).toBe(201);
    // A write through the admin API starts on the primary, like every state change.
    expect(seen.starts).toEqual(['first-primary']);
    const echoed = made.headers.get('x-d1-bookmark')!;
    const raw = (await openBookmark(kek(), echoed))!;
    expect(raw).toMatch(BOOKMARK_SHAPE);
    expect(made.headers.getSetCookie().join()).not.toContain(COOKIES.bookmark);

    seen.starts.length = 0;
    const { id } = (await made.json()) as { id: string };
    const read = await send(`/auth/admin/v1/users/${id}`, { headers: { ...auth, 'x-d1-bookmark': echoed } });
    expect(read.status).toBe(200);
    expect(seen.starts).toEqual([raw]);
  });

  it('a malformed, forged or oversized bookmark is ignored: the read starts on the primary and answers normally', async () => {
    const ops = await adminClient(['admin:users:read']);
    const real = '00000000-00000001-00000000-00000000000000000000000000000000';
    const sealed = await sealBookmark(kek(), real);
    const future = 'ffffffff-ffffffff-ffffffff-ffffffffffffffffffffffffffffffff';
    const flipped = `${sealed.slice(0, 20)}${sealed[20] === 'A' ? 'B' : 'A'}${sealed.slice(21)}`;
    for (const bad of [
      'garbage',
      '',
      ' ',
      future,
      real,
      flipped,
      `${sealed}x`,
      sealed.slice(0, -1),
      await sealBookmark(OTHER_KEK, future),
      await sealBookmark(kek(), 'not-a-bookmark'),
      await sealBookmark(kek(), `${real} `),
      `${sealed}${'A'.repeat(5000)}`,
    ]) {
      seen.starts.length = 0;
      const res = await send('/auth/admin/v1/users?limit=1', { headers: { authorization: `Bearer ${ops.token}`, 'x-d1-bookmark': bad } });
      expect(res.status, bad.slice(0, 40)).toBe(200);
      expect(seen.starts, bad.slice(0, 40)).toEqual(['first-primary']);
    }
    // The genuine one is taken.
    seen.starts.length = 0;
    await send('/auth/admin/v1/users?limit=1', { headers: { authorization: `Bearer ${ops.token}`, 'x-d1-bookmark': sealed } });
    expect(seen.starts).toEqual([real]);
  });

  it('a bookmark sealed by another deployment opens nowhere else', async () => {
    const bookmark = '00000000-00000002-00000000-00000000000000000000000000000000';
    expect(await openBookmark(kek(), await sealBookmark(OTHER_KEK, bookmark))).toBeNull();
    expect(await openBookmark(kek(), await sealBookmark(kek(), bookmark))).toBe(bookmark);
  });

  it('a sign-in for a known and an unknown address both get one (its presence tells nothing)', async () => {
    const user = await createVerifiedUser();
    for (const email of [user.email, uniqueEmail('nobody')]) {
      const res = await send('/auth/api/sign-in', { method: 'POST', json: { email, password: 'not the password at all' } });
      expect(res.status).toBe(401);
      expect(cookieFrom(res, COOKIES.bookmark), email).toBeDefined();
    }
  });
});

describe('one request’s session', () => {
  it('reads its own writes, and says it wrote; a read-only session does not', async () => {
    const email = uniqueEmail('session');
    const session = openSession(env.DB, 'first-unconstrained');
    await session.d1
      .prepare('INSERT INTO users (id, email, tier, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)')
      .bind(crypto.randomUUID(), email, 'free', Date.now())
      .run();
    expect(await session.d1.prepare('SELECT email FROM users WHERE email = ?').bind(email).first('email')).toBe(email);
    expect(session.wrote()).toBe(true);
    expect(session.bookmark()).toMatch(BOOKMARK_SHAPE);

    const reader = openSession(env.DB, 'first-unconstrained');
    expect(reader.bookmark()).toBeNull();
    expect(await reader.db.query.users.findFirst({ where: (u, { eq }) => eq(u.email, email) })).toMatchObject({ email });
    expect(reader.wrote()).toBe(false);
  });
});
