import { exportJWK, generateKeyPair, SignJWT, type JWTHeaderParameters } from 'jose';
import { describe, expect, it } from 'vitest';
import { signToken, verifyToken, TokenRejected } from '../../src/tokens/jwt';
import { call } from '../helpers';
import { ISS, ring, signedByUs as signedByOurKey } from './attacks';

const AUD = 'https://api.example.com';
const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
const signedByUs = (header: Partial<JWTHeaderParameters>, claims: Record<string, unknown>, alg: 'ES256' | 'RS256' = 'ES256') =>
  signedByOurKey(header, { aud: AUD, ...claims }, alg);

const verifyAccess = (token: string, over: { audience?: string; issuer?: string } = {}) =>
  verifyToken(ring, token, { kind: 'access', issuer: over.issuer ?? ISS, audience: over.audience ?? AUD, now: Date.now() });

async function rejection(token: string, over?: { audience?: string; issuer?: string }) {
  const e = await verifyAccess(token, over).catch((err: unknown) => err);
  expect(e).toBeInstanceOf(TokenRejected);
  return (e as TokenRejected).reason;
}

describe('issuing and verifying tokens', () => {
  it('signs an RFC 9068 access token that verifies in the isolate', async () => {
    const now = Date.now();
    const { token, jti, kid } = await signToken(ring, {
      kind: 'access',
      claims: { sub: 'user-1', client_id: 'app', scope: 'openid email' },
      issuer: ISS,
      audience: AUD,
      ttl: 600,
      now,
    });
    const [header] = token.split('.');
    expect(JSON.parse(atob(header!.replace(/-/g, '+').replace(/_/g, '/')))).toEqual({ alg: 'ES256', kid, typ: 'at+jwt' });
    const claims = await verifyAccess(token);
    expect(claims).toMatchObject({ iss: ISS, aud: AUD, sub: 'user-1', client_id: 'app', scope: 'openid email', jti });
    expect(claims.exp! - claims.iat!).toBe(600);
  });

  it('signs with RS256 when asked (ID tokens for clients that need it)', async () => {
    const now = Date.now();
    const { token } = await signToken(ring, {
      kind: 'id',
      alg: 'RS256',
      claims: { sub: 'u' },
      issuer: ISS,
      audience: 'client',
      ttl: 60,
      now,
    });
    const claims = await verifyToken(ring, token, { kind: 'id', issuer: ISS, audience: 'client', now });
    expect(claims.sub).toBe('u');
  });
});

describe('the JWT rejection matrix', () => {
  it('rejects alg none', async () => {
    const { kid } = await ring.signer('ES256', Date.now());
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64({ iss: ISS, aud: AUD, sub: 'x', iat: now, exp: now + 60 })}.`;
    expect(await rejection(token)).toBe('ERR_JOSE_ALG_NOT_ALLOWED');
  });

  it('rejects HS256 signed with the public key as the secret', async () => {
    const now = Date.now();
    const { kid } = await ring.signer('ES256', now);
    const jwk = (await ring.jwks(now)).keys.find((k) => k.kid === kid)!;
    const secret = new TextEncoder().encode(JSON.stringify(jwk));
    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({ iss: ISS, aud: AUD, sub: 'x', iat, exp: iat + 60 })
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
      .sign(secret);
    expect(await rejection(token)).toBe('ERR_JOSE_ALG_NOT_ALLOWED');
  });

  it('rejects an unknown kid and a token signed by a foreign key', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const iat = Math.floor(Date.now() / 1000);
    const foreign = (kid: string) =>
      new SignJWT({ iss: ISS, aud: AUD, sub: 'x', iat, exp: iat + 60 })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .sign(privateKey);
    expect(await rejection(await foreign('no-such-kid'))).toBe('unknown kid');
    const { kid } = await ring.signer('ES256', Date.now());
    expect(await rejection(await foreign(kid))).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('rejects jku, x5u, jwk and x5c headers even on a correctly signed token', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const attackerJwk = await exportJWK(publicKey);
    for (const header of [
      { jku: 'https://evil.example/jwks.json' },
      { x5u: 'https://evil.example/cert.pem' },
      { jwk: attackerJwk },
      { x5c: ['MIIB'] },
    ]) {
      const token = await signedByUs(header as Partial<JWTHeaderParameters>, {});
      expect(await rejection(token)).toMatch(/^header (jku|x5u|jwk|x5c) is not accepted$/);
    }
  });

  it('rejects an ID token presented as an access token, and the reverse', async () => {
    const idToken = await signedByUs({ typ: 'JWT' }, {});
    expect(await rejection(idToken)).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    const accessToken = await signedByUs({}, {});
    const e = await verifyToken(ring, accessToken, { kind: 'id', issuer: ISS, audience: AUD, now: Date.now() }).catch((x) => x);
    expect(e).toBeInstanceOf(TokenRejected);
  });

  it('rejects a wrong audience or issuer', async () => {
    const token = await signedByUs({}, {});
    expect(await rejection(token, { audience: 'https://other-api.example.com' })).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    expect(await rejection(token, { issuer: 'https://evil.example' })).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    expect(await rejection(await signedByUs({}, { aud: 'https://other-api.example.com' }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('rejects an expired token and one not yet valid', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await rejection(await signedByUs({}, { iat: now - 120, exp: now - 60 }))).toBe('ERR_JWT_EXPIRED');
    expect(await rejection(await signedByUs({}, { nbf: now + 120 }))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('rejects a token whose header names RS256 but whose kid is an ES256 key', async () => {
    const now = Date.now();
    const { kid: esKid } = await ring.signer('ES256', now);
    const { key: rsKey } = await ring.signer('RS256', now);
    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({ iss: ISS, aud: AUD, sub: 'x', iat, exp: iat + 60 })
      .setProtectedHeader({ alg: 'RS256', kid: esKid, typ: 'at+jwt' })
      .sign(rsKey);
    expect(await rejection(token)).toBe('unknown kid');
  });
});

describe('/.well-known/jwks.json', () => {
  it('publishes every signing key with kid, alg and use, never a private member, cacheably', async () => {
    const res = await call('/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300, stale-while-revalidate=60');
    const { keys } = await res.json<{ keys: Record<string, string>[] }>();
    expect(keys.map((k) => k.alg).sort()).toEqual(expect.arrayContaining(['ES256', 'RS256']));
    for (const k of keys) {
      expect(k.use).toBe('sig');
      expect(k.kid).toBeTruthy();
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(secret);
    }
  });
});
