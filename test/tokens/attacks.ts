import { env } from 'cloudflare:workers';
import { exportJWK, generateKeyPair, SignJWT, type JWTHeaderParameters } from 'jose';
import { createDb } from '../../src/db/client';
import { KeyRing } from '../../src/tokens/key-ring';

const KEK = 'dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI';
export const ISS = 'https://gatehouse.test';

/** The KeyRing over the test D1 — the same keys the worker signs with. */
export const ring = new KeyRing(createDb(env.DB), KEK, { rotationMs: 30 * 86400_000, publishLeadMs: 3600_000, maxTokenTtlMs: 3600_000 });

const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

/** A token signed by Gatehouse's own key with any header and claims (what only a key holder could make). */
export async function signedByUs(header: Partial<JWTHeaderParameters>, claims: Record<string, unknown>, alg: 'ES256' | 'RS256' = 'ES256') {
  const now = Date.now();
  const { kid, key } = await ring.signer(alg, now);
  const iat = Math.floor(now / 1000);
  return new SignJWT({ iss: ISS, aud: ISS, sub: 'user-1', iat, exp: iat + 300, ...claims })
    .setProtectedHeader({ alg, kid, typ: 'at+jwt', ...header } as JWTHeaderParameters)
    .sign(key);
}

/**
 * The rejection matrix as tokens: each must be refused by every verifier. `typ` is the type the
 * token would otherwise pass as; `aud` the audience it claims.
 */
export async function attackTokens(typ: 'at+jwt' | 'JWT', aud: string, sub = 'user-1'): Promise<Record<string, string>> {
  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const claims = { iss: ISS, aud, sub, iat, exp: iat + 300 };
  const { kid } = await ring.signer('ES256', now);
  const jwk = (await ring.jwks(now)).keys.find((k) => k.kid === kid)!;
  const { privateKey: foreign, publicKey: foreignPublic } = await generateKeyPair('ES256');
  const wrongTyp = typ === 'at+jwt' ? 'JWT' : 'at+jwt';
  return {
    'alg none': `${b64({ alg: 'none', typ, kid })}.${b64(claims)}.`,
    'HS256 with the public key': await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid, typ })
      .sign(new TextEncoder().encode(JSON.stringify(jwk))),
    'unknown kid': await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'no-such-kid', typ }).sign(foreign),
    'foreign key under our kid': await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ }).sign(foreign),
    'jku header': await signedByUs({ typ, jku: 'https://evil.example/jwks.json' } as never, { aud, sub }),
    'x5u header': await signedByUs({ typ, x5u: 'https://evil.example/cert.pem' } as never, { aud, sub }),
    'jwk header': await signedByUs({ typ, jwk: await exportJWK(foreignPublic) } as never, { aud, sub }),
    'wrong typ': await signedByUs({ typ: wrongTyp }, { aud, sub }),
    'wrong aud': await signedByUs({ typ }, { aud: 'https://other.example', sub }),
    'wrong iss': await signedByUs({ typ }, { iss: 'https://evil.example', aud, sub }),
    expired: await signedByUs({ typ }, { aud, sub, iat: iat - 7200, exp: iat - 3600 }),
    'nbf in the future': await signedByUs({ typ }, { aud, sub, nbf: iat + 600 }),
  };
}
