import { failClosed, GatehouseError } from '../lib/errors';
import { LruCache } from '../lib/lru';
import type { RateLimiter } from './rate-limiter';

import type { RateLimit } from './rate-limit-rule';

export type { RateLimit };

/** Asks a RateLimiter object for up to `want` requests of a window. */
export type TakeFromWindow = (
  name: string,
  r: { window: string; resetAt: number; limit: number; want: number; now: number },
) => Promise<number>;

export function createRateLimitStore(ns: DurableObjectNamespace<RateLimiter>): TakeFromWindow {
  return (name, r) => failClosed('the rate limiter', () => ns.get(ns.idFromName(name)).take(r) as Promise<number>);
}

/** What an isolate holds of one counter's current window. */
interface Lease {
  window: string;
  resetAt: number;
  left: number;
  /** The object said the window is used up. */
  spent: boolean;
  /** The next lease asks for this many (doubling while the caller keeps coming back). */
  next: number;
  pending: Promise<void> | null;
}

const leases = new LruCache<string, Lease>(10_000);

/**
 * Counts one request against `limit` for `subject` in `bucket` (a fixed window of `period`
 * seconds), and throws `rate_limited` (429, Retry-After: the seconds left in the window) past it.
 * The count lives in one RateLimiter object per bucket and subject; an isolate takes requests from
 * it in leases that start at one and double up to a sixteenth of the limit, so a busy client costs
 * the object one call per lease, and the sum over every isolate never exceeds the limit (a lease
 * an isolate leaves unused at the end of a window is lost: the error is towards refusing).
 */
export async function enforceRateLimit(
  take: TakeFromWindow,
  c: { bucket: string; subject: string; limit: RateLimit; now: number },
): Promise<void> {
  const periodMs = c.limit.period * 1000;
  const index = Math.floor(c.now / periodMs);
  const window = `${c.limit.period}:${index}`;
  const resetAt = (index + 1) * periodMs;
  const name = `${c.bucket}\n${c.subject}`;
  // The isolate's lease is for this limit only (the object's count is the bucket's).
  const leaseKey = `${name}\n${c.limit.requests}/${c.limit.period}`;
  let lease = leases.get(leaseKey, c.now);
  if (!lease || lease.window !== window) {
    lease = { window, resetAt, left: 0, spent: false, next: 1, pending: null };
    leases.set(leaseKey, lease, resetAt);
  }
  const maxLease = Math.max(1, Math.floor(c.limit.requests / 16));
  for (;;) {
    if (lease.left > 0) {
      lease.left--;
      return;
    }
    if (lease.spent)
      throw new GatehouseError('rate_limited', 'Too many requests for this client or key; wait and try again.', {
        retryAfter: Math.max(1, Math.ceil((resetAt - c.now) / 1000)),
      });
    if (!lease.pending) {
      const current = lease;
      const want = current.next;
      current.next = Math.min(want * 2, maxLease);
      current.pending = take(name, { window, resetAt, limit: c.limit.requests, want, now: c.now })
        .then((granted) => {
          current.left += granted;
          // Less than asked: the object has nothing left for this window.
          if (granted < want) current.spent = true;
        })
        .finally(() => {
          current.pending = null;
        });
    }
    await lease.pending;
  }
}
