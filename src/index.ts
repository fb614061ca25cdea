import { createApp } from './app';
import type { Env } from './config';
import { THROTTLE } from './auth/throttle';
import { purgeExpired } from './db/retention';
import { depsFor } from './deps';
import { reportCaches } from './lib/lru';
import { rotateKeys, keyPolicy } from './tokens/keys';
import { wellKnown } from './well-known';

export { UserSessions } from './sessions/user-sessions';
export { Handoff } from './handoff/handoff-object';
export { RateLimiter } from './limits/rate-limiter';

const app = createApp();

export default {
  async fetch(request, env, ctx) {
    // Each isolate logs its caches' hit rates every few minutes (docs/operations.md, "Caches").
    reportCaches(Date.now());
    return (await wellKnown(request, env)) ?? app.fetch(request, env, ctx);
  },
  /**
   * Cron (wrangler.toml [triggers]): publish the next signing key ahead of time, delete expired ones;
   * then purge what retention lets go (src/db/retention.ts), in bounded batches. Either failing
   * leaves the other done; the next run tries again.
   */
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    const deps = await depsFor(env);
    const now = deps.now();
    const [keys, purged] = await Promise.allSettled([
      rotateKeys(deps.db, deps.config.keyEncryptionKey, now, keyPolicy(deps.config.tokens)),
      purgeExpired(deps.db, { ...deps.config.retention, throttleWindowMs: THROTTLE.windowMs }, now),
    ]);
    if (keys.status === 'fulfilled') console.log(JSON.stringify({ event: 'keys_rotated', ...keys.value }));
    if (purged.status === 'fulfilled') console.log(JSON.stringify({ event: 'retention_purged', deleted: purged.value }));
    const failed = [keys, purged].flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    if (failed.length > 0) throw new AggregateError(failed, 'scheduled work failed');
  },
} satisfies ExportedHandler<Env>;
