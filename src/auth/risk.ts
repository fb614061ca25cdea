import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../db/client';
import { signInHistory } from '../db/schema';
import type { Deps } from '../deps';
import { sha256 } from '../lib/crypto';
import { failClosed } from '../lib/errors';
import type { RequestMeta } from '../lib/request-meta';

/** Where a sign-in comes from: the browser's device cookie and what Cloudflare says of the network. */
export interface SignInContext {
  meta: RequestMeta;
  /** The device cookie's value (minted by the route when the browser had none). */
  deviceId: string;
  /** `request.cf.country` and `request.cf.asn`, when present. */
  country: string | null;
  asn: number | null;
}

export interface RiskAssessment {
  /** The account has no sign-in history yet (its first sign-in). */
  firstSignIn: boolean;
  newDevice: boolean;
  newCountry: boolean;
  newAsn: boolean;
  /** The history markers this sign-in adds or refreshes once it completes. */
  markers: string[];
}

export const isRisky = (r: RiskAssessment) => r.newDevice || r.newCountry || r.newAsn;

export async function markersOf(ctx: SignInContext): Promise<string[]> {
  const markers = [`device:${await sha256(`device:${ctx.deviceId}`)}`];
  if (ctx.country) markers.push(`country:${ctx.country}`);
  if (ctx.asn !== null) markers.push(`asn:${ctx.asn}`);
  return markers;
}

/** The query for a user's sign-in history (bounded by trimHistoryStatement), to run alone or in a batch. */
export const historyQuery = (db: Database, userId: string) =>
  db.select({ marker: signInHistory.marker }).from(signInHistory).where(eq(signInHistory.userId, userId));

/** Compares this sign-in's device and network with the account's history (one D1 read). */
export async function assessRisk(deps: Deps, userId: string, ctx: SignInContext): Promise<RiskAssessment> {
  const rows = await failClosed('the database', () => historyQuery(deps.db, userId).all());
  return riskFrom(rows, await markersOf(ctx));
}

/** Compares a sign-in's markers with the history rows historyQuery read. */
export function riskFrom(rows: { marker: string }[], markers: string[]): RiskAssessment {
  const seen = new Set(rows.map((r) => r.marker));
  const kinds = new Set(rows.map((r) => r.marker.split(':')[0]));
  const isNew = (m: string | undefined) => m !== undefined && !seen.has(m);
  return {
    firstSignIn: rows.length === 0,
    newDevice: isNew(markers[0]),
    // A network is only "new" when the history has networks of that kind to compare with.
    newCountry: kinds.has('country') && isNew(markers.find((m) => m.startsWith('country:'))),
    newAsn: kinds.has('asn') && isNew(markers.find((m) => m.startsWith('asn:'))),
    markers,
  };
}

/** The statement that records (or refreshes) the markers of a completed sign-in. */
export function rememberStatement(deps: Deps, userId: string, markers: string[], now: number) {
  return deps.db
    .insert(signInHistory)
    .values(markers.map((marker) => ({ userId, marker, firstSeenAt: now, lastSeenAt: now })))
    .onConflictDoUpdate({ target: [signInHistory.userId, signInHistory.marker], set: { lastSeenAt: now } });
}

/**
 * The statement that keeps a user's newest `RETENTION_SIGN_IN_HISTORY_PER_KIND` devices, countries
 * and networks (each kind apart) and drops the rest, run after rememberStatement: the history read
 * at every sign-in stays small however many browsers a person has used.
 */
export function trimHistoryStatement(deps: Deps, userId: string) {
  const keep = deps.config.retention.signInHistoryPerKind;
  return deps.db.delete(signInHistory).where(
    and(
      eq(signInHistory.userId, userId),
      sql`rowid IN (SELECT rowid FROM (SELECT rowid, row_number() OVER (
        PARTITION BY substr(marker, 1, instr(marker, ':')) ORDER BY last_seen_at DESC, rowid DESC) AS n
        FROM sign_in_history WHERE user_id = ${userId}) WHERE n > ${keep})`,
    ),
  );
}
