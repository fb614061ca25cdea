import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { trimHistoryStatement } from '../../src/auth/risk';
import { createDb } from '../../src/db/client';
import { archiveBatch, deleteArchived, PURGES, purgeBatch } from '../../src/db/retention';
import { prune } from '../../src/admin/webhook-dispatch';
import type { Deps } from '../../src/deps';
import { findUserByEmail, findUserView } from '../../src/identity/users';
import { adminClient, BASE } from '../admin/helpers';
import { appWith, createVerifiedUser, lastMailTo, uniqueEmail } from '../helpers';
import { planOf, tracedD1, type Trace, type Traced } from './traced-d1';

/**
 * Issue 17: no hot statement reads a growing table whole. Each statement is planned on the real
 * local D1 (EXPLAIN QUERY PLAN, migrations applied, no statistics) — the statements the routes
 * actually send, recorded through a tracing D1, and the purges and lookups built from the same
 * Drizzle builders the code uses — and a `SCAN` of any table but the small operator-managed ones
 * fails the test. A walk along an index in its order under a LIMIT (a keyset page) is bounded and
 * allowed.
 */

/** Operator-managed configuration: a handful of rows, read whole and cached in the isolate. */
const SMALL = new Set([
  'oauth_clients',
  'api_resources',
  'client_resources',
  'identity_providers',
  'client_providers',
  'signing_keys',
  'webhook_endpoints',
  'webhook_event_types',
]);

let tables: Set<string>;
beforeAll(async () => {
  const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all<{ name: string }>();
  tables = new Set(results.map((r) => r.name));
  expect(tables.has('users')).toBe(true);
});

/** The plan lines that read a growing table whole. */
async function scansOf(s: Traced): Promise<string[]> {
  const plan = await planOf(env.DB, s);
  const keysetPage = /\border by\b[\s\S]*\blimit\b/i.test(s.sql) && !plan.some((l) => l.startsWith('USE TEMP B-TREE FOR ORDER BY'));
  return plan.filter((line) => {
    const m = /^SCAN (\w+)( USING (COVERING )?INDEX \w+)?/.exec(line);
    if (!m || !tables.has(m[1]!) || SMALL.has(m[1]!)) return false;
    return !(keysetPage && m[2]);
  });
}

async function expectNoScans(statements: Traced[]) {
  const found: string[] = [];
  for (const s of statements) for (const line of await scansOf(s)) found.push(`${line}  ←  ${s.sql}`);
  expect(found).toEqual([]);
}

/** Runs `flow` against the app with a tracing D1 and returns what it sent. */
async function traced(flow: (app: ReturnType<typeof appWith>) => Promise<void>): Promise<Trace> {
  const { d1, trace } = tracedD1(env.DB);
  await flow(appWith(() => ({ d1, db: createDb(d1) })));
  expect(trace.statements.length).toBeGreaterThan(0);
  return trace;
}

const db = createDb(env.DB);
const built = (q: { toSQL(): { sql: string; params: unknown[] } }): Traced => q.toSQL();

describe('query plans of the hot statements (issue 17)', () => {
  it('the scan check sees a scan: a purge on a column without an index', async () => {
    const unindexed = { sql: 'DELETE FROM credential_failures WHERE failures < ?', params: [3] };
    expect(await scansOf(unindexed)).toEqual(['SCAN credential_failures']);
  });

  it('every retention purge walks an index', async () => {
    const now = Date.now();
    const statements = PURGES.map((p) => built(purgeBatch(db, p, now, 500)));
    expect(statements).toHaveLength(PURGES.length);
    await expectNoScans(statements);
  });

  it('the audit archive reads each batch by the purge index and deletes exactly its ids by primary key', async () => {
    const audit = PURGES.find((p) => p.archive)!;
    const now = Date.now();
    const read = built(archiveBatch(db, audit, now, 500));
    const del = built(deleteArchived(db, audit, now, [1, 2, 3]));
    expect(await planOf(env.DB, read)).toEqual(expect.arrayContaining([expect.stringContaining('INDEX audit_events_created_idx')]));
    expect(await planOf(env.DB, del)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^SEARCH audit_events USING INTEGER PRIMARY KEY/)]),
    );
    await expectNoScans([read, del]);
  });

  it("the webhook sweep's prune of old deliveries and events walks an index", async () => {
    const { d1, trace } = tracedD1(env.DB);
    await prune({ d1, now: () => Date.now() } as unknown as Deps);
    expect(trace.statements.map((s) => s.sql)).toEqual([
      expect.stringMatching(/^DELETE FROM webhook_deliveries/),
      expect.stringMatching(/^DELETE FROM webhook_events/),
    ]);
    await expectNoScans(trace.statements);
  });

  it('user by email, user and roles, the sign-in history trim', async () => {
    const deps = { db, config: { retention: { signInHistoryPerKind: 20 } } } as unknown as Deps;
    const { d1, trace } = tracedD1(env.DB);
    const tracedDb = createDb(d1);
    await findUserByEmail(tracedDb, 'nobody@example.com');
    await findUserView(tracedDb, 'no-such-user');
    await expectNoScans([...trace.statements, built(trimHistoryStatement(deps, 'no-such-user'))]);
  });

  it('password sign-in, right and wrong, known and unknown address', async () => {
    const user = await createVerifiedUser();
    const trace = await traced(async (app) => {
      expect((await app('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: 'wrong password!' } })).status).toBe(
        401,
      );
      expect(
        (await app('/auth/api/sign-in', { method: 'POST', json: { email: uniqueEmail('nobody'), password: 'x'.repeat(12) } })).status,
      ).toBe(401);
      const ok = await app('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: user.password } });
      expect(ok.status).toBe(200);
      const cookie = ok.headers
        .getSetCookie()
        .map((h) => h.split(';')[0])
        .join('; ');
      expect((await app('/auth/api/me', { cookie })).status).toBe(200);
    });
    await expectNoScans(trace.statements);
  });

  it('email sign-in: request (known and unknown), code, and passkey options', async () => {
    const user = await createVerifiedUser();
    const trace = await traced(async (app) => {
      const asked = await app('/auth/api/email-sign-in', { method: 'POST', json: { email: user.email } });
      expect(asked.status).toBe(202);
      expect((await app('/auth/api/email-sign-in', { method: 'POST', json: { email: uniqueEmail('nobody') } })).status).toBe(202);
      const code = /code: (\d{4}) (\d{4})/
        .exec((await lastMailTo(user.email)).text)!
        .slice(1)
        .join('');
      const cookie = asked.headers
        .getSetCookie()
        .map((h) => h.split(';')[0])
        .join('; ');
      expect((await app('/auth/api/email-sign-in/code', { method: 'POST', json: { code }, cookie })).status).toBe(200);
      expect((await app('/auth/api/passkeys/authentication-options', { method: 'POST', json: {} })).status).toBe(200);
    });
    await expectNoScans(trace.statements);
  });

  it('sign-up and password reset requests', async () => {
    const user = await createVerifiedUser();
    const trace = await traced(async (app) => {
      const up = await app('/auth/api/sign-up', {
        method: 'POST',
        json: { email: uniqueEmail('new'), password: 'another long passphrase 7' },
      });
      expect(up.status).toBe(202);
      expect((await app('/auth/api/forgot-password', { method: 'POST', json: { email: user.email } })).status).toBe(202);
    });
    await expectNoScans(trace.statements);
  });

  it('the admin audit list by user, type, client and time, and unfiltered (a keyset page)', async () => {
    const admin = await adminClient(['admin:audit:read']);
    const user = await createVerifiedUser();
    const now = Date.now();
    const trace = await traced(async (app) => {
      for (const query of [
        `user_id=${user.userId}`,
        'type=sign_in',
        'type=sign_in&type=sign_up',
        `client_id=${admin.clientId}`,
        `since=${now - 3600_000}&until=${now + 1}`,
        '',
      ]) {
        const res = await app(`${BASE}/audit-events?${query}`, { headers: { authorization: `Bearer ${admin.token}` } });
        expect(res.status, `${query}: ${await res.clone().text()}`).toBe(200);
      }
    });
    await expectNoScans(trace.statements.filter((s) => /audit_events/.test(s.sql)));
  });
});
