import { randomToken } from '../lib/crypto';
import { addMissingColumns } from './browser-sessions';

/** A request the gateway keeps while its browser steps up, replayed once afterwards. */
export interface HeldRequest {
  method: string;
  /** Path and query, as normalised by the gateway. */
  url: string;
  /** The host it was sent to, and the route that held it: it is replayed only there, under that route's policy. */
  host: string;
  routeKey: string;
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
  host: string | null;
  route_key: string | null;
}

/** The held-requests table inside a user's UserSessions object (same serialisation rules). */
export class HeldRequests {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS held_requests (
      id TEXT PRIMARY KEY, method TEXT NOT NULL, url TEXT NOT NULL, content_type TEXT,
      body BLOB NOT NULL, sid TEXT NOT NULL, expires_at INTEGER NOT NULL
    )`);
    addMissingColumns(sql, 'held_requests', { host: 'TEXT', route_key: 'TEXT' });
  }

  /** Stores a request; returns its id (128 bits, the only handle to it). Oldest dropped past the cap. */
  hold(r: HeldRequest): string {
    if (r.body.byteLength > HELD_BODY_LIMIT) throw new RangeError('held request body too large');
    const id = randomToken(16);
    this.sql.exec(
      'INSERT INTO held_requests (id, method, url, host, route_key, content_type, body, sid, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      id,
      r.method,
      r.url,
      r.host,
      r.routeKey,
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

  /** What a held request is (without its body), to check it may be replayed here; null when unknown or expired. */
  peek(id: string, now: number): Omit<HeldRequest, 'body'> | null {
    const row = this.sql
      .exec<Row>('SELECT id, method, url, host, route_key, content_type, sid, expires_at FROM held_requests WHERE id = ?', id)
      .toArray()[0];
    return row && row.expires_at > now ? { ...describe(row) } : null;
  }

  /** Takes a held request out (it can be replayed once); null when unknown, taken or expired. */
  take(id: string, now: number): HeldRequest | null {
    const row = this.sql.exec<Row>('DELETE FROM held_requests WHERE id = ? RETURNING *', id).toArray()[0];
    if (!row || row.expires_at <= now) return null;
    return { ...describe(row), body: row.body };
  }

  clear(): void {
    this.sql.exec('DELETE FROM held_requests');
  }

  purge(now: number): void {
    this.sql.exec('DELETE FROM held_requests WHERE expires_at <= ?', now);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ next: number | null }>('SELECT MIN(expires_at) AS next FROM held_requests').one().next;
  }
}

const describe = (row: Row): Omit<HeldRequest, 'body'> => ({
  method: row.method,
  url: row.url,
  // Rows from before hosts and routes were recorded match nothing, so they are never replayed.
  host: row.host ?? '',
  routeKey: row.route_key ?? '',
  contentType: row.content_type,
  sid: row.sid,
  expiresAt: row.expires_at,
});
