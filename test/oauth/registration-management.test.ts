import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/lib/crypto';
import { createDb } from '../../src/db/client';
import { appWith, call, ORIGIN } from '../helpers';
import { basic, REDIRECT, registerClient, signedInUser, tokenRequest } from './helpers';
import { auditFor, clientRow, codeThroughConsent, INITIAL, manage, registered, uniqueName, type Registered } from './registration-helpers';

/**
 * RFC 7592 at /auth/register/{client_id}, attacked with the wrong credentials: another client's
 * registration token, the initial access token, a guess, a client an operator registered; and
 * with updates that try to choose a secret, rename the client, or race each other.
 */

const errorOf = async (res: Response) => res.json<{ error: string; error_description: string }>();
const put = (clientId: string, token: string | null, json: unknown) => manage(clientId, token, { method: 'PUT', json });
const UNAUTHORIZED = {
  error: 'invalid_token',
  error_description: 'The registration access token is missing or not valid for this client.',
};

/** The metadata of a client information response, as a client sends it back in an update (RFC 7592 §2.2). */
const echo = (c: Registered, over: Record<string, unknown> = {}) => ({ ...c, ...over });

describe('RFC 7592 client configuration endpoint', () => {
  it('reads a registration with its token: the stored metadata, the same token, never the secret again', async () => {
    const client = await registered({ scope: 'openid email' });
    const res = await manage(client.client_id, client.registration_access_token);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json<Record<string, unknown>>();
    const { client_secret: _secret, ...rest } = client;
    expect(body).toEqual(rest);
    expect(body).not.toHaveProperty('client_secret');
    expect(client.registration_client_uri).toBe(`${ORIGIN}/auth/register/${client.client_id}`);
  });

  it("opens a client only with that client's own registration token; every other case is the same 401, whether or not the client exists", async () => {
    const a = await registered({});
    const b = await registered({ grant_types: ['authorization_code', 'client_credentials'] });
    const operator = await registerClient({ name: 'Operator app' });
    const bBefore = await clientRow(b.client_id);
    const operatorBefore = await clientRow(operator.clientId);
    const attempts: [string, string | null][] = [
      [b.client_id, a.registration_access_token], // one client's token on another
      [b.client_id, INITIAL], // the initial access token is not a registration token
      [b.client_id, b.client_secret!], // nor is the client secret
      [b.client_id, null],
      [b.client_id, `${b.registration_access_token}x`],
      [b.client_id, b.registration_access_token.toLowerCase()],
      [operator.clientId, a.registration_access_token], // an operator's client has no registration token
      [operator.clientId, operator.clientSecret],
      [operator.clientId, ''],
      ['no-such-client', a.registration_access_token],
      [`${b.client_id}%00`, b.registration_access_token],
      [b.client_id.toLowerCase(), b.registration_access_token],
    ];
    for (const [clientId, token] of attempts) {
      for (const init of [{}, { method: 'PUT', json: echo(b, { client_id: clientId, client_name: 'Taken over' }) }, { method: 'DELETE' }]) {
        const res = await manage(clientId, token, init);
        const label = `${init.method ?? 'GET'} ${clientId} with ${token?.slice(0, 6)}`;
        expect(res.status, label).toBe(401);
        expect(res.headers.get('www-authenticate'), label).toMatch(/^Bearer realm="gatehouse", error="invalid_token"/);
        expect(await errorOf(res), label).toEqual(UNAUTHORIZED);
      }
    }
    // Basic credentials of the client itself are not a bearer token.
    const asBasic = await manage(b.client_id, null, { headers: { authorization: basic(b.client_id, b.client_secret!) } });
    expect(await errorOf(asBasic)).toEqual(UNAUTHORIZED);
    expect(await clientRow(b.client_id)).toEqual(bBefore);
    expect(await clientRow(operator.clientId)).toEqual(operatorBefore);
    expect((await auditFor(b.client_id)).results.map((r) => r.type)).toEqual(['client_registered']);
  });

  it('PUT replaces the metadata, keeps the secret, rotates the registration token and answers the new state', async () => {
    const client = await registered({ grant_types: ['authorization_code', 'client_credentials'], scope: 'openid profile' });
    const name = uniqueName('renamed');
    const res = await put(client.client_id, client.registration_access_token, {
      ...echo(client, { client_name: name, redirect_uris: ['https://app.example.com/new-callback'], scope: 'openid email' }),
      // Echoed back as clients do: ignored (an update cannot grant these).
      first_party: true,
      resources: ['https://api.gatehouse.test'],
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const updated = await res.json<Registered>();
    expect(updated).toMatchObject({
      client_id: client.client_id,
      client_name: name,
      redirect_uris: ['https://app.example.com/new-callback'],
      scope: 'openid email',
      first_party: false,
      resources: [],
      client_id_issued_at: client.client_id_issued_at,
      client_secret_expires_at: 0,
      registration_client_uri: client.registration_client_uri,
    });
    expect(updated).not.toHaveProperty('client_secret');
    expect(updated.registration_access_token).not.toBe(client.registration_access_token);
    const row = (await clientRow(client.client_id))!;
    expect(row).toMatchObject({
      name,
      redirect_uris: '["https://app.example.com/new-callback"]',
      first_party: 0,
      registration_token_hash: await sha256(updated.registration_access_token),
    });
    // The old token is spent; the new one works; the secret is unchanged.
    expect(await errorOf(await manage(client.client_id, client.registration_access_token))).toEqual(UNAUTHORIZED);
    expect((await manage(client.client_id, updated.registration_access_token)).status).toBe(200);
    const cc = await tokenRequest({ grant_type: 'client_credentials' }, basic(client.client_id, client.client_secret!));
    expect(cc.status).toBe(200);
    const audit = (await auditFor(client.client_id)).results;
    expect(audit.map((a) => a.type)).toEqual(['client_registered', 'client_updated']);
    for (const secret of [client.client_secret!, client.registration_access_token, updated.registration_access_token])
      expect(audit[1]!.detail).not.toContain(secret);
  });

  it('PUT must name the client and may not choose its secret; a refused update changes nothing and spends no token', async () => {
    const client = await registered({});
    const before = await clientRow(client.client_id);
    const cases: [Record<string, unknown>, string, string][] = [
      [
        { ...echo(client), client_id: undefined },
        'invalid_client_metadata',
        'client_id: must be present and be this client (RFC 7592 section 2.2).',
      ],
      [
        echo(client, { client_id: 'another-client' }),
        'invalid_client_metadata',
        'client_id: must be present and be this client (RFC 7592 section 2.2).',
      ],
      [
        echo(client, { client_secret: 'a-secret-of-my-own-choosing-that-is-long-enough' }),
        'invalid_client_metadata',
        'client_secret: must be the current secret if sent; a client cannot choose its secret (RFC 7592 section 2.2).',
      ],
      [
        echo(client, { redirect_uris: ['https://evil.example/cb#x'] }),
        'invalid_redirect_uri',
        'redirect_uris[0]: must not contain a fragment',
      ],
      [
        echo(client, { token_endpoint_auth_method: 'none', grant_types: ['client_credentials'], response_types: [] }),
        'invalid_client_metadata',
        'grant_types: a public client cannot use client_credentials',
      ],
      [
        echo(client, { id_token_signed_response_alg: 'none' }),
        'invalid_client_metadata',
        'id_token_signed_response_alg: must be RS256 or ES256',
      ],
    ];
    for (const [body, error, description] of cases) {
      const res = await put(client.client_id, client.registration_access_token, body);
      expect(res.status, description).toBe(400);
      expect(await errorOf(res), description).toEqual({ error, error_description: description });
    }
    const bad = await manage(client.client_id, client.registration_access_token, {
      method: 'PUT',
      body: '{"client_id":',
      headers: { 'content-type': 'application/json' },
    });
    expect(await errorOf(bad)).toEqual({ error: 'invalid_client_metadata', error_description: 'The request body is not valid JSON.' });
    expect(await clientRow(client.client_id)).toEqual(before);
    // With the current secret echoed, it goes through.
    const ok = await put(client.client_id, client.registration_access_token, echo(client));
    expect(ok.status).toBe(200);
  });

  it('PUT to a public client drops the secret; back to a secret method issues a new one, shown once', async () => {
    const client = await registered({});
    const toPublic = await (
      await put(client.client_id, client.registration_access_token, {
        client_id: client.client_id,
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
      })
    ).json<Registered>();
    expect(toPublic).toMatchObject({ token_endpoint_auth_method: 'none', require_pkce: true });
    expect(toPublic).not.toHaveProperty('client_secret');
    expect((await clientRow(client.client_id))!.secret_hash).toBeNull();
    const back = await (
      await put(client.client_id, toPublic.registration_access_token, {
        client_id: client.client_id,
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'client_credentials'],
      })
    ).json<Registered>();
    expect(back.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(back.client_secret).not.toBe(client.client_secret);
    expect((await clientRow(client.client_id))!.secret_hash).toBe(await sha256(back.client_secret!));
    expect((await tokenRequest({ grant_type: 'client_credentials' }, basic(client.client_id, client.client_secret!))).status).toBe(401);
    expect((await tokenRequest({ grant_type: 'client_credentials' }, basic(client.client_id, back.client_secret!))).status).toBe(200);
  });

  it('of concurrent updates with one token, exactly one wins', async () => {
    const client = await registered({});
    // Writes held back a moment, so every request has read (and accepted) the token before any writes.
    const slowWrites = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === 'batch')
          return async (statements: D1PreparedStatement[]) => {
            await new Promise((r) => setTimeout(r, 200));
            return target.batch(statements);
          };
        return Reflect.get(target, prop, target);
      },
    });
    const racing = appWith(() => ({ db: createDb(slowWrites) }));
    const results = await Promise.all(
      ['First', 'Second', 'Third'].map((n) =>
        racing(`/auth/register/${client.client_id}`, {
          method: 'PUT',
          json: echo(client, { client_name: `${n} ${client.client_name}` }),
          headers: { authorization: `Bearer ${client.registration_access_token}` },
        }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401]);
    const winner = await results.find((r) => r.status === 200)!.json<Registered>();
    expect((await clientRow(client.client_id))!).toMatchObject({
      name: winner.client_name,
      registration_token_hash: await sha256(winner.registration_access_token),
    });
    expect((await auditFor(client.client_id)).results.map((r) => r.type)).toEqual(['client_registered', 'client_updated']);
  });

  it('DELETE removes the client and its consents; its refresh tokens then fail client authentication', async () => {
    const client = await registered({ grant_types: ['authorization_code', 'refresh_token'] });
    const user = await signedInUser();
    const { code, verifier } = await codeThroughConsent(client.client_id, user.cookie);
    const tokens = await (
      await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
        basic(client.client_id, client.client_secret!),
      )
    ).json<{ refresh_token: string }>();
    const consents = () =>
      env.DB.prepare('SELECT COUNT(*) AS n FROM consents WHERE client_id = ?').bind(client.client_id).first<{ n: number }>();
    expect((await consents())!.n).toBe(1);

    // Another client's token deletes nothing.
    const other = await registered({});
    expect((await manage(client.client_id, other.registration_access_token, { method: 'DELETE' })).status).toBe(401);
    expect(await clientRow(client.client_id)).not.toBeNull();

    const res = await manage(client.client_id, client.registration_access_token, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect(await clientRow(client.client_id)).toBeNull();
    expect((await consents())!.n).toBe(0);
    const refresh = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      basic(client.client_id, client.client_secret!),
    );
    expect(refresh.status).toBe(401);
    expect(await errorOf(refresh)).toMatchObject({ error: 'invalid_client' });
    // Gone, and the same 401 as a client that never existed.
    for (const init of [{}, { method: 'DELETE' }])
      expect(await errorOf(await manage(client.client_id, client.registration_access_token, init))).toEqual(UNAUTHORIZED);
    const audit = (await auditFor(client.client_id)).results.map((r) => r.type);
    expect(audit).toEqual(['client_registered', 'client_deleted']);
    // Its authorization requests are refused before any redirect (the client is unknown).
    const authorize = await call(
      `/auth/authorize?client_id=${client.client_id}&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code`,
      { cookie: user.cookie },
    );
    expect(authorize.status).toBe(400);
    expect(authorize.headers.get('location')).toBeNull();
  });
});
