import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientsCli, resolveLocalhostNames, resourcesCli, startGatehouse, usersCli } from './harness';
import { Jar, runAuthorization } from './relying-party';

/**
 * DPoP (RFC 9449) with a real client: openid-client v6 binds its tokens to a key, follows
 * Gatehouse's nonces (DPOP_REQUIRE_NONCE on), and calls userinfo and a gateway route that takes
 * bound tokens only — while the same token without the key, as a thief would hold it, opens nothing.
 */
const EMAIL = `dpop-user-${Date.now()}@example.com`;
const PASSWORD = 'proof of possession passphrase 4';
const API = 'https://api.dpop.test';

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let origin: Server;
let originPort: number;
/** Headers the origin behind the DPoP route received. */
const seen: Record<string, string | string[] | undefined>[] = [];
let confidential: oidc.Configuration;
let publicClient: oidc.Configuration;

const redirect = 'http://127.0.0.1:9/callback';
const party = () => ({ base: gatehouse.base, redirect, email: EMAIL, password: PASSWORD });

async function signInWith(config: oidc.Configuration, dpop: oidc.DPoPHandle, extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...extra,
  });
  const callback = await runAuthorization(new Jar(), url, party());
  return oidc.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier: verifier, expectedState: state },
    { resource: API },
    { DPoP: dpop },
  );
}

beforeAll(async () => {
  resolveLocalhostNames();
  origin = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originPort = (origin.address() as { port: number }).port;
  gatehouse = await startGatehouse(({ appHost }) => ({
    DPOP_REQUIRE_NONCE: 'true',
    ROUTES: JSON.stringify([
      { match: '/api/*', host: appHost, origin: `http://127.0.0.1:${originPort}`, policy: { audiences: [API], dpop: true } },
    ]),
  }));
  const user = usersCli(['create', '--email', EMAIL, '--password', PASSWORD, '--verified', '--persist-to', gatehouse.persistTo]);
  expect(user.code, user.stderr).toBe(0);
  const api = resourcesCli(['create', '--id', API, '--name', 'DPoP API', '--persist-to', gatehouse.persistTo]);
  expect(api.code, api.stderr).toBe(0);
  const create = (args: string[]) => {
    const made = clientsCli([
      'create',
      '--redirect-uri',
      redirect,
      '--first-party',
      '--scope',
      'openid',
      '--scope',
      'email',
      '--resource',
      API,
      '--persist-to',
      gatehouse.persistTo,
      ...args,
    ]);
    expect(made.code, made.stderr).toBe(0);
    return JSON.parse(made.stdout) as { client_id: string; client_secret?: string };
  };
  const execute = { execute: [oidc.allowInsecureRequests], timeout: 15 };
  const c = create(['--name', 'DPoP RP', '--require-dpop']);
  confidential = await oidc.discovery(new URL(gatehouse.base), c.client_id, undefined, oidc.ClientSecretBasic(c.client_secret!), execute);
  const p = create(['--name', 'DPoP SPA', '--public']);
  publicClient = await oidc.discovery(new URL(gatehouse.base), p.client_id, undefined, oidc.None(), execute);
});

afterAll(async () => {
  await gatehouse?.stop();
  await new Promise((resolve) => origin?.close(resolve));
});

describe('openid-client with DPoP under wrangler dev', () => {
  it('gets bound tokens through the nonce dance, and uses them at a DPoP-only gateway route and at userinfo', async () => {
    expect(confidential.serverMetadata().dpop_signing_alg_values_supported).toContain('ES256');
    const dpop = oidc.getDPoPHandle(confidential, await oidc.randomDPoPKeyPair('ES256'));
    const tokens = await signInWith(confidential, dpop);
    expect(tokens.token_type.toLowerCase()).toBe('dpop');

    const api = new URL(`${gatehouse.appBase}/api/orders`);
    const res = await oidc.fetchProtectedResource(confidential, tokens.access_token, api, 'GET', undefined, undefined, { DPoP: dpop });
    expect(res.status).toBe(200);
    const atOrigin = seen.at(-1)!;
    expect(atOrigin['x-auth-user-id']).toBeTruthy();
    expect(atOrigin.dpop).toBeUndefined(); // the proof stays with Gatehouse

    // The token alone — as an origin's log or a proxy would hold it — opens nothing.
    const stolen = await fetch(api, { headers: { authorization: `DPoP ${tokens.access_token}` }, signal: AbortSignal.timeout(10_000) });
    expect(stolen.status).toBe(401);
    expect(stolen.headers.get('www-authenticate')).toContain('DPoP algs=');
    const asBearer = await fetch(api, { headers: { authorization: `Bearer ${tokens.access_token}` }, signal: AbortSignal.timeout(10_000) });
    expect(asBearer.status).toBe(401);

    // A refresh for Gatehouse itself (no resource): a bound token userinfo takes with a proof.
    const forUserinfo = await oidc.refreshTokenGrant(confidential, tokens.refresh_token!, undefined, { DPoP: dpop });
    expect(forUserinfo.token_type.toLowerCase()).toBe('dpop');
    const info = await oidc.fetchUserInfo(confidential, forUserinfo.access_token, tokens.claims()!.sub, { DPoP: dpop });
    expect(info.email).toBe(EMAIL);
  });

  it('a public client’s refresh token is bound too: refreshed with the key it works, with another key it is refused', async () => {
    const key = await oidc.randomDPoPKeyPair('ES256');
    const tokens = await signInWith(publicClient, oidc.getDPoPHandle(publicClient, key), { scope: 'openid email offline_access' });
    expect(tokens.refresh_token).toBeTruthy();
    const other = oidc.getDPoPHandle(publicClient, await oidc.randomDPoPKeyPair('ES256'));
    await expect(oidc.refreshTokenGrant(publicClient, tokens.refresh_token!, undefined, { DPoP: other })).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    const refreshed = await oidc.refreshTokenGrant(publicClient, tokens.refresh_token!, undefined, {
      DPoP: oidc.getDPoPHandle(publicClient, key),
    });
    expect(refreshed.token_type.toLowerCase()).toBe('dpop');
  });

  it('a client that requires DPoP gets no token without a proof', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(confidential, {
      redirect_uri: redirect,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const callback = await runAuthorization(new Jar(), url, party());
    await expect(
      oidc.authorizationCodeGrant(confidential, callback, { pkceCodeVerifier: verifier, expectedState: state }),
    ).rejects.toMatchObject({ error: 'invalid_dpop_proof' });
  });
});
