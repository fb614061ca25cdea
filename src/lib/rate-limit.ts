import type { Hono } from 'hono';
import type { AppEnv } from '../deps';
import { GatehouseError } from './errors';
import { requestMeta } from './http';

/**
 * Per-IP limit on credential endpoints through the Workers Rate Limiting binding (limit and period
 * in wrangler.toml). The binding is approximate and per location; the exact per-account counters in
 * auth/throttle.ts back it up.
 */
export async function enforceIpLimit(limit: (key: string) => Promise<boolean>, ip: string | null): Promise<void> {
  if (!(await limit(`ip:${ip ?? 'unknown'}`)))
    throw new GatehouseError('rate_limited', 429, 'Too many requests from this address; wait a minute and try again.', {
      retryAfter: 60,
    });
}

/** Hono middleware: the per-IP limit on POSTs (or GETs) to each of `paths` of `router`, before any work. */
export function limitPostsPerIp(router: Hono<AppEnv>, paths: readonly string[], method: 'post' | 'get' = 'post'): void {
  for (const path of paths)
    router[method](path, async (c, next) => {
      await enforceIpLimit(c.var.deps.rateLimit, requestMeta(c).ip);
      await next();
    });
}
