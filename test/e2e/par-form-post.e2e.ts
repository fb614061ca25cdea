import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientsCli, launchBrowser, startGatehouse, usersCli } from './harness';
import { Jar, runAuthorization } from './relying-party';

/**
 * A real relying party (openid-client v6) against Gatehouse under `wrangler dev`: pushed
 * authorization requests, a signed request object pushed, and response_mode=form_post auto-posted
 * by headless Chromium to the RP's own HTTP server.
 */
const EMAIL = `par-user-${Date.now()}@example.com`;
const PASSWORD = 'pushed request passphrase 9';

let rp: Server;
let rpBase: string;
/** What the RP's redirect URI received: the method, the URL and the form body. */
const received: { method: string; url: string; body: string; contentType: string }[] = [];
let onReceive: (() => void) | undefined;

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let browser: Browser;
let context: BrowserContext;
let jwksDir: string;
/** A confidential client that must push; a client with a registered key for request objects. */
let pushing: oidc.Configuration;
let signing: oidc.Configuration;
let signingKey: CryptoKey;

const redirect = () => `${rpBase}/callback`;
const party = () => ({ base: gatehouse.base, redirect: redirect(), email: EMAIL, password: PASSWORD });

function createClient(args: string[]) {
  const created = clientsCli([
    'create',
    '--redirect-uri',
    redirect(),
    '--first-party',
    '--scope',
    'openid',
    '--scope',
    'email',
    '--persist-to',
    gatehouse.persistTo,
    ...args,
  ]);
  expect(created.code, created.stderr).toBe(0);
  return JSON.parse(created.stdout) as { client_id: string; client_secret: string };
}

const discover = (client: { client_id: string; client_secret: string }) =>
  oidc.discovery(new URL(gatehouse.base), client.client_id, undefined, oidc.ClientSecretBasic(client.client_secret), {
    execute: [oidc.allowInsecureRequests],
    timeout: 15,
  });

async function request(extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const params = {
    redirect_uri: redirect(),
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  };
  return { params, checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce } };
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });

beforeAll(async () => {
  rp = createServer(async (req, res) => {
    // Chromium asks for the RP's icon after the post: not part of the response.
    if (req.url === '/favicon.ico') return void res.writeHead(404).end();
    received.push({
      method: req.method!,
      url: `${rpBase}${req.url}`,
      body: await readBody(req),
      contentType: req.headers['content-type'] ?? '',
    });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('relying party');
    onReceive?.();
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  rpBase = `http://localhost:${(rp.address() as { port: number }).port}`;
  gatehouse = await startGatehouse();
  const user = usersCli(['create', '--email', EMAIL, '--password', PASSWORD, '--verified', '--persist-to', gatehouse.persistTo]);
  expect(user.code, user.stderr).toBe(0);

  pushing = await discover(createClient(['--name', 'Pushing RP', '--require-par']));
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: false });
  signingKey = privateKey;
  jwksDir = mkdtempSync(join(tmpdir(), 'gatehouse-jwks-'));
  writeFileSync(join(jwksDir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig' }] }));
  signing = await discover(createClient(['--name', 'Signing RP', '--jwks-file', join(jwksDir, 'jwks.json')]));
  ({ browser, context } = await launchBrowser());
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await gatehouse?.stop();
  await new Promise((resolve) => rp?.close(resolve));
  if (jwksDir) rmSync(jwksDir, { recursive: true, force: true });
});

describe('openid-client with pushed authorization requests', () => {
  it('discovers the PAR endpoint, pushes, runs the code flow from client_id + request_uri, and cannot reuse it', async () => {
    const meta = pushing.serverMetadata();
    expect(meta.pushed_authorization_request_endpoint).toBe(`${gatehouse.base}/auth/par`);
    expect(meta.response_modes_supported).toContain('form_post');
    const { params, checks } = await request();
    const url = await oidc.buildAuthorizationUrlWithPAR(pushing, params);
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const jar = new Jar();
    const callback = await runAuthorization(jar, url, party());
    const tokens = await oidc.authorizationCodeGrant(pushing, callback, checks);
    expect(tokens.claims()).toMatchObject({ iss: gatehouse.base, aud: pushing.clientMetadata().client_id, nonce: checks.expectedNonce });
    expect((await oidc.fetchUserInfo(pushing, tokens.access_token, tokens.claims()!.sub)).email).toBe(EMAIL);

    // The request_uri yielded its code; the same URL again is an error page, not a second code.
    const again = await jar.fetch(url.toString());
    expect(again.status).toBe(400);
    expect(again.headers.get('location')).toBeNull();
    expect(await again.text()).toContain('The request_uri is unknown, expired or already used.');
  });

  it('refuses the client that must push when it sends a plain authorization request', async () => {
    const { params, checks } = await request();
    const callback = await runAuthorization(new Jar(), oidc.buildAuthorizationUrl(pushing, params), party());
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    await expect(oidc.authorizationCodeGrant(pushing, callback, checks)).rejects.toMatchObject({ error: 'invalid_request' });
  });

  it('pushes a request object signed with the client’s registered key (JAR + PAR)', async () => {
    const { params, checks } = await request();
    const { searchParams } = await oidc.buildAuthorizationUrlWithJAR(signing, params, signingKey);
    const url = await oidc.buildAuthorizationUrlWithPAR(signing, searchParams);
    const tokens = await oidc.authorizationCodeGrant(signing, await runAuthorization(new Jar(), url, party()), checks);
    expect(tokens.claims()!.nonce).toBe(checks.expectedNonce);
    // The same object by value works too; signed with another key it is refused on an error page.
    const byValue = await request();
    const direct = await oidc.buildAuthorizationUrlWithJAR(signing, byValue.params, signingKey);
    await oidc.authorizationCodeGrant(signing, await runAuthorization(new Jar(), direct, party()), byValue.checks);
    const { privateKey: other } = await generateKeyPair('ES256');
    const forged = await oidc.buildAuthorizationUrlWithJAR(signing, (await request()).params, other);
    const refused = await new Jar().fetch(forged.toString());
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('The request object was refused');
  });
});

describe('response_mode=form_post in headless Chromium', () => {
  it('signs in, auto-posts code, state and iss to the RP, and openid-client redeems the posted response', async () => {
    const { params, checks } = await request({ response_mode: 'form_post' });
    const url = await oidc.buildAuthorizationUrlWithPAR(pushing, params);
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    const posted = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the form post never reached the RP')), 20_000);
      onReceive = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    received.length = 0;
    await page.goto(url.toString(), { timeout: 20_000 });
    await page.getByLabel('Email address').fill(EMAIL, { timeout: 10_000 });
    await page.getByLabel('Password').fill(PASSWORD, { timeout: 10_000 });
    await page.getByRole('button', { name: 'Sign in', exact: true }).click({ timeout: 10_000 });
    await posted;
    await page.waitForURL((u) => u.href.startsWith(redirect()), { timeout: 10_000 });
    expect(violations).toEqual([]);

    expect(received).toHaveLength(1);
    const hit = received[0]!;
    expect(hit.method).toBe('POST');
    expect(hit.url).toBe(redirect());
    expect(hit.contentType).toBe('application/x-www-form-urlencoded');
    const fields = Object.fromEntries(new URLSearchParams(hit.body));
    expect(Object.keys(fields).sort()).toEqual(['code', 'iss', 'state']);
    expect(fields).toMatchObject({ state: checks.expectedState, iss: gatehouse.base });

    // The RP hands openid-client the POST it received (no query: the response is in the body).
    const callback = new Request(hit.url, { method: 'POST', body: hit.body, headers: { 'content-type': hit.contentType } });
    const tokens = await oidc.authorizationCodeGrant(pushing, callback, checks);
    expect(tokens.claims()).toMatchObject({ nonce: checks.expectedNonce, iss: gatehouse.base });

    // Signed in now: a second form_post request posts at once (no sign-in page), with a fresh code.
    const second = await request({ response_mode: 'form_post' });
    const reposted = new Promise<void>((resolve) => (onReceive = resolve));
    received.length = 0;
    await page.goto((await oidc.buildAuthorizationUrlWithPAR(pushing, second.params)).toString(), { timeout: 20_000 });
    await Promise.race([reposted, new Promise((_, reject) => setTimeout(() => reject(new Error('no second post')), 20_000))]);
    const again = new Request(received[0]!.url, {
      method: 'POST',
      body: received[0]!.body,
      headers: { 'content-type': received[0]!.contentType },
    });
    expect((await oidc.authorizationCodeGrant(pushing, again, second.checks)).claims()!.sub).toBe(tokens.claims()!.sub);
    expect(violations).toEqual([]);
  });
});
