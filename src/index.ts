import { consumeWebhookBatch, WEBHOOK_DEAD_LETTERS } from './admin/webhook-delivery';
import { sweepWebhooks, WEBHOOK_CRON } from './admin/webhook-dispatch';
import { createApp } from './app';
import type { Env } from './config';
import { THROTTLE } from './auth/throttle';
import { purgeExpired } from './db/retention';
import { finishDueDeletions } from './auth/account-deletion';
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
   * Cron (wrangler.toml [triggers]): every minute the webhook sweep (fan-out, lost messages re-sent,
   * pruning); hourly, publish the next signing key ahead of time and delete expired ones, then purge
   * what retention lets go (src/db/retention.ts), in bounded batches, and finish the account deletions
   * that are due (src/auth/account-deletion.ts). One of those failing leaves the others done; the
   * next run tries again.
   */
  async scheduled(controller: ScheduledController, env: Env): Promise<void> {
    const deps = await depsFor(env);
    if (controller.cron === WEBHOOK_CRON) {
      console.log(JSON.stringify({ event: 'webhooks_swept', ...(await sweepWebhooks(deps)) }));
      return;
    }
    const now = deps.now();
    const [keys, purged, deletions] = await Promise.allSettled([
      rotateKeys(deps.db, deps.config.keyEncryptionKey, now, keyPolicy(deps.config.tokens)),
      purgeExpired(deps.db, { ...deps.config.retention, throttleWindowMs: THROTTLE.windowMs }, now, deps.auditArchive),
      finishDueDeletions(deps, now),
    ]);
    if (keys.status === 'fulfilled') console.log(JSON.stringify({ event: 'keys_rotated', ...keys.value }));
    if (purged.status === 'fulfilled') console.log(JSON.stringify({ event: 'retention_purged', deleted: purged.value }));
    if (deletions.status === 'fulfilled') console.log(JSON.stringify({ event: 'deletions_finished', ...deletions.value }));
    const failed = [keys, purged, deletions].flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    if (failed.length > 0) throw new AggregateError(failed, 'scheduled work failed');
  },
  /** Webhook deliveries (and their dead letters): src/admin/webhook-delivery.ts. */
  async queue(batch: MessageBatch, env: Env): Promise<void> {
    await consumeWebhookBatch(await depsFor(env), batch, batch.queue === WEBHOOK_DEAD_LETTERS);
  },
} satisfies ExportedHandler<Env>;
