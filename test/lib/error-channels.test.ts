import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { ConfigError } from '../../src/config';
import { depsFor } from '../../src/deps';
import type { AppEnv } from '../../src/deps';
import { mountRouters } from '../../src/error-channels';
import { router, type ChannelName } from '../../src/lib/router';
import { GatewayRefusal } from '../../src/gateway/refusal';
import { ERRORS, GatehouseError, type ErrorCode } from '../../src/lib/errors';
import { RedirectableError } from '../../src/oauth/authorization-response';
import { DpopError } from '../../src/tokens/dpop';
import { call, ORIGIN, uniqueIp } from '../helpers';

// Every code through every channel (src/error-channels.tsx): the status always follows the code,
// and each channel answers in its own shape. Then the errors that happen before a route runs —
// body limit, malformed body, bad configuration — through the real app, on the endpoints that
// must answer OAuth JSON.

const CODES = Object.keys(ERRORS) as ErrorCode[];
const CHANNELS: ChannelName[] = ['oauth', 'oauth-resource', 'authorize', 'consent', 'problem', 'admin', 'page', 'gateway'];
/** A description with what RFC 6749's charset refuses: typographic quotes, §, accents, a backslash. */
const MESSAGE = 'Can’t use “this” (RFC 6749 §5.2) — café \\ done.';
const OAUTH_CHARSET = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

/** An app with one router per channel, each throwing what the test gives it, rendered by the real handler. */
function appThrowing(make: () => Error) {
  const app = new Hono<AppEnv>();
  const mounts = CHANNELS.map((name) => {
    const r = router(name, name === 'oauth-resource' ? { dpop: true } : {});
    r.all('/throw', () => {
      throw make();
    });
    return [`/${name}`, r] as const;
  });
  app.use(async (c, next) => {
    c.set('deps', await depsFor(env));
    c.set('requestId', 'req-1');
    c.set('csrfToken', 'csrf-1');
    await next();
  });
  mountRouters(app, mounts);
  return (channel: ChannelName, init: RequestInit = {}) => app.request(`${ORIGIN}/${channel}/throw`, init, env);
}

const typeOf = (res: Response) => (res.headers.get('content-type') ?? '').split(';')[0];

describe('every error code in every channel', () => {
  for (const code of CODES) {
    const [status, title] = ERRORS[code];
    const internal = status >= 500 && code !== 'temporarily_unavailable' && code !== 'upstream_unavailable';
    const request = appThrowing(() => new GatehouseError(code, MESSAGE, { field: 'email' }));

    it(`${code} (${status})`, async () => {
      // OAuth JSON (RFC 6749 §5.2): the code, its status, the description in the RFC's charset.
      const oauth = await request('oauth');
      expect(oauth.status).toBe(status);
      expect(typeOf(oauth)).toBe('application/json');
      expect(oauth.headers.get('cache-control')).toBe('no-store');
      const body = await oauth.json<{ error: string; error_description: string }>();
      expect(body.error).toBe(internal ? 'server_error' : code);
      expect(body.error_description).toMatch(OAUTH_CHARSET);
      if (!internal) expect(body.error_description).toContain("Can't use 'this' (RFC 6749 section 5.2) - cafe / done.");
      expect(oauth.headers.get('www-authenticate')).toBe(code === 'invalid_client' ? 'Basic realm="gatehouse"' : null);

      // A protected resource (RFC 6750 §3): every 401 a Bearer challenge, 403 insufficient_scope.
      const resource = await request('oauth-resource');
      const challenge = resource.headers.get('www-authenticate');
      if (status === 401) {
        expect(resource.status).toBe(401);
        expect(challenge).toMatch(/^Bearer realm="gatehouse", error="invalid_token", error_description="[^"]*", DPoP algs="[^"]+"$/);
        expect(await resource.json()).toMatchObject({ error: 'invalid_token' });
      } else if (code === 'invalid_dpop_proof' || code === 'use_dpop_nonce') {
        expect(resource.status).toBe(401);
        expect(challenge).toMatch(new RegExp(`^Bearer realm="gatehouse", DPoP algs="[^"]+", error="${code}"`));
      } else {
        expect(resource.status).toBe(status);
        expect(challenge).toBe(status === 403 ? 'Bearer realm="gatehouse", error="insufficient_scope"' : null);
        expect(typeOf(resource)).toBe('application/json');
      }

      // problem+json (RFC 9457): type, title and status from the table, the message, the field.
      const problem = await request('problem');
      expect(problem.status).toBe(status);
      expect(typeOf(problem)).toBe('application/problem+json');
      expect(await problem.json()).toEqual({
        type: `https://gatehouse.dev/problems/${code}`,
        title,
        status,
        // An internal error's message (a config variable, a binding) goes to the log only.
        detail: internal ? 'The server could not complete the request.' : MESSAGE,
        code,
        field: 'email',
        instance: 'req-1',
      });

      // The admin API: problem+json, with a protected resource's challenges (RFC 6750 §3).
      const adminRes = await request('admin');
      expect([adminRes.status, typeOf(adminRes)]).toEqual([status, 'application/problem+json']);
      expect((await adminRes.json<{ code: string }>()).code).toBe(code);
      const adminChallenge = adminRes.headers.get('www-authenticate');
      if (status === 401) expect(adminChallenge).toMatch(/^Bearer realm="gatehouse-admin", error="invalid_token"/);
      else if (code === 'insufficient_scope') expect(adminChallenge).toContain('error="insufficient_scope"');
      else expect(adminChallenge).toBeNull();

      // The gateway: problem+json too (a plain error carries no sign-in way).
      const gateway = await request('gateway', { headers: { accept: 'text/html' } });
      expect(gateway.status).toBe(status);
      expect(typeOf(gateway)).toBe('application/problem+json');

      // The authorization endpoint, an error that is not for the client: a page, never a redirect.
      for (const channel of ['authorize', 'consent'] as const) {
        const page = await request(channel);
        expect(page.status).toBe(status);
        expect(typeOf(page)).toBe('text/html');
        expect(page.headers.get('location')).toBeNull();
        const html = await page.text();
        expect(html.includes('Can’t use')).toBe(!internal && code !== 'csrf_failed');
      }

      // A hosted page: the way on when that is what is missing, else a page saying what happened.
      const page = await request('page');
      if (code === 'unauthenticated' || code === 'recent_sign_in_required') {
        expect(page.status).toBe(303);
        const to = new URL(page.headers.get('location')!, ORIGIN);
        expect(to.pathname).toBe('/auth/sign-in');
        expect(to.searchParams.get('return_to')).toBe('/page/throw');
        expect(to.searchParams.get('reason')).toBe(code === 'recent_sign_in_required' ? 'recent' : null);
      } else if (code === 'totp_required') {
        expect([page.status, page.headers.get('location')]).toEqual([303, '/auth/account/totp']);
      } else {
        expect(page.status).toBe(status);
        expect(typeOf(page)).toBe('text/html');
        expect((await page.text()).includes('Can’t use')).toBe(!internal && code !== 'csrf_failed');
        // A script on a page that asks for JSON gets problem+json.
        const json = await request('page', { headers: { accept: 'application/json' } });
        expect(typeOf(json)).toBe('application/problem+json');
        expect(await json.json()).toMatchObject({ code, status });
      }
    });
  }

  it('a proof error on a page post asks for the proof, keeping the fields but never the proof', async () => {
    const request = appThrowing(() => new GatehouseError('proof_required', 'Confirm it is you.'));
    const res = await request('page', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ decision: 'approve', proof_password: 'secret-pass', csrf_token: 'x' }),
    });
    expect(res.status).toBe(403);
    const html = await res.text();
    expect(html).toContain('name="decision" value="approve"');
    expect(html).not.toContain('secret-pass');
  });

  it('a page route’s declared form is re-rendered with the message at its field, status and Retry-After kept', async () => {
    const app = new Hono<AppEnv>();
    const r = router('page');
    r.post('/form', (c) => {
      c.set('errorForm', (s) => `<form data-field="${s.field}" data-csrf="${s.csrf}">${s.error}</form>`);
      throw new GatehouseError('account_locked', 'Too many attempts.', { field: 'email', retryAfter: 30 });
    });
    app.use(async (c, next) => {
      c.set('csrfToken', 'csrf-1');
      await next();
    });
    mountRouters(app, [['/x', r]]);
    const res = await app.request(`${ORIGIN}/x/form`, { method: 'POST' }, env);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('30');
    expect(await res.text()).toBe('<form data-field="email" data-csrf="csrf-1">Too many attempts.</form>');
  });

  it('an error unknown to the model is a 500 in every channel, its text never shown', async () => {
    const request = appThrowing(() => new Error('D1_ERROR: secret detail'));
    for (const channel of CHANNELS) {
      const res = await request(channel);
      expect(res.status, channel).toBe(500);
      const text = await res.text();
      expect(text, channel).not.toContain('secret detail');
    }
    expect(await (await request('oauth')).json()).toEqual({
      error: 'server_error',
      error_description: 'The server could not complete the request.',
    });
  });
});

describe('what an error subclass adds, per channel', () => {
  const target = { redirectUri: 'https://client.example/cb', state: 'st-1', mode: 'query' as const };

  it('a redirectable error goes to the client from the authorization endpoint, is JSON elsewhere', async () => {
    const request = appThrowing(() => new RedirectableError(target, 'invalid_scope', 'No such “scope”.'));
    const redirected = await request('authorize');
    expect(redirected.status).toBe(302);
    const to = new URL(redirected.headers.get('location')!);
    expect(`${to.origin}${to.pathname}`).toBe('https://client.example/cb');
    expect(Object.fromEntries(to.searchParams)).toEqual({
      error: 'invalid_scope',
      error_description: "No such 'scope'.",
      state: 'st-1',
      iss: ORIGIN,
    });
    // Ending our own form post: through the Continue page (CSP form-action 'self').
    const continued = await request('consent');
    expect(continued.status).toBe(200);
    expect(await continued.text()).toContain('https://client.example/cb?error=invalid_scope');
    const json = await request('oauth');
    expect(json.status).toBe(400);
    expect(await json.json()).toEqual({ error: 'invalid_scope', error_description: "No such 'scope'." });
  });

  it('a DPoP error carries its nonce in every OAuth channel', async () => {
    const request = appThrowing(() => new DpopError('use_dpop_nonce', 'Use the nonce.', 'nonce-1'));
    for (const channel of ['oauth', 'oauth-resource'] as const) {
      const res = await request(channel);
      expect(res.headers.get('dpop-nonce'), channel).toBe('nonce-1');
      expect(res.headers.get('access-control-expose-headers'), channel).toContain('DPoP-Nonce');
    }
  });

  it('a gateway refusal carries its headers, and sends a page load that may sign in to sign-in', async () => {
    const request = appThrowing(
      () => new GatewayRefusal('unauthenticated', 'Sign in.', { 'www-authenticate': 'Bearer realm="gatehouse"' }, '/app/page?x=1'),
    );
    const api = await request('gateway', { headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse"');
    const browser = await request('gateway', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe(`/auth/sign-in?${new URLSearchParams({ return_to: '/app/page?x=1' })}`);
  });
});

describe('errors before any route runs, through the real app', () => {
  const form = (body: string) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': uniqueIp() },
    body,
  });
  const big = `grant_type=client_credentials&pad=${'a'.repeat(20_000)}`;

  for (const path of ['/auth/token', '/auth/par', '/auth/revoke', '/auth/introspect', '/auth/device_authorization', '/auth/userinfo']) {
    it(`${path}: a body over the limit, and a malformed body, are OAuth JSON`, async () => {
      const tooBig = await call(path, form(big));
      expect(tooBig.status).toBe(413);
      expect(typeOf(tooBig)).toBe('application/json');
      expect(await tooBig.json()).toMatchObject({ error: 'payload_too_large' });
      const wrongType = await call(path, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'token=x' });
      expect(wrongType.status).toBe(400);
      expect(await wrongType.json()).toMatchObject({ error: 'invalid_request' });
      expect(typeOf(wrongType)).toBe('application/json');
    });
  }

  it('a percent-encoded path is answered in the channel of the route Hono runs for it', async () => {
    const token = await call('/auth/%74oken', form('grant_type=client_credentials&client_id=nope'));
    expect([token.status, typeOf(token), token.headers.get('www-authenticate')]).toEqual([
      401,
      'application/json',
      'Basic realm="gatehouse"',
    ]);
    const account = await call('/auth/%61ccount', { headers: { accept: 'text/html' } });
    expect([account.status, account.headers.get('location')]).toEqual([
      303,
      `/auth/sign-in?${new URLSearchParams({ return_to: '/auth/%61ccount' })}`,
    ]);
  });

  it('a HEAD request is answered in its GET route’s channel', async () => {
    const userinfo = await call('/auth/userinfo', { method: 'HEAD' });
    expect(userinfo.status).toBe(401);
    expect(userinfo.headers.get('www-authenticate')).toMatch(/^Bearer realm="gatehouse", error="invalid_token"/);
  });

  it('the body limit answers each other channel in its own shape', async () => {
    const api = await call('/auth/api/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'a'.repeat(20_000) }),
    });
    expect([api.status, typeOf(api)]).toEqual([413, 'application/problem+json']);
    const page = await call('/auth/sign-in', form(big));
    expect([page.status, typeOf(page)]).toEqual([413, 'text/html']);
    const register = await call('/auth/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'a'.repeat(20_000) }),
    });
    expect(register.status).toBe(413);
  });

  it('a configuration error is answered in the channel of the route asked for', async () => {
    const app = createApp(async () => {
      throw new ConfigError(['AUTH_SECRET: must be at least 32 characters']);
    });
    const fetch = (path: string, init: RequestInit = {}) => app.request(`${ORIGIN}${path}`, init, env);
    const token = await fetch('/auth/token', form('grant_type=client_credentials'));
    expect(token.status).toBe(500);
    expect(await token.json()).toEqual({ error: 'server_error', error_description: 'The server could not complete the request.' });
    const userinfo = await fetch('/auth/userinfo');
    expect([userinfo.status, typeOf(userinfo)]).toEqual([500, 'application/json']);
    const api = await fetch('/auth/api/session');
    expect([api.status, typeOf(api)]).toEqual([500, 'application/problem+json']);
    const problem = await api.json<{ code: string; detail: string }>();
    expect(problem).toMatchObject({ code: 'config_invalid', detail: 'The server could not complete the request.' });
    const page = await fetch('/auth/sign-in');
    expect([page.status, typeOf(page)]).toEqual([500, 'text/html']);
    expect(await page.text()).not.toContain('AUTH_SECRET');
    const authorize = await fetch('/auth/authorize?client_id=x');
    expect([authorize.status, typeOf(authorize)]).toEqual([500, 'text/html']);
  });
});

describe('docs/api.md', () => {
  it('lists every error code with its status', async () => {
    const docs = (await import('../../docs/api.md?raw')).default;
    const table = new Map<string, number>();
    for (const row of docs.matchAll(/^\| ((?:`[a-z_]+`(?: \/ )?)+) \| (\d{3})/gm))
      for (const code of row[1]!.matchAll(/`([a-z_]+)`/g)) table.set(code[1]!, Number(row[2]));
    for (const code of CODES) expect([code, table.get(code)]).toEqual([code, ERRORS[code][0]]);
  });
});
