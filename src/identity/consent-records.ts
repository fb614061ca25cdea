import { desc, eq, inArray, sql } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import type { Database } from '../db/client';
import { consentRecords } from '../db/schema';
import { GatehouseError } from '../lib/errors';
import { auditInsert, type RequestMeta } from './audit';
import type { Purpose } from './consent-purposes';

/** A configured purpose and the person's latest answer to it. */
export interface PurposeState extends Purpose {
  /** The newest answer (any version), or null when never asked. */
  answer: { version: string; granted: boolean; at: number } | null;
  /** Accepted at the version in force now. */
  accepted: boolean;
}

/** One answer: accept or refuse a purpose at a version (which must be the one in force). */
export interface PurposeDecision {
  purpose: string;
  version: string;
  granted: boolean;
}

/** Where an answer was given: at sign-in, on the account page, through the person's JSON API, or entered by an operator (admin API). */
export type DecisionSource = 'sign_in' | 'account' | 'api' | 'admin';

/** The newest row per purpose of one user: the current state (the rows before it are history). */
async function latestAnswers(db: Database, userId: string) {
  const newest = db
    .select({ id: sql<number>`max(${consentRecords.id})` })
    .from(consentRecords)
    .where(eq(consentRecords.userId, userId))
    .groupBy(consentRecords.purpose);
  return db.select().from(consentRecords).where(inArray(consentRecords.id, newest)).all();
}

/** Every configured purpose with the person's answer. */
export async function purposeStates(db: Database, purposes: Purpose[], userId: string): Promise<PurposeState[]> {
  if (purposes.length === 0) return [];
  const rows = await latestAnswers(db, userId);
  return purposes.map((p) => {
    const row = rows.find((r) => r.purpose === p.id);
    const answer = row ? { version: row.version, granted: row.granted, at: row.createdAt } : null;
    return { ...p, answer, accepted: answer?.granted === true && answer.version === p.version };
  });
}

/** The required purposes not accepted at their current version: a sign-in asks for these before it finishes. */
export async function pendingPurposes(db: Database, purposes: Purpose[], userId: string): Promise<PurposeState[]> {
  if (!purposes.some((p) => p.required)) return [];
  return (await purposeStates(db, purposes, userId)).filter((p) => p.required && !p.accepted);
}

/** The full history, newest first (the account's export and the admin API read the same). */
export async function consentHistory(db: Database, userId: string) {
  return db.select().from(consentRecords).where(eq(consentRecords.userId, userId)).orderBy(desc(consentRecords.id)).all();
}

/**
 * Checks answers against the configuration: each names a declared purpose, once, at the version in
 * force (an older or made-up version is refused, naming it). Throws a 400 naming the field.
 */
export function checkDecisions(purposes: Purpose[], decisions: PurposeDecision[]): void {
  const seen = new Set<string>();
  decisions.forEach((d, i) => {
    const purpose = purposes.find((p) => p.id === d.purpose);
    if (!purpose)
      throw new GatehouseError('invalid_request', `There is no purpose ${JSON.stringify(d.purpose.slice(0, 64))}.`, {
        field: `decisions.${i}.purpose`,
      });
    if (seen.has(d.purpose))
      throw new GatehouseError('invalid_request', `${d.purpose} is answered twice.`, { field: `decisions.${i}.purpose` });
    seen.add(d.purpose);
    if (d.version !== purpose.version)
      throw new GatehouseError(
        'invalid_request',
        `Version ${JSON.stringify(d.version.slice(0, 32))} of ${purpose.id} does not exist; the version in force is ${purpose.version}.`,
        { field: `decisions.${i}.version` },
      );
  });
}

/**
 * The writes that record answers which change something (a purpose's newest answer differs in
 * version or in yes/no), each with its `purpose_consent_changed` audit event — to run in one batch,
 * alone or with a sign-in's own writes. `states` is the person's state before.
 */
export function decisionStatements(
  db: Database,
  userId: string,
  states: PurposeState[],
  decisions: PurposeDecision[],
  w: { source: DecisionSource; meta: RequestMeta; at: number; actor?: string | null },
): BatchItem<'sqlite'>[] {
  return decisions.flatMap((d) => {
    const before = states.find((s) => s.id === d.purpose)?.answer;
    if (before && before.version === d.version && before.granted === d.granted) return [];
    return [
      db.insert(consentRecords).values({
        userId,
        purpose: d.purpose,
        version: d.version,
        granted: d.granted,
        source: w.source,
        ip: w.meta.ip,
        userAgent: w.meta.userAgent?.slice(0, 256) ?? null,
        createdAt: w.at,
      }),
      auditInsert(db, {
        type: 'purpose_consent_changed',
        userId,
        actor: w.actor ?? null,
        meta: w.meta,
        detail: {
          purpose: d.purpose,
          version: d.version,
          granted: d.granted,
          source: w.source,
          previous: before ? { version: before.version, granted: before.granted } : null,
        },
        at: w.at,
      }),
    ];
  });
}
