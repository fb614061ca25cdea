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
  /** Cron (wrangler.toml [triggers]): publish the next signing key ahead of time, delete expired ones. */
  async scheduled(_controller: ScheduledController, env: Env): Promise<void> {
    const deps = await depsFor(env);
    const now = deps.now();
    const result = await rotateKeys(deps.db, deps.config.keyEncryptionKey, now, keyPolicy(deps.config.tokens));
    console.log(JSON.stringify({ event: 'keys_rotated', ...result }));
  },
} satisfies ExportedHandler<Env>;
