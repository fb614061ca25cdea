/**
 * The CLIs build the worker's own Drizzle statements (never run them through a binding), so the
 * D1 binding's type only needs a name here; the worker's tsconfig has the real one.
 */
interface D1Database {
  readonly __d1: unique symbol;
}
