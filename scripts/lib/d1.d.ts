/**
 * The CLIs build the worker's own Drizzle statements (never run them through a binding), so the
 * D1 types only need a name here; the worker's tsconfig has the real ones.
 */
interface D1Database {
  readonly __d1: unique symbol;
  prepare(query: string): D1PreparedStatement;
  batch(statements: D1PreparedStatement[]): Promise<unknown[]>;
}
interface D1PreparedStatement {
  readonly __d1Statement: unique symbol;
}
