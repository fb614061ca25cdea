import { env } from 'cloudflare:workers';
import { decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { loadKeys } from '../../src/tokens/key-store';
import { ensureKeys, keyPolicy, rotateKeys } from '../../src/tokens/keys';
import { parseConfig } from '../../src/config';
import { appWith } from '../helpers';
import { basic, form, registerClient } from './helpers';

describe('key rotation while a client holds tokens', () => {
  it('keeps earlier tokens verifying and signs new ones with the new key', async () => {
    const client = await registerClient();
    const policy = keyPolicy(parseConfig(env).tokens);
    const db = createDb(env.DB);
    await ensureKeys(db, parseConfig(env).keyEncryptionKey, Date.now());
    // The current ES256 signer, and when it is due to be replaced.
    const signer = (await loadKeys(db))
      .filter((k) => k.alg === 'ES256' && k.signsFrom <= Date.now())
      .sort((a, b) => b.generation - a.generation)[0];
    const due = (signer?.signsFrom ?? Date.now()) + policy.rotationMs;
    const at = (t: number) => appWith(() => ({ now: () => t }));
    const grant = (t: number) =>
      at(t)('/auth/token', {
        ...form({ grant_type: 'client_credentials', scope: 'profile' }),
        headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
      }).then((r) => r.json<{ access_token: string }>());
    const introspect = (t: number, token: string) =>
      at(t)('/auth/introspect', {
        ...form({ token }),
        headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
      }).then((r) => r.json<{ active: boolean }>());

    // The cron publishes the successor an hour ahead; a token is issued just before the switch.
    await rotateKeys(db, parseConfig(env).keyEncryptionKey, due - policy.publishLeadMs, policy);
    const before = await grant(due - 60_000);
    const after = await grant(due + 60_000);
    const kidBefore = decodeProtectedHeader(before.access_token).kid;
    const kidAfter = decodeProtectedHeader(after.access_token).kid;
    expect(kidAfter).not.toBe(kidBefore);
    expect(await introspect(due + 60_000, before.access_token)).toMatchObject({ active: true });
    expect(await introspect(due + 60_000, after.access_token)).toMatchObject({ active: true });
    // The JWKS at the switch lists both.
    const jwks = await (await at(due + 60_000)('/.well-known/jwks.json')).json<{ keys: { kid: string }[] }>();
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([kidBefore, kidAfter]));
  });
});

describe('rotation on demand', () => {
  it('signs new tokens with a new key at once; tokens of the old one keep verifying until they expire', async () => {
    const client = await registerClient({ resources: [] });
    const { rotateKeysNow } = await import('../../src/tokens/keys');
    const db = createDb(env.DB);
    const kek = parseConfig(env).keyEncryptionKey;
    const now = Date.now();
    const grant = async (at = Date.now()) =>
      (
        await appWith(() => ({ now: () => at }))('/auth/token', {
          ...form({ grant_type: 'client_credentials', scope: 'profile' }),
          headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
        })
      ).json<{ access_token: string }>();
    const old = await grant();
    const created = await rotateKeysNow(db, kek, now);
    expect(created.map((c) => c.split('#')[0]).sort()).toEqual(['ES256', 'RS256']);
    // Every isolate signs with the new key within a minute (the key ring re-reads D1 for signing after 60 s).
    const fresh = await grant(Date.now() + 61_000);
    expect(decodeProtectedHeader(fresh.access_token).kid).not.toBe(decodeProtectedHeader(old.access_token).kid);
    const generation = (token: string) => Number(/^es256-(\d+)-/.exec(decodeProtectedHeader(token).kid!)![1]);
    expect(generation(fresh.access_token)).toBeGreaterThan(generation(old.access_token));
    const jwks = await (await appWith(() => ({}))('/.well-known/jwks.json')).json<{ keys: { kid: string }[] }>();
    const kids = jwks.keys.map((k) => k.kid);
    expect(kids).toContain(decodeProtectedHeader(old.access_token).kid);
    expect(kids).toContain(decodeProtectedHeader(fresh.access_token).kid);
    const introspect = (token: string) =>
      appWith(() => ({}))('/auth/introspect', {
        ...form({ token }),
        headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
      }).then((r) => r.json<{ active: boolean }>());
    expect(await introspect(old.access_token)).toMatchObject({ active: true });
    expect(await introspect(fresh.access_token)).toMatchObject({ active: true });
  });
});
