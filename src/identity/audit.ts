import { sql, type SQL } from 'drizzle-orm';
import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import type { Database } from '../db/client';
import { auditEvents } from '../db/schema';
import type { RequestMeta } from '../lib/request-meta';

export type AuditType =
  | 'sign_up_requested'
  | 'sign_up'
  | 'sign_in'
  | 'sign_in_failed'
  | 'sign_out'
  | 'email_verified'
  | 'password_reset_requested'
  | 'password_reset'
  | 'session_revoked'
  | 'sessions_revoked_all'
  | 'authorization_granted'
  | 'consent_granted'
  | 'mfa_enrolled'
  | 'mfa_disabled'
  | 'recovery_codes_regenerated'
  | 'second_factor_failed'
  | 'step_up'
  | 'sign_in_risk'
  | 'passkey_added'
  | 'passkey_removed'
  | 'passkey_rejected'
  | 'email_sign_in_requested'
  | 'request_held'
  | 'request_replayed'
  | 'handoff_approved'
  | 'handoff_denied'
  | 'handoff_redeemed'
  | 'proof_failed'
  | 'mail_suppressed'
  | 'app_session_started'
  | 'client_registered'
  | 'client_updated'
  | 'client_deleted'
  | 'identity_linked'
  | 'identity_unlinked'
  | 'identity_link_requested'
  | 'sign_in_locked'
  | 'user_created'
  | 'user_updated'
  | 'user_blocked'
  | 'user_unblocked'
  | 'user_deleted'
  | 'consent_revoked'
  | 'password_changed'
  | 'purpose_consent_changed'
  | 'data_exported'
  | 'deletion_scheduled'
  | 'deletion_cancelled'
  | 'email_change_requested'
  | 'email_changed'
  | 'email_change_undone'
  | 'admin_change'
  | 'admin_read';

export type { RequestMeta };

export interface AuditEvent {
  type: AuditType;
  userId?: string | null;
  meta: RequestMeta;
  /** Event-specific fields; never a password, token or secret. A `clientId` here is also kept in its own column. */
  detail?: Record<string, unknown>;
  /** Who acted, when not the user: `client:<id>` or `user:<id>` through the admin API. */
  actor?: string | null;
  at: number;
}

const columnsOf = (e: AuditEvent) => ({
  type: e.type,
  userId: e.userId ?? null,
  ip: e.meta.ip,
  userAgent: e.meta.userAgent?.slice(0, 256) ?? null,
  detail: e.detail ? JSON.stringify(e.detail) : null,
  clientId: typeof e.detail?.clientId === 'string' ? e.detail.clientId : null,
  actor: e.actor ?? null,
  createdAt: e.at,
});

/** The insert for an audit event, to run alone or inside a batch with the change it records. */
export function auditInsert(db: Database, e: AuditEvent) {
  return db.insert(auditEvents).values(columnsOf(e));
}

/**
 * The insert for an event of a change that may lose a race (it is conditional on `guard`, a
 * condition on `table`): batched before the change and under the same condition, it is written
 * exactly when the change is.
 */
export function auditInsertWhile(db: Database, e: AuditEvent, table: SQLiteTable, guard: SQL) {
  const c = columnsOf(e);
  return db.insert(auditEvents).select((qb) =>
    qb
      .select({
        id: sql<number>`NULL`.as('id'),
        type: sql<string>`${c.type}`.as('type'),
        userId: sql<string | null>`${c.userId}`.as('user_id'),
        ip: sql<string | null>`${c.ip}`.as('ip'),
        userAgent: sql<string | null>`${c.userAgent}`.as('user_agent'),
        detail: sql<string | null>`${c.detail}`.as('detail'),
        clientId: sql<string | null>`${c.clientId}`.as('client_id'),
        actor: sql<string | null>`${c.actor}`.as('actor'),
        createdAt: sql<number>`${c.createdAt}`.as('created_at'),
      })
      .from(table)
      .where(guard)
      .limit(1),
  );
}

export const audit = async (db: Database, e: AuditEvent) => {
  await auditInsert(db, e);
};
