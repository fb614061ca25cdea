import { env } from 'cloudflare:workers';
import { beforeEach, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { decryptPrivateJwk } from '../../src/tokens/key-material';
import { loadKeys, type StoredKey } from '../../src/tokens/key-store';
import { KeyRing } from '../../src/tokens/key-ring';
import { ensureKeys, rotateKeys, viewKeys, type KeyPolicy } from '../../src/tokens/keys';
import { signToken, verifyToken } from '../../src/tokens/jwt';

const KEK = 'dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI';
const DAY = 86400_000;
const policy: KeyPolicy = { rotationMs: 30 * DAY, publishLeadMs: 3600_000, maxTokenTtlMs: 3600_000 };
const db = createDb(env.KEYS_TEST_DB);
const kinds = (keys: StoredKey[]) => keys.map((k) => `${k.alg}#${k.generation}`).sort();

beforeEach(async () => {
  await env.KEYS_TEST_DB.prepare('DELETE FROM signing_keys').run();
});

describe('signing keys', () => {
  it('creates exactly one key per algorithm however many first requests race', async () => {
    const now = Date.now();
    await Promise.all(Array.from({ length: 20 }, () => ensureKeys(db, KEK, now)));
    const keys = await loadKeys(db);
    expect(kinds(keys)).toEqual(['ES256#1', 'RS256#1']);
  });

  it('keeps private keys encrypted at rest, bound to their kid', async () => {
    await ensureKeys(db, KEK, Date.now());
    const row = await env.KEYS_TEST_DB.prepare(
      "SELECT kid, public_jwk, private_jwk_encrypted FROM signing_keys WHERE alg = 'ES256'",
    ).first<{
      kid: string;
      public_jwk: string;
      private_jwk_encrypted: string;
    }>();
    const privateJwk = await decryptPrivateJwk(KEK, row!.kid, row!.private_jwk_encrypted);
    expect(privateJwk.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(row!.private_jwk_encrypted).not.toContain(privateJwk.d);
    expect(JSON.parse(row!.public_jwk)).not.toHaveProperty('d');
    await expect(decryptPrivateJwk(KEK, 'another-kid', row!.private_jwk_encrypted)).rejects.toThrow();
    await expect(decryptPrivateJwk('b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI', row!.kid, row!.private_jwk_encrypted)).rejects.toThrow();
  });

  it('publishes the next key before it signs and keeps the old one until its tokens expire', async () => {
    const t0 = Date.now();
    await ensureKeys(db, KEK, t0);
    const due = t0 + policy.rotationMs;

    expect((await rotateKeys(db, KEK, due - policy.publishLeadMs - 1, policy)).created).toEqual([]);
    expect((await rotateKeys(db, KEK, due - policy.publishLeadMs, policy)).created.sort()).toEqual(['ES256', 'RS256']);
    // Idempotent: a second run in the same window creates nothing.
    expect((await rotateKeys(db, KEK, due - 1000, policy)).created).toEqual([]);

    const keys = await loadKeys(db);
    const before = viewKeys(keys, due - 1, policy);
    expect(before.signers.ES256!.generation).toBe(1);
    expect(kinds(before.published)).toEqual(['ES256#1', 'ES256#2', 'RS256#1', 'RS256#2']);

    const after = viewKeys(keys, due, policy);
    expect(after.signers.ES256!.generation).toBe(2);
    expect(kinds(after.published)).toEqual(['ES256#1', 'ES256#2', 'RS256#1', 'RS256#2']);

    const later = viewKeys(keys, due + policy.maxTokenTtlMs, policy);
    expect(kinds(later.published)).toEqual(['ES256#2', 'RS256#2']);
    expect(kinds(later.expired)).toEqual(['ES256#1', 'RS256#1']);
    const { deleted } = await rotateKeys(db, KEK, due + policy.maxTokenTtlMs, policy);
    expect(deleted).toHaveLength(2);
    expect(kinds(await loadKeys(db))).toEqual(['ES256#2', 'RS256#2']);
  });

  it('keeps verifying tokens signed before a rotation, and signs new ones with the new key', async () => {
    const t0 = Date.now();
    const due = t0 + policy.rotationMs;
    const ringAt = () => new KeyRing(db, KEK, policy); // a fresh isolate's view
    const opts = { issuer: 'https://gatehouse.test', audience: 'api' };
    const sign = (now: number) => signToken(ringAt(), { kind: 'access', claims: { sub: 'u1' }, ttl: 3600, now, ...opts });
    const verify = (token: string, now: number) => verifyToken(ringAt(), token, { kind: 'access', now, ...opts });

    const first = await sign(t0);
    await rotateKeys(db, KEK, due - policy.publishLeadMs, policy);
    const old = await sign(due - 600_000); // signed by the old key, published next key already visible
    expect(old.kid).toBe(first.kid);
    expect((await ringAt().jwks(due - 600_000)).keys.map((k) => k.kid)).toContain(old.kid);

    const rotated = await sign(due + 600_000);
    expect(rotated.kid).not.toBe(old.kid);
    expect((await verify(rotated.token, due + 600_000)).sub).toBe('u1');
    expect((await verify(old.token, due + 600_000)).sub).toBe('u1'); // still alive, still verifies

    await rotateKeys(db, KEK, due + policy.maxTokenTtlMs, policy);
    await expect(verify(old.token, due + 600_000)).rejects.toThrow('unknown kid');
  });
});

describe('the scheduled handler', () => {
  it('runs the rotation: every algorithm has a signing key afterwards', async () => {
    const { createScheduledController } = await import('cloudflare:test');
    const worker = (await import('../../src/index')).default;
    await worker.scheduled(createScheduledController({ cron: '17 * * * *' }), env);
    const algs = await env.DB.prepare('SELECT DISTINCT alg FROM signing_keys ORDER BY alg').all<{ alg: string }>();
    expect(algs.results.map((r) => r.alg)).toEqual(['ES256', 'RS256']);
  });
});
