import { dictionary } from '@zxcvbn-ts/language-common';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import {
  COMMON_PASSWORDS_ASSET,
  commonPasswordKey,
  encodeCommonPasswords,
  renderCommonPasswordsModule,
} from '../../src/auth/common-passwords';
import committed from '../../src/auth/common-passwords.generated.ts?raw';
import { checkNewPassword, commonPasswordsFromAssets, createCommonPasswords } from '../../src/auth/password-policy';
import { GatehouseError } from '../../src/lib/errors';

const LIST = dictionary['passwords-common'] as string[];
/** The list as the worker reads it: through the ASSETS binding (wrangler.toml `[assets]`). */
const list = commonPasswordsFromAssets(env.ASSETS, COMMON_PASSWORDS_ASSET);
const assetBytes = async () =>
  new Uint8Array(await (await env.ASSETS.fetch(`https://assets.invalid${COMMON_PASSWORDS_ASSET}`)).arrayBuffer());

/** A seeded generator (mulberry32), so a failure reproduces. */
function seeded(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** How a check fails when the list cannot be read: a 503 temporarily_unavailable, never an answer. */
async function expectUnavailable(check: Promise<unknown>) {
  const e = await check.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GatehouseError);
  expect(e).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
}

describe('the common-password list', () => {
  it('refuses every password on the zxcvbn-ts list, as listed and upper-cased', async () => {
    expect(LIST.length).toBeGreaterThan(49_000);
    const missed: string[] = [];
    for (const p of LIST) if (!(await list.includes(p)) || !(await list.includes(p.toUpperCase()))) missed.push(p);
    expect(missed).toEqual([]);
  });

  it('refuses about n / 2^32 of 100,000 random passwords that are not on the list', async () => {
    const listed = new Set(LIST);
    const random = seeded(20261207);
    const printable = (n: number) => String.fromCharCode(...Array.from({ length: n }, () => 33 + Math.floor(random() * 94)));
    let tried = 0;
    let refused = 0;
    while (tried < 100_000) {
      const candidate = printable(8 + Math.floor(random() * 13));
      if (listed.has(candidate.toLowerCase())) continue;
      tried++;
      if (await list.includes(candidate)) refused++;
    }
    // Expected 49,233 / 2^32 × 100,000 ≈ 1.15; nine or more would happen less than once in a million runs.
    expect(refused).toBeLessThanOrEqual(8);
  });

  it('keys a password by its NFC, lower-cased form, as the check always compared', async () => {
    expect(commonPasswordKey('CAFÉ-au-lait'.normalize('NFD'))).toBe(commonPasswordKey('café-au-lait'));
    expect(commonPasswordKey('cafe-au-lait')).not.toBe(commonPasswordKey('café-au-lait'));
    expect(await list.includes('PassWord1')).toBe(true);
    await expect(checkNewPassword(list, 'Qwerty123', 8)).rejects.toThrow('too common');
    await expect(checkNewPassword(list, 'correct horse battery staple 2026', 8)).resolves.toBeUndefined();
  });

  it('ships the asset and the module the generator makes from the installed list (npm run build:passwords)', async () => {
    const { asset, manifest } = await encodeCommonPasswords(LIST);
    expect(committed).toBe(renderCommonPasswordsModule(LIST, manifest));
    const served = await assetBytes();
    expect(served.length).toBe(asset.length);
    expect(served.every((b, i) => b === asset[i])).toBe(true);
  });
});

describe('reading the list', () => {
  it('reads it once per isolate, however many checks start together', async () => {
    let reads = 0;
    const counted = createCommonPasswords(async () => {
      reads++;
      return assetBytes();
    });
    const answers = await Promise.all(['password1', 'iloveyou', 'correct horse battery staple 2026'].map((p) => counted.includes(p)));
    expect(answers).toEqual([true, true, false]);
    expect(await counted.includes('qwerty123')).toBe(true);
    expect(reads).toBe(1);
  });

  it('fails closed when the asset is missing: every check is refused with a 503, listed or not', async () => {
    const missing = commonPasswordsFromAssets(env.ASSETS, '/no-such-list.bin');
    for (const password of ['password1', 'correct horse battery staple 2026']) {
      await expectUnavailable(missing.includes(password));
      await expectUnavailable(checkNewPassword(missing, password, 8));
    }
    // The length rules need no list: a too-short password is still a 400.
    await expect(checkNewPassword(missing, 'short', 8)).rejects.toMatchObject({ code: 'weak_password' });
  });

  it('fails closed when the bytes are not the asset this build made (stale, truncated, altered, or a page)', async () => {
    const real = await assetBytes();
    const flipped = real.slice();
    flipped[real.length >> 1]! ^= 0x10;
    const variants = {
      truncated: real.slice(0, -1),
      longer: Uint8Array.from([...real, 0]),
      altered: flipped,
      empty: new Uint8Array(0),
      page: new TextEncoder().encode('<!doctype html><title>Not found</title>'),
    };
    for (const [name, bytes] of Object.entries(variants)) {
      const wrong = createCommonPasswords(async () => new Uint8Array(bytes));
      await expectUnavailable(wrong.includes('correct horse battery staple 2026')).catch((e: unknown) => {
        throw new Error(`${name}: ${String(e)}`);
      });
    }
  });

  it('reads again after a failure, and keeps the list once read', async () => {
    let fail = true;
    let reads = 0;
    const flaky = createCommonPasswords(async () => {
      reads++;
      if (fail) throw new Error('asset fetch failed');
      return assetBytes();
    });
    await expectUnavailable(flaky.includes('password1'));
    await expectUnavailable(flaky.includes('password1'));
    fail = false;
    expect(await flaky.includes('password1')).toBe(true);
    fail = true;
    expect(await flaky.includes('correct horse battery staple 2026')).toBe(false);
    expect(reads).toBe(3);
  });
});
