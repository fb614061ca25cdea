import { describe, expect, it } from 'vitest';
import { bestRiceParameter, decodeRiceSet, encodeRiceSet, includesSorted } from '../../src/lib/rice-set';

const EDGES = [0, 1, 2, 3, 2 ** 16 - 1, 2 ** 16, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1];

describe('Rice-coded sets', () => {
  it('decode to exactly what was encoded, from 0 to 2^32 - 1, whatever the parameter', () => {
    const spread = Array.from(new Set(crypto.getRandomValues(new Uint32Array(2000)))).sort((a, b) => a - b);
    const dense = Array.from({ length: 500 }, (_, i) => i * 3 + (i % 3));
    for (const [values, ks] of [
      [[], [1, 24]],
      [[0], [1, 24]],
      [[2 ** 32 - 1], [17, 24]],
      [EDGES, [17, 20, 24]],
      [spread, [12, 21, 24]],
      [dense, [1, 2, 5]],
    ] as const)
      for (const k of ks) expect([...decodeRiceSet(encodeRiceSet(values, k), values.length, k)], `k=${k}`).toEqual(values);
  });

  it('refuses values out of order, repeated or out of range, a parameter it cannot decode, and bytes that run out', () => {
    for (const bad of [[2, 1], [5, 5], [-1], [2 ** 32], [1.5]]) expect(() => encodeRiceSet(bad, 4), String(bad)).toThrow(RangeError);
    for (const k of [0, 25, 1.5]) expect(() => encodeRiceSet([1], k), `k=${k}`).toThrow('not 1–24');
    const bytes = encodeRiceSet(EDGES, 16);
    expect(() => decodeRiceSet(bytes.subarray(0, bytes.length - 3), EDGES.length, 16)).toThrow('truncated');
  });

  it('picks the parameter near log2 of the mean gap, and finds members and only members', () => {
    const sorted = Array.from({ length: 1000 }, (_, i) => i * 4096 + ((i * 7919) % 4096)).sort((a, b) => a - b);
    expect(bestRiceParameter(sorted)).toBeGreaterThanOrEqual(11);
    expect(bestRiceParameter(sorted)).toBeLessThanOrEqual(12);
    const set = Uint32Array.from(EDGES);
    for (const v of EDGES) expect(includesSorted(set, v)).toBe(true);
    for (const v of [4, 2 ** 16 + 1, 2 ** 31 + 1, 2 ** 32 - 3]) expect(includesSorted(set, v)).toBe(false);
    expect(includesSorted(new Uint32Array(0), 0)).toBe(false);
  });
});
