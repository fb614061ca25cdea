import { dictionary } from '@zxcvbn-ts/language-common';
import { describe, expect, it } from 'vitest';
import { commonPasswordKey, renderCommonPasswordsModule } from '../../src/auth/common-passwords';
import committed from '../../src/auth/common-passwords.generated.ts?raw';
import { checkNewPassword, isCommonPassword } from '../../src/auth/password-policy';

const LIST = dictionary['passwords-common'] as string[];

/** A seeded generator (mulberry32), so a failure reproduces. */
function seeded(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('the common-password list', () => {
  it('refuses every password on the zxcvbn-ts list, as listed and upper-cased', () => {
    expect(LIST.length).toBeGreaterThan(49_000);
    const missed = LIST.filter((p) => !isCommonPassword(p) || !isCommonPassword(p.toUpperCase()));
    expect(missed).toEqual([]);
  });

  it('refuses about n / 2^32 of 100,000 random passwords that are not on the list', () => {
    const listed = new Set(LIST);
    const random = seeded(20261207);
    const printable = (n: number) => String.fromCharCode(...Array.from({ length: n }, () => 33 + Math.floor(random() * 94)));
    let tried = 0;
    let refused = 0;
    while (tried < 100_000) {
      const candidate = printable(8 + Math.floor(random() * 13));
      if (listed.has(candidate.toLowerCase())) continue;
      tried++;
      if (isCommonPassword(candidate)) refused++;
    }
    // Expected 49,233 / 2^32 × 100,000 ≈ 1.15; nine or more would happen less than once in a million runs.
    expect(refused).toBeLessThanOrEqual(8);
  });

  it('keys a password by its NFC, lower-cased form, as the check always compared', () => {
    expect(commonPasswordKey('CAFÉ-au-lait'.normalize('NFD'))).toBe(commonPasswordKey('café-au-lait'));
    expect(commonPasswordKey('cafe-au-lait')).not.toBe(commonPasswordKey('café-au-lait'));
    expect(isCommonPassword('PassWord1')).toBe(true);
    expect(() => checkNewPassword('Qwerty123', 8)).toThrow('too common');
    expect(() => checkNewPassword('correct horse battery staple 2026', 8)).not.toThrow();
  });

  it('ships the module the generator makes from the installed list (npm run build:passwords)', () => {
    expect(committed).toBe(renderCommonPasswordsModule(LIST));
  });
});
