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

  constructor(readonly max: number) {}

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

  get size(): number {
    return this.entries.size;
  }
}

/** Freezes a record and everything in it: a cached record is shared between requests, nobody may change it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
