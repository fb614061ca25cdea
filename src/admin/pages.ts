import { and, desc, eq, lt, or, type SQL } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import type { Deps } from '../deps';
import { failClosed } from '../lib/errors';
import { decodeCursor, encodeCursor } from './cursor';

/**
 * A configuration list (clients, APIs, providers, API keys), newest first: ordered by
 * (created_at, id) descending, a page continuing strictly after the previous page's last pair.
 * The cursor is signed and bound to the list's filters (cursor.ts).
 */
export interface NewestFirst<R> {
  list: string;
  created: SQLiteColumn;
  id: SQLiteColumn;
  keyOf: (r: R) => [number, string];
}

/**
 * One page of a list and the cursor of the next (null at the end). `select` runs the query with
 * the keyset condition (and the filters' own, `where`), the order, and one row more than the page.
 */
export async function listPage<R>(
  deps: Deps,
  l: NewestFirst<R>,
  q: { limit: number; cursor?: string | undefined; filters?: object; where?: (SQL | undefined)[] },
  select: (where: SQL | undefined, orderBy: SQL[], limit: number) => Promise<R[]>,
): Promise<{ rows: R[]; next_cursor: string | null }> {
  const filters = q.filters ?? {};
  const after = await decodeCursor(deps, l.list, filters, q.cursor);
  const keyset = after ? or(lt(l.created, Number(after[0])), and(eq(l.created, Number(after[0])), lt(l.id, String(after[1])))) : undefined;
  const rows = await failClosed('the database', () => select(and(...(q.where ?? []), keyset), [desc(l.created), desc(l.id)], q.limit + 1));
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return { rows: page, next_cursor: rows.length > q.limit && last ? await encodeCursor(deps, l.list, filters, l.keyOf(last)) : null };
}
