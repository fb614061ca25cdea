import { seal, unseal } from '../lib/crypto';
import { createDb, type Database, type D1Queries } from './client';

/**
 * D1 read replication through the Sessions API (docs/operations.md, "Read replication"). Each of
 * Gatehouse's own requests runs its D1 queries in one session: sequentially consistent, so a read
 * after a write in the same request sees it. Where the session starts:
 * - `first-primary` for everything by default: the first query goes to the primary, and the rest
 *   to any copy at least that fresh — as consistent as the primary for the request's checks;
 * - `first-unconstrained` for the reads that may be slightly stale (listed by the caller);
 * - the bookmark the person brought back after a write of theirs, so those reads include it.
 */
export type SessionStart = 'first-primary' | 'first-unconstrained' | { bookmark: string };

/** The header API callers echo to read their own writes (as D1's documentation names it). */
export const BOOKMARK_HEADER = 'x-d1-bookmark';

/** How long a bookmark is worth keeping (seconds): far beyond any replica lag. */
export const BOOKMARK_TTL = 300;

/** D1's bookmark: four hex groups (8-8-8-32), lexicographically ordered. Anything else is refused. */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;
/** A sealed bookmark is about 128 characters; anything much longer is not one. */
const MAX_PRESENTED = 200;
const AAD = 'd1-bookmark';

/**
 * A bookmark as handed to the person: D1's own, encrypted under the key-encryption key — opaque
 * (its position would tell whether a request wrote), and only one D1 gave us is ever used.
 */
export function sealBookmark(kek: string, bookmark: string): Promise<string> {
  return seal(kek, AAD, bookmark);
}

/**
 * The bookmark in a presented value (cookie or header), or null: untrusted input — too long, not
 * ours or not D1's shape and it is ignored (the request then starts on the primary), never an error.
 */
export async function openBookmark(kek: string, presented: string | undefined): Promise<string | null> {
  if (!presented || presented.length > MAX_PRESENTED) return null;
  const bookmark = await unseal(kek, AAD, presented).catch(() => null);
  return bookmark !== null && BOOKMARK.test(bookmark) ? bookmark : null;
}

/**
 * Where a request's session starts: on the primary unless its reads may be stale; then at the
 * person's own bookmark when they brought a valid one, or anywhere when they brought none. A
 * value that was presented but is not a valid bookmark starts on the primary: the caller said
 * they wrote something, and it cannot be honoured any other way.
 */
export function sessionStart(mayBeStale: boolean, presented: boolean, bookmark: string | null): SessionStart {
  if (!mayBeStale) return 'first-primary';
  if (bookmark) return { bookmark };
  return presented ? 'first-primary' : 'first-unconstrained';
}

/** One request's D1 session: its queries, a Drizzle client over them, and what to hand back. */
export interface RequestSession {
  d1: D1Queries;
  db: Database;
  /** Whether a statement that writes was prepared (the person's next reads should include it). */
  wrote: () => boolean;
  /** The latest bookmark the session saw; null before any query. */
  bookmark: () => string | null;
}

/** Statements that change the database: those after which a bookmark is handed back. */
const WRITES = /\b(?:insert|update|delete|replace)\b/i;

/** Opens this request's session on the D1 binding; a start D1 refuses falls back to the primary. */
export function openSession(binding: D1Database, start: SessionStart): RequestSession {
  let session: D1DatabaseSession;
  try {
    session = binding.withSession(typeof start === 'string' ? start : start.bookmark);
  } catch {
    session = binding.withSession('first-primary');
  }
  let wrote = false;
  const d1: D1Queries = {
    prepare(sql) {
      if (!wrote && WRITES.test(sql)) wrote = true;
      return session.prepare(sql);
    },
    batch: <T>(statements: D1PreparedStatement[]) => session.batch<T>(statements),
  };
  return { d1, db: createDb(d1), wrote: () => wrote, bookmark: () => session.getBookmark() };
}
