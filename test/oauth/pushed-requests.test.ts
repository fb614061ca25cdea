import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { oauthClients } from '../../src/db/schema';
import { describeClient } from '../../src/oauth/client-registration';
import { depsFor } from '../../src/deps';
import { findClient } from '../../src/oauth/clients';
import { pushAuthorizationRequest } from '../../src/oauth/par';
import { pushedParams, usePushedRequest } from '../../src/oauth/pushed-requests';
import { appWith, auditOf, call, ORIGIN, signIn as signInAgain } from '../helpers';
import {
  authorizeParams,
  basic,
  form,
  formPostOf,
  pkce,
  pushRequest,
  REDIRECT,
  registerClient,
  RFC6749_TEXT,
  signedInUser,
  tokenRequest,
} from './helpers';

/**
 * Pushed authorization requests (RFC 9126) as a relying party makes them and as an attacker reuses,
 * outlives, borrows or amends them.
 */
const URN = /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/;
const locationOf = (res: Response) => new URL(res.headers.get('location')!, ORIGIN);
const pushedRows = (clientId: string) =>
  env.DB.prepare('SELECT params, used_at FROM pushed_authorizations WHERE client_id = ?')
    .bind(clientId)
    .all<{ params: string; used_at: number | null }>();
const grants = async (userId: string) => (await auditOf(userId)).results.filter((r) => r.type === 'authorization_granted').length;

/** Pushes a valid request for a confidential (basic) client; returns the request_uri and what was pushed. */
async function pushed(client: { clientId: string; clientSecret: string }, over: Record<string, string | undefined> = {}) {
  const { verifier, challenge } = await pkce();
  const params = authorizeParams(client.clientId, challenge, over);
  const res = await pushRequest(params, basic(client.clientId, client.clientSecret));
  expect(res.status, await res.clone().text()).toBe(201);
  const body = await res.json<{ request_uri: string; expires_in: number }>();
  return { ...body, params, verifier };
}

const authorizeWith = (clientId: string, requestUri: string, cookie?: string, extra: Record<string, string> = {}, at: typeof call = call) =>
  at(`/auth/authorize?${new URLSearchParams({ client_id: clientId, request_uri: requestUri, ...extra })}`, cookie ? { cookie } : {});

/** An error page (never a redirect) that says why. */
async function expectErrorPage(res: Response, text: string) {
  const body = await res.text();
  expect(res.status, body.slice(0, 300)).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(body).toContain(text);
  expect(body).not.toContain('code=');
}

describe('the pushed authorization request endpoint', () => {
  it('is advertised in discovery, answers CORS preflights, and takes only POST', async () => {
    const meta = await (await call('/.well-known/openid-configuration')).json<Record<string, unknown>>();
    expect(meta).toMatchObject({
      pushed_authorization_request_endpoint: `${ORIGIN}/auth/par`,
      require_pushed_authorization_requests: false,
    });
    const preflight = await call('/auth/par', { method: 'OPTIONS' });
    expect(preflight.status).toBe(204);
    // RFC 9126 §2.3: anything but POST is 405.
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await call('/auth/par', { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('POST, OPTIONS');
      expect(await res.json()).toMatchObject({ error: 'method_not_allowed' });
    }
  });

  it('takes a request with client_secret_basic, answers a request_uri good for 300 s, and /authorize with only client_id and request_uri runs it to tokens', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const { verifier, challenge } = await pkce();
    const params = authorizeParams(client.clientId, challenge, { state: 'pushed-state', nonce: 'pushed-nonce', scope: 'openid email' });
    const res = await pushRequest(params, basic(client.clientId, client.clientSecret));
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json<{ request_uri: string; expires_in: number }>();
    expect(Object.keys(body).sort()).toEqual(['expires_in', 'request_uri']);
    expect(body.request_uri).toMatch(URN);
    expect(body.expires_in).toBe(300);
    // Only the hash of the request_uri is stored, with the parameters as pushed.
    const rows = await pushedRows(client.clientId);
    expect(rows.results).toHaveLength(1);
    expect(JSON.parse(rows.results[0]!.params)).toEqual(params);
    expect(JSON.stringify(rows.results)).not.toContain(body.request_uri.split(':').pop());

    const back = await authorizeWith(client.clientId, body.request_uri, user.cookie);
    expect(back.status).toBe(302);
    const to = locationOf(back);
    expect(to.origin + to.pathname).toBe(REDIRECT);
    expect(to.searchParams.get('state')).toBe('pushed-state');
    expect(to.searchParams.get('iss')).toBe(ORIGIN);
    const tokens = await tokenRequest(
      { grant_type: 'authorization_code', code: to.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(tokens.status).toBe(200);
    const { id_token, scope } = await tokens.json<{ id_token: string; scope: string }>();
    expect(scope).toBe('openid email');
    expect(decodeJwt(id_token)).toMatchObject({ nonce: 'pushed-nonce', aud: client.clientId });
    expect((await pushedRows(client.clientId)).results[0]!.used_at).toEqual(expect.any(Number));
  });

  it('authenticates with client_secret_post and private_key_jwt, and never keeps the credentials with the request', async () => {
    const { challenge } = await pkce();
    const post = await registerClient({ authMethod: 'client_secret_post' });
    const viaPost = await pushRequest({ ...authorizeParams(post.clientId, challenge), client_secret: post.clientSecret });
    expect(viaPost.status).toBe(201);

    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'par-1', alg: 'ES256' };
    const pkj = await registerClient({ authMethod: 'private_key_jwt', jwks: { keys: [jwk] } });
    const assertion = (aud: string) =>
      new SignJWT({ jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid: 'par-1' })
        .setIssuer(pkj.clientId)
        .setSubject(pkj.clientId)
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(privateKey);
    const fields = async (aud: string) => ({
      ...authorizeParams(pkj.clientId, challenge),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(aud),
    });
    // RFC 9126 §2: the issuer, the token endpoint or the PAR endpoint is the assertion's audience.
    for (const aud of [`${ORIGIN}/auth/par`, `${ORIGIN}/auth/token`, ORIGIN])
      expect((await pushRequest(await fields(aud))).status, aud).toBe(201);
    const elsewhere = await pushRequest(await fields('https://other.example/par'));
    expect(elsewhere.status).toBe(401);
    expect(await elsewhere.json()).toMatchObject({ error: 'invalid_client' });

    for (const c of [post, pkj]) {
      const stored = (await pushedRows(c.clientId)).results.map((r) => JSON.parse(r.params) as Record<string, string>);
      expect(stored.length).toBeGreaterThan(0);
      for (const p of stored)
        for (const k of ['client_secret', 'client_assertion', 'client_assertion_type']) expect(p[k], k).toBeUndefined();
    }
  });

  it('takes a public client’s push (client_id only) and still demands PKCE of it', async () => {
    const client = await registerClient({ public: true, grantTypes: ['authorization_code'] });
    const user = await signedInUser();
    const { verifier, challenge } = await pkce();
    const res = await pushRequest(authorizeParams(client.clientId, challenge));
    expect(res.status).toBe(201);
    const { request_uri } = await res.json<{ request_uri: string }>();
    const code = locationOf(await authorizeWith(client.clientId, request_uri, user.cookie)).searchParams.get('code')!;
    expect(
      (
        await tokenRequest({
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT,
          code_verifier: verifier,
          client_id: client.clientId,
        })
      ).status,
    ).toBe(200);
    const noPkce = await pushRequest(
      authorizeParams(client.clientId, challenge, { code_challenge: undefined, code_challenge_method: undefined }),
    );
    expect(noPkce.status).toBe(400);
    expect(await noPkce.json()).toMatchObject({ error: 'invalid_request', error_description: 'code_challenge is required (PKCE).' });
  });

  it('validates a push as /authorize would, answering JSON 400 (never a redirect) and storing nothing', async () => {
    const client = await registerClient();
    const { challenge } = await pkce();
    const auth = basic(client.clientId, client.clientSecret);
    for (const [over, error, description] of [
      [{ response_type: 'token' }, 'unsupported_response_type', undefined],
      [{ response_type: undefined }, 'unsupported_response_type', undefined],
      [{ scope: 'unknown' }, 'invalid_scope', undefined],
      [{ code_challenge_method: 'plain' }, 'invalid_request', 'code_challenge_method must be S256.'],
      [{ redirect_uri: 'https://evil.example/callback' }, 'invalid_request', 'redirect_uri is not registered for this client.'],
      [{ redirect_uri: undefined }, 'invalid_request', 'redirect_uri is required.'],
      [{ response_mode: 'fragment' }, 'invalid_request', 'response_mode must be query or form_post.'],
      [{ prompt: 'none login' }, 'invalid_request', undefined],
      [{ max_age: '-1"é\\' }, 'invalid_request', undefined],
      [{ resource: 'https://not-registered.example' }, 'invalid_target', undefined],
      [{ claims: '{not json' }, 'invalid_request', undefined],
      [{ client_id: 'someone-else' }, 'invalid_request', 'client_id does not match the authenticated client.'],
      [{ request_uri: `urn:ietf:params:oauth:request_uri:${'A'.repeat(43)}` }, 'invalid_request', undefined],
    ] as const) {
      const res = await pushRequest(authorizeParams(client.clientId, challenge, over), auth);
      expect(res.status, JSON.stringify(over)).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.json<{ error: string; error_description: string }>();
      expect(body.error, JSON.stringify(over)).toBe(error);
      if (description) expect(body.error_description).toBe(description);
      expect(body.error_description).toMatch(RFC6749_TEXT);
    }
    // Bad or missing client authentication: 401 invalid_client.
    for (const authorization of [basic(client.clientId, 'wrong'), undefined]) {
      const res = await pushRequest(authorizeParams(client.clientId, challenge), authorization);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="gatehouse"');
      expect(await res.json()).toMatchObject({ error: 'invalid_client' });
    }
    // A repeated parameter, and a body that is not a form.
    const repeated = await call('/auth/par', {
      ...form({}),
      body: 'scope=openid&scope=email',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth },
    });
    expect(await repeated.json()).toMatchObject({ error: 'invalid_request' });
    const json = await call('/auth/par', {
      method: 'POST',
      json: authorizeParams(client.clientId, challenge),
      headers: { authorization: auth },
    });
    expect(json.status).toBe(400);
    expect((await pushedRows(client.clientId)).results).toHaveLength(0);
    // A client not registered for the code flow cannot push for it.
    const machine = await registerClient({ grantTypes: ['client_credentials'] });
    const refused = await pushRequest(authorizeParams(machine.clientId, challenge), basic(machine.clientId, machine.clientSecret));
    expect(await refused.json()).toMatchObject({ error: 'unauthorized_client' });
    expect((await pushedRows(machine.clientId)).results).toHaveLength(0);
  });
});

describe('a pushed request at /authorize', () => {
  it('uses only the pushed parameters: what the query adds or changes is ignored (RFC 9126 §4)', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const p = await pushed(client, { state: 'pushed', nonce: 'pushed-nonce', scope: 'openid' });
    const res = await authorizeWith(client.clientId, p.request_uri, user.cookie, {
      redirect_uri: 'https://evil.example/callback',
      state: 'attacker',
      scope: 'openid email profile offline_access',
      nonce: 'attacker-nonce',
      response_mode: 'form_post',
      prompt: 'none',
      code_challenge: 'A'.repeat(43),
      code_challenge_method: 'S256',
      resource: 'https://api.gatehouse.test',
    });
    expect(res.status).toBe(302);
    const to = locationOf(res);
    expect(to.origin + to.pathname).toBe(REDIRECT);
    expect(to.searchParams.get('state')).toBe('pushed');
    const tokens = await tokenRequest(
      { grant_type: 'authorization_code', code: to.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: p.verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(tokens.status).toBe(200);
    const body = await tokens.json<{ id_token: string; scope: string }>();
    expect(body.scope).toBe('openid');
    expect(decodeJwt(body.id_token).nonce).toBe('pushed-nonce');
  });

  it('yields one code: after a code was issued the request_uri is refused, and of two tabs finishing it one wins', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    // Before a code, the request may be opened again (a reload, a detour through sign-in).
    const p = await pushed(client);
    expect(locationOf(await authorizeWith(client.clientId, p.request_uri)).pathname).toBe('/auth/sign-in');
    expect(locationOf(await authorizeWith(client.clientId, p.request_uri)).pathname).toBe('/auth/sign-in');
    expect(locationOf(await authorizeWith(client.clientId, p.request_uri, user.cookie)).searchParams.get('code')).toMatch(/^ac1\./);
    await expectErrorPage(
      await authorizeWith(client.clientId, p.request_uri, user.cookie),
      'The request_uri is unknown, expired or already used.',
    );
    expect(await grants(user.userId)).toBe(1);

    const race = await pushed(client);
    const answers = await Promise.all([1, 2, 3, 4].map(() => authorizeWith(client.clientId, race.request_uri, user.cookie)));
    const codes = answers.filter((r) => r.status === 302 && locationOf(r).searchParams.get('code'));
    expect(codes).toHaveLength(1);
    for (const r of answers.filter((a) => !codes.includes(a))) {
      // A loser either found the request already used up, or lost the race to use it up.
      if (r.status === 302) expect(locationOf(r).searchParams.get('error')).toBe('invalid_request');
      else expect(r.status).toBe(400);
    }
    expect(await grants(user.userId)).toBe(2);
  });

  it('is used up by exactly one of concurrent code issuers, and not at all once expired', async () => {
    const client = await registerClient();
    const deps = await depsFor(env);
    const p = await pushed(client);
    const { id } = await pushedParams(deps, p.request_uri, client.clientId);
    const won = await Promise.all([1, 2, 3, 4, 5].map(() => usePushedRequest(deps, id)));
    expect(won.filter(Boolean)).toHaveLength(1);
    const late = await pushed(client);
    const lateId = (await pushedParams(deps, late.request_uri, client.clientId)).id;
    expect(await usePushedRequest({ ...deps, now: () => Date.now() + 301_000 }, lateId)).toBe(false);
  });

  it('expires 300 s after the push', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const p = await pushed(client);
    const at = (ms: number) => appWith(() => ({ now: () => Date.now() + ms }));
    await expectErrorPage(
      await authorizeWith(client.clientId, p.request_uri, user.cookie, {}, at(301_000)),
      'The request_uri is unknown, expired or already used.',
    );
    const inTime = await authorizeWith(client.clientId, p.request_uri, user.cookie, {}, at(290_000));
    expect(locationOf(inTime).searchParams.get('code')).toMatch(/^ac1\./);
    expect(await grants(user.userId)).toBe(1);
  });

  it('is only for the client that pushed it', async () => {
    const owner = await registerClient();
    const other = await registerClient();
    const user = await signedInUser();
    const p = await pushed(owner);
    for (const clientId of [other.clientId, undefined]) {
      const res = await call(
        `/auth/authorize?${new URLSearchParams({ request_uri: p.request_uri, ...(clientId ? { client_id: clientId } : {}) })}`,
        { cookie: user.cookie },
      );
      await expectErrorPage(res, 'The request_uri is unknown, expired or already used.');
    }
    expect(await grants(user.userId)).toBe(0);
    // Borrowing it did not use it up.
    expect(locationOf(await authorizeWith(owner.clientId, p.request_uri, user.cookie)).searchParams.get('code')).toMatch(/^ac1\./);
  });

  it('refuses a request_uri Gatehouse did not issue', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    for (const uri of [
      `urn:ietf:params:oauth:request_uri:${'A'.repeat(43)}`,
      'urn:ietf:params:oauth:request_uri:short',
      `urn:ietf:params:oauth:request_uri:${'A'.repeat(42)}!`,
    ]) {
      await expectErrorPage(await authorizeWith(client.clientId, uri, user.cookie), 'The request_uri is unknown, expired or already used.');
    }
    expect(await grants(user.userId)).toBe(0);
  });

  it('carries a pushed response_mode=form_post through to the page', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const p = await pushed(client, { response_mode: 'form_post', state: 'fp' });
    const res = await authorizeWith(client.clientId, p.request_uri, user.cookie);
    expect(res.status).toBe(200);
    const page = formPostOf(res, await res.text());
    expect(page.action).toBe(REDIRECT);
    expect(page.fields).toMatchObject({ state: 'fp', iss: ORIGIN, code: expect.stringMatching(/^ac1\./) });
  });

  it('re-authenticates once for a pushed prompt=login, then issues the code to the new sign-in only', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const p = await pushed(client, { prompt: 'login', state: 'fresh' });
    const first = await authorizeWith(client.clientId, p.request_uri, user.cookie);
    const signIn = locationOf(first);
    expect(signIn.pathname).toBe('/auth/sign-in');
    const back = signIn.searchParams.get('return_to')!;
    expect(new URL(back, ORIGIN).searchParams.get('request_uri')).toBe(p.request_uri);
    // The stale session coming back is sent to sign in again; a new sign-in gets the code.
    expect(locationOf(await call(back, { cookie: user.cookie })).pathname).toBe('/auth/sign-in');
    const { cookie } = await signInAgain(user.email);
    const done = locationOf(await call(back, { cookie }));
    expect(done.origin + done.pathname).toBe(REDIRECT);
    expect(done.searchParams.get('state')).toBe('fresh');
    expect(done.searchParams.get('code')).toMatch(/^ac1\./);
  });
});

describe('a client registered with requirePar', () => {
  it('is refused at /authorize unless its request was pushed', async () => {
    const client = await registerClient({ requirePar: true });
    const user = await signedInUser();
    const { challenge } = await pkce();
    const plain = await call(`/auth/authorize?${new URLSearchParams(authorizeParams(client.clientId, challenge, { state: 'unpushed' }))}`, {
      cookie: user.cookie,
    });
    expect(plain.status).toBe(302);
    const to = locationOf(plain);
    expect(to.origin + to.pathname).toBe(REDIRECT);
    expect(Object.fromEntries(to.searchParams)).toMatchObject({
      error: 'invalid_request',
      error_description: 'This client must push its authorization requests (PAR).',
      state: 'unpushed',
      iss: ORIGIN,
    });
    expect(to.searchParams.get('code')).toBeNull();
    expect(await grants(user.userId)).toBe(0);
    const p = await pushed(client);
    expect(locationOf(await authorizeWith(client.clientId, p.request_uri, user.cookie)).searchParams.get('code')).toMatch(/^ac1\./);
    // Its metadata says so (RFC 9126 §6).
    const row = await createDb(env.DB).select().from(oauthClients).where(eq(oauthClients.clientId, client.clientId)).get();
    expect(describeClient(row!).require_pushed_authorization_requests).toBe(true);
  });
});

describe('the push rules, at the domain function (pushAuthorizationRequest)', () => {
  it('refuses a request_uri, another client’s id and a dpop_jkt that is not the proof’s key; binds the proof’s key', async () => {
    const deps = await depsFor(env);
    const registered = await registerClient();
    const client = (await findClient(deps.db, registered.clientId))!;
    const params = { ...authorizeParams(registered.clientId, (await pkce()).challenge), client_secret: registered.clientSecret };
    const refused = (p: Record<string, string>, proof: { jkt: string } | null = null) =>
      pushAuthorizationRequest(deps, client, p, proof as never).catch((e: unknown) => e);
    expect(await refused({ ...params, request_uri: 'urn:x' })).toMatchObject({
      code: 'invalid_request',
      message: expect.stringContaining('request_uri'),
    });
    expect(await refused({ ...params, client_id: 'someone-else' })).toMatchObject({
      code: 'invalid_request',
      message: expect.stringContaining('client_id'),
    });
    expect(await refused({ ...params, dpop_jkt: 'a'.repeat(43) }, { jkt: 'b'.repeat(43) })).toMatchObject({ code: 'invalid_dpop_proof' });
    const ok = await pushAuthorizationRequest(deps, client, params, { jkt: 'b'.repeat(43) } as never);
    expect(ok.request_uri).toMatch(URN);
    // The client secret is not part of the request kept; the proof's key is.
    const { params: kept } = await pushedParams(deps, ok.request_uri, registered.clientId);
    expect(kept).toMatchObject({ client_id: registered.clientId, dpop_jkt: 'b'.repeat(43) });
    expect(kept).not.toHaveProperty('client_secret');
  });
});
