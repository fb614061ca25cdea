/**
 * A Golomb–Rice coded set: a sorted set of distinct 32-bit integers stored as the gaps between
 * neighbours, each gap as a unary quotient (gap >>> k ones, then a zero) and a k-bit remainder.
 * For values spread uniformly it takes about k + 2 bits a value, near the entropy bound, and it
 * decodes in one pass — so a large public list of hashes ships small and is searched in memory.
 * Bits are packed most significant first.
 */

// Up to 24, so that a remainder and its bit offset fit in one 32-bit word.
const checkParameter = (k: number) => {
  if (!Number.isInteger(k) || k < 1 || k > 24) throw new RangeError(`rice set: k = ${k} is not 1–24`);
};

/** Encodes ascending, distinct integers in [0, 2^32) with Rice parameter `k` (1–24). */
export function encodeRiceSet(sorted: readonly number[], k: number): Uint8Array {
  checkParameter(k);
  const bytes: number[] = [];
  let pending = 0;
  let used = 0;
  const put = (bit: number) => {
    pending = (pending << 1) | bit;
    if (++used === 8) {
      bytes.push(pending);
      pending = 0;
      used = 0;
    }
  };
  let previous = -1;
  for (const value of sorted) {
    if (!Number.isInteger(value) || value <= previous || value >= 2 ** 32) throw new RangeError(`not ascending uint32: ${value}`);
    const gap = value - Math.max(previous, 0);
    previous = value;
    for (let q = gap >>> k; q > 0; q--) put(1);
    put(0);
    for (let i = k - 1; i >= 0; i--) put((gap >>> i) & 1);
  }
  if (used > 0) bytes.push(pending << (8 - used));
  return Uint8Array.from(bytes);
}

/** Decodes `count` values written by `encodeRiceSet` with the same `k`; throws if the bytes run out. */
export function decodeRiceSet(bytes: Uint8Array, count: number, k: number): Uint32Array {
  checkParameter(k);
  const values = new Uint32Array(count);
  // Four zero bytes past the end, so a remainder is always read as one 32-bit word.
  const padded = new Uint8Array(bytes.length + 4);
  padded.set(bytes);
  const step = 2 ** k;
  let at = 0;
  let value = 0;
  for (let n = 0; n < count; n++) {
    let q = 0;
    while ((padded[at >>> 3]! >>> (7 - (at & 7))) & 1) {
      q++;
      at++;
    }
    at++;
    const i = at >>> 3;
    const word = (padded[i]! << 24) | (padded[i + 1]! << 16) | (padded[i + 2]! << 8) | padded[i + 3]!;
    value += q * step + ((word << (at & 7)) >>> (32 - k));
    at += k;
    values[n] = value;
  }
  if (at > bytes.length * 8) throw new RangeError('rice set: truncated');
  return values;
}

/** The Rice parameter that encodes `sorted` in the fewest bits. */
export function bestRiceParameter(sorted: readonly number[]): number {
  const bits = (k: number) => sorted.reduce((sum, v, i) => sum + k + 1 + Math.floor((v - (i ? sorted[i - 1]! : 0)) / 2 ** k), 0);
  let best = 1;
  for (let k = 2; k <= 24; k++) if (bits(k) < bits(best)) best = k;
  return best;
}

/** Binary search in an ascending array. */
export function includesSorted(sorted: Uint32Array, value: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v === value) return true;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
