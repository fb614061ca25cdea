import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { THROTTLE } from '../../src/auth/throttle';
import { createDb } from '../../src/db/client';
import { purgeExpired, type RetentionPolicy } from '../../src/db/retention';

/**
 * The audit archive (issue 17): audit events past retention are exported to R2 (AUDIT_ARCHIVE,
 * miniflare's bucket in vitest.config.ts) before they are deleted. Frozen clocks in the 1970s and
 * 80s, each test's earlier than everything the tests before it wrote: a purge here reaches only its
 * own test's rows (test/db/retention.test.ts writes from 1990 on, the rest of the suite today).
 */

const DAY = 86_400_000;
const policy: RetentionPolicy = {
  batchSize: 2,
  maxRowsPerRun: 50_000,
  auditDays: 400,
  signInHistoryDays: 180,
  throttleWindowMs: THROTTLE.windowMs,
};
const db = createDb(env.DB);
const bucket = env.AUDIT_ARCHIVE!;

let seq = 0;
const frozenNow = () => 500_000_000_000 - ++seq * 1000 * DAY;
const cutoffOf = (now: number) => now - policy.auditDays * DAY;

type AuditRow = Record<string, unknown> & { id: number; detail: string; created_at: number };

/** An audit event with every column set; returns its row as D1 holds it. */
async function insertEvent(tag: string, at: number): Promise<AuditRow> {
  return (await env.DB.prepare(
    `INSERT INTO audit_events (type, user_id, ip, user_agent, detail, client_id, actor, created_at)
     VALUES ('sign_in', ?1, '203.0.113.7', 'Mozilla/5.0 (test)', ?2, 'app-1', 'user:admin', ?3) RETURNING *`,
  )
    .bind(`user-${tag}`, JSON.stringify({ tag }), at)
    .first<AuditRow>())!;
}

const countBefore = async (cutoff: number) =>
  (await env.DB.prepare('SELECT count(*) AS n FROM audit_events WHERE created_at < ?').bind(cutoff).first<{ n: number }>())!.n;
const rowsTagged = async (tag: string) =>
  (await env.DB.prepare('SELECT * FROM audit_events WHERE user_id = ? ORDER BY id').bind(`user-${tag}`).all<AuditRow>()).results;

async function archiveKeys(): Promise<Set<string>> {
  const keys = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: 'audit/', ...(cursor ? { cursor } : {}) });
    for (const o of page.objects) keys.add(o.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** The objects written since `before`, each with its parsed lines. */
async function objectsSince(before: Set<string>): Promise<{ key: string; rows: AuditRow[] }[]> {
  const out = [];
  for (const key of [...(await archiveKeys())].filter((k) => !before.has(k)).sort()) {
    const text = await (await bucket.get(key))!.text();
    expect(text.endsWith('\n')).toBe(true);
    out.push({
      key,
      rows: text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as AuditRow),
    });
  }
  return out;
}

/** Old rows (three, past the cutoff) and rows inside the window (two), all tagged. */
async function seed(now: number) {
  const tag = crypto.randomUUID();
  const cutoff = cutoffOf(now);
  const old = [await insertEvent(tag, cutoff - 400 * DAY), await insertEvent(tag, cutoff - 30 * DAY), await insertEvent(tag, cutoff - 1)];
  const inside = [await insertEvent(tag, cutoff), await insertEvent(tag, now)];
  return { tag, old, inside };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('audit archive (issue 17)', () => {
  it('exports old audit events to R2 as JSON lines, every column as stored, then deletes them; the window stays', async () => {
    const now = frozenNow();
    const { tag, old, inside } = await seed(now);
    const before = await archiveKeys();

    const deleted = await purgeExpired(db, policy, now, bucket);

    expect(deleted.audit_events).toBe(3);
    expect(await rowsTagged(tag)).toEqual(inside);
    const objects = await objectsSince(before);
    const exported = objects.flatMap((o) => o.rows);
    // Exactly the old rows, field for field (IP and user agent included), and none inside the window.
    expect(exported).toEqual(old);
    expect(objects).toHaveLength(2);
    for (const { key, rows } of objects) {
      // Batches of two: one object per batch, its rows in id order, named by its first row's day and id range.
      expect(rows.length).toBeLessThanOrEqual(policy.batchSize);
      expect(rows.map((r) => r.id)).toEqual(rows.map((r) => r.id).sort((a, b) => a - b));
      const day = new Date(rows[0]!.created_at).toISOString().slice(0, 10).replaceAll('-', '/');
      expect(key).toBe(`audit/${day}/${rows[0]!.id}-${rows.at(-1)!.id}.jsonl`);
    }
    // What was exported is gone from D1.
    const ids = exported.map((r) => r.id);
    const left = await env.DB.prepare(`SELECT count(*) AS n FROM audit_events WHERE id IN (SELECT value FROM json_each(?))`)
      .bind(JSON.stringify(ids))
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it('a failing bucket deletes nothing (logged, the other purges go on); the next run exports and deletes', async () => {
    const now = frozenNow();
    const { tag, old, inside } = await seed(now);
    const expiredJti = `jti-${tag}`;
    await env.DB.prepare('INSERT INTO used_client_assertions (key, expires_at) VALUES (?1, ?2)')
      .bind(expiredJti, now - 1)
      .run();
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const failing = { ...bucket, put: () => Promise.reject(new Error('R2 is down')) } as unknown as R2Bucket;
    const before = await archiveKeys();

    const deleted = await purgeExpired(db, policy, now, failing);

    expect(deleted.audit_events).toBe(0);
    expect(await rowsTagged(tag)).toEqual([...old, ...inside]);
    expect(await countBefore(cutoffOf(now))).toBe(3);
    expect(deleted.used_client_assertions).toBeGreaterThanOrEqual(1);
    const jti = await env.DB.prepare('SELECT count(*) AS n FROM used_client_assertions WHERE key = ?')
      .bind(expiredJti)
      .first<{ n: number }>();
    expect(jti?.n).toBe(0);
    expect(errors).toHaveBeenCalledTimes(1);
    const logged = JSON.parse(String(errors.mock.calls[0]![0])) as Record<string, string>;
    expect(logged).toMatchObject({ event: 'retention_export_failed', table: 'audit_events' });
    expect(logged.error).toMatch(/^audit\/\d{4}\/\d{2}\/\d{2}\/\d+-\d+\.jsonl: R2 is down$/);

    expect((await purgeExpired(db, policy, now, bucket)).audit_events).toBe(3);
    expect(await rowsTagged(tag)).toEqual(inside);
    expect((await objectsSince(before)).flatMap((o) => o.rows)).toEqual(old);
  });

  it('a run that exported but could not delete is retried into the same objects', async () => {
    const now = frozenNow();
    const { tag, old, inside } = await seed(now);
    const puts: string[] = [];
    const recording = {
      put: (key: string, body: string, o: R2PutOptions) => {
        puts.push(key);
        return bucket.put(key, body, o);
      },
    } as unknown as R2Bucket;
    // D1 refuses the audit DELETE once: the first batch's object is written, no row goes.
    const refusing = new Proxy(env.DB, {
      get(d1, p) {
        if (p === 'prepare')
          return (sql: string) => {
            if (/^delete from "audit_events"/i.test(sql)) throw new Error('D1 is down');
            return d1.prepare(sql);
          };
        const v = Reflect.get(d1, p, d1);
        return typeof v === 'function' ? v.bind(d1) : v;
      },
    });
    await expect(purgeExpired(createDb(refusing), policy, now, recording)).rejects.toThrow('D1 is down');
    expect(await rowsTagged(tag)).toEqual([...old, ...inside]);
    expect(puts).toHaveLength(1);
    const first = await (await bucket.get(puts[0]!))!.text();

    await purgeExpired(db, policy, now, recording);
    expect(puts).toHaveLength(3);
    expect(puts[1]).toBe(puts[0]);
    expect(await (await bucket.get(puts[0]!))!.text()).toBe(first);
    expect(await rowsTagged(tag)).toEqual(inside);
  });

  it('without the binding, old audit events are deleted and nothing is exported', async () => {
    const now = frozenNow();
    const { tag, inside } = await seed(now);
    const before = await archiveKeys();

    const deleted = await purgeExpired(db, policy, now);

    expect(deleted.audit_events).toBe(3);
    expect(await rowsTagged(tag)).toEqual(inside);
    expect(await objectsSince(before)).toEqual([]);
  });

  it('the hourly cron exports through the bound AUDIT_ARCHIVE (last here: it purges on the real clock)', async () => {
    const { createScheduledController } = await import('cloudflare:test');
    const worker = (await import('../../src/index')).default;
    const tag = crypto.randomUUID();
    const old = await insertEvent(tag, Date.now() - 500 * DAY);
    const before = await archiveKeys();

    await worker.scheduled(createScheduledController({ cron: '17 * * * *' }), env);

    expect(await rowsTagged(tag)).toEqual([]);
    expect((await objectsSince(before)).flatMap((o) => o.rows)).toContainEqual(old);
  });
});
