import { env } from 'cloudflare:workers';
import { base64url, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { auditOf, call, ORIGIN } from '../helpers';
import { authorizeParams, basic, pkce, pushRequest, REDIRECT, registerClient, RFC6749_TEXT, signedInUser, tokenRequest } from './helpers';

/**
 * Signed request objects (RFC 9101 JAR), by value and pushed, as a client signs them and as an
 * attacker forges, strips, re-targets or outlives them.
 */
const locationOf = (res: Response) => new URL(res.headers.get('location')!, ORIGIN);
const grants = async (userId: string) => (await auditOf(userId)).results.filter((r) => r.type === 'authorization_granted').length;
const REFUSED = 'The request object was refused';

/** A client with a registered ES256 key (and a secret, for the back channel). */
async function clientWithKey(over: Parameters<typeof registerClient>[0] = {}) {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ro-1', alg: 'ES256', use: 'sig' };
  const client = await registerClient({ jwks: { keys: [jwk] }, ...over });
  return { ...client, privateKey, jwk };
}

interface SignOptions {
  key: CryptoKey | Uint8Array;
  alg?: string;
  header?: Record<string, unknown>;
}

/** A request object for `params`: iss the client, aud the issuer, issued now, five minutes to live. */
async function requestObject(clientId: string, params: Record<string, unknown>, o: SignOptions, claims: JWTPayload = {}) {
  const jwt = new SignJWT({ ...params, ...claims } as JWTPayload).setProtectedHeader({
    alg: o.alg ?? 'ES256',
    typ: 'oauth-authz-req+jwt',
    kid: 'ro-1',
    ...o.header,
  });
  if (!('iss' in claims)) jwt.setIssuer(clientId);
  if (!('aud' in claims)) jwt.setAudience(ORIGIN);
  if (!('iat' in claims)) jwt.setIssuedAt();
  if (!('exp' in claims)) jwt.setExpirationTime('5m');
  return jwt.sign(o.key);
}

/** A JWT with `alg: none` (jose will not make one). */
const unsecured = (payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'none', typ: 'oauth-authz-req+jwt' }) =>
  `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(payload))}.`;

const authorizeWith = (query: Record<string, string>, cookie?: string) =>
  call(`/auth/authorize?${new URLSearchParams(query)}`, cookie ? { cookie } : {});

async function expectErrorPage(res: Response, text: string) {
  const body = await res.text();
  expect(res.status, body.slice(0, 300)).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  expect(body).toContain(text);
}

const now = () => Math.floor(Date.now() / 1000);

describe('a signed request object by value (request=)', () => {
  it('signed with the client’s registered key is the request — and the only parameters used', async () => {
    const client = await clientWithKey();
    const user = await signedInUser();
    const { verifier, challenge } = await pkce();
    const inner = authorizeParams(client.clientId, challenge, { state: 'inner', nonce: 'inner-nonce', scope: 'openid email' });
    const request = await requestObject(client.clientId, inner, { key: client.privateKey });
    const res = await authorizeWith(
      {
        client_id: client.clientId,
        request,
        state: 'outer',
        redirect_uri: 'https://evil.example/cb',
        scope: 'openid profile offline_access',
        response_mode: 'form_post',
        prompt: 'none',
      },
      user.cookie,
    );
    expect(res.status).toBe(302);
    const to = locationOf(res);
    expect(to.origin + to.pathname).toBe(REDIRECT);
    expect(to.searchParams.get('state')).toBe('inner');
    const tokens = await tokenRequest(
      { grant_type: 'authorization_code', code: to.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.clientId, client.clientSecret),
    );
    const body = await tokens.json<{ id_token: string; scope: string }>();
    expect(body.scope).toBe('openid email');
    expect(decodeJwt(body.id_token).nonce).toBe('inner-nonce');
  });

  it('accepts JSON-typed members (max_age a number, claims an object, resource an array), no typ, and RSA keys', async () => {
    const { publicKey, privateKey } = await generateKeyPair('PS256');
    const rsa = { ...(await exportJWK(publicKey)), kid: 'ro-1', alg: 'PS256' };
    const client = await registerClient({ jwks: { keys: [rsa] } });
    const user = await signedInUser();
    const { challenge } = await pkce();
    const inner = {
      ...authorizeParams(client.clientId, challenge, { state: 'typed' }),
      max_age: 3600,
      claims: { id_token: { email: null } },
      resource: ['https://api.gatehouse.test'],
    };
    const request = await requestObject(client.clientId, inner, { key: privateKey, alg: 'PS256', header: { typ: undefined } });
    const res = await authorizeWith({ client_id: client.clientId, request }, user.cookie);
    expect(locationOf(res).searchParams.get('state')).toBe('typed');
    expect(locationOf(res).searchParams.get('code')).toMatch(/^ac1\./);
  });

  it('is refused with an error page — never a redirect to the redirect_uri it names — when it is not the client’s', async () => {
    const client = await clientWithKey();
    const other = await clientWithKey();
    const keyless = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    const inner = authorizeParams(client.clientId, challenge);
    const { privateKey: attacker, publicKey: attackerPublic } = await generateKeyPair('ES256');
    const secret = new TextEncoder().encode(client.clientSecret);
    const ok = { key: client.privateKey };
    const cases: [string, string, string, string?][] = [
      [
        'an attacker’s key under the registered kid',
        await requestObject(client.clientId, inner, { key: attacker }),
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      ],
      [
        'an attacker’s key embedded as jwk',
        await requestObject(client.clientId, inner, { key: attacker, header: { jwk: await exportJWK(attackerPublic) } }),
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      ],
      [
        'another client’s registered key',
        await requestObject(client.clientId, inner, { key: other.privateKey }),
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      ],
      ['alg none', unsecured({ ...inner, iss: client.clientId, aud: ORIGIN, iat: now(), exp: now() + 300 }), 'ERR_JOSE_ALG_NOT_ALLOWED'],
      [
        'alg none, signature kept',
        `${unsecured({ ...inner, iss: client.clientId, aud: ORIGIN, iat: now() })}c2ln`,
        'ERR_JOSE_ALG_NOT_ALLOWED',
      ],
      ['not a JWT', base64url.encode(JSON.stringify(inner)), 'ERR_JWS_INVALID'],
      [
        'HS256 with the client secret',
        await requestObject(client.clientId, inner, { key: secret, alg: 'HS256' }),
        'ERR_JOSE_ALG_NOT_ALLOWED',
      ],
      [
        'aud another server',
        await requestObject(client.clientId, inner, ok, { aud: 'https://evil.example' }),
        'its aud claim is missing or not valid',
      ],
      [
        'aud the token endpoint',
        await requestObject(client.clientId, inner, ok, { aud: `${ORIGIN}/auth/token` }),
        'its aud claim is missing or not valid',
      ],
      ['no aud', await requestObject(client.clientId, inner, ok, { aud: undefined }), 'its aud claim is missing or not valid'],
      [
        'iss another client',
        await requestObject(client.clientId, inner, ok, { iss: other.clientId }),
        'its iss claim is missing or not valid',
      ],
      ['no iss', await requestObject(client.clientId, inner, ok, { iss: undefined }), 'its iss claim is missing or not valid'],
      [
        'expired',
        await requestObject(client.clientId, inner, ok, { iat: now() - 120, exp: now() - 60 }),
        'its exp claim is missing or not valid',
      ],
      [
        'issued eleven minutes ago',
        await requestObject(client.clientId, inner, ok, { iat: now() - 660, exp: now() + 300 }),
        'its iat claim is missing or not valid',
      ],
      [
        'issued in an hour',
        await requestObject(client.clientId, inner, ok, { iat: now() + 3600, exp: now() + 7200 }),
        'its iat claim is missing or not valid',
      ],
      ['no iat', await requestObject(client.clientId, inner, ok, { iat: undefined }), 'its iat claim is missing or not valid'],
      [
        'not before an hour from now',
        await requestObject(client.clientId, inner, ok, { nbf: now() + 3600 }),
        'its nbf claim is missing or not valid',
      ],
      ['typ JWT', await requestObject(client.clientId, inner, { ...ok, header: { typ: 'JWT' } }), 'typ is not oauth-authz-req+jwt'],
      ['typ at+jwt', await requestObject(client.clientId, inner, { ...ok, header: { typ: 'at+jwt' } }), 'typ is not oauth-authz-req+jwt'],
      [
        'a client_id inside naming another client',
        await requestObject(client.clientId, { ...inner, client_id: other.clientId }, ok),
        'client_id does not match',
      ],
      [
        'a parameter that is not a string',
        await requestObject(client.clientId, { ...inner, prompt: true }, ok),
        'parameter prompt is not a string',
      ],
      // The outer client_id names the client whose key signed; the object speaks for another.
      [
        'the signer’s client_id outside, another’s iss inside',
        await requestObject(client.clientId, inner, { key: other.privateKey }),
        'its iss claim is missing or not valid',
        other.clientId,
      ],
      [
        'a client with no registered keys',
        await requestObject(keyless.clientId, authorizeParams(keyless.clientId, challenge), ok),
        'this client has no registered keys',
        keyless.clientId,
      ],
    ];
    for (const [what, request, reason, clientId] of cases) {
      const res = await authorizeWith(
        { client_id: clientId ?? client.clientId, request, redirect_uri: REDIRECT, response_type: 'code', state: 'outer' },
        user.cookie,
      );
      await expectErrorPage(res, `${REFUSED}: ${reason}.`).catch((e: Error) => {
        throw new Error(`${what}: ${e.message}`);
      });
    }
    expect(await grants(user.userId)).toBe(0);
  });

  it('is refused with an error page when client_id is missing or unknown outside it', async () => {
    const client = await clientWithKey();
    const { challenge } = await pkce();
    const request = await requestObject(client.clientId, authorizeParams(client.clientId, challenge), { key: client.privateKey });
    await expectErrorPage(await authorizeWith({ request }), 'Unknown client_id.');
    await expectErrorPage(await authorizeWith({ request, client_id: 'no-such-client' }), 'Unknown client_id.');
  });

  it('once verified, its own problems go to the redirect URI it names, and an unregistered one to an error page', async () => {
    const client = await clientWithKey();
    const user = await signedInUser();
    const { challenge } = await pkce();
    const badScope = await requestObject(client.clientId, authorizeParams(client.clientId, challenge, { scope: 'unknown', state: 's1' }), {
      key: client.privateKey,
    });
    const res = await authorizeWith({ client_id: client.clientId, request: badScope }, user.cookie);
    expect(res.status).toBe(302);
    expect(Object.fromEntries(locationOf(res).searchParams)).toMatchObject({ error: 'invalid_scope', state: 's1', iss: ORIGIN });
    const badRedirect = await requestObject(
      client.clientId,
      authorizeParams(client.clientId, challenge, { redirect_uri: 'https://evil.example/cb' }),
      { key: client.privateKey },
    );
    await expectErrorPage(
      await authorizeWith({ client_id: client.clientId, request: badRedirect, redirect_uri: REDIRECT }, user.cookie),
      'redirect_uri is not registered for this client.',
    );
    expect(await grants(user.userId)).toBe(0);
  });

  it('does not satisfy a client that must push', async () => {
    const client = await clientWithKey({ requirePar: true });
    const user = await signedInUser();
    const { challenge } = await pkce();
    const request = await requestObject(client.clientId, authorizeParams(client.clientId, challenge), { key: client.privateKey });
    const res = await authorizeWith({ client_id: client.clientId, request }, user.cookie);
    expect(locationOf(res).searchParams.get('error')).toBe('invalid_request');
    expect(locationOf(res).searchParams.get('code')).toBeNull();
  });

  it('cannot come with a request_uri too', async () => {
    const client = await clientWithKey();
    const { challenge } = await pkce();
    const request = await requestObject(client.clientId, authorizeParams(client.clientId, challenge), { key: client.privateKey });
    await expectErrorPage(
      await authorizeWith({ client_id: client.clientId, request, request_uri: `urn:ietf:params:oauth:request_uri:${'A'.repeat(43)}` }),
      'Send request or request_uri, not both.',
    );
  });
});

describe('request_uri by reference', () => {
  it('is not fetched: anything but a pushed request’s URN is request_uri_not_supported, on an error page', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    for (const uri of ['https://attacker.example/request.jwt', 'http://127.0.0.1:9/ro', 'urn:example:other', 'data:,x']) {
      await expectErrorPage(
        await authorizeWith({ client_id: client.clientId, request_uri: uri, redirect_uri: REDIRECT, response_type: 'code' }, user.cookie),
        'request_uri is supported only as a pushed request',
      );
    }
    const meta = await (await call('/.well-known/openid-configuration')).json<Record<string, unknown>>();
    expect(meta).toMatchObject({
      request_parameter_supported: true,
      request_uri_parameter_supported: false,
      request_object_signing_alg_values_supported: ['ES256', 'RS256', 'PS256', 'EdDSA'],
    });
    expect(await grants(user.userId)).toBe(0);
  });
});

describe('a request object pushed (PAR + JAR)', () => {
  it('is verified at the push, and only its parameters are kept — not those beside it in the form', async () => {
    const client = await clientWithKey();
    const user = await signedInUser();
    const { verifier, challenge } = await pkce();
    const request = await requestObject(
      client.clientId,
      authorizeParams(client.clientId, challenge, { state: 'signed', nonce: 'signed-nonce' }),
      { key: client.privateKey },
    );
    const res = await pushRequest(
      { request, client_id: client.clientId, state: 'beside', scope: 'openid offline_access', redirect_uri: 'https://evil.example/cb' },
      basic(client.clientId, client.clientSecret),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    const { request_uri } = await res.json<{ request_uri: string }>();
    const row = await env.DB.prepare('SELECT params FROM pushed_authorizations WHERE client_id = ?')
      .bind(client.clientId)
      .first<{ params: string }>();
    const stored = JSON.parse(row!.params) as Record<string, string>;
    expect(stored).toMatchObject({ state: 'signed', redirect_uri: REDIRECT, scope: 'openid email profile' });
    expect(stored.request).toBeUndefined();
    const back = await authorizeWith({ client_id: client.clientId, request_uri }, user.cookie);
    const to = locationOf(back);
    expect(to.searchParams.get('state')).toBe('signed');
    const tokens = await tokenRequest(
      { grant_type: 'authorization_code', code: to.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(decodeJwt((await tokens.json<{ id_token: string }>()).id_token).nonce).toBe('signed-nonce');
  });

  it('is refused at the push as JSON invalid_request_object, storing nothing', async () => {
    const client = await clientWithKey();
    const { challenge } = await pkce();
    const { privateKey: attacker } = await generateKeyPair('ES256');
    const inner = authorizeParams(client.clientId, challenge);
    for (const request of [
      await requestObject(client.clientId, inner, { key: attacker }),
      unsecured({ ...inner, iss: client.clientId, aud: ORIGIN, iat: now() }),
      await requestObject(client.clientId, inner, { key: client.privateKey }, { aud: 'https://evil.example' }),
      await requestObject(client.clientId, inner, { key: new TextEncoder().encode(client.clientSecret), alg: 'HS256' }),
    ]) {
      const res = await pushRequest({ request }, basic(client.clientId, client.clientSecret));
      expect(res.status).toBe(400);
      const body = await res.json<{ error: string; error_description: string }>();
      expect(body.error).toBe('invalid_request_object');
      expect(body.error_description).toMatch(RFC6749_TEXT);
    }
    // Signed by another client, pushed under that other client's credentials: still not this client's.
    const other = await clientWithKey();
    const borrowed = await requestObject(client.clientId, inner, { key: client.privateKey });
    const res = await pushRequest({ request: borrowed }, basic(other.clientId, other.clientSecret));
    expect(await res.json()).toMatchObject({ error: 'invalid_request_object' });
    const rows = await env.DB.prepare('SELECT count(*) AS n FROM pushed_authorizations WHERE client_id IN (?, ?)')
      .bind(client.clientId, other.clientId)
      .first<{ n: number }>();
    expect(rows!.n).toBe(0);
  });
});
