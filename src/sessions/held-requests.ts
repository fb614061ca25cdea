import { randomToken } from '../lib/crypto';

/** A request the gateway keeps while its browser steps up, replayed once afterwards. */
export interface HeldRequest {
  method: string;
  /** Path and query, as normalised by the gateway. */
  url: string;
  contentType: string | null;
  body: ArrayBuffer;
  /** The session that made it: only a session of the same user may replay it. */
  sid: string;
  expiresAt: number;
}

/** Largest body held (1 MiB) and longest hold (5 minutes); at most this many held per user. */
export const HELD_BODY_LIMIT = 1024 * 1024;
export const HELD_TTL_MS = 5 * 60_000;
const MAX_HELD_PER_USER = 10;

interface Row extends Record<string, SqlStorageValue> {
  id: string;
  method: string;
  url: string;
  content_type: string | null;
  body: ArrayBuffer;
  sid: string;
  expires_at: number;
}

/** The held-requests table inside a user's UserSessions object (same serialisation rules). */
export class HeldRequests {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS held_requests (
      id TEXT PRIMARY KEY, method TEXT NOT NULL, url TEXT NOT NULL, content_type TEXT,
      body BLOB NOT NULL, sid TEXT NOT NULL, expires_at INTEGER NOT NULL
    )`);
  }

  /** Stores a request; returns its id (128 bits, the only handle to it). Oldest dropped past the cap. */
  hold(r: HeldRequest): string {
    if (r.body.byteLength > HELD_BODY_LIMIT) throw new RangeError('held request body too large');
    const id = randomToken(16);
    this.sql.exec(
      'INSERT INTO held_requests (id, method, url, content_type, body, sid, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      id,
      r.method,
      r.url,
      r.contentType,
      r.body,
      r.sid,
      r.expiresAt,
    );
    this.sql.exec(
      'DELETE FROM held_requests WHERE id NOT IN (SELECT id FROM held_requests ORDER BY expires_at DESC LIMIT ?)',
      MAX_HELD_PER_USER,
    );
    return id;
  }

  /** Takes a held request out (it can be replayed once); null when unknown, taken or expired. */
  take(id: string, now: number): HeldRequest | null {
    const row = this.sql.exec<Row>('DELETE FROM held_requests WHERE id = ? RETURNING *', id).toArray()[0];
    if (!row || row.expires_at <= now) return null;
    return { method: row.method, url: row.url, contentType: row.content_type, body: row.body, sid: row.sid, expiresAt: row.expires_at };
  }

  purge(now: number): void {
    this.sql.exec('DELETE FROM held_requests WHERE expires_at <= ?', now);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ next: number | null }>('SELECT MIN(expires_at) AS next FROM held_requests').one().next;
  }
}
