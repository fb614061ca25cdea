import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { THROTTLE, throttleKey } from '../../src/auth/throttle';
import { trimHistoryStatement } from '../../src/auth/risk';
import { createDb } from '../../src/db/client';
import { PURGES, purgeExpired, type RetentionPolicy } from '../../src/db/retention';
import type { Deps } from '../../src/deps';
import { appWith, uniqueEmail } from '../helpers';

/**
 * Retention (issue 17) on a frozen clock. The clock is set in 2001, so the purges here only ever
 * reach rows this file wrote: the other test files share the database.
 */

const DAY = 86_400_000;
const policy: RetentionPolicy = {
  batchSize: 500,
  maxRowsPerRun: 50_000,
  auditDays: 400,
  signInHistoryDays: 180,
  throttleWindowMs: THROTTLE.windowMs,
};
const db = createDb(env.DB);
const run = (sql: string, ...params: unknown[]) =>
  env.DB.prepare(sql)
    .bind(...params)
    .run();
const count = async (sql: string, ...params: unknown[]) =>
  (
    await env.DB.prepare(sql)
      .bind(...params)
      .first<{ n: number }>()
  )?.n ?? 0;

let seq = 0;
/** A fresh 2001 instant per test, so tests in this file never share rows. */
const frozenNow = () => 1_000_000_000_000 + ++seq * 1000 * DAY;

async function insertUser(now: number): Promise<string> {
  const id = crypto.randomUUID();
  await run('INSERT INTO users (id, email, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)', id, uniqueEmail('retained'), now);
  return id;
}

/** One row of each purged table, with its purge column at `at`; returns a query that finds it again. */
const rowOf: Record<string, (tag: string, at: number, userId: string) => Promise<[string, string]>> = {
  email_sign_ins: async (tag, at) => {
    await run(
      `INSERT INTO email_sign_ins (id, token_hash, code_hash, binding_hash, expires_at, created_at) VALUES (?1, ?1, 'c', 'b', ?2, ?2)`,
      tag,
      at,
    );
    return ['SELECT count(*) AS n FROM email_sign_ins WHERE id = ?', tag];
  },
  email_tokens: async (tag, at) => {
    // A pending sign-up: its password hash must not outlive the link.
    await run(
      `INSERT INTO email_tokens (token_hash, purpose, email, password_hash, expires_at, created_at) VALUES (?1, 'verify_email', 'a@example.com', '$argon2id$x', ?2, ?2)`,
      tag,
      at,
    );
    return ['SELECT count(*) AS n FROM email_tokens WHERE token_hash = ?', tag];
  },
  email_changes: async (tag, at, userId) => {
    await run(
      `INSERT INTO email_changes (token_hash, kind, user_id, binding_hash, old_email, new_email, expires_at, created_at) VALUES (?1, 'confirm', ?3, 'b', 'old@example.com', 'new@example.com', ?2, ?2)`,
      tag,
      at,
      userId,
    );
    return ['SELECT count(*) AS n FROM email_changes WHERE token_hash = ?', tag];
  },
  webauthn_challenges: async (tag, at) => {
    await run(`INSERT INTO webauthn_challenges (id, challenge, purpose, expires_at) VALUES (?1, 'c', 'authenticate', ?2)`, tag, at);
    return ['SELECT count(*) AS n FROM webauthn_challenges WHERE id = ?', tag];
  },
  upstream_requests: async (tag, at) => {
    await run(
      `INSERT INTO upstream_requests (state_hash, binding_hash, provider_id, code_verifier, intent, expires_at) VALUES (?1, 'b', 'p', 'v', 'sign_in', ?2)`,
      tag,
      at,
    );
    return ['SELECT count(*) AS n FROM upstream_requests WHERE state_hash = ?', tag];
  },
  pushed_authorizations: async (tag, at) => {
    await run(`INSERT INTO pushed_authorizations (id_hash, client_id, params, expires_at) VALUES (?1, 'c', '{}', ?2)`, tag, at);
    return ['SELECT count(*) AS n FROM pushed_authorizations WHERE id_hash = ?', tag];
  },
  used_client_assertions: async (tag, at) => {
    await run('INSERT INTO used_client_assertions (key, expires_at) VALUES (?1, ?2)', tag, at);
    return ['SELECT count(*) AS n FROM used_client_assertions WHERE key = ?', tag];
  },
  credential_failures: async (tag, at) => {
    await run('INSERT INTO credential_failures (key, failures, locked_until, updated_at) VALUES (?1, 9, 0, ?2)', tag, at);
    return ['SELECT count(*) AS n FROM credential_failures WHERE key = ?', tag];
  },
  sign_in_history: async (tag, at, userId) => {
    await run(
      'INSERT INTO sign_in_history (user_id, marker, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)',
      userId,
      `device:${tag}`,
      at,
    );
    return ['SELECT count(*) AS n FROM sign_in_history WHERE marker = ?', `device:${tag}`];
  },
  audit_events: async (tag, at) => {
    await run(`INSERT INTO audit_events (type, detail, created_at) VALUES ('sign_in_failed', ?1, ?2)`, tag, at);
    return ['SELECT count(*) AS n FROM audit_events WHERE detail = ?', tag];
  },
};

describe('retention purges (issue 17)', () => {
  it('covers every purged table in these tests', () => {
    expect(PURGES.map((p) => p.name).sort()).toEqual(Object.keys(rowOf).sort());
  });

  for (const purge of PURGES) {
    it(`${purge.name}: deletes the rows past the cutoff and keeps the one just inside`, async () => {
      const now = frozenNow();
      const cutoff = purge.cutoff(policy, now)!;
      const userId = await insertUser(now);
      const tag = crypto.randomUUID();
      const past = await rowOf[purge.name]!(`${tag}-past`, cutoff - 1, userId);
      const longPast = await rowOf[purge.name]!(`${tag}-long-past`, cutoff - 30 * DAY, userId);
      const inside = await rowOf[purge.name]!(`${tag}-inside`, cutoff, userId);
      const fresh = await rowOf[purge.name]!(`${tag}-fresh`, now + 60_000, userId);

      const deleted = await purgeExpired(db, policy, now);

      expect(deleted[purge.name]).toBeGreaterThanOrEqual(2);
      expect(await count(...past)).toBe(0);
      expect(await count(...longPast)).toBe(0);
      expect(await count(...inside)).toBe(1);
      expect(await count(...fresh)).toBe(1);
    });
  }

  it('works off a backlog in bounded batches, up to the cap per run', async () => {
    const now = frozenNow();
    const tag = crypto.randomUUID();
    for (let i = 0; i < 7; i++)
      await run('INSERT INTO used_client_assertions (key, expires_at) VALUES (?1, ?2)', `${tag}-${i}`, now - 1000 - i);
    const mine = () => count('SELECT count(*) AS n FROM used_client_assertions WHERE key LIKE ?', `${tag}-%`);

    const first = await purgeExpired(db, { ...policy, batchSize: 2, maxRowsPerRun: 5 }, now);
    expect(first.used_client_assertions).toBe(5);
    expect(await mine()).toBe(2);
    const second = await purgeExpired(db, { ...policy, batchSize: 2, maxRowsPerRun: 5 }, now);
    expect(second.used_client_assertions).toBe(2);
    expect(await mine()).toBe(0);
  });

  it('keeps audit events forever when RETENTION_AUDIT_DAYS is 0', async () => {
    const now = frozenNow();
    const tag = crypto.randomUUID();
    const ancient = await rowOf.audit_events!(tag, now - 5000 * DAY, '');
    const deleted = await purgeExpired(db, { ...policy, auditDays: 0 }, now);
    expect(deleted.audit_events).toBe(0);
    expect(await count(...ancient)).toBe(1);
  });

  it("an attacker's unknown-address spray from many IPs leaves no lasting rows; a counter inside its window stays", async () => {
    const t0 = frozenNow();
    const sprayed = Array.from({ length: 12 }, () => uniqueEmail('spray'));
    const at = (now: number) => appWith(() => ({ now: () => now }));
    const bindings: string[] = [];
    for (const [i, email] of sprayed.entries()) {
      // Each from its own IP (appWith picks a fresh /64 per request), half by password, half by email sign-in.
      if (i % 2 === 0) {
        const res = await at(t0)('/auth/api/sign-in', { method: 'POST', json: { email, password: 'guess-guess-guess' } });
        expect(res.status).toBe(401);
      } else {
        const res = await at(t0)('/auth/api/email-sign-in', { method: 'POST', json: { email } });
        expect(res.status).toBe(202);
        bindings.push(
          res.headers
            .getSetCookie()
            .find((h) => h.startsWith('__Host-gatehouse_email_signin='))!
            .split(/[=.;]/)[1]!,
        );
      }
    }
    const recent = uniqueEmail('recent');
    expect(
      (await at(t0 + 20 * 3600_000)('/auth/api/sign-in', { method: 'POST', json: { email: recent, password: 'guess-guess-guess' } }))
        .status,
    ).toBe(401);

    const keys = await Promise.all(sprayed.flatMap((e) => [throttleKey('sign_in', e), throttleKey('mail', e)]));
    const rowsLeft = async () =>
      (await count(`SELECT count(*) AS n FROM credential_failures WHERE key IN (${keys.map(() => '?').join(',')})`, ...keys)) +
      (await count(`SELECT count(*) AS n FROM email_sign_ins WHERE id IN (${bindings.map(() => '?').join(',')})`, ...bindings));
    expect(await rowsLeft()).toBe(12 + 6);

    // A day and a half later: past the throttle's window (24 h) and the email sign-ins' expiry and grace;
    // the counter touched 20 h after the spray is still inside its window.
    await purgeExpired(db, policy, t0 + 36 * 3600_000);

    expect(await rowsLeft()).toBe(0);
    expect(await count('SELECT count(*) AS n FROM credential_failures WHERE key = ?', await throttleKey('sign_in', recent))).toBe(1);
  });
});

describe('sign-in history per user (issue 17)', () => {
  const deps = (perKind: number) => ({ db, config: { retention: { signInHistoryPerKind: perKind } } }) as unknown as Deps;
  const markersOf = async (userId: string) =>
    (
      await env.DB.prepare('SELECT marker FROM sign_in_history WHERE user_id = ? ORDER BY marker').bind(userId).all<{ marker: string }>()
    ).results.map((r) => r.marker);

  it('keeps the newest markers of each kind and drops the rest, for that user only', async () => {
    const now = frozenNow();
    const [userId, other] = [await insertUser(now), await insertUser(now)];
    const add = (u: string, marker: string, at: number) =>
      run('INSERT INTO sign_in_history (user_id, marker, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)', u, marker, at);
    for (const [i, m] of ['device:a', 'device:b', 'device:c', 'device:d'].entries()) await add(userId, m, now - i * DAY);
    await add(userId, 'country:FR', now - 100 * DAY);
    await add(userId, 'country:DE', now - 200 * DAY);
    for (const [i, m] of ['device:a', 'device:b', 'device:c'].entries()) await add(other, m, now - i * DAY);

    await trimHistoryStatement(deps(2), userId).run();

    expect(await markersOf(userId)).toEqual(['country:DE', 'country:FR', 'device:a', 'device:b']);
    expect(await markersOf(other)).toEqual(['device:a', 'device:b', 'device:c']);
  });

  it('a sign-in through the route trims the history to the configured size', async () => {
    const { createVerifiedUser } = await import('../helpers');
    const user = await createVerifiedUser();
    for (let i = 0; i < 3; i++)
      await run(
        'INSERT INTO sign_in_history (user_id, marker, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)',
        user.userId,
        `device:old-${i}`,
        Date.now() - (i + 1) * DAY,
      );
    const app = appWith((d) => ({ config: { ...d.config, retention: { ...d.config.retention, signInHistoryPerKind: 1 } } }));
    const res = await app('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: user.password } });
    expect(res.status).toBe(200);
    const markers = await markersOf(user.userId);
    expect(markers).toHaveLength(1);
    expect(markers[0]).toMatch(/^device:[A-Za-z0-9_-]{43}$/);
  });
});
