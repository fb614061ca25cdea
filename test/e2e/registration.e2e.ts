import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, startGatehouse, usersCli } from './harness';

// A relying party that exists only through dynamic registration (RFC 7591): openid-client registers
// it against `wrangler dev`, runs the code flow through the hosted sign-in and consent pages, then
// manages and deletes the registration (RFC 7592). Chromium signs in and answers the consent page.
const INITIAL_TOKEN = randomBytes(32).toString('base64url');
const EMAIL = `dcr-user-${Date.now()}@example.com`;
const PASSWORD = 'dynamic registration passphrase 9';

let rp: Server;
let REDIRECT: string;
let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  rp = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('relying party'));
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  REDIRECT = `http://127.0.0.1:${(rp.address() as { port: number }).port}/callback`;
  gatehouse = await startGatehouse({ REGISTRATION_TOKEN: INITIAL_TOKEN });
  const user = usersCli(['create', '--email', EMAIL, '--password', PASSWORD, '--verified', '--persist-to', gatehouse.persistTo]);
  expect(user.code, user.stderr).toBe(0);
  ({ browser, context } = await launchBrowser());
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await gatehouse?.stop();
  await new Promise((resolve) => rp?.close(resolve));
});

describe('dynamic client registration under wrangler dev', () => {
  it('refuses to register without the initial access token', async () => {
    const refused = await oidc
      .dynamicClientRegistration(new URL(gatehouse.base), { redirect_uris: [REDIRECT] }, undefined, {
        execute: [oidc.allowInsecureRequests],
      })
      .catch((e: unknown) => e);
    // RFC 6750 §3: the 401 carries a Bearer challenge, which openid-client reports as such.
    expect(refused).toMatchObject({
      status: 401,
      cause: [{ scheme: 'bearer', parameters: { realm: 'gatehouse', error: 'invalid_token' } }],
    });
  });

  it('registers with openid-client, runs code + PKCE through sign-in and consent, refreshes, then manages and deletes the registration', async () => {
    const config = await oidc.dynamicClientRegistration(
      new URL(gatehouse.base),
      {
        client_name: 'E2E dynamic RP',
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code', 'refresh_token'],
        scope: 'openid email',
      },
      undefined,
      { initialAccessToken: INITIAL_TOKEN, execute: [oidc.allowInsecureRequests] },
    );
    const registered = config.clientMetadata() as oidc.ClientMetadata & {
      registration_access_token: string;
      registration_client_uri: string;
      first_party: boolean;
    };
    expect(registered).toMatchObject({
      client_name: 'E2E dynamic RP',
      first_party: false,
      token_endpoint_auth_method: 'client_secret_post',
      registration_client_uri: `${gatehouse.base}/auth/register/${registered.client_id}`,
    });
    expect(config.serverMetadata().registration_endpoint).toBe(`${gatehouse.base}/auth/register`);

    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const page = await context.newPage();
    await page.goto(url.toString());
    await page.getByLabel('Email address').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    // A dynamically registered client is never first-party: the person is asked, by the client's name.
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    expect(await page.content()).toContain('E2E dynamic RP');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(REDIRECT));
    const callback = new URL(page.url());
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()).toMatchObject({ iss: gatehouse.base, aud: registered.client_id });
    expect(await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email: EMAIL });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);

    // RFC 7592: read it back with the registration access token, then delete it.
    const manage = (method: string) =>
      fetch(registered.registration_client_uri, {
        method,
        headers: { authorization: `Bearer ${registered.registration_access_token}` },
        signal: AbortSignal.timeout(10_000),
      });
    const read = await manage('GET');
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ client_id: registered.client_id, redirect_uris: [REDIRECT] });
    expect((await manage('DELETE')).status).toBe(204);
    expect((await manage('GET')).status).toBe(401);
    // The client is gone: its refresh token no longer authenticates.
    const gone = (await oidc.refreshTokenGrant(config, refreshed.refresh_token!).catch((e: unknown) => e)) as {
      status: number;
      response: Response;
    };
    expect(gone).toMatchObject({ status: 401, cause: [{ scheme: 'basic' }] });
    expect(await gone.response.json()).toMatchObject({ error: 'invalid_client' });
  });
});
