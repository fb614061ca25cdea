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
    const signer = (await loadKeys(db)).filter((k) => k.alg === 'ES256' && k.signsFrom <= Date.now()).sort((a, b) => b.generation - a.generation)[0];
    const due = (signer?.signsFrom ?? Date.now()) + policy.rotationMs;
    const at = (t: number) => appWith(() => ({ now: () => t }));
    const grant = (t: number) =>
      at(t)('/auth/token', { ...form({ grant_type: 'client_credentials', scope: 'profile' }), headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) } }).then(
        (r) => r.json<{ access_token: string }>(),
      );
    const introspect = (t: number, token: string) =>
      at(t)('/auth/introspect', { ...form({ token }), headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) } }).then((r) =>
        r.json<{ active: boolean }>(),
      );

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
