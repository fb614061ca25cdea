/** A statement as it reached D1: its SQL and bound parameters. */
export interface Traced {
  sql: string;
  params: unknown[];
}

/** What a traced D1 binding saw: every statement run, and the round trips (a batch is one). */
export interface Trace {
  statements: Traced[];
  roundTrips: number;
}

const RUN = new Set(['first', 'run', 'all', 'raw']);

/**
 * A D1 binding that records every statement it runs (alone or in a batch) and counts the round
 * trips to D1: each first/run/all/raw of a statement, each batch and exec. The statements go to the
 * real binding unchanged.
 */
export function tracedD1(real: D1Database, trace: Trace = { statements: [], roundTrips: 0 }): { d1: D1Database; trace: Trace } {
  const unwrap = new WeakMap<object, { stmt: D1PreparedStatement; traced: Traced }>();
  const wrap = (stmt: D1PreparedStatement, traced: Traced): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(s, p) {
        if (p === 'bind') return (...args: unknown[]) => wrap(s.bind(...args), { sql: traced.sql, params: args });
        if (RUN.has(String(p)))
          return (...args: unknown[]) => {
            trace.roundTrips++;
            trace.statements.push(traced);
            return (s[p as 'all'] as (...a: unknown[]) => unknown).apply(s, args);
          };
        const value = Reflect.get(s, p, s);
        return typeof value === 'function' ? value.bind(s) : value;
      },
    });
    unwrap.set(proxy, { stmt, traced });
    return proxy;
  };
  const d1 = new Proxy(real, {
    get(target, prop) {
      if (prop === 'prepare') return (sql: string) => wrap(target.prepare(sql), { sql, params: [] });
      if (prop === 'batch')
        return (stmts: D1PreparedStatement[]) => {
          trace.roundTrips++;
          const reals = stmts.map((s) => {
            const known = unwrap.get(s);
            if (known) trace.statements.push(known.traced);
            return known?.stmt ?? s;
          });
          return target.batch(reals);
        };
      if (prop === 'exec')
        return (sql: string) => {
          trace.roundTrips++;
          trace.statements.push({ sql, params: [] });
          return target.exec(sql);
        };
      const value = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { d1, trace };
}

/** The query plan's lines for one statement on this database (EXPLAIN QUERY PLAN). */
export async function planOf(db: D1Database, s: Traced): Promise<string[]> {
  const { results } = await db
    .prepare(`EXPLAIN QUERY PLAN ${s.sql}`)
    .bind(...s.params)
    .all<{ detail: string }>();
  return results.map((r) => r.detail);
}
