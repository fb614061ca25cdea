import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import { createDb } from '../../src/db/client';
import { oauthClients } from '../../src/db/schema';
import { buildClient, type ClientInput } from '../../src/oauth/client-registration';
import { s256 } from '../../src/lib/pkce';
import { randomToken, sha256 } from '../../src/lib/crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { call, createVerifiedUser, signIn } from '../helpers';

export const REDIRECT = 'https://app.example.com/callback';

/** Registers a client straight into D1; returns its id and secret. */
export async function registerClient(over: Partial<ClientInput> = {}) {
  const { row, clientSecret } = await buildClient(
    { name: 'Test App', redirectUris: [REDIRECT], firstParty: true, scopes: ['openid', 'profile', 'email', 'roles', 'offline_access'], resources: ['https://api.gatehouse.test'], grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'], ...over },
    Date.now(),
  );
  await createDb(env.DB).insert(oauthClients).values(row);
  return { clientId: row.clientId, clientSecret: clientSecret! };
}

export const basic = (id: string, secret: string) => `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`;

export async function pkce() {
  const verifier = randomToken(48);
  return { verifier, challenge: await s256(verifier) };
}

export function authorizeUrl(clientId: string, challenge: string, over: Record<string, string | undefined> = {}) {
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    scope: 'openid email profile',
    state: 'st-' + randomToken(8),
    nonce: 'n-' + randomToken(8),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete params[k];
    else params[k] = v;
  }
  return `/auth/authorize?${new URLSearchParams(params)}`;
}

export const form = (fields: Record<string, string>) => ({
  method: 'POST',
  body: new URLSearchParams(fields).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
});

/** A signed-in user and their cookie. */
export async function signedInUser() {
  const user = await createVerifiedUser();
  const { cookie } = await signIn(user.email);
  return { ...user, cookie };
}

/** Runs authorize for a signed-in user of a first-party client and returns the code from the redirect. */
export async function getCode(clientId: string, cookie: string, over: Record<string, string | undefined> = {}) {
  const { verifier, challenge } = await pkce();
  const res = await call(authorizeUrl(clientId, challenge, over), { cookie });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  const code = location.searchParams.get('code');
  expect(code, location.toString()).toBeTruthy();
  return { code: code!, verifier, location };
}

export async function tokenRequest(fields: Record<string, string>, authorization?: string) {
  const init = form(fields);
  return call('/auth/token', { ...init, headers: { ...init.headers, ...(authorization ? { authorization } : {}) } });
}

/** A client's DPoP key pair (RFC 9449) and a maker of proofs with it. */
export async function dpopKey(alg: 'ES256' | 'EdDSA' | 'PS256' = 'ES256') {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  /** A proof for `htm` `htu`; `ath` for an access token; `over` replaces claims or header fields. */
  const proof = async (htm: string, htu: string, o: { accessToken?: string; nonce?: string; iat?: number; claims?: Record<string, unknown>; header?: Record<string, unknown> } = {}) =>
    new SignJWT({
      jti: randomToken(12),
      htm,
      htu,
      ...(o.accessToken ? { ath: await sha256(o.accessToken) } : {}),
      ...(o.nonce ? { nonce: o.nonce } : {}),
      ...o.claims,
    })
      .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk, ...o.header } as never)
      .setIssuedAt(o.iat ?? Math.floor(Date.now() / 1000))
      .sign(privateKey);
  return { jwk, jkt, privateKey, proof };
}
