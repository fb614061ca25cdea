import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import { call, continueTarget, cookieFrom, CSRF, ORIGIN } from '../helpers';
import { authorizeUrl, pkce, REDIRECT } from './helpers';

/** The initial access token the Workers tests run with (vitest.config.ts). */
export const INITIAL = env.REGISTRATION_TOKEN!;

/** RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E. */
export const RFC6749_TEXT = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

let counter = 0;
/** A client name no other test uses, to find (or not find) the row a request wrote. */
export const uniqueName = (tag = 'dcr') => `${tag} ${Date.now().toString(36)} ${++counter}`;

export interface Registered {
  client_id: string;
  client_secret?: string;
  registration_access_token: string;
  registration_client_uri: string;
  [k: string]: unknown;
}

type Init = Parameters<typeof call>[1] & { token?: string | null };

/** POST /auth/register with the initial access token (or `token`, or none with `token: null`). */
export function register(json: unknown, init: Init = {}) {
  const { token = INITIAL, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  return call('/auth/register', { method: 'POST', json, ...rest, headers });
}

/** Registers a client that must succeed; returns the client information response. */
export async function registered(json: Record<string, unknown>): Promise<Registered> {
  const res = await register({ redirect_uris: [REDIRECT], client_name: uniqueName(), ...json });
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json<Registered>();
}

/** RFC 7592 calls on a client's configuration endpoint. */
export function manage(clientId: string, token: string | null, init: Parameters<typeof call>[1] = {}) {
  const headers = new Headers(init.headers);
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  return call(`/auth/register/${encodeURIComponent(clientId)}`, { ...init, headers });
}

export const clientRow = (clientId: string) =>
  env.DB.prepare('SELECT * FROM oauth_clients WHERE client_id = ?').bind(clientId).first<Record<string, unknown>>();
/** The APIs (and scopes) a client may ask tokens for: none, for a self-registered client. */
export const apiGrantsOf = async (clientId: string) =>
  (await env.DB.prepare('SELECT resource, scopes FROM client_resources WHERE client_id = ?').bind(clientId).all()).results;
export const rowsNamed = async (name: string) =>
  (await env.DB.prepare('SELECT COUNT(*) AS n FROM oauth_clients WHERE name = ?').bind(name).first<{ n: number }>())!.n;
/** The client_registered / client_updated / client_deleted events of a client. */
export const auditFor = (clientId: string) =>
  env.DB.prepare(
    "SELECT type, detail FROM audit_events WHERE type IN ('client_registered', 'client_updated', 'client_deleted') AND json_extract(detail, '$.clientId') = ? ORDER BY id",
  )
    .bind(clientId)
    .all<{ type: string; detail: string }>();

/** Signed in, through /authorize and the consent page (approved), to a code for a third-party client. */
export async function codeThroughConsent(clientId: string, cookie: string) {
  const { verifier, challenge } = await pkce();
  const res = await call(authorizeUrl(clientId, challenge), { cookie });
  expect(res.status, res.headers.get('location') ?? '').toBe(200);
  const html = await res.text();
  expect(html).toContain('/auth/authorize/decision');
  const fields = Object.fromEntries(
    [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.replace(/&amp;/g, '&')]),
  );
  const approved = await call('/auth/authorize/decision', {
    method: 'POST',
    cookie: `${cookie}; ${cookieFrom(res, CSRF)!.pair}`,
    body: new URLSearchParams({ ...fields, decision: 'approve' }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
  });
  const target = new URL(continueTarget(await approved.text()));
  expect(target.origin + target.pathname).toBe(REDIRECT);
  return { code: target.searchParams.get('code')!, verifier };
}
