import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { routeSchema } from '../../src/gateway/routes-config';
import { APP, appWith, call, createVerifiedUser, signIn } from '../helpers';
import { API_SCOPES, authorizeUrl, basic, getCode, pkce, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';

/**
 * A token is for one resource and one kind of caller (DESIGN.md §3, RFC 8707/9068). The attackers:
 * another OAuth client (a third party's token at someone else's API), a machine client presenting
 * its client_credentials token as if it were a user, and an origin that must be told who the
 * client is.
 */
const API = 'https://api.gatehouse.test';
const ADMIN_API = 'https://admin.gatehouse.test';
const app = (path: string, token: string) => call(`${APP}${path}`, { headers: { authorization: `Bearer ${token}` } });

async function admin() {
  const user = await createVerifiedUser();
  await env.DB.prepare("INSERT INTO user_roles (user_id, role) VALUES (?, 'admin')").bind(user.userId).run();
  const { cookie } = await signIn(user.email);
  return { ...user, cookie };
}

async function userToken(client: { clientId: string; clientSecret: string }, cookie: string, scope: string, resource?: string) {
  const { code, verifier } = await getCode(client.clientId, cookie, { scope });
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...(resource ? { resource } : {}) },
    basic(client.clientId, client.clientSecret),
  );
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json<{ access_token: string }>()).access_token;
}

const machineToken = async (client: { clientId: string; clientSecret: string }, resource?: string, scope = 'orders:read') =>
  (
    await (
      await tokenRequest(
        { grant_type: 'client_credentials', scope, ...(resource ? { resource } : {}) },
        basic(client.clientId, client.clientSecret),
      )
    ).json<{ access_token: string }>()
  ).access_token;

describe('bearer tokens are bound to a resource', () => {
  it("a third party's openid token does not open an admin-only route as the admin user", async () => {
    const a = await admin();
    const thirdParty = await registerClient({ firstParty: true, name: 'Third Party', resources: [{ resource: API, scopes: API_SCOPES }] });
    const adminTools = await registerClient({ resources: [ADMIN_API] });
    const variants = {
      'openid only, for Gatehouse itself': await userToken(thirdParty, a.cookie, 'openid'),
      'openid roles, for Gatehouse itself': await userToken(thirdParty, a.cookie, 'openid roles'),
      'for another API, with roles': await userToken(thirdParty, a.cookie, 'openid roles', API),
      'for the admin API, without the roles scope': await userToken(adminTools, a.cookie, 'openid', ADMIN_API),
    };
    for (const [what, token] of Object.entries(variants)) {
      const res = await app('/demo/admin-api/x', token);
      expect([401, 403], what).toContain(res.status);
      expect(await res.text(), what).not.toContain('x-auth-user-id');
    }
    // The admin API's own client, for the admin API, asking for roles: it passes.
    const ok = await app('/demo/admin-api/x', await userToken(adminTools, a.cookie, 'openid roles', ADMIN_API));
    expect(ok.status).toBe(200);
    expect((await ok.json<{ headers: Record<string, string> }>()).headers).toMatchObject({
      'x-auth-user-id': a.userId,
      'x-auth-roles': 'admin',
      'x-auth-client-id': adminTools.clientId,
    });
  });

  it('a client may only ask for resources it is registered for, and a grant keeps to what was authorized', async () => {
    const client = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] });
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    for (const resource of [ADMIN_API, 'https://api.gatehouse.test/', 'not a uri', 'https://api.gatehouse.test#x', `${API} ${ADMIN_API}`]) {
      const { code, verifier } = await getCode(client.clientId, cookie);
      const res = await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource },
        basic(client.clientId, client.clientSecret),
      );
      expect(res.status, resource).toBe(400);
      expect(await res.json(), resource).toMatchObject({ error: 'invalid_target' });
    }
    expect(
      await (
        await tokenRequest({ grant_type: 'client_credentials', resource: ADMIN_API }, basic(client.clientId, client.clientSecret))
      ).json(),
    ).toMatchObject({ error: 'invalid_target' });
    // At /authorize: a resource the client may not have is refused at its redirect URI.
    const { challenge } = await pkce();
    const refused = await call(`${authorizeUrl(client.clientId, challenge)}&resource=${encodeURIComponent(ADMIN_API)}`, { cookie });
    expect(new URL(refused.headers.get('location')!).searchParams.get('error')).toBe('invalid_target');

    // Authorized for API only (resource at /authorize): the refresh token cannot be turned to another resource.
    const two = await registerClient({ resources: [API, ADMIN_API] });
    const { code, verifier } = await getCode(two.clientId, cookie, { resource: API });
    const tokens = await (
      await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API },
        basic(two.clientId, two.clientSecret),
      )
    ).json<{ access_token: string; refresh_token: string }>();
    expect(decodeJwt(tokens.access_token).aud).toBe(API);
    const widened = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, resource: ADMIN_API },
      basic(two.clientId, two.clientSecret),
    );
    expect(await widened.json()).toMatchObject({ error: 'invalid_target' });
    // …and that refusal consumed nothing: the refresh token still works for its own resource.
    const again = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, resource: API },
      basic(two.clientId, two.clientSecret),
    );
    expect(again.status).toBe(200);
    expect(decodeJwt((await again.json<{ access_token: string }>()).access_token).aud).toBe(API);
  });

  it('a client_credentials token is not a user: refused on user routes, accepted where a route opts in, with no user headers', async () => {
    const client = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] });
    const token = await machineToken(client, API);
    expect(decodeJwt(token)).toMatchObject({ sub: client.clientId, gty: 'client_credentials', aud: API });
    for (const path of ['/demo/api/x', '/demo/recent/x', '/demo/api-fresh/x']) {
      const res = await app(path, token);
      expect(res.status, path).toBe(403);
      expect(await res.json(), path).toMatchObject({ detail: 'This route serves users: a token a client got for itself is not accepted.' });
    }
    const ok = await app('/demo/machine/x', token);
    expect(ok.status).toBe(200);
    const { headers } = await ok.json<{ headers: Record<string, string> }>();
    expect(headers['x-auth-client-id']).toBe(client.clientId);
    expect(headers['x-auth-scope']).toBe('orders:read');
    for (const h of ['x-auth-user-id', 'x-auth-roles', 'x-auth-tier', 'x-auth-session-id', 'x-auth-amr', 'x-auth-acr'])
      expect(headers[h], h).toBeUndefined();
    const assertion = decodeJwt(headers['x-auth-assertion']!);
    expect(assertion).toMatchObject({ sub: `client:${client.clientId}`, client_id: client.clientId, machine: true });
    // A client may not be registered under an id that looks like a user id.
    await expect(registerClient({ clientId: crypto.randomUUID() })).rejects.toThrow(/must not look like a user id/);
  });

  for (const accessTokenFormat of ['jwt', 'opaque'] as const)
    it(`a revoked ${accessTokenFormat} machine token is refused at once on a fresh machine route, even after the isolate has seen it`, async () => {
      const route = routeSchema.parse({
        match: '/rt/fresh-machine/*',
        host: new URL(APP).host,
        origin: 'service:ORIGIN_ECHO',
        policy: { audiences: [API], machine: true, fresh: true },
      });
      const gw = appWith((deps) => ({
        config: { ...deps.config, gateway: { ...deps.config.gateway, routes: [route, ...deps.config.gateway.routes] } },
      }));
      const client = await registerClient({ accessTokenFormat, resources: [{ resource: API, scopes: API_SCOPES }] });
      const token = await machineToken(client, API);
      expect(token.startsWith('ot1.')).toBe(accessTokenFormat === 'opaque');
      const use = (path: string) => gw(`${APP}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
      // Used on the cached route and the fresh one: the isolate has it.
      expect((await use('/demo/machine/x')).status).toBe(200);
      expect((await use('/rt/fresh-machine/x')).status).toBe(200);
      const revoked = await gw('/auth/revoke', {
        method: 'POST',
        body: new URLSearchParams({ token }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
      });
      expect(revoked.status).toBe(200);
      const intro = await gw('/auth/introspect', {
        method: 'POST',
        body: new URLSearchParams({ token }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
      });
      expect(await intro.json()).toEqual({ active: false });
      const after = await use('/rt/fresh-machine/x');
      expect(after.status).toBe(401);
      expect(after.headers.get('www-authenticate')).toBe(
        'Bearer realm="gatehouse", error="invalid_token", DPoP algs="ES256 ES384 PS256 RS256 EdDSA"',
      );
    });

  it('a route that lists its clients refuses the others', async () => {
    const partner = await registerClient({ clientId: 'partner-app', resources: [{ resource: API, scopes: API_SCOPES }] });
    const stranger = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] });
    const refused = await app('/demo/partner/x', await machineToken(stranger, API));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ detail: 'Tokens of this client are not accepted here.' });
    expect((await app('/demo/partner/x', await machineToken(partner, API))).status).toBe(200);
  });
});

describe('the assertion an origin receives', () => {
  it('is never shared between two clients of one user, session and expiry', async () => {
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    const a = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }], accessTokenTtl: 300 });
    const b = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }], accessTokenTtl: 300 });
    // Two tokens of one sign-in that expire in the same second (frozen clock for both grants).
    const now = Date.now();
    const frozen = appWith(() => ({ now: () => now }));
    const token = async (client: typeof a) => {
      const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid profile' });
      const res = await frozen('/auth/token', {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: REDIRECT,
          code_verifier: verifier,
          resource: API,
        }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
      });
      return (await res.json<{ access_token: string }>()).access_token;
    };
    const [ta, tb] = [await token(a), await token(b)];
    expect(decodeJwt(ta).exp).toBe(decodeJwt(tb).exp);
    expect(decodeJwt(ta).sid).toBe(decodeJwt(tb).sid);
    const seen = async (t: string) => (await (await app('/demo/api/x', t)).json<{ headers: Record<string, string> }>()).headers;
    const [ha, hb] = [await seen(ta), await seen(tb)];
    expect(ha['x-auth-client-id']).toBe(a.clientId);
    expect(hb['x-auth-client-id']).toBe(b.clientId);
    expect(decodeJwt(ha['x-auth-assertion']!).client_id).toBe(a.clientId);
    expect(decodeJwt(hb['x-auth-assertion']!).client_id).toBe(b.clientId);
  });
});
