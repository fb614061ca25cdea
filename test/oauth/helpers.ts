import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import { createDb } from '../../src/db/client';
import { apiResources, clientResources, oauthClients } from '../../src/db/schema';
import { buildResource, type ResourceInput } from '../../src/oauth/api-resources';
import { buildClient, type ClientInput } from '../../src/oauth/client-registration';
import { s256 } from '../../src/lib/pkce';
import { randomToken, sha256 } from '../../src/lib/crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { TestBrowser } from '../browser';
import { call, createVerifiedUser, ORIGIN, signIn } from '../helpers';

export const REDIRECT = 'https://app.example.com/callback';

/** The API the test routes accept tokens and keys for (vitest.config.ts), and its scopes. */
export const API = 'https://api.gatehouse.test';
export const API_SCOPES = ['orders:read', 'orders:write'];

/**
 * Registers an API in D1 (kept if it exists: tests share the database and each isolate caches API
 * records, so a shared API's scopes never change — a test that needs its own makes a new one).
 */
export async function registerResource(over: Partial<ResourceInput> = {}) {
  const row = buildResource(
    {
      identifier: `https://api-${randomToken(6)
        .toLowerCase()
        .replace(/[^a-z0-9]/g, 'x')}.gatehouse.test`,
      name: 'Test API',
      ...over,
    },
    Date.now(),
  );
  await createDb(env.DB).insert(apiResources).values(row).onConflictDoNothing();
  return row.identifier;
}

/** Registers a client straight into D1 (with its API grants, registering the APIs it names); returns its id and secret. */
export async function registerClient(over: Partial<ClientInput> = {}) {
  const { row, grants, clientSecret } = await buildClient(
    {
      name: 'Test App',
      redirectUris: [REDIRECT],
      firstParty: true,
      scopes: ['openid', 'profile', 'email', 'roles', 'offline_access'],
      resources: [{ resource: API, scopes: API_SCOPES }],
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      ...over,
    },
    Date.now(),
  );
  const db = createDb(env.DB);
  for (const g of grants)
    await registerResource({
      identifier: g.resource,
      ...(g.resource === API ? { scopes: API_SCOPES.map((name) => ({ name, description: null })) } : {}),
    });
  await db.insert(oauthClients).values(row);
  if (grants.length) await db.insert(clientResources).values(grants);
  return { clientId: row.clientId, clientSecret: clientSecret! };
}

export const basic = (id: string, secret: string) => `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`;

export async function pkce() {
  const verifier = randomToken(48);
  return { verifier, challenge: await s256(verifier) };
}

export function authorizeUrl(clientId: string, challenge: string, over: Record<string, string | undefined> = {}) {
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    scope: 'openid email profile',
    state: `st-${randomToken(8)}`,
    nonce: `n-${randomToken(8)}`,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete params[k];
    else params[k] = v;
  }
  return `/auth/authorize?${new URLSearchParams(params)}`;
}

export const form = (fields: Record<string, string>) => ({
  method: 'POST',
  body: new URLSearchParams(fields).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
});

/** A signed-in user and their cookie. */
export async function signedInUser() {
  const user = await createVerifiedUser();
  const { cookie } = await signIn(user.email);
  return { ...user, cookie };
}

/** Runs authorize for a signed-in user of a first-party client and returns the code from the redirect. */
export async function getCode(clientId: string, cookie: string, over: Record<string, string | undefined> = {}) {
  const { verifier, challenge } = await pkce();
  const res = await call(authorizeUrl(clientId, challenge, over), { cookie });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  const code = location.searchParams.get('code');
  expect(code, location.toString()).toBeTruthy();
  return { code: code!, verifier, location };
}

export async function tokenRequest(fields: Record<string, string>, authorization?: string) {
  const init = form(fields);
  return call('/auth/token', { ...init, headers: { ...init.headers, ...(authorization ? { authorization } : {}) } });
}

/** A client's DPoP key pair (RFC 9449) and a maker of proofs with it. */
export async function dpopKey(alg: 'ES256' | 'EdDSA' | 'PS256' = 'ES256') {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  /** A proof for `htm` `htu`; `ath` for an access token; `over` replaces claims or header fields. */
  const proof = async (
    htm: string,
    htu: string,
    o: { accessToken?: string; nonce?: string; iat?: number; claims?: Record<string, unknown>; header?: Record<string, unknown> } = {},
  ) =>
    new SignJWT({
      jti: randomToken(12),
      htm,
      htu,
      ...(o.accessToken ? { ath: await sha256(o.accessToken) } : {}),
      ...(o.nonce ? { nonce: o.nonce } : {}),
      ...o.claims,
    })
      .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk, ...o.header } as never)
      .setIssuedAt(o.iat ?? Math.floor(Date.now() / 1000))
      .sign(privateKey);
  return { jwk, jkt, privateKey, proof };
}

/** RFC 6749 §4.1.2.1 / §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E. */
export const RFC6749_TEXT = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

const unescapeHtml = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/**
 * A form_post response page read as a browser would: where its one form posts, the fields it
 * carries (HTML entities decoded), every script and its nonce, and the page's CSP.
 */
export function formPostOf(res: Response, html: string) {
  const forms = [...html.matchAll(/<form method="post" action="([^"]*)">/g)];
  expect(forms, html.slice(0, 300)).toHaveLength(1);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)"\/?>/g))
    fields[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
  return {
    action: unescapeHtml(forms[0]![1]!),
    fields,
    scripts: [...html.matchAll(/<script\b([^>]*)>/gi)].map((m) => m[1]!),
    csp: res.headers.get('content-security-policy'),
  };
}

/** A pushed authorization request (RFC 9126 §2.1) with the given client authentication. */
export function pushRequest(fields: Record<string, string>, authorization?: string) {
  const init = form(fields);
  return call('/auth/par', { ...init, headers: { ...init.headers, ...(authorization ? { authorization } : {}) } });
}

/** The parameters of an authorization request for `clientId` (as authorizeUrl builds them). */
export function authorizeParams(
  clientId: string,
  challenge: string,
  over: Record<string, string | undefined> = {},
): Record<string, string> {
  return Object.fromEntries(new URL(authorizeUrl(clientId, challenge, over), 'https://x.test').searchParams);
}

/** Opens the consent page of a request in `browser` and returns its CSRF token and held request id. */
export async function consentPage(browser: TestBrowser, url: string) {
  const { res, html } = await browser.open(url);
  expect(res.status, html.slice(0, 300)).toBe(200);
  expect(html).toContain('/auth/authorize/decision');
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
  const request = /name="request" value="([^"]+)"/.exec(html)![1]!;
  // The page carries the request's id only: no parameter rides in the form.
  expect([...html.matchAll(/<input type="hidden" name="([^"]+)"/g)].map((m) => m[1]).sort()).toEqual(['csrf_token', 'request']);
  return { csrf, request, html };
}

/** Answers a consent page (its fields: csrf_token, request, decision) as the page's own form would. */
export const decide = (browser: TestBrowser, fields: Record<string, string>) =>
  browser.fetch('/auth/authorize/decision', {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html' },
  });
