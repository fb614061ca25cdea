import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { call } from '../helpers';
import { basic, form, getCode, REDIRECT, registerClient, signedInUser, tokenRequest } from './helpers';

interface Tokens {
  access_token: string;
  refresh_token: string;
  id_token?: string;
}

async function codeTokens(client: { clientId: string; clientSecret: string }) {
  const user = await signedInUser();
  const { code, verifier } = await getCode(client.clientId, user.cookie);
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    basic(client.clientId, client.clientSecret),
  );
  expect(res.status).toBe(200);
  return { user, tokens: await res.json<Tokens>() };
}

const refresh = (client: { clientId: string; clientSecret: string }, refresh_token: string) =>
  tokenRequest({ grant_type: 'refresh_token', refresh_token }, basic(client.clientId, client.clientSecret));

describe('client authentication', () => {
  it('answers bad credentials with 401 invalid_client, WWW-Authenticate and no-store', async () => {
    const client = await registerClient();
    for (const authorization of [
      basic(client.clientId, 'wrong-secret'),
      basic('unknown-client', client.clientSecret),
      'Basic !!!',
      'Bearer x',
    ]) {
      const res = await tokenRequest({ grant_type: 'client_credentials' }, authorization);
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="gatehouse"');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toMatchObject({ error: 'invalid_client' });
    }
  });

  it('accepts client_secret_post only for clients registered with it, and never two methods at once', async () => {
    const basicClient = await registerClient();
    const post = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: basicClient.clientId,
      client_secret: basicClient.clientSecret,
    });
    expect(post.status).toBe(401);
    expect((await post.json<{ error_description: string }>()).error_description).toBe(
      'This client authenticates with client_secret_basic.',
    );
    const postClient = await registerClient({ authMethod: 'client_secret_post' });
    expect(
      (await tokenRequest({ grant_type: 'client_credentials', client_id: postClient.clientId, client_secret: postClient.clientSecret }))
        .status,
    ).toBe(200);
    const both = await tokenRequest(
      { grant_type: 'client_credentials', client_secret: basicClient.clientSecret },
      basic(basicClient.clientId, basicClient.clientSecret),
    );
    expect(await both.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('accepts private_key_jwt once per jti', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const client = await registerClient({ authMethod: 'private_key_jwt', jwks: { keys: [jwk] } });
    const assertion = (jti: string, aud = 'https://gatehouse.test/auth/token') =>
      new SignJWT({ jti })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(client.clientId)
        .setSubject(client.clientId)
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(privateKey);
    const fields = async (jti: string, aud?: string) => ({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(jti, aud),
    });
    const first = await fields('jti-1');
    expect((await tokenRequest(first)).status).toBe(200);
    const replay = await tokenRequest(first);
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'invalid_client', error_description: 'The client assertion was already used.' });
    expect((await tokenRequest(await fields('jti-2', 'https://other.example/token'))).status).toBe(401);
    const { privateKey: attacker } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ jti: 'jti-3' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(client.clientId)
      .setSubject(client.clientId)
      .setAudience('https://gatehouse.test/auth/token')
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(attacker);
    expect(
      (
        await tokenRequest({
          grant_type: 'client_credentials',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: forged,
        })
      ).status,
    ).toBe(401);
  });
});

describe('grants', () => {
  it('refuses the password grant and unknown grants with the standard errors', async () => {
    const client = await registerClient();
    for (const [grant, error] of [
      ['password', 'unsupported_grant_type'],
      ['implicit', 'unsupported_grant_type'],
      ['urn:ietf:params:oauth:grant-type:device_code', 'unauthorized_client'], // supported, but not registered for this client
      ['urn:ietf:params:oauth:grant-type:jwt-bearer', 'unsupported_grant_type'],
    ]) {
      const res = await tokenRequest({ grant_type: grant!, username: 'a', password: 'b' }, basic(client.clientId, client.clientSecret));
      expect(res.status).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toMatchObject({ error });
    }
    const noGrant = await tokenRequest({}, basic(client.clientId, client.clientSecret));
    expect(await noGrant.json()).toEqual({ error: 'invalid_request', error_description: 'grant_type is required.' });
    const json = await call('/auth/token', {
      method: 'POST',
      json: { grant_type: 'client_credentials' },
      headers: { authorization: basic(client.clientId, client.clientSecret) },
    });
    expect(await json.json()).toMatchObject({ error: 'invalid_request' });
    const repeated = await call('/auth/token', {
      method: 'POST',
      body: 'grant_type=client_credentials&grant_type=client_credentials',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
    });
    expect(await repeated.json()).toMatchObject({ error: 'invalid_request', error_description: 'Parameter grant_type is repeated.' });
  });

  it('issues client_credentials tokens to confidential clients only', async () => {
    const client = await registerClient();
    const res = await tokenRequest({ grant_type: 'client_credentials', scope: 'profile' }, basic(client.clientId, client.clientSecret));
    expect(res.status).toBe(200);
    const body = await res.json<{ access_token: string; scope: string; refresh_token?: string }>();
    expect(body.scope).toBe('profile');
    expect(body.refresh_token).toBeUndefined();
    const { decodeJwt } = await import('jose');
    expect(decodeJwt(body.access_token)).toMatchObject({ sub: client.clientId, client_id: client.clientId });
    const wide = await tokenRequest({ grant_type: 'client_credentials', scope: 'openid' }, basic(client.clientId, client.clientSecret));
    expect(await wide.json()).toMatchObject({ error: 'invalid_scope' });
    const publicClient = await registerClient({ public: true, grantTypes: ['authorization_code'] });
    const pub = await tokenRequest({ grant_type: 'client_credentials', client_id: publicClient.clientId });
    expect(await pub.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  it('rotates refresh tokens; presenting a rotated one revokes the whole family', async () => {
    const client = await registerClient();
    const { tokens } = await codeTokens(client);
    const first = await refresh(client, tokens.refresh_token);
    expect(first.status).toBe(200);
    const next = await first.json<Tokens>();
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    expect(next.id_token).toBeTruthy();

    const replay = await refresh(client, tokens.refresh_token);
    expect(await replay.json()).toMatchObject({
      error: 'invalid_grant',
      error_description: 'The refresh token was already used; every token of its family has been revoked.',
    });
    const revoked = await refresh(client, next.refresh_token);
    expect(await revoked.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('lets exactly one of 20 concurrent uses of a refresh token win, and revokes the family on the reuse', async () => {
    const client = await registerClient();
    const { tokens } = await codeTokens(client);
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(client, tokens.refresh_token)));
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    const { refresh_token } = await ok[0]!.json<Tokens>();
    expect((await refresh(client, refresh_token)).status).toBe(400);
  });

  it("narrows scope on refresh but never widens it, and refuses another client's token", async () => {
    const client = await registerClient();
    const other = await registerClient();
    const { tokens } = await codeTokens(client);
    const stolen = await refresh(other, tokens.refresh_token);
    expect(await stolen.json()).toMatchObject({ error: 'invalid_grant' });
    const wider = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, scope: 'openid offline_access' },
      basic(client.clientId, client.clientSecret),
    );
    expect(await wider.json()).toMatchObject({ error: 'invalid_scope' });
    const narrower = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, scope: 'openid' },
      basic(client.clientId, client.clientSecret),
    );
    expect(await narrower.json()).toMatchObject({ scope: 'openid' });
  });

  it('ends refresh tokens at their idle and absolute lifetimes', async () => {
    const client = await registerClient();
    const { tokens } = await codeTokens(client);
    const { appWith } = await import('../helpers');
    const at = (ms: number) => appWith(() => ({ now: () => Date.now() + ms }));
    const init = form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    const res = await at(15 * 86400_000)('/auth/token', {
      ...init,
      headers: { ...init.headers, authorization: basic(client.clientId, client.clientSecret) },
    });
    expect(await res.json()).toMatchObject({
      error: 'invalid_grant',
      error_description: 'The refresh token is not valid: the refresh token has expired.',
    });
  });
});

describe('revocation and introspection', () => {
  it('revokes a refresh token family and reports tokens as active or not', async () => {
    const client = await registerClient();
    const { tokens } = await codeTokens(client);
    const introspect = async (token: string) =>
      (
        await call('/auth/introspect', {
          ...form({ token }),
          headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
        })
      ).json<Record<string, unknown>>();
    expect(await introspect(tokens.access_token)).toMatchObject({ active: true, token_type: 'Bearer', client_id: client.clientId });
    expect(await introspect(tokens.refresh_token)).toMatchObject({ active: true, token_type: 'refresh_token', client_id: client.clientId });
    expect(await introspect('garbage')).toEqual({ active: false });

    const revoked = await call('/auth/revoke', {
      ...form({ token: tokens.refresh_token }),
      headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
    });
    expect(revoked.status).toBe(200);
    expect(await introspect(tokens.refresh_token)).toEqual({ active: false });
    expect((await refresh(client, tokens.refresh_token)).status).toBe(400);
  });

  it('introspects only for confidential clients', async () => {
    const publicClient = await registerClient({ public: true, grantTypes: ['authorization_code'] });
    const res = await call('/auth/introspect', form({ token: 'x', client_id: publicClient.clientId }));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_client' });
  });
});

describe('userinfo', () => {
  it('requires a valid access token and says so with WWW-Authenticate: Bearer', async () => {
    const client = await registerClient();
    const { tokens } = await codeTokens(client);
    const none = await call('/auth/userinfo');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="gatehouse", error="invalid_token"/);
    const idAsAccess = await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.id_token}` } });
    expect(idAsAccess.status).toBe(401);
    const post = await call('/auth/userinfo', form({ access_token: tokens.access_token }));
    expect(post.status).toBe(200);
  });
});

describe('opaque access tokens (phantom tokens)', () => {
  it('hands the client an opaque reference whose JWT stays with Gatehouse, usable at userinfo and introspection, revocable', async () => {
    const client = await registerClient({ accessTokenFormat: 'opaque', accessTokenTtl: 120 });
    const { user, tokens } = await codeTokens(client);
    expect(tokens.access_token).toMatch(/^ot1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(tokens.access_token.split('.')).toHaveLength(3);
    const info = await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(await info.json()).toMatchObject({ sub: user.userId, email: user.email });
    const auth = { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) };
    const introspected = await (await call('/auth/introspect', { ...form({ token: tokens.access_token }), headers: auth })).json<
      Record<string, unknown>
    >();
    expect(introspected).toMatchObject({ active: true, token_type: 'Bearer', sub: user.userId, client_id: client.clientId });
    expect((introspected.exp as number) - (introspected.iat as number)).toBe(120);

    // A forged or tampered reference is refused.
    const tampered = tokens.access_token.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    expect((await call('/auth/userinfo', { headers: { authorization: `Bearer ${tampered}` } })).status).toBe(401);

    expect((await call('/auth/revoke', { ...form({ token: tokens.access_token }), headers: auth })).status).toBe(200);
    expect((await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
  });

  it('revokes the opaque access token issued from a code when the code is replayed', async () => {
    const client = await registerClient({ accessTokenFormat: 'opaque', grantTypes: ['authorization_code'] });
    const user = await signedInUser();
    const { code, verifier } = await getCode(client.clientId, user.cookie);
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    const first = await (await tokenRequest(fields, basic(client.clientId, client.clientSecret))).json<Tokens>();
    expect(first.refresh_token).toBeUndefined();
    const bearer = { headers: { authorization: `Bearer ${first.access_token}` } };
    expect((await call('/auth/userinfo', bearer)).status).toBe(200);
    const replay = await tokenRequest(fields, basic(client.clientId, client.clientSecret));
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await call('/auth/userinfo', bearer)).status).toBe(401);
  });

  it("spreads a client's opaque client_credentials tokens over its own objects, so no one object carries its traffic", async () => {
    const client = await registerClient({ accessTokenFormat: 'opaque' });
    const auth = { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) };
    const owners = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const res = await tokenRequest({ grant_type: 'client_credentials', scope: 'profile' }, basic(client.clientId, client.clientSecret));
      const { access_token } = await res.json<{ access_token: string }>();
      const owner = atob(access_token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'));
      // Each shard is the client's own: no other client's token can ever land there.
      expect(owner).toMatch(new RegExp(`^client:${client.clientId}:([0-9]|1[0-5])$`));
      owners.add(owner);
      expect(await (await call('/auth/introspect', { ...form({ token: access_token }), headers: auth })).json()).toMatchObject({
        active: true,
        sub: client.clientId,
      });
    }
    // 24 tokens over 16 shards: all in one object would happen once in 16^23.
    expect(owners.size).toBeGreaterThan(1);
  });
});
