import { randomToken, sha256, timingSafeEqualString } from '../lib/crypto';

/** A browser session as the owner sees it. The secret never leaves the object after creation. */
export interface SessionRecord {
  /** Public id (128 bits): shown on the account page, carried in the session token as `sid`. */
  sid: string;
  userId: string;
  amr: string[];
  /** Seconds since epoch of the sign-in this session stands for (not when the record was made). */
  authTime: number;
  /** Made by a cross-device handoff: it carries another session's sign-in, never counts as a recent one. */
  relayed: boolean;
  /** An app host's session (made by the host handshake), or null for Gatehouse's own host. */
  host: string | null;
  /** An app host's session belongs to the Gatehouse session it was made from and ends with it. */
  parentSid: string | null;
  createdAt: number;
  lastSeenAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  ip: string | null;
  userAgent: string | null;
}

export interface CreateSessionInput {
  userId: string;
  amr: string[];
  /** Seconds since epoch; defaults to `now` (a sign-in happening now). */
  authTime?: number;
  relayed?: boolean;
  host?: string | null;
  parentSid?: string | null;
  ip: string | null;
  userAgent: string | null;
  now: number;
  /** Seconds. */
  idleTtl: number;
  absoluteTtl: number;
  /** Milliseconds since epoch: the session never outlives this (an app host's session, its parent). */
  notAfter?: number;
}

interface Row extends Record<string, SqlStorageValue> {
  sid: string;
  user_id: string;
  secret_hash: string;
  amr: string;
  auth_time: number | null;
  relayed: number | null;
  host: string | null;
  parent_sid: string | null;
  created_at: number;
  last_seen_at: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  ip: string | null;
  user_agent: string | null;
  idle_ttl: number;
}

const toRecord = (r: Row): SessionRecord => ({
  sid: r.sid,
  userId: r.user_id,
  amr: JSON.parse(r.amr) as string[],
  authTime: r.auth_time ?? Math.floor(r.created_at / 1000),
  relayed: r.relayed === 1,
  host: r.host,
  parentSid: r.parent_sid,
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
  idleExpiresAt: r.idle_expires_at,
  absoluteExpiresAt: r.absolute_expires_at,
  ip: r.ip,
  userAgent: r.user_agent,
});

/** Adds columns a later version introduced to a table an older object already has. */
export function addMissingColumns(sql: SqlStorage, table: string, columns: Record<string, string>): void {
  const present = new Set(
    sql
      .exec<{ name: string }>(`PRAGMA table_info(${table})`)
      .toArray()
      .map((c) => c.name),
  );
  for (const [name, type] of Object.entries(columns)) if (!present.has(name)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
}

/**
 * The browser sessions of one user, inside that user's UserSessions object (whose input gate
 * serialises every call). Only SHA-256 hashes of the secrets are stored.
 */
export class BrowserSessions {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      sid TEXT PRIMARY KEY, user_id TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, amr TEXT NOT NULL,
      created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, idle_expires_at INTEGER NOT NULL,
      absolute_expires_at INTEGER NOT NULL, idle_ttl INTEGER NOT NULL, ip TEXT, user_agent TEXT
    )`);
    addMissingColumns(sql, 'sessions', { auth_time: 'INTEGER', relayed: 'INTEGER', host: 'TEXT', parent_sid: 'TEXT' });
  }

  /** Starts a session; returns it with its secret (the only time the secret is seen). The secret's hash is computed by the caller. */
  create(input: CreateSessionInput, secret: { value: string; hash: string }): SessionRecord & { secret: string } {
    const sid = randomToken(16);
    const absoluteExpiresAt = Math.min(input.now + input.absoluteTtl * 1000, input.notAfter ?? Infinity);
    const idleExpiresAt = Math.min(input.now + input.idleTtl * 1000, absoluteExpiresAt);
    this.sql.exec(
      `INSERT INTO sessions (sid, user_id, secret_hash, amr, auth_time, relayed, host, parent_sid, created_at, last_seen_at,
                             idle_expires_at, absolute_expires_at, idle_ttl, ip, user_agent)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      sid,
      input.userId,
      secret.hash,
      JSON.stringify(input.amr),
      input.authTime ?? Math.floor(input.now / 1000),
      input.relayed ? 1 : 0,
      input.host ?? null,
      input.parentSid ?? null,
      input.now,
      input.now,
      idleExpiresAt,
      absoluteExpiresAt,
      input.idleTtl * 1000,
      input.ip?.slice(0, 64) ?? null,
      input.userAgent?.slice(0, 256) ?? null,
    );
    return { ...toRecord(this.row(sid)!), secret: secret.value };
  }

  /**
   * Proves possession of the session secret (its hash, computed before the call) and slides the
   * idle timeout. Null when the session is unknown, revoked, expired, or the secret does not match.
   */
  refresh(sid: string, secretHash: string, now: number): SessionRecord | null {
    const row = this.row(sid);
    if (!row || !timingSafeEqualString(row.secret_hash, secretHash)) return null;
    if (now >= row.idle_expires_at || now >= row.absolute_expires_at) {
      this.revoke(sid);
      return null;
    }
    const idleExpiresAt = Math.min(now + row.idle_ttl, row.absolute_expires_at);
    this.sql.exec('UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE sid = ?', now, idleExpiresAt, sid);
    return toRecord(this.row(sid)!);
  }

  /** The live session with this id, or null. */
  get(sid: string, now: number): SessionRecord | null {
    const row = this.row(sid);
    return row && now < row.idle_expires_at && now < row.absolute_expires_at ? toRecord(row) : null;
  }

  /** Live sessions — Gatehouse's and the app-host sessions made from them — newest first. */
  list(now: number): SessionRecord[] {
    return this.sql
      .exec<Row>('SELECT * FROM sessions WHERE idle_expires_at > ? AND absolute_expires_at > ? ORDER BY created_at DESC', now, now)
      .toArray()
      .map(toRecord);
  }

  /** Ends a session and the app-host sessions made from it; returns the ids that ended. */
  revoke(sid: string): string[] {
    return this.sql
      .exec<{ sid: string }>('DELETE FROM sessions WHERE sid = ? OR parent_sid = ? RETURNING sid', sid, sid)
      .toArray()
      .map((r) => r.sid);
  }

  /**
   * Ends every session, or every one but `exceptSid` (and its app-host sessions). Returns the ids
   * that ended and how many of them were Gatehouse sessions.
   */
  revokeAll(exceptSid?: string): { ended: string[]; count: number } {
    const rows = (
      exceptSid
        ? this.sql.exec<{ sid: string; parent_sid: string | null }>(
            'DELETE FROM sessions WHERE sid != ?1 AND (parent_sid IS NULL OR parent_sid != ?1) RETURNING sid, parent_sid',
            exceptSid,
          )
        : this.sql.exec<{ sid: string; parent_sid: string | null }>('DELETE FROM sessions RETURNING sid, parent_sid')
    ).toArray();
    return { ended: rows.map((r) => r.sid), count: rows.filter((r) => r.parent_sid === null).length };
  }

  purge(now: number): void {
    this.sql.exec('DELETE FROM sessions WHERE idle_expires_at <= ? OR absolute_expires_at <= ?', now, now);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ next: number | null }>('SELECT MIN(MIN(idle_expires_at, absolute_expires_at)) AS next FROM sessions').one().next;
  }

  private row(sid: string): Row | undefined {
    return this.sql.exec<Row>('SELECT * FROM sessions WHERE sid = ?', sid).toArray()[0];
  }
}

/** A fresh 256-bit session secret and its hash (computed outside the object's read-check-write). */
export async function newSessionSecret(): Promise<{ value: string; hash: string }> {
  const value = randomToken(32);
  return { value, hash: await sha256(value) };
}
