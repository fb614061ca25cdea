import { inArray, lt, sql, type SQL } from 'drizzle-orm';
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
  },
];

const rowid = sql`rowid`;

/** One bounded batch: `DELETE … WHERE rowid IN (SELECT rowid … WHERE column < cutoff LIMIT n)`. */
export function purgeBatch(db: Database, purge: Purge, cutoff: number, limit: number) {
  const victims = db.select({ rowid }).from(purge.table).where(lt(purge.column, cutoff)).limit(limit);
  return db.delete(purge.table).where(inArray(rowid as SQL<number>, victims));
}

/** Runs every purge in bounded batches, each table up to the per-run cap; returns the rows deleted per table. */
export async function purgeExpired(db: Database, policy: RetentionPolicy, now: number): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  for (const purge of PURGES) {
    const cutoff = purge.cutoff(policy, now);
    let total = 0;
    while (cutoff !== null && total < policy.maxRowsPerRun) {
      const limit = Math.min(policy.batchSize, policy.maxRowsPerRun - total);
      const result = await purgeBatch(db, purge, cutoff, limit).run();
      const changes = result.meta.changes ?? 0;
      total += changes;
      if (changes < limit) break;
    }
    deleted[purge.name] = total;
  }
  return deleted;
}
