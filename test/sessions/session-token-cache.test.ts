import { describe, expect, it } from 'vitest';
import { deriveHmacKey } from '../../src/lib/crypto';
import { issueSessionToken, verifiedSessionCache, verifySessionToken } from '../../src/sessions/session-token';

/**
 * The isolate's verified-session cache (issue 17: LRU, not cleared wholesale) never turns a stale
 * session into a valid one: a token cached while fresh is reported stale once it is within
 * `refreshWithin` of expiry, and invalid past `maxAge`, exactly as without the cache.
 */
describe('verified session tokens in the LRU cache', () => {
  it('a cached token goes stale, then invalid, on a frozen clock', async () => {
    const key = await deriveHmacKey('dGVzdC1vbmx5LWF1dGgtc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg', 'session-token');
    const issuer = 'https://gatehouse.test';
    const t0 = 1_900_000_000_000;
    const { token, exp } = await issueSessionToken(
      {
        sub: 'u1',
        sid: 's1',
        amr: ['pwd'],
        authTime: t0 / 1000,
        email: 'a@example.com',
        emailVerified: true,
        roles: [],
        tier: 'free',
        relayed: false,
        host: null,
      },
      { key, issuer, ttl: 300, now: t0 },
    );
    const verify = (now: number) => verifySessionToken(token, { key, issuer, now, refreshWithin: 60, maxAge: 600 });

    expect((await verify(t0)).status).toBe('valid');
    const hits = verifiedSessionCache.hits;
    expect((await verify(t0 + 1000)).status).toBe('valid');
    expect(verifiedSessionCache.hits).toBe(hits + 1);

    expect((await verify((exp - 60) * 1000)).status).toBe('stale');
    expect((await verify((exp + 601) * 1000)).status).toBe('invalid');
  });
});
