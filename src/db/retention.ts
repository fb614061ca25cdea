import { and, getTableColumns, inArray, lt, sql, type SQL } from 'drizzle-orm';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Database } from './client';
import {
  auditEvents,
  credentialFailures,
  emailChanges,
  emailSignIns,
  emailTokens,
  pushedAuthorizations,
  signInHistory,
  upstreamRequests,
  usedAssertions,
  webauthnChallenges,
} from './schema';

/** What the scheduled purge keeps, and how much it deletes at a time (docs/operations.md, "Retention"). */
export interface RetentionPolicy {
  /** Rows per DELETE statement. */
  batchSize: number;
  /** Rows per table per run, at most: a backlog is worked off over several runs, never in one huge delete. */
  maxRowsPerRun: number;
  /** Audit events older than this many days go; 0 keeps them forever. */
  auditDays: number;
  /** Sign-in history markers not seen for this many days go. */
  signInHistoryDays: number;
  /** How long a throttle counter counts (auth/throttle.ts THROTTLE.windowMs): past it, the row starts from zero anyway. */
  throttleWindowMs: number;
}

/**
 * How long an expired email link's row stays, so that a late click still hears "expired, ask for
 * a new one" rather than "invalid".
 */
export const EXPIRED_LINK_GRACE_MS = 24 * 3600_000;

const DAY_MS = 86_400_000;

export interface Purge {
  /** The table, as the run's counts and logs name it. */
  name: string;
  table: SQLiteTable;
  /** An indexed time column (migrations/0015): rows whose value is below the cutoff go. */
  column: SQLiteColumn;
  /** The cutoff at `now`, or null when the policy keeps these rows forever. */
  cutoff: (p: RetentionPolicy, now: number) => number | null;
  /**
   * Rows written to the archive bucket, when one is bound, before they are deleted: objects
   * `<prefix>/YYYY/MM/DD/<first-id>-<last-id>.jsonl`, by the integer primary key `id`.
   */
  archive?: { prefix: string; id: SQLiteColumn };
}

/**
 * Everything the scheduled handler purges — the single list. The reads that use these rows refuse
 * expired ones themselves, so a row that outlives its expiry until the next run is harmless.
 */
export const PURGES: Purge[] = [
  { name: 'email_sign_ins', table: emailSignIns, column: emailSignIns.expiresAt, cutoff: (_, now) => now - EXPIRED_LINK_GRACE_MS },
  // Verification links, reset links, and pending sign-ups with their password hashes.
  { name: 'email_tokens', table: emailTokens, column: emailTokens.expiresAt, cutoff: (_, now) => now - EXPIRED_LINK_GRACE_MS },
  // Address-change links (confirm and undo), used or not.
  { name: 'email_changes', table: emailChanges, column: emailChanges.expiresAt, cutoff: (_, now) => now - EXPIRED_LINK_GRACE_MS },
  { name: 'webauthn_challenges', table: webauthnChallenges, column: webauthnChallenges.expiresAt, cutoff: (_, now) => now },
  { name: 'upstream_requests', table: upstreamRequests, column: upstreamRequests.expiresAt, cutoff: (_, now) => now },
  { name: 'pushed_authorizations', table: pushedAuthorizations, column: pushedAuthorizations.expiresAt, cutoff: (_, now) => now },
  // RFC 7523 §3: a jti is remembered until its assertion expires; past that, jwtVerify refuses it anyway.
  { name: 'used_client_assertions', table: usedAssertions, column: usedAssertions.expiresAt, cutoff: (_, now) => now },
  // A counter untouched for a whole window counts from zero again (and any lock ended long before).
  {
    name: 'credential_failures',
    table: credentialFailures,
    column: credentialFailures.updatedAt,
    cutoff: (p, now) => now - p.throttleWindowMs,
  },
  {
    name: 'sign_in_history',
    table: signInHistory,
    column: signInHistory.lastSeenAt,
    cutoff: (p, now) => now - p.signInHistoryDays * DAY_MS,
  },
  {
    name: 'audit_events',
    table: auditEvents,
    column: auditEvents.createdAt,
    cutoff: (p, now) => (p.auditDays > 0 ? now - p.auditDays * DAY_MS : null),
    archive: { prefix: 'audit', id: auditEvents.id },
  },
];

const rowid = sql`rowid`;

/** One bounded batch: `DELETE … WHERE rowid IN (SELECT rowid … WHERE column < cutoff LIMIT n)`. */
export function purgeBatch(db: Database, purge: Purge, cutoff: number, limit: number) {
  const victims = db.select({ rowid }).from(purge.table).where(lt(purge.column, cutoff)).limit(limit);
  return db.delete(purge.table).where(inArray(rowid as SQL<number>, victims));
}

async function deleteBatch(db: Database, purge: Purge, cutoff: number, limit: number) {
  const deleted = (await purgeBatch(db, purge, cutoff, limit).run()).meta.changes ?? 0;
  return { taken: deleted, deleted };
}

/** One batch to export: the rows purgeBatch would delete (by the same index), in id order, keyed by column name. */
export function archiveBatch(db: Database, purge: Purge, cutoff: number, limit: number) {
  const columns = Object.fromEntries(Object.values(getTableColumns(purge.table)).map((c) => [c.name, c]));
  const victims = db.select({ rowid }).from(purge.table).where(lt(purge.column, cutoff)).limit(limit);
  return db
    .select(columns)
    .from(purge.table)
    .where(inArray(rowid as SQL<number>, victims))
    .orderBy(purge.archive!.id);
}

/** Deletes exactly the exported ids (one JSON parameter: D1 binds at most 100), still only below the cutoff. */
export function deleteArchived(db: Database, purge: Purge, cutoff: number, ids: number[]) {
  const exported = sql`(SELECT value FROM json_each(${JSON.stringify(ids)}))`;
  return db.delete(purge.table).where(and(inArray(purge.archive!.id, exported), lt(purge.column, cutoff)));
}

/** The object a batch goes to: the first row's day (UTC) and the batch's id range. */
function archiveKey(prefix: string, firstAt: number, firstId: number, lastId: number): string {
  const day = new Date(firstAt).toISOString().slice(0, 10).replaceAll('-', '/');
  return `${prefix}/${day}/${firstId}-${lastId}.jsonl`;
}

/** Thrown when the archive refuses a batch: nothing of it was deleted. */
class ArchiveFailed extends Error {}

/**
 * Exports one batch as JSON lines, then deletes those rows — only after the put succeeded, so no
 * row is deleted unexported. A retry after a failure reads the same rows and overwrites the same key.
 * Returns the rows read and deleted.
 */
async function exportBatch(db: Database, bucket: R2Bucket, purge: Purge, cutoff: number, limit: number) {
  const rows = await archiveBatch(db, purge, cutoff, limit).all();
  if (rows.length === 0) return { taken: 0, deleted: 0 };
  const ids = rows.map((r) => r[purge.archive!.id.name] as number);
  const key = archiveKey(purge.archive!.prefix, rows[0]![purge.column.name] as number, ids[0]!, ids.at(-1)!);
  const body = rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  try {
    const put = await bucket.put(key, body, { httpMetadata: { contentType: 'application/x-ndjson' } });
    if (!put) throw new Error('put returned null');
  } catch (e) {
    throw new ArchiveFailed(`${key}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const result = await deleteArchived(db, purge, cutoff, ids).run();
  return { taken: rows.length, deleted: result.meta.changes ?? 0 };
}

/**
 * Runs every purge in bounded batches, each table up to the per-run cap; returns the rows deleted
 * per table. With `archive` bound, a purge that has an archive exports each batch before deleting
 * it; a failed export stops that purge for this run (logged) and the others go on.
 */
export async function purgeExpired(
  db: Database,
  policy: RetentionPolicy,
  now: number,
  archive?: R2Bucket,
): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  for (const purge of PURGES) {
    const cutoff = purge.cutoff(policy, now);
    let total = 0;
    try {
      while (cutoff !== null && total < policy.maxRowsPerRun) {
        const limit = Math.min(policy.batchSize, policy.maxRowsPerRun - total);
        const batch =
          archive && purge.archive ? await exportBatch(db, archive, purge, cutoff, limit) : await deleteBatch(db, purge, cutoff, limit);
        total += batch.deleted;
        if (batch.taken < limit || batch.deleted === 0) break;
      }
    } catch (e) {
      if (!(e instanceof ArchiveFailed)) throw e;
      console.error(JSON.stringify({ event: 'retention_export_failed', table: purge.name, error: e.message }));
    }
    deleted[purge.name] = total;
  }
  return deleted;
}
