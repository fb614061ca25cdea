import { and, eq, isNotNull, isNull, sql, type SQL } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import type { Database } from '../db/client';
import { auditEvents, emailTokens, upstreamRequests, userRoles, users, webauthnChallenges } from '../db/schema';
import { auditInsert, auditInsertWhile, type RequestMeta } from './audit';
import { type ProfileChange, profileColumns } from './profile';

/**
 * The writes that create and change a user record, built once and run by every caller — the admin
 * API (a D1 batch) and the users CLI (the same statements' SQL through `wrangler d1 execute`) — so
 * a rule is never written twice. Each list ends with its audit event, whose trigger
 * (migrations/0013) snapshots the user as the change left them for the webhook.
 */

/** Who made a change: `client:<id>` / `user:<id>` (admin API), `cli` (the users CLI), or null (the user). */
export interface ChangeBy {
  actor: string | null;
  meta: RequestMeta;
  /** Extra audit detail (e.g. the acting client's `clientId`). */
  detail?: Record<string, unknown>;
}

export type Statement = BatchItem<'sqlite'>;

export interface NewUser {
  id: string;
  email: string;
  /** A PHC string (the caller hashed it under the password policy), or null for none. */
  passwordHash: string | null;
  emailVerified: boolean;
  roles: readonly string[];
  tier: string;
  profile?: ProfileChange;
  appMetadata?: Record<string, unknown>;
  userMetadata?: Record<string, unknown>;
}

/** Inserts the user and their roles, then audits `user_created`. The unique address makes a taken one fail the batch. */
export function newUserStatements(db: Database, u: NewUser, by: ChangeBy, now: number): Statement[] {
  return [
    db.insert(users).values({
      id: u.id,
      email: u.email,
      emailVerifiedAt: u.emailVerified ? now : null,
      passwordHash: u.passwordHash,
      tier: u.tier,
      ...(u.profile ? profileColumns(u.profile, now) : {}),
      appMetadata: JSON.stringify(u.appMetadata ?? {}),
      userMetadata: JSON.stringify(u.userMetadata ?? {}),
      createdAt: now,
      updatedAt: now,
    }),
    ...[...new Set(u.roles)].map((role) => db.insert(userRoles).values({ userId: u.id, role })),
    auditInsert(db, {
      type: 'user_created',
      userId: u.id,
      actor: by.actor,
      meta: by.meta,
      detail: { ...by.detail, emailVerified: u.emailVerified, password: u.passwordHash !== null, roles: [...new Set(u.roles)].sort() },
      at: now,
    }),
  ];
}

export interface UserChange {
  email?: string;
  /** true: verified now; false: not verified (a new link is on its way, or the operator says so). */
  emailVerified?: boolean;
  roles?: readonly string[];
  tier?: string;
  profile?: ProfileChange;
  appMetadata?: Record<string, unknown>;
  userMetadata?: Record<string, unknown>;
  /** Profile attribute values to set, a merge patch (RFC 7396): null removes one. */
  attributes?: Record<string, unknown>;
}

/** The names of the fields a change sets, as the audit event lists them (never their values). */
export function changedFields(c: UserChange): string[] {
  return [
    ...(c.email !== undefined ? ['email'] : []),
    ...(c.emailVerified !== undefined ? ['email_verified'] : []),
    ...(c.roles !== undefined ? ['roles'] : []),
    ...(c.tier !== undefined ? ['tier'] : []),
    ...Object.keys(c.profile ?? {}).map((k) => `profile.${k}`),
    ...(c.appMetadata !== undefined ? ['app_metadata'] : []),
    ...(c.userMetadata !== undefined ? ['user_metadata'] : []),
    ...Object.keys(c.attributes ?? {}).map((k) => `attributes.${k}`),
  ];
}

/**
 * Applies a change to an existing user and audits `user_updated` with the names of the fields
 * changed. A new address voids every link mailed before (a verification link for the old address
 * must never verify the new one); a new role set replaces the old one whole.
 */
export function userChangeStatements(db: Database, userId: string, c: UserChange, by: ChangeBy, now: number): Statement[] {
  const exists = eq(users.id, userId);
  return [
    db
      .update(users)
      .set({
        ...(c.email !== undefined ? { email: c.email } : {}),
        ...(c.emailVerified !== undefined ? { emailVerifiedAt: c.emailVerified ? now : null } : {}),
        ...(c.tier !== undefined ? { tier: c.tier } : {}),
        ...(c.profile ? profileColumns(c.profile, now) : {}),
        ...(c.appMetadata !== undefined ? { appMetadata: JSON.stringify(c.appMetadata) } : {}),
        ...(c.userMetadata !== undefined ? { userMetadata: JSON.stringify(c.userMetadata) } : {}),
        ...(c.attributes !== undefined
          ? { profileAttributes: sql`json_patch(${users.profileAttributes}, ${JSON.stringify(c.attributes)})` }
          : {}),
        updatedAt: now,
      })
      .where(exists),
    ...(c.email !== undefined ? [db.delete(emailTokens).where(eq(emailTokens.userId, userId))] : []),
    ...(c.roles !== undefined
      ? [
          db.delete(userRoles).where(eq(userRoles.userId, userId)),
          ...[...new Set(c.roles)].map((role) => db.insert(userRoles).values({ userId, role })),
        ]
      : []),
    auditInsertWhile(
      db,
      { type: 'user_updated', userId, actor: by.actor, meta: by.meta, detail: { ...by.detail, fields: changedFields(c) }, at: now },
      users,
      exists,
    ),
  ];
}

/**
 * Blocks (`blocked: true`) or unblocks the record and audits `user_blocked` / `user_unblocked` —
 * only when it changes, so repeating either is harmless. The event comes after the change (its
 * webhook shows the user as blocked, or not), recognised by the time the change wrote.
 */
export function blockedStatements(db: Database, userId: string, blocked: boolean, by: ChangeBy, now: number): Statement[] {
  const id = eq(users.id, userId);
  const changed: SQL = blocked ? and(id, eq(users.blockedAt, now))! : and(id, isNull(users.blockedAt), eq(users.updatedAt, now))!;
  return [
    db
      .update(users)
      .set({ blockedAt: blocked ? now : null, updatedAt: now })
      .where(and(id, blocked ? isNull(users.blockedAt) : isNotNull(users.blockedAt))),
    auditInsertWhile(
      db,
      {
        type: blocked ? 'user_blocked' : 'user_unblocked',
        userId,
        actor: by.actor,
        meta: by.meta,
        ...(by.detail ? { detail: by.detail } : {}),
        at: now,
      },
      users,
      changed,
    ),
  ];
}

/**
 * Deletes the user: the audit event first (its webhook carries the user as they were), then the
 * record — every row that references it goes with it (foreign keys, ON DELETE CASCADE) — and the
 * short-lived rows that name the user without a foreign key. Audit events stay, for security and
 * until their retention ends, but pseudonymised (docs/privacy.md, "Account deletion"): the random user
 * id no longer leads to anyone, and the IP address, user agent and any address in the detail go.
 */
export function deleteUserStatements(db: Database, userId: string, by: ChangeBy, now: number): Statement[] {
  const exists = eq(users.id, userId);
  return [
    auditInsertWhile(
      db,
      { type: 'user_deleted', userId, actor: by.actor, meta: by.meta, ...(by.detail ? { detail: by.detail } : {}), at: now },
      users,
      exists,
    ),
    db
      .update(auditEvents)
      .set({ ip: null, userAgent: null, detail: sql`json_remove(${auditEvents.detail}, '$.email', '$.oldEmail', '$.newEmail', '$.to')` })
      .where(eq(auditEvents.userId, userId)),
    db.delete(users).where(exists),
    db.delete(webauthnChallenges).where(eq(webauthnChallenges.userId, userId)),
    db.delete(upstreamRequests).where(eq(upstreamRequests.userId, userId)),
  ];
}

/** Runs statements as one D1 batch (one transaction: all or nothing). */
export const runStatements = (db: Database, statements: Statement[]) => db.batch(statements as [Statement, ...Statement[]]);
