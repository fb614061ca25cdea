import type { SQL } from 'drizzle-orm';
import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Deps } from '../deps';
import { auditInsertWhile, type AuditEvent } from '../identity/audit';
import { describeError, failClosed, GatehouseError, unavailable } from '../lib/errors';
import type { RequestMeta } from '../lib/request-meta';
import { actorName, type Actor } from './operations';

/** Pieces the configuration operations (clients, APIs, providers, API keys) share. */

type Batch = Parameters<Deps['db']['batch']>[0];

/**
 * The audit event of a configuration change made through the admin API: `admin_change`, what was
 * done in `detail.action`, who did it in `actor` (a `clientId` in the detail also fills the
 * event's client_id, so `GET /audit-events?client_id=` finds a client's changes).
 */
export const configChange = (
  actor: Actor,
  meta: RequestMeta,
  at: number,
  action: string,
  detail: Record<string, unknown>,
  userId?: string | null,
): AuditEvent => ({ type: 'admin_change', actor: actorName(actor), meta, at, userId: userId ?? null, detail: { action, ...detail } });

/**
 * Runs the batch that creates a record (and its audit event). A record with the same key — one
 * that was there, or one another call made a moment ago — is a 409 naming `field`, and nothing of
 * the batch is written.
 */
export async function createOrConflict(deps: Deps, statements: Batch, conflict: { message: string; field: string }): Promise<void> {
  try {
    await deps.db.batch(statements);
  } catch (e) {
    if (/UNIQUE constraint failed/i.test(describeError(e)))
      throw new GatehouseError('conflict', conflict.message, { field: conflict.field });
    throw unavailable('the database', e);
  }
}

/**
 * A change to one record (`change`, which returns the rows it touched, then `more`), with its
 * audit event written in the same batch exactly when `guard` on `table` holds. True if `change`
 * touched a row.
 */
export async function auditedChange(
  deps: Deps,
  event: AuditEvent,
  on: { table: SQLiteTable; guard: SQL },
  change: Batch[number],
  ...more: Batch[number][]
): Promise<boolean> {
  const [, changed] = await failClosed('the database', () =>
    deps.db.batch([auditInsertWhile(deps.db, event, on.table, on.guard), change, ...more] as unknown as Batch),
  );
  return (changed as unknown[]).length > 0;
}

/** 404 for a record the path names that does not exist. */
export const notFound = (what: string) => new GatehouseError('not_found', `No ${what} with this id.`);
