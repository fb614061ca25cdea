import { drizzle } from 'drizzle-orm/d1';
import * as schema from './schema';

export type Database = ReturnType<typeof createDb>;

/** What Gatehouse runs queries through: the D1 binding itself, or one request's session on it (db/replication.ts). */
export type D1Queries = Pick<D1Database, 'prepare' | 'batch'>;

export function createDb(d1: D1Queries) {
  // Drizzle's D1 driver only prepares and batches; a session (which has no exec) serves it as well.
  return drizzle(d1 as D1Database, { schema });
}
