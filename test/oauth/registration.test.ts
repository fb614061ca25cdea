import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/lib/crypto';
import { appWith, call, ORIGIN, uniqueIp, withinOneLimiterWindow } from '../helpers';
import { authorizeUrl, basic, form, pkce, REDIRECT, registerClient, signedInUser, tokenRequest } from './helpers';
import {
  auditFor,
  clientRow,
  codeThroughConsent,
  INITIAL,
  register,
  registered,
  rowsNamed,
  apiGrantsOf,
  RFC6749_TEXT,
  uniqueName,
} from './registration-helpers';

/**
 * Dynamic client registration (RFC 7591) through the worker, attacked by whoever can reach it: a
 * caller without the initial access token, a client trying to register itself into privileges only
 * an operator grants, hostile redirect URIs and keys, and bodies shaped to break the parser.
 */

const errorOf = async (res: Response) => res.json<{ error: string; error_description: string }>();

describe('POST /auth/register', () => {
  it('registers a confidential client: 201, the metadata as stored, a secret and a registration token kept only as hashes', async () => {
    const name = uniqueName('confidential');
    const res = await register({
      client_name: name,
      redirect_uris: [REDIRECT],
      post_logout_redirect_uris: ['https://app.example.com/bye'],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid email offline_access',
      id_token_signed_response_alg: 'ES256',
      require_pushed_authorization_requests: false,
      dpop_bound_access_tokens: true,
      // Ignored, as RFC 7591 §3.2.1 allows: they change nothing and break nothing.
      contacts: ['ops@example.com'],
      logo_uri: 'https://app.example.com/logo.png',
      tos_uri: 'https://app.example.com/tos',
      software_statement: 'eyJhbGciOiJub25lIn0.e30.',
      application_type: 'web',
      extra: { nested: [1, { deeper: true }] },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json<Record<string, unknown>>();
    const clientId = body.client_id as string;
    expect(body).toMatchObject({
      client_name: name,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [REDIRECT],
      post_logout_redirect_uris: ['https://app.example.com/bye'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: 'openid email offline_access',
      id_token_signed_response_alg: 'ES256',
      dpop_bound_access_tokens: true,
      first_party: false,
      resources: [],
      serves: [],
      require_pkce: true,
      client_secret_expires_at: 0,
      registration_client_uri: `${ORIGIN}/auth/register/${clientId}`,
    });
    expect(clientId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body.client_id_issued_at).toBeTypeOf('number');
    expect(body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.registration_access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const ignored of ['contacts', 'logo_uri', 'tos_uri', 'software_statement', 'extra']) expect(body).not.toHaveProperty(ignored);

    expect(await apiGrantsOf(clientId)).toEqual([]);
    const row = (await clientRow(clientId))!;
    expect(row).toMatchObject({
      first_party: 0,
      serves: '[]',
      require_pkce: 1,
      require_dpop: 1,
      require_mfa: 0,
      logo_uri: null,
    });
    expect(row.secret_hash).toBe(await sha256(body.client_secret as string));
    expect(row.registration_token_hash).toBe(await sha256(body.registration_access_token as string));
    expect(JSON.stringify(row)).not.toContain(body.client_secret as string);
    expect(JSON.stringify(row)).not.toContain(body.registration_access_token as string);

    const audit = (await auditFor(clientId)).results;
    expect(audit.map((a) => a.type)).toEqual(['client_registered']);
    expect(JSON.parse(audit[0]!.detail)).toMatchObject({ clientId, name, authMethod: 'client_secret_basic', redirectUris: [REDIRECT] });
    for (const secret of [body.client_secret, body.registration_access_token, row.secret_hash, row.registration_token_hash, INITIAL])
      expect(audit[0]!.detail).not.toContain(secret as string);
  });

  it('gives a registered client the code flow a third party gets: PKCE required, consent always asked, tokens for Gatehouse alone', async () => {
    const client = await registered({ grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email' });
    const user = await signedInUser();
    // No PKCE: refused at the redirect URI.
    const noPkce = await call(authorizeUrl(client.client_id, 'x', { code_challenge: undefined, code_challenge_method: undefined }), {
      cookie: user.cookie,
    });
    expect(new URL(noPkce.headers.get('location')!).searchParams.get('error_description')).toBe('code_challenge is required (PKCE).');
    const { code, verifier } = await codeThroughConsent(client.client_id, user.cookie);
    const tokens = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.client_id, client.client_secret!),
    );
    expect(tokens.status, await tokens.clone().text()).toBe(200);
    const issued = await tokens.json<{ access_token: string; id_token: string; refresh_token: string; scope: string }>();
    expect(decodeJwt(issued.id_token)).toMatchObject({ aud: client.client_id, sub: user.userId });
    expect(decodeJwt(issued.access_token)).toMatchObject({ aud: ORIGIN, client_id: client.client_id });
    expect(issued.scope).toBe('openid email');
    expect(issued.refresh_token).toMatch(/^rt1\./);
  });

  it('is off without REGISTRATION_TOKEN: the 404 of a path that does not exist, and discovery names no registration endpoint', async () => {
    const off = appWith((deps) => ({ config: { ...deps.config, registration: { initialToken: null, pkceOptional: false } } }));
    const absent = await off('/auth/no-such-endpoint');
    expect(absent.status).toBe(404);
    const absentBody = (await absent.json<Record<string, unknown>>()) as { code: string; detail: string };
    for (const [path, method] of [
      ['/auth/register', 'POST'],
      ['/auth/register/demo-app', 'GET'],
      ['/auth/register/demo-app', 'PUT'],
      ['/auth/register/demo-app', 'DELETE'],
    ] as const) {
      const res = await off(path, {
        method,
        ...(method === 'GET' ? {} : { json: { redirect_uris: [REDIRECT] } }),
        headers: { authorization: `Bearer ${INITIAL}` },
      });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get('content-type')).toBe(absent.headers.get('content-type'));
      expect(await res.json()).toMatchObject({ code: absentBody.code, detail: absentBody.detail.replace('/auth/no-such-endpoint', path) });
    }
    const offMeta = await (await off('/.well-known/openid-configuration')).json<Record<string, unknown>>();
    expect(offMeta).not.toHaveProperty('registration_endpoint');
    const onMeta = await (await call('/.well-known/openid-configuration')).json<Record<string, unknown>>();
    expect(onMeta.registration_endpoint).toBe(`${ORIGIN}/auth/register`);
  });

  it('refuses a caller without the initial access token: 401 invalid_token with a Bearer challenge, and writes nothing', async () => {
    const name = uniqueName('no-token');
    const variants: Record<string, string | undefined>[] = [
      {},
      { authorization: `Bearer ${INITIAL.slice(0, -1)}` },
      { authorization: `Bearer ${INITIAL}x` },
      { authorization: `Bearer ${INITIAL.slice(1)}${INITIAL[0]}` },
      { authorization: 'Bearer ' },
      { authorization: `Basic ${btoa(`x:${INITIAL}`)}` },
      { authorization: INITIAL },
      { authorization: `Bearer ${INITIAL} ${INITIAL}` },
      { authorization: `Bearer ${(await registered({})).registration_access_token}` },
    ];
    for (const headers of variants) {
      const res = await register(
        { client_name: name, redirect_uris: [REDIRECT] },
        { token: null, headers: headers as Record<string, string> },
      );
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="gatehouse", error="invalid_token"/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await errorOf(res)).toEqual({
        error: 'invalid_token',
        error_description: 'A valid initial access token is required to register a client.',
      });
    }
    // The token in the body instead of the header is no token either.
    const inBody = await register(
      { client_name: name, redirect_uris: [REDIRECT], access_token: INITIAL, initial_access_token: INITIAL },
      { token: null },
    );
    expect(inBody.status).toBe(401);
    expect(await rowsNamed(name)).toBe(0);
  });

  it('never registers a client into what only an operator grants: first-party, APIs, an exemption from PKCE or MFA', async () => {
    const client = await registered({
      first_party: true,
      firstParty: true,
      resources: ['https://api.gatehouse.test'],
      serves: ['https://api.gatehouse.test'],
      require_pkce: false,
      requirePkce: false,
      require_mfa: false,
      access_token_format: 'opaque',
      registration_token_hash: 'x',
      secret_hash: 'x',
    });
    expect(client).toMatchObject({ first_party: false, resources: [], serves: [], require_pkce: true, access_token_format: 'jwt' });
    expect(await apiGrantsOf(client.client_id)).toEqual([]);
    expect(await clientRow(client.client_id)).toMatchObject({
      first_party: 0,
      serves: '[]',
      require_pkce: 1,
      access_token_format: 'jwt',
      registration_token_hash: await sha256(client.registration_access_token),
    });
    // Through the pipeline: a signed-in person is asked for consent (a first-party client gets a code at once).
    const user = await signedInUser();
    const { challenge } = await pkce();
    const res = await call(authorizeUrl(client.client_id, challenge), { cookie: user.cookie });
    expect(res.status).toBe(200);
    const page = await res.text();
    expect(page).toContain('/auth/authorize/decision');
    // The name is the registrant's own: the page says so and shows where approving leads.
    expect(page).toContain(`<code id="consent-destination">${new URL(REDIRECT).host}</code>`);
    expect(page).toContain('This app registered itself');
    // …and may not name an API the operator did not grant.
    const api = await call(authorizeUrl(client.client_id, challenge, { resource: 'https://api.gatehouse.test' }), { cookie: user.cookie });
    expect(new URL(api.headers.get('location')!).searchParams.get('error')).toBe('invalid_target');
  });

  it("ignores a client_id the caller chooses: an operator's client cannot be overwritten or squatted", async () => {
    const operator = await registerClient({ name: 'Operator app' });
    const before = await clientRow(operator.clientId);
    const res = await register({
      client_id: operator.clientId,
      client_secret: 'x'.repeat(40),
      client_name: uniqueName(),
      redirect_uris: [REDIRECT],
    });
    expect(res.status).toBe(201);
    const body = await res.json<{ client_id: string; client_secret: string }>();
    expect(body.client_id).not.toBe(operator.clientId);
    expect(body.client_secret).not.toBe('x'.repeat(40));
    expect(await clientRow(operator.clientId)).toEqual(before);
  });

  it('gives client_credentials only to a confidential client', async () => {
    const name = uniqueName('public-cc');
    const refused = await register({
      client_name: name,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'client_credentials'],
      redirect_uris: [REDIRECT],
    });
    expect(refused.status).toBe(400);
    expect(await errorOf(refused)).toEqual({
      error: 'invalid_client_metadata',
      error_description: 'grant_types: a public client cannot use client_credentials',
    });
    expect(await rowsNamed(name)).toBe(0);

    // A public client is registered with PKCE and no secret; a confidential machine client needs no redirect URI.
    const spa = await registered({ token_endpoint_auth_method: 'none' });
    expect(spa).toMatchObject({ token_endpoint_auth_method: 'none', require_pkce: true });
    expect(spa).not.toHaveProperty('client_secret');
    expect(spa).not.toHaveProperty('client_secret_expires_at');
    const machine = await registered({ redirect_uris: undefined, grant_types: ['client_credentials'], scope: 'profile' });
    expect(machine).toMatchObject({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    const cc = await tokenRequest({ grant_type: 'client_credentials' }, basic(machine.client_id, machine.client_secret!));
    expect(await cc.json()).toMatchObject({ token_type: 'Bearer', scope: 'profile' });
  });

  it('refuses redirect URIs with fragments, wildcards, plain http off loopback, or dangerous schemes, naming the field and never quoting it', async () => {
    const bad = [
      'https://app.example.com/callback#frag',
      'https://app.example.com/callback#',
      'https://*.example.com/callback',
      'https://app.example.com/*',
      'https://evil*.example.com/callback',
      'http://evil.example/callback',
      'http://app.example.com/callback',
      'javascript:alert(1)//evil',
      'data:text/html,evil',
      'file:///etc/evil',
      'https://user:pass@evil.example/callback',
      'HTTPS://EVIL.example/callback',
      'https://evil.example',
      '/relative/evil',
      'evil',
      '',
    ];
    for (const uri of bad) {
      const name = uniqueName('redirect');
      const res = await register({ client_name: name, redirect_uris: [REDIRECT, uri] });
      expect(res.status, uri).toBe(400);
      const { error, error_description } = await errorOf(res);
      expect(error, uri).toBe('invalid_redirect_uri');
      expect(error_description, uri).toMatch(/^redirect_uris\[1\]: /);
      expect(error_description, uri).toMatch(RFC6749_TEXT);
      expect(error_description.toLowerCase(), uri).not.toContain('evil');
      expect(await rowsNamed(name), uri).toBe(0);
    }
    const none = await register({ client_name: uniqueName(), redirect_uris: [] });
    expect(await errorOf(none)).toEqual({
      error: 'invalid_redirect_uri',
      error_description: 'redirect_uris: at least one redirect URI is required',
    });
    const logout = await register({
      client_name: uniqueName(),
      redirect_uris: [REDIRECT],
      post_logout_redirect_uris: ['https://app.example.com/bye#x'],
    });
    expect(await errorOf(logout)).toEqual({
      error: 'invalid_client_metadata',
      error_description: 'post_logout_redirect_uris[0]: must not contain a fragment',
    });
    // Loopback http and a native app's private-use scheme are fine (RFC 8252).
    expect(
      (await registered({ token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1/cb', 'com.example.app:/oauth'] }))
        .redirect_uris,
    ).toEqual(['http://127.0.0.1/cb', 'com.example.app:/oauth']);
  });

  it('refuses unsigned ID tokens and algorithms it does not sign with', async () => {
    for (const alg of ['none', 'HS256', 'RS512', 'None', '']) {
      const name = uniqueName('alg');
      const res = await register({ client_name: name, redirect_uris: [REDIRECT], id_token_signed_response_alg: alg });
      expect(res.status, alg).toBe(400);
      expect(await errorOf(res), alg).toEqual({
        error: 'invalid_client_metadata',
        error_description: 'id_token_signed_response_alg: must be RS256 or ES256',
      });
      expect(await rowsNamed(name)).toBe(0);
    }
  });

  it('takes only public keys inline: a private key, a symmetric key, a broken key or a jwks_uri is refused', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const pub = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const priv = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES256' };
    const rsa = await exportJWK((await generateKeyPair('RS256', { extractable: true })).privateKey);
    const cases: [unknown, string][] = [
      [{ keys: [priv] }, 'jwks.keys[0].d: is a private key member: register only the public key'],
      [{ keys: [pub, rsa] }, 'jwks.keys[1].d: is a private key member: register only the public key'],
      [{ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, 'jwks.keys[0].k: is a private key member: register only the public key'],
      [{ keys: [{ kty: 'oct', kid: 'x' }] }, 'jwks.keys[0].kty: must be RSA, EC or OKP (a public signing key)'],
      [{ keys: [{ ...pub, y: pub.x }] }, 'jwks.keys[0]: is not a usable public key'],
      [{ keys: [{ ...pub, alg: 'none' }] }, 'jwks.keys[0]: is not a usable public key'],
      [{ keys: [] }, 'jwks.keys: Too small: expected array to have >=1 items'],
      [[pub], 'jwks: Invalid input: expected object, received array'],
    ];
    for (const [jwks, description] of cases) {
      const name = uniqueName('jwks');
      const res = await register({ client_name: name, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt', jwks });
      expect(await errorOf(res), description).toEqual({ error: 'invalid_client_metadata', error_description: description });
      expect(await rowsNamed(name)).toBe(0);
    }
    const byUri = await register({
      client_name: uniqueName(),
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks_uri: 'https://app.example.com/jwks',
    });
    expect(await errorOf(byUri)).toEqual({
      error: 'invalid_client_metadata',
      error_description: 'jwks_uri: is not supported: send the keys inline as jwks',
    });
    const noKeys = await register({ client_name: uniqueName(), redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt' });
    expect(await errorOf(noKeys)).toEqual({
      error: 'invalid_client_metadata',
      error_description: "jwks: private_key_jwt needs the client's public keys (jwks)",
    });

    // The public key registers (stored without anything but its public members) and authenticates.
    const client = await registered({
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      redirect_uris: undefined,
      jwks: { keys: [{ ...pub, x5c: ['MIIB'], ext: true }] },
    });
    expect(client).not.toHaveProperty('client_secret');
    expect(JSON.parse((await clientRow(client.client_id))!.jwks as string)).toEqual({
      keys: [{ kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y, kid: 'k1', alg: 'ES256' }],
    });
    const assertion = await new SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(client.client_id)
      .setSubject(client.client_id)
      .setAudience(`${ORIGIN}/auth/token`)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(privateKey);
    const cc = await call(
      '/auth/token',
      form({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    );
    expect(cc.status, await cc.clone().text()).toBe(200);
  });

  it('keeps response types and grant types to the code flow, and consistent (RFC 7591 §2.1)', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ response_types: ['token'] }, 'response_types: may hold only code (no implicit or hybrid flows).'],
      [{ response_types: ['code id_token'] }, 'response_types: may hold only code (no implicit or hybrid flows).'],
      [
        { response_types: ['code', 'token'], grant_types: ['authorization_code', 'implicit'] },
        'grant_types: may hold only authorization_code, refresh_token and client_credentials.',
      ],
      [{ response_types: [] }, 'response_types: code goes with the authorization_code grant, and only with it (RFC 7591 section 2.1).'],
      [
        { response_types: ['code'], grant_types: ['client_credentials'] },
        'response_types: code goes with the authorization_code grant, and only with it (RFC 7591 section 2.1).',
      ],
      [{ grant_types: ['password'] }, 'grant_types: may hold only authorization_code, refresh_token and client_credentials.'],
      [
        { grant_types: ['urn:ietf:params:oauth:grant-type:device_code'] },
        'grant_types: may hold only authorization_code, refresh_token and client_credentials.',
      ],
      [
        { grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'] },
        'grant_types: may hold only authorization_code, refresh_token and client_credentials.',
      ],
      [
        { token_endpoint_auth_method: 'client_secret_jwt' },
        'token_endpoint_auth_method: must be client_secret_basic, client_secret_post, private_key_jwt or none',
      ],
    ];
    for (const [metadata, description] of cases) {
      const name = uniqueName('types');
      const res = await register({ client_name: name, redirect_uris: [REDIRECT], ...metadata });
      expect(await errorOf(res), JSON.stringify(metadata)).toEqual({ error: 'invalid_client_metadata', error_description: description });
      expect(await rowsNamed(name)).toBe(0);
    }
  });

  it('keeps only the scopes this server knows (as /authorize does) and refuses a scope with none of them', async () => {
    const client = await registered({ scope: 'openid email admin:everything roles email urn:x:all' });
    expect(client.scope).toBe('openid email roles');
    expect(JSON.parse((await clientRow(client.client_id))!.scopes as string)).toEqual(['openid', 'email', 'roles']);
    const name = uniqueName('scope');
    const res = await register({ client_name: name, redirect_uris: [REDIRECT], scope: 'admin write:all' });
    expect(await errorOf(res)).toEqual({
      error: 'invalid_client_metadata',
      error_description: 'scope: names none of the scopes this server supports.',
    });
    expect(await rowsNamed(name)).toBe(0);
  });

  it('answers a body it cannot read with 400 invalid_client_metadata, never a 500, and writes nothing', async () => {
    const name = uniqueName('body');
    const json = (body: BodyInit, type = 'application/json') => register(undefined, { body, headers: { 'content-type': type } });
    const valid = JSON.stringify({ client_name: name, redirect_uris: [REDIRECT] });
    const cases: [Promise<Response>, string][] = [
      [json(`${valid.slice(0, -1)}`), 'The request body is not valid JSON.'],
      [json(`${valid},`), 'The request body is not valid JSON.'],
      [json(''), 'The request body is not valid JSON.'],
      [json(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), 'The request body is not valid JSON.'],
      [json(valid, 'application/x-www-form-urlencoded'), 'Send the client metadata as application/json (RFC 7591 section 3.1).'],
      [json(valid, 'text/plain'), 'Send the client metadata as application/json (RFC 7591 section 3.1).'],
      [json(valid, 'application/jsonp'), 'Send the client metadata as application/json (RFC 7591 section 3.1).'],
      [register(undefined, { body: valid }), 'Send the client metadata as application/json (RFC 7591 section 3.1).'],
      [json('[]'), 'The client metadata must be a JSON object.'],
      [json('null'), 'The client metadata must be a JSON object.'],
      [json('"x"'), 'The client metadata must be a JSON object.'],
      [json('1e999'), 'The client metadata must be a JSON object.'],
      [json(JSON.stringify({ client_name: 5, redirect_uris: [REDIRECT] })), 'client_name: Invalid input: expected string, received number'],
      [
        json(JSON.stringify({ client_name: name, redirect_uris: [REDIRECT], grant_types: { 0: 'authorization_code' } })),
        'grant_types: Invalid input: expected array, received object',
      ],
      [
        json(JSON.stringify({ client_name: name, redirect_uris: [REDIRECT], scope: ['openid'] })),
        'scope: Invalid input: expected string, received array',
      ],
      [
        json(JSON.stringify({ client_name: name, redirect_uris: [REDIRECT], dpop_bound_access_tokens: 'true' })),
        'dpop_bound_access_tokens: Invalid input: expected boolean, received string',
      ],
      [
        json(JSON.stringify({ client_name: `${name}\u202e`, redirect_uris: [REDIRECT] })),
        'client_name: name must not contain control or bidirectional-override characters',
      ],
      [json(JSON.stringify({ client_name: '   ', redirect_uris: [REDIRECT] })), 'client_name: name is required'],
      [
        json(JSON.stringify({ client_name: name, redirect_uris: [REDIRECT], post_logout_redirect_uris: Array(21).fill(REDIRECT) })),
        'post_logout_redirect_uris: Too big: expected array to have <=20 items',
      ],
    ];
    for (const [pending, description] of cases) {
      const res = await pending;
      expect(res.status, description).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await errorOf(res)).toEqual({ error: 'invalid_client_metadata', error_description: description });
    }
    for (const [redirectUris, description] of [
      [REDIRECT, 'redirect_uris: Invalid input: expected array, received string'],
      [[7], 'redirect_uris[0]: Invalid input: expected string, received number'],
    ] as const) {
      const res = await json(JSON.stringify({ client_name: name, redirect_uris: redirectUris }));
      expect(await errorOf(res)).toEqual({ error: 'invalid_redirect_uri', error_description: description });
    }
    expect(await rowsNamed(name)).toBe(0);
    // A member sent as null takes its default, as if left out.
    expect(await registered({ client_name: uniqueName(), grant_types: null, scope: null, jwks: null })).toMatchObject({
      grant_types: ['authorization_code'],
      scope: 'openid profile email',
    });
  });

  it('refuses member names that pollute prototypes, anywhere in the body', async () => {
    const name = uniqueName('proto');
    const bodies = [
      `{"client_name":"${name}","redirect_uris":["${REDIRECT}"],"__proto__":{"first_party":true,"resources":["https://api.gatehouse.test"]}}`,
      `{"client_name":"${name}","redirect_uris":["${REDIRECT}"],"constructor":{"prototype":{"first_party":true}}}`,
      `{"client_name":"${name}","redirect_uris":["${REDIRECT}"],"jwks":{"keys":[{"kty":"EC","__proto__":{"d":"x"}}]}}`,
      `{"client_name":"${name}","redirect_uris":["${REDIRECT}"],"contacts":[{"prototype":1}]}`,
    ];
    for (const body of bodies) {
      const res = await register(undefined, { body, headers: { 'content-type': 'application/json' } });
      expect(res.status, body).toBe(400);
      expect(await errorOf(res)).toEqual({
        error: 'invalid_client_metadata',
        error_description: 'The client metadata uses a reserved member name (__proto__, constructor or prototype).',
      });
    }
    expect(await rowsNamed(name)).toBe(0);
    expect(({} as Record<string, unknown>).first_party).toBeUndefined();
  });

  it('refuses a body over 16 KiB before reading it, with or without Content-Length, and writes nothing', async () => {
    const name = uniqueName('huge');
    // Valid metadata, grown past the limit by a member that is otherwise ignored.
    const body = JSON.stringify({ client_name: name, redirect_uris: [REDIRECT], padding: 'x'.repeat(17 * 1024) });
    const sized = await register(undefined, { body, headers: { 'content-type': 'application/json', accept: 'application/json' } });
    // RFC 7591 §3.2.2: OAuth JSON like every other registration error, not a page or problem+json.
    expect(sized.status).toBe(413);
    expect(sized.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await sized.json()).toMatchObject({ error: 'payload_too_large' });
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 1024) c.enqueue(bytes.slice(i, i + 1024));
        c.close();
      },
    });
    const streamed = await register(undefined, {
      body: stream,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
    });
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toMatchObject({ error: 'payload_too_large' });
    expect(await rowsNamed(name)).toBe(0);
  });

  it('is limited per IP like the credential endpoints', async () => {
    await withinOneLimiterWindow();
    const ip = uniqueIp();
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) statuses.push((await register({}, { ip, token: `guess${i}` })).status);
    expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
    const limited = await register({ client_name: uniqueName(), redirect_uris: [REDIRECT] }, { ip });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('60');
    expect(await errorOf(limited)).toMatchObject({ error: 'rate_limited' });
  });

  it('with REGISTRATION_PKCE_OPTIONAL, registers confidential clients that may send a nonce instead of PKCE; public ones keep PKCE', async () => {
    const lax = appWith((deps) => ({ config: { ...deps.config, registration: { ...deps.config.registration, pkceOptional: true } } }));
    const post = (json: unknown) =>
      lax('/auth/register', {
        method: 'POST',
        json: { redirect_uris: [REDIRECT], client_name: uniqueName(), ...(json as object) },
        headers: { authorization: `Bearer ${INITIAL}` },
      }).then((r) => r.json<Record<string, unknown>>());
    const confidential = await post({});
    expect(confidential.require_pkce).toBe(false);
    expect((await clientRow(confidential.client_id as string))!.require_pkce).toBe(0);
    expect((await post({ token_endpoint_auth_method: 'none' })).require_pkce).toBe(true);
    // The conformance suite's request shape: a nonce, no PKCE — after consent, a code.
    const user = await signedInUser();
    const params = new URLSearchParams({
      response_type: 'code',
      client_id: confidential.client_id as string,
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: 's',
      nonce: 'n-1',
      prompt: 'none',
    });
    const res = await call(`/auth/authorize?${params}`, { cookie: user.cookie });
    // prompt=none: the request itself was accepted (PKCE not asked); only consent is missing.
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('consent_required');
    // Off (the default), the same client shape keeps PKCE.
    expect((await registered({})).require_pkce).toBe(true);
  });

  it("keeps every error description in RFC 6749's character set, never quoting the caller", async () => {
    const hostile = 'Zq"é\\§<script>';
    const descriptions: string[] = [];
    for (const metadata of [
      { redirect_uris: [`https://app.example.com/${hostile}#x`] },
      { redirect_uris: [hostile] },
      { redirect_uris: [REDIRECT], grant_types: [hostile] },
      { redirect_uris: [REDIRECT], response_types: [hostile] },
      { redirect_uris: [REDIRECT], token_endpoint_auth_method: hostile },
      { redirect_uris: [REDIRECT], id_token_signed_response_alg: hostile },
      { redirect_uris: [REDIRECT], scope: hostile },
      { redirect_uris: [REDIRECT], client_name: `${hostile}\u0000` },
      { redirect_uris: [REDIRECT], jwks: { keys: [{ kty: hostile }] } },
      { redirect_uris: [REDIRECT], jwks_uri: hostile },
    ]) {
      const res = await register({ client_name: uniqueName(), ...metadata });
      expect(res.status).toBe(400);
      descriptions.push((await errorOf(res)).error_description);
    }
    for (const d of descriptions) {
      expect(d).toMatch(RFC6749_TEXT);
      expect(d).not.toContain('Zq');
      expect(d).not.toContain('script');
    }
  });
});
