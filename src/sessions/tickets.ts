/**
 * Single-use, short-lived tickets of one user, bound to the browser session that created them:
 * an authorization request waiting for its consent decision (`authorize`), a host handshake code
 * waiting for its app host (`connect`). Stored by the hash of their secret; `take` deletes and
 * returns in one statement, so of concurrent takers exactly one gets the ticket.
 */
export type TicketKind = 'authorize' | 'connect';

export interface Ticket {
  /** The session the ticket was made for. */
  sid: string;
  payload: Record<string, unknown>;
  expiresAt: number;
}

/** At most this many live tickets of one kind per user; the oldest go first. */
const MAX_PER_KIND = 20;

export class Tickets {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS tickets (
      hash TEXT PRIMARY KEY, kind TEXT NOT NULL, sid TEXT NOT NULL, payload TEXT NOT NULL, expires_at INTEGER NOT NULL
    )`);
  }

  /** Stores a ticket under `hash` (of a secret the caller holds). */
  put(kind: TicketKind, hash: string, ticket: Ticket): void {
    this.sql.exec(
      'INSERT INTO tickets (hash, kind, sid, payload, expires_at) VALUES (?, ?, ?, ?, ?)',
      hash,
      kind,
      ticket.sid,
      JSON.stringify(ticket.payload),
      ticket.expiresAt,
    );
    this.sql.exec(
      'DELETE FROM tickets WHERE kind = ?1 AND hash NOT IN (SELECT hash FROM tickets WHERE kind = ?1 ORDER BY expires_at DESC LIMIT ?2)',
      kind,
      MAX_PER_KIND,
    );
  }

  /** Takes a ticket out (once); null when unknown, taken, expired or of another kind. */
  take(kind: TicketKind, hash: string, now: number): Ticket | null {
    const row = this.sql
      .exec<{ sid: string; payload: string; expires_at: number }>(
        'DELETE FROM tickets WHERE hash = ? AND kind = ? RETURNING sid, payload, expires_at',
        hash,
        kind,
      )
      .toArray()[0];
    if (!row || row.expires_at <= now) return null;
    return { sid: row.sid, payload: JSON.parse(row.payload) as Record<string, unknown>, expiresAt: row.expires_at };
  }

  /** Tickets made for sessions that have ended go with them. */
  dropOfSessions(sids: string[]): void {
    for (const sid of sids) this.sql.exec('DELETE FROM tickets WHERE sid = ?', sid);
  }

  clear(): void {
    this.sql.exec('DELETE FROM tickets');
  }

  purge(now: number): void {
    this.sql.exec('DELETE FROM tickets WHERE expires_at <= ?', now);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ next: number | null }>('SELECT MIN(expires_at) AS next FROM tickets').one().next;
  }
}
