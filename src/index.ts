import { consumeWebhookBatch, WEBHOOK_DEAD_LETTERS } from './admin/webhook-delivery';
import { sweepWebhooks, WEBHOOK_CRON } from './admin/webhook-dispatch';
import { createApp } from './app';
import type { Env } from './config';
import { depsFor } from './deps';
import { rotateKeys, keyPolicy } from './tokens/keys';
import { wellKnown } from './well-known';

export { UserSessions } from './sessions/user-sessions';
export { Handoff } from './handoff/handoff-object';
export { RateLimiter } from './limits/rate-limiter';

const app = createApp();

export default {
  async fetch(request, env, ctx) {
    return (await wellKnown(request, env)) ?? app.fetch(request, env, ctx);
  },
  /**
   * Cron (wrangler.toml [triggers]): every minute the webhook sweep (fan-out, lost messages re-sent,
   * pruning); hourly, publish the next signing key ahead of time and delete expired ones.
   */
  async scheduled(controller: ScheduledController, env: Env): Promise<void> {
    const deps = await depsFor(env);
    if (controller.cron === WEBHOOK_CRON) {
      console.log(JSON.stringify({ event: 'webhooks_swept', ...(await sweepWebhooks(deps)) }));
      return;
    }
    const now = deps.now();
    const result = await rotateKeys(deps.db, deps.config.keyEncryptionKey, now, keyPolicy(deps.config.tokens));
    console.log(JSON.stringify({ event: 'keys_rotated', ...result }));
  },
  /** Webhook deliveries (and their dead letters): src/admin/webhook-delivery.ts. */
  async queue(batch: MessageBatch, env: Env): Promise<void> {
    await consumeWebhookBatch(await depsFor(env), batch, batch.queue === WEBHOOK_DEAD_LETTERS);
  },
} satisfies ExportedHandler<Env>;
