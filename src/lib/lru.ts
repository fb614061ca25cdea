/**
 * A bounded map for what an isolate keeps between requests (records read from D1, verified
 * credentials): each entry lives until its own deadline, and when the map is full the least
 * recently used entry goes — never the whole map at once, so a full cache does not become a cliff
 * of misses under load. Counts hits and misses, for the logs.
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, { value: V; until: number }>();
  hits = 0;
  misses = 0;

  /** A named cache is listed in the periodic `cache_stats` log line (reportCaches). */
  constructor(
    public max: number,
    readonly name?: string,
  ) {
    if (name) named.set(name, this as LruCache<unknown, unknown>);
  }

  /** The value while `now` is before its deadline; a hit makes it the most recently used. */
  get(key: K, now: number): V | undefined {
    const hit = this.entries.get(key);
    if (!hit || hit.until <= now) {
      if (hit) this.entries.delete(key);
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, hit);
    this.hits++;
    return hit.value;
  }

  /** Keeps `value` until `until` (same clock as `get`'s `now`), evicting the least recently used if full. */
  set(key: K, value: V, until: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, until });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as K);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Sets the bound (configuration), evicting the least recently used entries beyond it. */
  resize(max: number): void {
    this.max = max;
    for (const key of this.entries.keys()) {
      if (this.entries.size <= max) break;
      this.entries.delete(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

const named = new Map<string, LruCache<unknown, unknown>>();

/** How often an isolate logs its caches' hit rates, at most. */
export const CACHE_REPORT_INTERVAL_MS = 5 * 60_000;
let lastReport: number | undefined;

export interface CacheStats {
  size: number;
  max: number;
  hits: number;
  misses: number;
  /** hits / (hits + misses) since the last report, or null without lookups. */
  hitRate: number | null;
}

/** Each named cache's size, bound and hit rate since the previous report; counters start again. */
export function cacheStats(): Record<string, CacheStats> {
  const out: Record<string, CacheStats> = {};
  for (const [name, c] of named) {
    const lookups = c.hits + c.misses;
    out[name] = {
      size: c.size,
      max: c.max,
      hits: c.hits,
      misses: c.misses,
      hitRate: lookups ? Math.round((c.hits / lookups) * 1000) / 1000 : null,
    };
    c.hits = 0;
    c.misses = 0;
  }
  return out;
}

/**
 * Logs `{"event":"cache_stats","caches":{…}}` once per CACHE_REPORT_INTERVAL_MS per isolate (the
 * first call starts the interval); returns whether it logged.
 */
export function reportCaches(now: number, log: (line: string) => void = console.log): boolean {
  if (lastReport === undefined) lastReport = now;
  if (now - lastReport < CACHE_REPORT_INTERVAL_MS) return false;
  lastReport = now;
  log(JSON.stringify({ event: 'cache_stats', caches: cacheStats() }));
  return true;
}

/** Freezes a record and everything in it: a cached record is shared between requests, nobody may change it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
