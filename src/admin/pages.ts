import { and, desc, eq, lt, or, type SQL } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import type { Deps } from '../deps';
import { decodeCursor, encodeCursor } from './cursor';

/**
 * A configuration list (clients, APIs, providers, API keys), newest first: ordered by
 * (created_at, id) descending, a page continuing strictly after the previous page's last pair.
 * The cursor is signed and bound to the list's filters (cursor.ts).
 */
export interface NewestFirst {
  list: string;
  created: SQLiteColumn;
  id: SQLiteColumn;
}

/** What the query of a page needs: the keyset condition (with the filters' own) and the order. */
export async function pageWhere(deps: Deps, l: NewestFirst, filters: object, cursor: string | undefined, where: (SQL | undefined)[] = []) {
  const after = await decodeCursor(deps, l.list, filters, cursor);
  const keyset = after ? or(lt(l.created, Number(after[0])), and(eq(l.created, Number(after[0])), lt(l.id, String(after[1])))) : undefined;
  return { where: and(...where, keyset), orderBy: [desc(l.created), desc(l.id)] as const };
}

/** The page of `rows` (fetched with limit + 1) and the cursor of the next one, null at the end. */
export async function pageOfRows<R>(
  deps: Deps,
  l: NewestFirst,
  filters: object,
  rows: R[],
  limit: number,
  keyOf: (r: R) => [number, string],
): Promise<{ rows: R[]; next_cursor: string | null }> {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { rows: page, next_cursor: rows.length > limit && last ? await encodeCursor(deps, l.list, filters, keyOf(last)) : null };
}
