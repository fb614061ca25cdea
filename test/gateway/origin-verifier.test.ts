import { createLocalJWKSet, SignJWT, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAssertionVerifier } from '../../src/origin/verify-assertion';
import { APP, appSession, call, createVerifiedUser, signIn } from '../helpers';

describe('the origin-side assertion verifier', () => {
  it('verifies real assertions from the gateway and refuses forged or misdirected ones', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const echo = await (await call(`${APP}/demo/me/x`, { cookie: await appSession(cookie) })).json<{ headers: Record<string, string> }>();
    const jwks = createLocalJWKSet(await (await call('/.well-known/jwks.json')).json());
    const verify = createAssertionVerifier({ issuer: 'https://gatehouse.test', audience: 'service:ORIGIN_ECHO', jwks });

    const identity = await verify(new Headers({ 'x-auth-assertion': echo.headers['x-auth-assertion']! }));
    expect(identity).toMatchObject({ sub: userId, email, amr: ['pwd'] });

    const otherOrigin = createAssertionVerifier({ issuer: 'https://gatehouse.test', audience: 'https://billing.internal', jwks });
    await expect(otherOrigin(echo.headers['x-auth-assertion']!)).rejects.toThrow();
    await expect(verify(new Headers())).rejects.toThrow('missing x-auth-assertion');
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ sub: 'admin', roles: ['admin'] })
      .setProtectedHeader({
        alg: 'ES256',
        typ: 'gatehouse-assertion+jwt',
        kid: JSON.parse(atob(echo.headers['x-auth-assertion']!.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/'))).kid,
      })
      .setIssuer('https://gatehouse.test')
      .setAudience('service:ORIGIN_ECHO')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(privateKey);
    await expect(verify(forged)).rejects.toThrow();
  });
});
