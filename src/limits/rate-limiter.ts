import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../config';

/**
 * One object per counted thing (an API route or an API's token endpoint, and one client or one
 * key): how much of each fixed window has been handed out. Isolates take the window's requests in
 * small leases (rate-limits.ts), so this object sees one call per lease, not one per request; its
 * input gate serialises them, so the sum of every lease never exceeds the limit.
 */
export class RateLimiter extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS windows (window TEXT PRIMARY KEY, used INTEGER NOT NULL, reset_at INTEGER NOT NULL)');
  }

  /**
   * Hands out up to `want` of the `limit` requests of `window` (which ends at `resetAt`); answers
   * how many it gave — 0 once the window is used up.
   */
  take(r: { window: string; resetAt: number; limit: number; want: number; now: number }): number {
    this.sql.exec('DELETE FROM windows WHERE reset_at <= ?', r.now);
    const used = this.sql.exec<{ used: number }>('SELECT used FROM windows WHERE window = ?', r.window).toArray()[0]?.used ?? 0;
    const granted = Math.max(0, Math.min(r.want, r.limit - used));
    if (granted > 0)
      this.sql.exec(
        'INSERT INTO windows (window, used, reset_at) VALUES (?, ?, ?) ON CONFLICT (window) DO UPDATE SET used = used + excluded.used',
        r.window,
        granted,
        r.resetAt,
      );
    return granted;
  }
}
