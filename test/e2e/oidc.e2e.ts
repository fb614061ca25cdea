import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { d1Query } from '../../scripts/lib/wrangler';
import { clientsCli, launchBrowser, startGatehouse, usersCli } from './harness';
import { Jar, runAuthorization as run } from './relying-party';

// The relying party: a real HTTP server on loopback that only records where the browser landed.
let rp: Server;
let REDIRECT: string;
let SIGNED_OUT: string;
const landed: string[] = [];
const EMAIL = `rp-user-${Date.now()}@example.com`;
const PASSWORD = 'relying party passphrase 7';

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let config: oidc.Configuration;
let browser: Browser;
let context: BrowserContext;

/** Follows the authorization request through Gatehouse (signing in when asked) to the RP's redirect URI. */
const runAuthorization = (jar: Jar, url: URL, password = PASSWORD) =>
  run(jar, url, { base: gatehouse.base, redirect: REDIRECT, email: EMAIL, password });

beforeAll(async () => {
  rp = createServer((req, res) => {
    landed.push(`http://127.0.0.1:${(rp.address() as { port: number }).port}${req.url}`);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('relying party');
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  const rpBase = `http://127.0.0.1:${(rp.address() as { port: number }).port}`;
  REDIRECT = `${rpBase}/callback`;
  SIGNED_OUT = `${rpBase}/signed-out`;
  gatehouse = await startGatehouse();
  const user = usersCli(['create', '--email', EMAIL, '--password', PASSWORD, '--verified', '--persist-to', gatehouse.persistTo]);
  expect(user.code, user.stderr).toBe(0);
  const created = clientsCli([
    'create',
    '--name',
    'E2E Relying Party',
    '--client-id',
    'e2e-rp',
    '--redirect-uri',
    REDIRECT,
    '--post-logout-redirect-uri',
    SIGNED_OUT,
    '--first-party',
    '--grant',
    'authorization_code',
    '--grant',
    'refresh_token',
    '--grant',
    'client_credentials',
    '--scope',
    'openid',
    '--scope',
    'email',
    '--scope',
    'profile',
    '--persist-to',
    gatehouse.persistTo,
  ]);
  expect(created.code, created.stderr).toBe(0);
  const { client_id, client_secret } = JSON.parse(created.stdout) as { client_id: string; client_secret: string };
  config = await oidc.discovery(new URL(gatehouse.base), client_id, undefined, oidc.ClientSecretBasic(client_secret), {
    execute: [oidc.allowInsecureRequests],
  });
  ({ browser, context } = await launchBrowser());
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await gatehouse?.stop();
  await new Promise((resolve) => rp?.close(resolve));
});

async function authorizationRequest(extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

describe('openid-client against Gatehouse under wrangler dev', () => {
  it('discovers the provider', () => {
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(gatehouse.base);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
  });

  it('runs code + PKCE with the hosted sign-in (plain HTTP), then userinfo, refresh, revoke and logout', async () => {
    const jar = new Jar();
    const { url, verifier, state, nonce } = await authorizationRequest();
    const callback = await runAuthorization(jar, url);
    expect(callback.searchParams.get('iss')).toBe(gatehouse.base);

    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ iss: gatehouse.base, aud: 'e2e-rp', amr: ['pwd'] });
    expect(typeof claims.auth_time).toBe('number');
    // An access token was issued, so the scopes' claims are at userinfo, not in the ID token (OIDC Core §5.4).
    expect(claims.email).toBeUndefined();

    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(info).toMatchObject({ sub: claims.sub, email: EMAIL, email_verified: true });

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    const again = await authorizationRequest();
    const cb2 = await runAuthorization(jar, again.url);
    const t2 = await oidc.authorizationCodeGrant(config, cb2, {
      pkceCodeVerifier: again.verifier,
      expectedState: again.state,
      expectedNonce: again.nonce,
    });
    await oidc.tokenRevocation(config, t2.refresh_token!);
    await expect(oidc.refreshTokenGrant(config, t2.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    const logout = oidc.buildEndSessionUrl(config, { id_token_hint: t2.id_token!, post_logout_redirect_uri: SIGNED_OUT, state: 'bye' });
    const out = await jar.fetch(logout.toString());
    expect(out.status).toBe(302);
    expect(out.headers.get('location')).toBe(`${SIGNED_OUT}?state=bye`);
    // Signed out: prompt=none now answers login_required.
    const silent = await authorizationRequest({ prompt: 'none' });
    const denied = await runAuthorization(jar, silent.url);
    expect(denied.searchParams.get('error')).toBe('login_required');
    await expect(
      oidc.authorizationCodeGrant(config, denied, { pkceCodeVerifier: silent.verifier, expectedState: silent.state }),
    ).rejects.toMatchObject({ error: 'login_required' });
  });

  it('re-authenticates for max_age=0 and reports a new auth_time', async () => {
    const jar = new Jar();
    const first = await authorizationRequest();
    const t1 = await oidc.authorizationCodeGrant(config, await runAuthorization(jar, first.url), {
      pkceCodeVerifier: first.verifier,
      expectedState: first.state,
      expectedNonce: first.nonce,
    });
    // wrangler dev keeps the real clock, which a test cannot move: wait (under a second) for the
    // second after auth_time, so the sign-in again falls in a later one.
    await new Promise((r) => setTimeout(r, Math.max(0, (t1.claims()!.auth_time! + 1) * 1000 - Date.now())));
    const second = await authorizationRequest({ max_age: '0' });
    const t2 = await oidc.authorizationCodeGrant(config, await runAuthorization(jar, second.url), {
      pkceCodeVerifier: second.verifier,
      expectedState: second.state,
      expectedNonce: second.nonce,
      maxAge: 0,
    });
    expect(t2.claims()!.auth_time!).toBeGreaterThan(t1.claims()!.auth_time!);
  });

  it('signs in through the hosted page in Chromium and completes the code flow', async () => {
    // The claims parameter (OIDC Core §5.5) asks for the email in the ID token itself.
    const { url, verifier, state, nonce } = await authorizationRequest({ claims: JSON.stringify({ id_token: { email: null } }) });
    const page = await context.newPage();
    await page.goto(url.toString());
    await page.getByLabel('Email address').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(REDIRECT));
    const callback = page.url();
    expect(landed).toContain(callback);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback!), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    expect(tokens.claims()!.email).toBe(EMAIL);
  });

  it('issues client_credentials tokens', async () => {
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'profile' });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe('profile');
  });
});

describe('signing-key rotation while the relying party holds tokens', () => {
  it('keeps old tokens verifying, signs new ones with the new keys, and openid-client follows the JWKS', async () => {
    const jar = new Jar();
    const first = await authorizationRequest({ scope: 'openid email' });
    const held = await oidc.authorizationCodeGrant(config, await runAuthorization(jar, first.url), {
      pkceCodeVerifier: first.verifier,
      expectedState: first.state,
      expectedNonce: first.nonce,
    });
    const kid = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid as string;
    const oldAccessKid = kid(held.access_token);
    const oldIdKid = kid(held.id_token!);
    const day = 86400_000;
    const target = { remote: false, persistTo: gatehouse.persistTo };

    // A month passes for the current keys; the hourly cron publishes their successors ahead of time.
    await gatehouse.pause();
    d1Query(target, `UPDATE signing_keys SET signs_from = signs_from - ${31 * day}, created_at = created_at - ${31 * day}`);
    await gatehouse.resume();
    const cron = await fetch(`${gatehouse.base}/__scheduled?cron=${encodeURIComponent('17 * * * *')}`, {
      signal: AbortSignal.timeout(15_000),
    });
    expect(cron.status).toBe(200);
    const published = (await (await fetch(`${gatehouse.base}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(published.keys).toHaveLength(4);
    expect(published.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldAccessKid, oldIdKid]));

    // The publish lead elapses: the successors start signing (isolates reload their key cache).
    await gatehouse.pause();
    d1Query(target, `UPDATE signing_keys SET signs_from = ${Date.now() - 1000} WHERE generation = 2`);
    await gatehouse.resume();

    // What the client already holds still works…
    const info = await oidc.fetchUserInfo(config, held.access_token, held.claims()!.sub);
    expect(info.email).toBe(EMAIL);
    // …and what it gets now is signed by the new keys, which openid-client finds in the JWKS.
    const fresh = await oidc.refreshTokenGrant(config, held.refresh_token!);
    expect(kid(fresh.access_token)).not.toBe(oldAccessKid);
    expect(kid(fresh.id_token!)).not.toBe(oldIdKid);
    expect(fresh.claims()!.sub).toBe(held.claims()!.sub);
  });
});
