import { decodeJwt, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { APP, appWith, call, ORIGIN } from '../helpers';
import { API_SCOPES, basic, dpopKey, form, getCode, pkce, REDIRECT, registerClient, signedInUser } from './helpers';

/**
 * DPoP (RFC 9449): a token bound to a client's key is worth nothing without a fresh proof by that
 * key for the very request. The attackers: whoever reads an access or refresh token off an origin's
 * logs or the network (no key), a replayer of a captured proof, and a client presenting a proof
 * made for another request, another token or another time.
 */
const TOKEN = `${ORIGIN}/auth/token`;
const USERINFO = `${ORIGIN}/auth/userinfo`;
const API = 'https://api.gatehouse.test';
const ROUTE = `${APP}/demo/dpop/orders`;
const ALGS = 'DPoP algs="ES256 ES384 PS256 RS256 EdDSA"';

type Tokens = { access_token: string; token_type: string; refresh_token?: string; error?: string; error_description?: string };

const tokenCall = (fields: Record<string, string>, authorization: string | undefined, dpop?: string, via = call) => {
  const init = form(fields);
  return via('/auth/token', {
    ...init,
    headers: { ...init.headers, ...(authorization ? { authorization } : {}), ...(dpop ? { dpop } : {}) },
  });
};

/** A code for a signed-in user, exchanged with a DPoP proof by `key`. */
async function boundTokens(
  client: { clientId: string; clientSecret?: string },
  key: Awaited<ReturnType<typeof dpopKey>>,
  over: Record<string, string> = {},
  auth = true,
) {
  const { cookie } = await signedInUser();
  const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid profile offline_access', ...over });
  const res = await tokenCall(
    {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      ...(auth ? {} : { client_id: client.clientId }),
    },
    auth ? basic(client.clientId, client.clientSecret!) : undefined,
    await key.proof('POST', TOKEN),
  );
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Tokens>();
}

const userinfo = (authorization: string, dpop?: string, via = call) =>
  via('/auth/userinfo', { headers: { authorization, ...(dpop ? { dpop } : {}) } });

describe('DPoP at the token endpoint', () => {
  it('binds the access token to the proof key: token_type DPoP, cnf.jkt, introspected as such', async () => {
    const client = await registerClient();
    const key = await dpopKey();
    const tokens = await boundTokens(client, key);
    expect(tokens.token_type).toBe('DPoP');
    expect(decodeJwt(tokens.access_token)).toMatchObject({ cnf: { jkt: key.jkt } });
    const intro = await call('/auth/introspect', {
      ...form({ token: tokens.access_token }),
      headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
    });
    expect(await intro.json()).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.jkt } });
    // Without a proof the same client still gets bearer tokens.
    const { cookie } = await signedInUser();
    const { code, verifier } = await getCode(client.clientId, cookie);
    const plain = await tokenCall(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.clientId, client.clientSecret),
    );
    const body = await plain.json<Tokens>();
    expect(body.token_type).toBe('Bearer');
    expect(decodeJwt(body.access_token).cnf).toBeUndefined();
  });

  it('refuses proofs that are not for this request: each a clear invalid_dpop_proof, and nothing consumed', async () => {
    const client = await registerClient();
    const key = await dpopKey();
    const other = await dpopKey();
    const { cookie } = await signedInUser();
    const { code, verifier } = await getCode(client.clientId, cookie);
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    const now = Math.floor(Date.now() / 1000);
    const [, payload, sig] = (await key.proof('POST', TOKEN)).split('.');
    const hs256 = await new SignJWT({ jti: 'abcdefghij', htm: 'POST', htu: TOKEN })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0' } } as never)
      .setIssuedAt()
      .sign(new TextEncoder().encode('secretsecretsecretsecretsecret!!'));
    const cases: [string, string, RegExp][] = [
      ['wrong method', await key.proof('GET', TOKEN), /htm is not/],
      ['wrong URL', await key.proof('POST', `${ORIGIN}/auth/userinfo`), /htu is not/],
      ['another host', await key.proof('POST', 'https://evil.example/auth/token'), /htu is not/],
      ['too old', await key.proof('POST', TOKEN, { iat: now - 120 }), /iat must be within 60 seconds/],
      ['from the future', await key.proof('POST', TOKEN, { iat: now + 120 }), /iat must be within 60 seconds/],
      ['typ JWT', await key.proof('POST', TOKEN, { header: { typ: 'JWT' } }), /typ must be dpop\+jwt/],
      ['short jti', await key.proof('POST', TOKEN, { claims: { jti: 'x' } }), /jti must be/],
      ['alg none', `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk })}.${payload}.`, /one compact JWT|signature or header/],
      ['HS256 with a symmetric key', hs256, /jwk must be a public key/],
      [
        'private key in the header',
        await key.proof('POST', TOKEN, { header: { jwk: { ...key.jwk, d: 'AAAA' } } }),
        /jwk must be a public key/,
      ],
      ['malformed key', await key.proof('POST', TOKEN, { header: { jwk: { ...key.jwk, x: 'AAAA' } } }), /signature or header/],
      ['signed by another key', `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: other.jwk })}.${payload}.${sig}`, /signature or header/],
      ['two headers', `${await key.proof('POST', TOKEN)}, ${await key.proof('POST', TOKEN)}`, /exactly one DPoP header/],
      ['not a JWT', 'hello', /exactly one DPoP header/],
    ];
    for (const [name, proof, why] of cases) {
      const res = await tokenCall(fields, basic(client.clientId, client.clientSecret), proof);
      expect(res.status, name).toBe(400);
      const body = await res.json<Tokens>();
      expect(body.error, name).toBe('invalid_dpop_proof');
      expect(body.error_description, name).toMatch(why);
    }
    // The code was never consumed: it still works, with a good proof.
    const ok = await tokenCall(fields, basic(client.clientId, client.clientSecret), await key.proof('POST', TOKEN));
    expect(ok.status).toBe(200);
  });

  it('a captured proof is refused the second time', async () => {
    const client = await registerClient({ grantTypes: ['client_credentials'], resources: [{ resource: API, scopes: API_SCOPES }] });
    const key = await dpopKey();
    const proof = await key.proof('POST', TOKEN);
    const fields = { grant_type: 'client_credentials', resource: API };
    expect((await tokenCall(fields, basic(client.clientId, client.clientSecret), proof)).status).toBe(200);
    const again = await tokenCall(fields, basic(client.clientId, client.clientSecret), proof);
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({
      error: 'invalid_dpop_proof',
      error_description: 'The DPoP proof was refused: it was used before.',
    });
  });

  it('a client set to requireDpop gets no token without a proof', async () => {
    const client = await registerClient({ requireDpop: true });
    const { cookie } = await signedInUser();
    const { code, verifier } = await getCode(client.clientId, cookie);
    const res = await tokenCall(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: 'invalid_dpop_proof',
      error_description: "This client's tokens are DPoP-bound: send a DPoP proof.",
    });
  });

  it("binds a public client's refresh token to its key: a stolen one is useless, and a wrong try rotates nothing", async () => {
    const client = await registerClient({ public: true, grantTypes: ['authorization_code', 'refresh_token'] });
    const key = await dpopKey();
    const thief = await dpopKey();
    const tokens = await boundTokens(client, key, {}, false);
    const refresh = (proof: string | undefined) =>
      tokenCall({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: client.clientId }, undefined, proof);
    for (const proof of [undefined, await thief.proof('POST', TOKEN)]) {
      const res = await refresh(proof);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        error: 'invalid_grant',
        error_description: 'The refresh token is not valid: the refresh token is bound to another DPoP key.',
      });
    }
    const ok = await refresh(await key.proof('POST', TOKEN));
    expect(ok.status).toBe(200);
    const next = await ok.json<Tokens>();
    expect(next.token_type).toBe('DPoP');
    expect(decodeJwt(next.access_token)).toMatchObject({ cnf: { jkt: key.jkt } });
  });

  it("a confidential client's refresh token is not bound (it authenticates): refreshed without a proof, it gets a bearer token", async () => {
    const client = await registerClient();
    const tokens = await boundTokens(client, await dpopKey());
    const res = await tokenCall(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
      basic(client.clientId, client.clientSecret),
    );
    expect(res.status).toBe(200);
    expect((await res.json<Tokens>()).token_type).toBe('Bearer');
  });

  it('a code bound with dpop_jkt (RFC 9449 §10) is redeemed only with that key, and a wrong try leaves it unspent', async () => {
    const client = await registerClient();
    const key = await dpopKey();
    const { cookie } = await signedInUser();
    const { code, verifier } = await getCode(client.clientId, cookie, { dpop_jkt: key.jkt });
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    for (const proof of [undefined, await (await dpopKey()).proof('POST', TOKEN)]) {
      const res = await tokenCall(fields, basic(client.clientId, client.clientSecret), proof);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        error: 'invalid_grant',
        error_description: 'The authorization code is not valid: the code is bound to another DPoP key.',
      });
    }
    const ok = await tokenCall(fields, basic(client.clientId, client.clientSecret), await key.proof('POST', TOKEN));
    expect(ok.status).toBe(200);
    expect((await ok.json<Tokens>()).token_type).toBe('DPoP');
    const bad = await call(
      `/auth/authorize?${new URLSearchParams({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', dpop_jkt: 'short' })}`,
      { cookie },
    );
    expect(new URL(bad.headers.get('location')!).searchParams.get('error_description')).toBe(
      'dpop_jkt must be a base64url SHA-256 JWK thumbprint.',
    );
  });
});

describe('DPoP with a pushed request (RFC 9449 §10.1)', () => {
  it('a proof sent with the push binds the code to its key; a dpop_jkt that disagrees is refused', async () => {
    const client = await registerClient();
    const key = await dpopKey();
    const PAR = `${ORIGIN}/auth/par`;
    const push = async (extra: Record<string, string>, dpop?: string) => {
      const init = form({
        response_type: 'code',
        client_id: client.clientId,
        redirect_uri: REDIRECT,
        scope: 'openid',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...extra,
      });
      return call('/auth/par', {
        ...init,
        headers: { ...init.headers, authorization: basic(client.clientId, client.clientSecret), ...(dpop ? { dpop } : {}) },
      });
    };
    const { verifier, challenge } = await pkce();
    const mismatch = await push({ dpop_jkt: (await dpopKey()).jkt }, await key.proof('POST', PAR));
    expect(mismatch.status).toBe(400);
    expect(await mismatch.json()).toMatchObject({
      error: 'invalid_dpop_proof',
      error_description: "dpop_jkt is not the thumbprint of the DPoP proof's key.",
    });
    const pushed = await push({}, await key.proof('POST', PAR));
    expect(pushed.status).toBe(201);
    const { request_uri } = await pushed.json<{ request_uri: string }>();
    const { cookie } = await signedInUser();
    const res = await call(`/auth/authorize?${new URLSearchParams({ client_id: client.clientId, request_uri })}`, { cookie });
    const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    expect(await (await tokenCall(fields, basic(client.clientId, client.clientSecret))).json()).toMatchObject({ error: 'invalid_grant' });
    const ok = await tokenCall(fields, basic(client.clientId, client.clientSecret), await key.proof('POST', TOKEN));
    expect((await ok.json<Tokens>()).token_type).toBe('DPoP');
  });
});

describe('DPoP at userinfo', () => {
  it('takes a bound token only with the DPoP scheme and a proof by its key, with ath, for this request', async () => {
    const client = await registerClient();
    const key = await dpopKey();
    const other = await dpopKey();
    const { access_token: at } = await boundTokens(client, key);
    // Stolen off a log and sent as a bearer token: refused.
    const asBearer = await userinfo(`Bearer ${at}`);
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toBe(
      `Bearer realm="gatehouse", error="invalid_token", error_description="This access token is DPoP-bound: send it with the DPoP scheme and a proof.", ${ALGS}`,
    );
    const cases: [string, string | undefined, string][] = [
      ['no proof', undefined, 'a DPoP header is required'],
      ['no ath', await key.proof('GET', USERINFO), 'ath is not the hash of the access token presented'],
      [
        'ath of another token',
        await key.proof('GET', USERINFO, { accessToken: `${at}x` }),
        'ath is not the hash of the access token presented',
      ],
      ['another key', await other.proof('GET', USERINFO, { accessToken: at }), 'it is signed by another key than the token is bound to'],
      ['for the token endpoint', await key.proof('POST', TOKEN, { accessToken: at }), "htm is not this request's method"],
    ];
    for (const [name, proof, why] of cases) {
      const res = await userinfo(`DPoP ${at}`, proof);
      expect(res.status, name).toBe(401);
      expect(res.headers.get('www-authenticate'), name).toContain(`${ALGS}, error="invalid_dpop_proof"`);
      expect((await res.json<Tokens>()).error_description, name).toContain(why);
    }
    const proof = await key.proof('GET', USERINFO, { accessToken: at });
    const ok = await userinfo(`DPoP ${at}`, proof);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toHaveProperty('sub');
    expect((await userinfo(`DPoP ${at}`, proof)).status).toBe(401); // replayed
  });

  it('refuses a bearer token dressed up as a DPoP one', async () => {
    const client = await registerClient();
    const { cookie } = await signedInUser();
    const { code, verifier } = await getCode(client.clientId, cookie);
    const { access_token } = await (
      await tokenCall(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
        basic(client.clientId, client.clientSecret),
      )
    ).json<Tokens>();
    const key = await dpopKey();
    const res = await userinfo(`DPoP ${access_token}`, await key.proof('GET', USERINFO, { accessToken: access_token }));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: 'invalid_token',
      error_description: 'This access token is not DPoP-bound: send it as a Bearer token.',
    });
    expect((await userinfo(`Bearer ${access_token}`)).status).toBe(200);
  });
});

describe('DPoP at the gateway', () => {
  const machine = async (key: Awaited<ReturnType<typeof dpopKey>> | null) => {
    const client = await registerClient({ grantTypes: ['client_credentials'], resources: [{ resource: API, scopes: API_SCOPES }] });
    const res = await tokenCall(
      { grant_type: 'client_credentials', resource: API, scope: 'orders:read' },
      basic(client.clientId, client.clientSecret),
      key ? await key.proof('POST', TOKEN) : undefined,
    );
    return { client, ...(await res.json<Tokens>()) };
  };

  it('a token read off an origin is useless elsewhere: bound tokens need their proof on every route, and the proof never reaches the origin', async () => {
    const key = await dpopKey();
    const { access_token: at, client } = await machine(key);
    const proof = await key.proof('POST', ROUTE, { accessToken: at });
    const ok = await call(ROUTE, {
      method: 'POST',
      body: 'x',
      headers: { authorization: `DPoP ${at}`, dpop: proof, accept: 'application/json' },
    });
    expect(ok.status).toBe(200);
    const seen = await ok.json<{ headers: Record<string, string> }>();
    expect(seen.headers['x-auth-client-id']).toBe(client.clientId);
    expect(seen.headers.dpop).toBeUndefined();
    // What the origin holds — the token and (had it been forwarded) the proof — opens nothing.
    const attempts: [string, RequestInit][] = [
      ['as a bearer token, on a route that takes bearer tokens', { headers: { authorization: `Bearer ${at}` } }],
      ['replaying the proof', { method: 'POST', body: 'x', headers: { authorization: `DPoP ${at}`, dpop: proof } }],
      [
        'the proof on another path',
        {
          method: 'POST',
          body: 'x',
          headers: { authorization: `DPoP ${at}`, dpop: await key.proof('POST', `${APP}/demo/dpop/refunds`, { accessToken: at }) },
        },
      ],
      [
        'the proof with another method',
        { method: 'DELETE', headers: { authorization: `DPoP ${at}`, dpop: await key.proof('POST', ROUTE, { accessToken: at }) } },
      ],
    ];
    for (const [name, init] of attempts) {
      const url = name.startsWith('as a bearer') ? `${APP}/demo/machine/x` : ROUTE;
      const res = await call(url, { ...init, headers: { ...(init.headers as Record<string, string>), accept: 'application/json' } });
      expect(res.status, name).toBe(401);
      expect(res.headers.get('www-authenticate'), name).toContain('DPoP algs=');
    }
  });

  it('a dpop route takes no bearer token; other routes still do', async () => {
    const { access_token } = await machine(null);
    const res = await call(ROUTE, { headers: { authorization: `Bearer ${access_token}`, accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ detail: 'This resource takes DPoP-bound access tokens only.' });
    expect((await call(`${APP}/demo/machine/x`, { headers: { authorization: `Bearer ${access_token}` } })).status).toBe(200);
  });
});

describe('DPoP nonces (DPOP_REQUIRE_NONCE)', () => {
  const withNonces = appWith((deps) => ({ config: { ...deps.config, dpop: { requireNonce: true } } }));

  it('the token endpoint and the gateway hand out a nonce, take it for five to ten minutes, then ask again', async () => {
    const client = await registerClient({ grantTypes: ['client_credentials'], resources: [{ resource: API, scopes: API_SCOPES }] });
    const key = await dpopKey();
    const fields = { grant_type: 'client_credentials', resource: API, scope: 'orders:read' };
    const auth = basic(client.clientId, client.clientSecret);
    const first = await tokenCall(fields, auth, await key.proof('POST', TOKEN), withNonces);
    expect(first.status).toBe(400);
    expect(await first.json()).toMatchObject({ error: 'use_dpop_nonce' });
    const nonce = first.headers.get('dpop-nonce')!;
    expect(nonce).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{32}$/);
    // The last character changed (to one it is not: a fixed 'A' left a nonce ending in A unchanged).
    const wrong = await tokenCall(
      fields,
      auth,
      await key.proof('POST', TOKEN, { nonce: `${nonce.slice(0, -1)}${nonce.endsWith('A') ? 'B' : 'A'}` }),
      withNonces,
    );
    expect(await wrong.json()).toMatchObject({ error: 'use_dpop_nonce' });
    const ok = await tokenCall(fields, auth, await key.proof('POST', TOKEN, { nonce }), withNonces);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('dpop-nonce')).toBe(nonce);
    const { access_token: at } = await ok.json<Tokens>();
    // The gateway asks the same way, as a resource server does (401 with the challenge).
    const bare = await withNonces(ROUTE, {
      headers: { authorization: `DPoP ${at}`, dpop: await key.proof('GET', ROUTE, { accessToken: at }) },
    });
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toContain(`${ALGS}, error="use_dpop_nonce"`);
    expect(bare.headers.get('dpop-nonce')).toBe(nonce);
    expect(
      (
        await withNonces(ROUTE, {
          headers: { authorization: `DPoP ${at}`, dpop: await key.proof('GET', ROUTE, { accessToken: at, nonce }) },
        })
      ).status,
    ).toBe(200);
    // A nonce from eleven minutes ago is no longer taken.
    const elevenAgo = Date.now() - 11 * 60_000;
    const past = appWith((deps) => ({ config: { ...deps.config, dpop: { requireNonce: true } }, now: () => elevenAgo }));
    const then = await tokenCall(fields, auth, await key.proof('POST', TOKEN, { iat: Math.floor(elevenAgo / 1000) }), past);
    const old = then.headers.get('dpop-nonce')!;
    expect(old).not.toBe(nonce);
    const stale = await tokenCall(fields, auth, await key.proof('POST', TOKEN, { nonce: old }), withNonces);
    expect(await stale.json()).toMatchObject({ error: 'use_dpop_nonce' });
  });
});

function b64(o: unknown) {
  return btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}
