import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { appWith, recordingD1 } from '../helpers';
import { adminClient } from './helpers';

/**
 * Every user search walks an index in its own order and stops after a page (bench/users.ts
 * measures it): checked on the query plans of the SQL the API really runs, with statistics like a
 * production table's (few tiers, many users each), in a database of its own.
 */

let ops: Awaited<ReturnType<typeof adminClient>>;
beforeAll(async () => {
  ops = await adminClient(['admin:users:read']);
});

describe('search plans', () => {
  it('every search walks an index in its order (no full scan, no sort of the whole table)', async () => {
    // Statistics as a production table has them: few tiers, many users each (the planner may then
    // prefer walking users_created_idx and filtering, a scan for a rare tier).
    await env.DB.prepare(
      "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < 19999) INSERT INTO users (id, email, tier, created_at, updated_at) SELECT 'plan-' || i, 'plan-' || i || '@plan.example', CASE WHEN i % 2 THEN 'free' ELSE 'silver' END, i, i FROM s",
    ).run();
    await env.DB.prepare('ANALYZE').run();
    const log: string[] = [];
    const recorded = appWith(() => ({ db: createDb(recordingD1(env.DB, log)) }));
    const queries = [
      'email=a@b.example',
      'email_prefix=ab',
      'role=auditor',
      'tier=gold',
      'tier=gold&created_since=5&created_until=9',
      'created_since=5&created_until=9',
      'last_sign_in_since=5&last_sign_in_until=9',
      'limit=10',
    ];
    for (const query of queries) {
      log.length = 0;
      const res = await recorded(`/auth/admin/v1/users?${query}`, { headers: { authorization: `Bearer ${ops.token}` } });
      expect(res.status, query).toBe(200);
      const search = log.find((q) => /^select .* from "users"/i.test(q) && /order by/i.test(q))!;
      expect(search, query).toBeDefined();
      const params = Array.from(search.matchAll(/\?/g), () => 1); // the plan does not depend on the values
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${search}`)
        .bind(...params)
        .all<{ detail: string }>();
      const plan = results.map((r) => r.detail).join(' | ');
      expect(plan, `${query}: ${plan}`).not.toMatch(/SCAN users(?! USING INDEX users_created_idx)|USE TEMP B-TREE FOR ORDER BY/);
      // Only the unfiltered list walks users_created_idx from its end; every filter searches an index.
      if (query !== 'limit=10') expect(plan, `${query}: ${plan}`).toMatch(/SEARCH/);
      if (query.startsWith('tier=')) expect(plan).toContain('users_tier_idx');
    }
  });
});
