import { getTableColumns, getTableName, type Table } from 'drizzle-orm';
import { createDb } from '../../src/db/client';
import { sqlString } from './wrangler';

/** A value as an SQLite literal: NULL, 1/0 for booleans, numbers as they are, text quoted. */
export function sqlValue(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not an SQL number: ${v}`);
    return String(v);
  }
  return sqlString(String(v));
}

/**
 * An INSERT of a row shaped as Drizzle's `$inferInsert` of `table` (the CLIs write D1 through
 * `wrangler d1 execute`, so they cannot use the Drizzle client): the columns come from the schema.
 */
export function insertSql<T extends Table>(table: T, row: T['$inferInsert'], onConflict: 'fail' | 'ignore' = 'fail'): string {
  const columns = Object.entries(getTableColumns(table)).filter(([key]) => (row as Record<string, unknown>)[key] !== undefined);
  return `INSERT${onConflict === 'ignore' ? ' OR IGNORE' : ''} INTO ${getTableName(table)} (${columns.map(([, c]) => c.name).join(', ')}) VALUES (${columns
    .map(([key]) => sqlValue((row as Record<string, unknown>)[key]))
    .join(', ')})`;
}

/** A row as `wrangler d1 execute --json` returns it (snake_case columns), as Drizzle's `$inferSelect` of `table`. */
export function rowFromSql<T extends Table>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  const row: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const v = raw[column.name];
    row[key] = column.dataType === 'boolean' && v !== null && v !== undefined ? Boolean(v) : v;
  }
  return row as T['$inferSelect'];
}

/** An INSERT that replaces the row's other columns when `key` (its primary key's columns) already exists. */
export function upsertSql<T extends Table>(
  table: T,
  row: T['$inferInsert'],
  key: (keyof T['$inferInsert'] & string)[],
  keep: string[] = [],
): string {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  const set = Object.keys(row as object)
    .filter((k) => !(key as string[]).includes(k) && !keep.includes(k) && columns[k])
    .map((k) => `${columns[k]!.name} = excluded.${columns[k]!.name}`);
  return `${insertSql(table, row)} ON CONFLICT (${key.map((k) => columns[k]!.name).join(', ')}) DO UPDATE SET ${set.join(', ')}`;
}

/**
 * A Drizzle statement (a domain builder's insert, update or delete) as SQL text with its
 * parameters inlined, for `wrangler d1 execute`: the CLIs run the very statements the worker runs.
 */
export function statementSql(statement: unknown): string {
  const { sql, params } = (statement as { toSQL(): { sql: string; params: unknown[] } }).toSQL();
  let i = 0;
  const text = sql.replace(/\?/g, () => {
    if (i >= params.length) throw new Error('more placeholders than parameters');
    return sqlValue(params[i++]);
  });
  if (i !== params.length) throw new Error('more parameters than placeholders');
  return text;
}

/** A Drizzle client that only builds statements (never runs one): `statementSql` turns them into text. */
export const statementBuilder = () => createDb({} as D1Database);
