import { env } from 'cloudflare:workers';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/lib/crypto';
import { registerClient, tokenRequest } from './helpers';

/**
 * private_key_jwt replay (RFC 7523 §3) once the request path no longer purges (issue 17): a jti's
 * row outlives its assertion until the hourly purge. A row still live refuses the jti; a row whose
 * assertion has expired is taken over by the next use — and that use is single too.
 */
describe('client assertion jti rows awaiting the purge', () => {
  it('a live row refuses the jti; an expired one is taken over once, then refuses a replay', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const client = await registerClient({
      authMethod: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
    });
    const request = async (jti: string) =>
      tokenRequest({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await new SignJWT({ jti })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
          .setIssuer(client.clientId)
          .setSubject(client.clientId)
          .setAudience('https://gatehouse.test/auth/token')
          .setIssuedAt()
          .setExpirationTime('2m')
          .sign(privateKey),
      });
    const row = async (jti: string, expiresAt: number) =>
      env.DB.prepare('INSERT INTO used_client_assertions (key, expires_at) VALUES (?, ?)')
        .bind(await sha256(`${client.clientId}:${jti}`), expiresAt)
        .run();

    await row('live', Date.now() + 60_000);
    const refused = await request('live');
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_client', error_description: 'The client assertion was already used.' });

    await row('stale', Date.now() - 1000);
    const taken = await request('stale');
    expect(taken.status, await taken.clone().text()).toBe(200);
    expect(await taken.json()).toHaveProperty('access_token');
    const replay = await request('stale');
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'invalid_client', error_description: 'The client assertion was already used.' });
  });
});
