import { describe, expect, it } from 'vitest';
import { CACHE_REPORT_INTERVAL_MS, cacheStats, LruCache, reportCaches } from '../../src/lib/lru';

const keys = (c: LruCache<string, number>, now: number) => ['a', 'b', 'c', 'd', 'e'].filter((k) => c.get(k, now) !== undefined);

describe('LruCache (issue 17: bounded caches, no cliff)', () => {
  it('when full, evicts the least recently used entry only — a read makes an entry recent', () => {
    const c = new LruCache<string, number>(3);
    c.set('a', 1, 1000);
    c.set('b', 2, 1000);
    c.set('c', 3, 1000);
    expect(c.get('a', 0)).toBe(1); // a is now the most recent; b the least
    c.set('d', 4, 1000);
    expect(c.size).toBe(3);
    expect(c.get('b', 0)).toBeUndefined();
    expect(keys(c, 0)).toEqual(['a', 'c', 'd']);
  });

  it('overwriting a key makes it recent without growing the cache', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1, 1000);
    c.set('b', 2, 1000);
    c.set('a', 10, 1000);
    c.set('c', 3, 1000);
    expect(c.get('a', 0)).toBe(10);
    expect(c.get('b', 0)).toBeUndefined();
    expect(c.size).toBe(2);
  });

  it('forgets an entry at its deadline, and counts it as a miss', () => {
    const c = new LruCache<string, number>(10);
    c.set('a', 1, 1000);
    expect(c.get('a', 999)).toBe(1);
    expect(c.get('a', 1000)).toBeUndefined();
    expect(c.size).toBe(0);
    expect([c.hits, c.misses]).toEqual([1, 1]);
  });

  it('a full cache under a stream of new keys keeps its recent hot entries (no wholesale clear)', () => {
    const c = new LruCache<string, number>(100);
    c.set('hot', 1, 1e9);
    for (let i = 0; i < 10_000; i++) {
      c.set(`cold-${i}`, i, 1e9);
      expect(c.get('hot', 0)).toBe(1);
    }
    expect(c.size).toBe(100);
  });

  it('resize to a smaller bound drops the least recently used first', () => {
    const c = new LruCache<string, number>(5);
    for (const k of ['a', 'b', 'c', 'd', 'e']) c.set(k, 1, 1000);
    c.get('a', 0);
    c.resize(2);
    expect(c.max).toBe(2);
    expect(keys(c, 0)).toEqual(['a', 'e']);
  });

  it('named caches report size, bound and hit rate per interval, then start counting again', () => {
    const c = new LruCache<string, number>(7, 'test_report');
    c.set('a', 1, 1000);
    c.get('a', 0);
    c.get('a', 0);
    c.get('b', 0);
    expect(cacheStats().test_report).toEqual({ size: 1, max: 7, hits: 2, misses: 1, hitRate: 0.667 });
    expect(cacheStats().test_report).toEqual({ size: 1, max: 7, hits: 0, misses: 0, hitRate: null });

    const lines: string[] = [];
    const t = 1_000_000_000_000;
    reportCaches(t, (l) => lines.push(l));
    expect(reportCaches(t + CACHE_REPORT_INTERVAL_MS - 1, (l) => lines.push(l))).toBe(false);
    c.get('a', 0);
    expect(reportCaches(t + CACHE_REPORT_INTERVAL_MS, (l) => lines.push(l))).toBe(true);
    expect(lines).toHaveLength(1);
    const logged = JSON.parse(lines[0]!) as { event: string; caches: Record<string, unknown> };
    expect(logged.event).toBe('cache_stats');
    expect(logged.caches.test_report).toEqual({ size: 1, max: 7, hits: 1, misses: 0, hitRate: 1 });
    expect(Object.keys(logged.caches)).toEqual(expect.arrayContaining(['session_tokens', 'assertions', 'opaque_tokens']));
  });

  it('the client, resource, provider and API-key caches are named in the report', async () => {
    await Promise.all([
      import('../../src/oauth/clients'),
      import('../../src/oauth/api-resource-cache'),
      import('../../src/auth/upstream-provider-records'),
      import('../../src/gateway/api-key-auth'),
    ]);
    expect(Object.keys(cacheStats())).toEqual(expect.arrayContaining(['clients', 'resources', 'providers', 'api_keys']));
  });
});
