import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { enforceRateLimit, createRateLimitStore } from '../../src/limits/rate-limits';
import type { GatehouseError } from '../../src/lib/errors';
import { APP, appWith } from '../helpers';
import { registerClient } from '../oauth/helpers';

/**
 * The per-client and per-key limits (limits/): the count lives in one RateLimiter object per
 * bucket and caller, isolates lease from it. Attacked by a caller firing in parallel (two tabs, a
 * script) and by many isolates at once: the sum handed out never exceeds the limit.
 */
const unique = () => `test-${crypto.randomUUID()}`;

describe('rate limits', () => {
  it('lets exactly the limit through when the requests arrive all at once', async () => {
    const take = createRateLimitStore(env.RATE_LIMITER);
    const subject = unique();
    const now = Date.now();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, () => enforceRateLimit(take, { bucket: 'parallel', subject, limit: { requests: 5, period: 60 }, now })),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(5);
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as GatehouseError);
    expect(refused).toHaveLength(7);
    for (const e of refused) expect(e).toMatchObject({ code: 'rate_limited', status: 429 });
  });

  it('never hands out more than the limit to many isolates leasing at once', async () => {
    const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(unique()));
    const now = Date.now();
    const window = { window: '60:1', resetAt: now + 60_000, limit: 50, now };
    // Twenty isolates, each leasing up to 4 at a time until told no.
    const leased = await Promise.all(
      Array.from({ length: 20 }, async () => {
        let got = 0;
        for (;;) {
          const n = await stub.take({ ...window, want: 4 });
          got += n;
          if (n < 4) return got;
        }
      }),
    );
    expect(leased.reduce((a, b) => a + b, 0)).toBe(50);
    // The next window starts from nothing, and the spent one is forgotten.
    expect(await stub.take({ window: '60:2', resetAt: now + 120_000, limit: 50, want: 4, now: now + 60_000 })).toBe(4);
  });

  it('fails closed: a limiter that cannot be reached refuses the request (503), never lets it through unlimited', async () => {
    const { clientId, clientSecret } = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [] });
    // The object cannot be reached: every call throws as a broken connection would.
    const unreachable = {
      idFromName: (name: string) => env.RATE_LIMITER.idFromName(name),
      get: () => ({ take: () => Promise.reject(new Error('Network connection lost.')) }),
    } as unknown as typeof env.RATE_LIMITER;
    const send = appWith(() => ({ limits: createRateLimitStore(unreachable) }));
    const init = {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: 'https://api.gatehouse.test' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa(`${clientId}:${clientSecret}`)}` },
    };
    const token = (await (await appWith(() => ({}))('/auth/token', init)).json<{ access_token: string }>()).access_token;
    const res = await send(`${APP}/demo/limited/x`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'temporarily_unavailable' });
  });
});
