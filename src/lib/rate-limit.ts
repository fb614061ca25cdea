import { GatehouseError } from './errors';

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
