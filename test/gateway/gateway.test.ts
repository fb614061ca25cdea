import { env } from 'cloudflare:workers';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { APP, appSession, appWith, call, cookieFrom, createVerifiedUser, SESSION, signIn, uniqueEmail } from '../helpers';
import { basic, getCode, REDIRECT, registerClient, signedInUser, tokenRequest } from '../oauth/helpers';

const API = 'https://api.gatehouse.test';
import { signedByUs } from '../tokens/attacks';

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
}

/** A request to the app host the test routes live on. */
const app = (path: string, init?: Parameters<typeof call>[1]) => call(`${APP}${path}`, init);

/** Signs in on Gatehouse's host, then gets the app host's own session through the host handshake. */
async function signInApp(email: string) {
  const signedIn = await signIn(email);
  return { ...signedIn, auth: signedIn.cookie, cookie: await appSession(signedIn.cookie) };
}

const echoed = async (res: Response) => {
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Echo>();
};
// Paths a non-admin might use to reach /demo/admin/secret through a public or signed-in route.
const PATHS = [
  '/demo/public/../admin/secret',
  '/demo/public/%2e%2e/admin/secret',
  '/demo/public/%2E%2E/admin/secret',
  '/demo/public/.%2e/admin/secret',
  '/demo/public/..%2fadmin/secret',
  '/demo/public%2f..%2fadmin/secret',
  '/demo/public/..%5cadmin/secret',
  '/demo/public/..\\admin/secret',
  '/demo//admin/secret',
  '/demo/./admin/secret',
  '/DEMO/ADMIN/secret',
  '/Demo/Admin/secret',
  '/demo/%61dmin/secret',
  '/demo/%41DMIN/secret',
  '/demo/admin./secret',
  '/demo/admin%2e/secret',
  '/demo/admin%20/secret',
  '/demo/admin;/secret',
  '/demo/admin;jsessionid=1/secret',
  '/demo/public/..;/admin/secret',
  '/demo/admin%3b/secret',
  '/demo/admin%00/secret',
  '/demo/public/%c0%ae%c0%ae/admin/secret',
  '/demo/public/%e0%80%ae%e0%80%ae/admin/secret',
  '/demo/public/%ff/../../demo/admin/secret',
  '/demo/public/%/../admin/secret',
  '/demo/admin%09/secret',
  '/demo/public/..%00/admin/secret',
  '/demo/me/../admin/secret',
  '/demo/me/%2e%2e/admin/secret',
  '/demo/me/..%2Fadmin/secret',
  '/demo/public%23/../admin/secret',
  '/demo/public/./../admin/./secret',
  '/demo/public/../../demo/admin/secret',
  '/demo/me//../admin/secret',
  '/demo/ADMIN./secret',
  '/demo/adm%69n/secret',
  '/demo/public/%2e%2e%2fadmin%2fsecret',
  '/demo/public/..%252fadmin/secret',
  '/demo/public/%252e%252e/admin/secret',
  '/demo/admin/%2e%2e/admin/secret',
];

const identityHeaders = (e: Echo) => Object.keys(e.headers).filter((h) => h.replace(/[_.]/g, '-').startsWith('x-auth-'));

const SPOOFS: [string, string][] = [
  ['X-Auth-User-Id', 'admin'],
  ['x-auth-user-id', 'root'],
  ['X_Auth_User_Id', 'admin'],
  ['x.auth.user-id', 'admin'],
  ['X-AUTH-ROLES', 'admin'],
  ['X-Auth-Tier', 'platinum'],
  ['X-Auth-Email', 'ceo@example.com'],
  ['X-Auth-Email-Verified', 'true'],
  ['X-Auth-Session-Id', 'x'],
  ['X-Auth-Amr', 'hwk'],
  ['X-Auth-Acr', 'max'],
  ['X-Auth-Auth-Time', '9999999999'],
  ['X-Auth-Assertion', 'eyJhbGciOiJub25lIn0.e30.'],
  ['X_AUTH_ASSERTION', 'forged'],
  ['X-Auth-Other', 'x'],
  ['X-Custom', 'nominated'],
  ['Connection', 'X-Custom, X-Auth-Hidden'],
  ['X-Forwarded-For', '10.0.0.1'],
  ['X-Forwarded-Host', 'admin.internal'],
  ['Forwarded', 'for=10.0.0.1'],
  ['X-Real-IP', '10.0.0.1'],
  ['x_auth_roles', 'admin'],
  ['X.Auth.Tier', 'gold'],
  ['X-Auth_Session.Id', 's2'],
  ['X-AUTH-AMR', 'mfa'],
  ['x-Auth-Acr', 'x'],
  ['X-Auth-User-ID', 'root'],
  ['X-Auth-Assertion-Extra', 'x'],
  ['X-Forwarded-Proto', 'https'],
  ['X-Original-URL', '/admin'],
  ['Keep-Alive', 'timeout=5'],
  ['X-HTTP-Method-Override', 'DELETE'],
  ['X_HTTP_Method', 'PUT'],
  ['X-Method-Override', 'PATCH'],
];
const spoofed = () => {
  const h = new Headers({ accept: 'application/json' });
  for (const [n, v] of SPOOFS) h.append(n, v);
  h.append('x-auth-user-id', 'duplicate');
  return h;
};

async function withRole(role: string) {
  const user = await createVerifiedUser(uniqueEmail(role));
  await env.DB.prepare('INSERT INTO user_roles (user_id, role) VALUES (?, ?)').bind(user.userId, role).run();
  return { ...user, ...(await signInApp(user.email)) };
}

describe('the gateway', () => {
  it(`delivers none of ${SPOOFS.length + 1} spoofed identity headers to the origin, signed in or not`, async () => {
    expect(SPOOFS.length + 1).toBeGreaterThanOrEqual(30);
    const anonymous = await echoed(await app('/demo/public/x', { headers: spoofed() }));
    expect(identityHeaders(anonymous)).toEqual([]);
    const { email, userId } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    // The same names, with values no real identity could have.
    const headers = new Headers({ accept: 'application/json', cookie });
    for (const [i, [name]] of SPOOFS.entries())
      headers.append(name, name.toLowerCase() === 'connection' ? 'X-Custom, X-Auth-Hidden' : `spoof-${i}`);
    headers.append('x-auth-user-id', 'spoof-dup');
    const signedIn = await echoed(await app('/demo/me/x', { headers }));
    expect(Object.values(signedIn.headers).filter((v) => v.includes('spoof-'))).toEqual([]);
    expect(signedIn.headers['x-auth-user-id']).toBe(userId);
    expect(signedIn.headers['x-custom']).toBeUndefined();
    expect(signedIn.headers['keep-alive']).toBeUndefined();
  });

  it('forwards an anonymous request on a public route with no identity headers at all, spoofed or not', async () => {
    const e = await echoed(await app('/demo/public/hello?x=1', { headers: spoofed(), ip: '203.0.113.9' }));
    expect(e).toMatchObject({ method: 'GET', path: '/demo/public/hello', query: 'x=1' });
    expect(identityHeaders(e)).toEqual([]);
    expect(e.headers['x-custom']).toBeUndefined();
    expect(e.headers['x-forwarded-for']).toBe('203.0.113.9');
    expect(e.headers['x-forwarded-host']).toBe('app.gatehouse.test');
    expect(e.headers['forwarded']).toBeUndefined();
    expect(e.headers['x-real-ip']).toBeUndefined();
  });

  it('sends a signed-out browser through the host handshake to sign in and back, and answers an API client 401 with a Bearer challenge', async () => {
    const browser = await app('/demo/me/page?tab=2', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(302);
    const to = new URL(browser.headers.get('location')!);
    expect(`${to.origin}${to.pathname}`).toBe('https://gatehouse.test/auth/connect');
    expect(to.searchParams.get('host')).toBe('app.gatehouse.test');
    expect(to.searchParams.get('return_to')).toBe('/demo/me/page?tab=2');
    const state = cookieFrom(browser, '__Host-gatehouse_connect')!;
    expect(state.pair).toBe(`__Host-gatehouse_connect=${to.searchParams.get('state')}`);
    expect(state.header).toMatch(/HttpOnly; Secure; SameSite=Lax/);
    // Signed out on Gatehouse's host too: to the sign-in page, and back to the handshake afterwards.
    const connect = await call(`${to.pathname}${to.search}`);
    expect(connect.status).toBe(302);
    expect(connect.headers.get('location')).toBe(`/auth/sign-in?${new URLSearchParams({ return_to: `${to.pathname}${to.search}` })}`);
    const api = await app('/demo/me/page', { headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse", DPoP algs="ES256 ES384 PS256 RS256 EdDSA"');
  });

  it('injects only the verified identity and a signed assertion, whatever the client sent', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie, body } = await signInApp(email);
    const headers = spoofed();
    headers.set('cookie', `${cookie}; theme=dark; __Host-gatehouse_csrf=abc`);
    const e = await echoed(await app('/demo/me/profile', { headers }));
    expect(e.headers).toMatchObject({
      'x-auth-user-id': userId,
      'x-auth-email': email,
      'x-auth-email-verified': 'true',
      'x-auth-tier': 'free',
      'x-auth-amr': 'pwd',
      'x-auth-acr': 'urn:gatehouse:acr:1fa',
    });
    // The app host's session is its own (made from the Gatehouse session by the handshake).
    expect(e.headers['x-auth-session-id']).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(e.headers['x-auth-session-id']).not.toBe(body.session.sid);
    expect(e.headers['x-auth-roles']).toBeUndefined(); // no roles: no empty header
    expect(identityHeaders(e).sort()).toEqual(
      [
        'x-auth-acr',
        'x-auth-amr',
        'x-auth-assertion',
        'x-auth-auth-time',
        'x-auth-email',
        'x-auth-email-verified',
        'x-auth-session-id',
        'x-auth-tier',
        'x-auth-user-id',
      ].sort(),
    );
    expect(e.headers.cookie).toBe('theme=dark');

    const jwks = createLocalJWKSet(await (await call('/.well-known/jwks.json')).json());
    const { payload, protectedHeader } = await jwtVerify(e.headers['x-auth-assertion']!, jwks, {
      issuer: 'https://gatehouse.test',
      audience: 'service:ORIGIN_ECHO',
      typ: 'gatehouse-assertion+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      sub: userId,
      sid: e.headers['x-auth-session-id'],
      email,
      tier: 'free',
      amr: ['pwd'],
      acr: 'urn:gatehouse:acr:1fa',
    });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
  });

  it('does not expose the email where the route does not opt in', async () => {
    const admin = await withRole('admin');
    const e = await echoed(await app('/demo/admin/x', { cookie: admin.cookie }));
    expect(e.headers['x-auth-email']).toBeUndefined();
    expect(e.headers['x-auth-roles']).toBe('admin');
  });

  it('enforces roles and tiers, and matches routes whatever the case of the path', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    const forbidden = await app('/demo/admin/x', { cookie, headers: { accept: 'application/json' } });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ code: 'forbidden', detail: 'Requires one of the roles: admin.' });
    expect(forbidden.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse"');
    expect((await app('/DEMO/ADMIN/x', { cookie })).status).toBe(403);
    expect((await app('/demo/gold/x', { cookie })).status).toBe(403);
    const admin = await withRole('admin');
    expect((await app('/Demo/Admin/x', { cookie: admin.cookie })).status).toBe(200);
  });

  it(`lets none of ${PATHS.length} path confusions reach the admin route without its policy`, async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    for (const path of PATHS) {
      const res = await app(path, { cookie, headers: { accept: 'application/json' } });
      if (res.status === 200) expect((await res.json<Echo>()).path.toLowerCase(), path).not.toMatch(/\/demo\/admin(\/|$)/);
      else expect([400, 403, 404], path).toContain(res.status);
    }
    expect((await call('/AUTH/account')).status).toBe(404);
    expect((await call('/.WELL-KNOWN/x')).status).toBe(404);
  });

  it('refuses paths whose decoding is not stable: double encoding and Unicode look-alikes of . / \\', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    const unstable = [
      '/demo/public/%252e%252e/admin/secret',
      '/demo/public/%252E%252E/admin/secret',
      '/demo/public/..%252fadmin/secret',
      '/demo/public/%252e%252e%252fadmin%252fsecret',
      '/demo/public/%25252e%25252e/admin/secret',
      '/demo/public/..%255cadmin/secret',
      '/demo/public/%25c0%25ae%25c0%25ae/admin/secret',
      '/demo/me/%252e%252e/admin/secret',
      '/demo/public/%EF%BC%8E%EF%BC%8E/admin/secret', // full-width dots
      '/demo/public/..%EF%BC%8Fadmin/secret', // a full-width solidus
      '/demo/public/%EF%BC%BCadmin/secret', // a full-width backslash
      '/demo/public/%E2%80%A4%E2%80%A4/admin/secret', // one-dot leaders
      '/demo/public/%EF%B9%92%EF%B9%92/admin/secret', // small full stops
      '/demo/%EF%BD%81dmin/secret', // a full-width a: "admin" to an origin that folds compatibility forms
      '/demo/ADM%EF%BC%A9N/secret',
    ];
    for (const path of unstable) {
      const res = await app(path, { cookie, headers: { accept: 'application/json' } });
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { code: string }).code, path).toBe('invalid_request');
    }
    // An ordinary escaped percent sign and ordinary non-ASCII paths still pass.
    expect((await echoed(await app('/demo/public/100%25-sure', {}))).path).toBe('/demo/public/100%25-sure');
    expect((await echoed(await app('/demo/public/caf%C3%A9', {}))).path).toBe('/demo/public/caf%C3%A9');
  });

  it('forwards only RFC 9110 methods, in their one spelling: a method no route lists cannot fall through to a weaker route', async () => {
    const { cookie } = await signInApp((await createVerifiedUser()).email);
    // /demo/split/* needs MFA for POST, PUT, PATCH and DELETE; any other method is matched by its sign-in-only twin.
    for (const method of ['PROPPATCH', 'MKCOL', 'patch', 'Patch', 'dElEtE', 'TRACE', 'CONNECT', 'LINK', 'M-SEARCH']) {
      const res = await app('/demo/split/x', {
        method,
        cookie,
        headers: { accept: 'application/json', 'content-type': 'application/json' },
        body: '{"a":1}',
      }).catch((e: Error) => new Response(e.message, { status: 599 }));
      if (res.status === 599) continue; // the runtime itself refuses to send it (CONNECT, TRACE): nothing reached us
      if (['PATCH', 'DELETE'].includes(method.toUpperCase())) {
        // The runtime hands us these upper-cased: the route that lists them (MFA) answers, never its twin.
        expect(res.status, method).toBe(401);
        continue;
      }
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow'), method).toBe('GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      expect(await res.json(), method).toMatchObject({
        code: 'method_not_allowed',
        detail: 'The gateway does not forward requests with this method.',
      });
    }
    // The standard spelling goes to the route that lists it.
    expect((await app('/demo/split/x', { method: 'PATCH', cookie, headers: { accept: 'application/json' }, body: 'x' })).status).toBe(401);
    expect((await app('/demo/split/x', { method: 'OPTIONS', cookie, headers: { accept: 'application/json' } })).status).toBe(200);
  });

  it('removes the headers a route lists in stripHeaders, in any case and spelling', async () => {
    const headers = new Headers({ 'X-Internal-User': 'root', x_internal_user: 'root', 'x.internal.user': 'root', 'X-Kept': 'yes' });
    const e = await echoed(await app('/demo/stripped/x', { headers }));
    expect(Object.keys(e.headers).filter((h) => h.replace(/[_.]/g, '-') === 'x-internal-user')).toEqual([]);
    expect(e.headers['x-kept']).toBe('yes');
    // Other routes are untouched by it.
    expect((await echoed(await app('/demo/public/x', { headers: { 'X-Internal-User': 'root' } }))).headers['x-internal-user']).toBe('root');
  });

  it("accepts a user's bearer token for the route's audience with the right scope, and refuses ID tokens, other audiences and missing scopes", async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const userToken = async (scope: string, resource?: string) => {
      const { code, verifier } = await getCode(client.clientId, user.cookie, { scope });
      const res = await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...(resource ? { resource } : {}) },
        basic(client.clientId, client.clientSecret),
      );
      return (await res.json<{ access_token: string }>()).access_token;
    };
    const ok = await echoed(await app('/demo/api/x', { headers: { authorization: `Bearer ${await userToken('openid profile', API)}` } }));
    expect(ok.headers['x-auth-user-id']).toBe(user.userId);
    expect(ok.headers['x-auth-client-id']).toBe(client.clientId);
    expect(ok.headers['x-auth-scope']).toBe('openid profile');
    expect(ok.headers.authorization).toMatch(/^Bearer /); // the origin may still see the token itself

    // A route that wants a recent sign-in: a token whose sign-in is too old says so in RFC 9470's terms.
    const later = appWith(() => ({ now: () => Date.now() + 120_000 }));
    const stale = await later(`${APP}/demo/recent/x`, { headers: { authorization: `Bearer ${await userToken('openid profile', API)}` } });
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toBe(
      'Bearer realm="gatehouse", error="insufficient_user_authentication", DPoP algs="ES256 ES384 PS256 RS256 EdDSA"',
    );
    const narrow = await app('/demo/api/x', { headers: { authorization: `Bearer ${await userToken('openid email', API)}` } });
    expect(narrow.status).toBe(403);
    expect(narrow.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse", error="insufficient_scope"');
    for (const bad of [
      await userToken('openid profile'), // issued for Gatehouse itself (userinfo), not for this API
      await signedByUs({ typ: 'JWT' }, { aud: API, scope: 'profile' }), // an ID token
      await signedByUs({}, { aud: 'https://other-api.example', scope: 'profile' }),
      await signedByUs({}, { aud: API, scope: 'profile', iat: 1, exp: 2 }),
      'not-a-token',
    ]) {
      const res = await app('/demo/api/x', { headers: { authorization: `Bearer ${bad}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(
        'Bearer realm="gatehouse", error="invalid_token", DPoP algs="ES256 ES384 PS256 RS256 EdDSA"',
      );
    }
    // A route that names no audience takes no bearer token at all.
    const sessionOnly = await app('/demo/me/x', { headers: { authorization: `Bearer ${await userToken('openid profile', API)}` } });
    expect(sessionOnly.status).toBe(401);
    expect(await sessionOnly.json()).toMatchObject({ detail: 'This route does not accept access tokens.' });
  });

  it('refuses a revoked session at once on a fresh route, and at the next refresh elsewhere', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie, body } = await signInApp(email);
    expect((await app('/demo/fresh/x', { cookie })).status).toBe(200);
    await env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId)).revoke(body.session.sid);
    const fresh = await app('/demo/fresh/x', { cookie, headers: { accept: 'application/json' } });
    expect(fresh.status).toBe(401);
    expect(fresh.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
    // A non-fresh route still trusts the token until it needs refreshing (≤ SESSION_TOKEN_TTL).
    expect((await app('/demo/me/x', { cookie })).status).toBe(200);
  });

  it('streams bodies, passes origin redirects through, and times out slow origins with 504', async () => {
    const upload = new Uint8Array(5 * 1024 * 1024).fill(7);
    const posted = await echoed(
      await app('/demo/public/upload?kind=big', { method: 'POST', body: upload, headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(posted).toMatchObject({ method: 'POST', query: 'kind=big', bodyBytes: upload.byteLength });
    const download = await app('/demo/public/file?bytes=8388608');
    expect(download.status).toBe(200);
    let received = 0;
    for await (const chunk of download.body!) received += chunk.byteLength;
    expect(received).toBe(8 * 1024 * 1024);
    const redirect = await app(`/demo/public/r?redirect=${encodeURIComponent('https://elsewhere.example/next')}`);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('https://elsewhere.example/next');
    const slow = await app('/demo/slow/x?delay=1000');
    expect(slow.status).toBe(504);
    expect(await slow.json()).toMatchObject({ code: 'gateway_timeout' });
  });

  it('passes a WebSocket upgrade through after authentication', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    expect((await app('/demo/me/ws', { headers: { upgrade: 'websocket', accept: 'application/json' } })).status).toBe(401);
    const res = await app('/demo/me/ws', { cookie, headers: { upgrade: 'websocket' } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const reply = new Promise<string>((resolve) => ws.addEventListener('message', (e) => resolve(String(e.data))));
    ws.send('hello');
    expect(await reply).toBe('echo:hello');
    ws.close();
  });

  it('exchanges an opaque (phantom) token for its JWT on the way to the origin', async () => {
    const client = await registerClient({ accessTokenFormat: 'opaque' });
    const { access_token } = await (
      await tokenRequest(
        { grant_type: 'client_credentials', scope: 'orders:read', resource: API },
        basic(client.clientId, client.clientSecret),
      )
    ).json<{ access_token: string }>();
    expect(access_token).toMatch(/^ot1\./);
    const e = await echoed(await app('/demo/machine/x', { headers: { authorization: `Bearer ${access_token}` } }));
    expect(e.headers['x-auth-client-id']).toBe(client.clientId);
    expect(e.headers['x-auth-user-id']).toBeUndefined();
    const forged = `${access_token.slice(0, -4)}${access_token.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    expect((await app('/demo/machine/x', { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
  });

  it('answers 502 with a problem body when the origin cannot be reached', async () => {
    const res = await app('/demo/down/x');
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'bad_gateway' });
  });

  it('treats a tampered session cookie as signed out and clears it', async () => {
    const res = await app('/demo/me/x', { cookie: `${SESSION}=garbage~${'A'.repeat(43)}`, headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
    expect(cookieFrom(res, SESSION)?.header).toMatch(/Max-Age=0/);
  });
});

describe('the gateway with time and failures', () => {
  it('refreshes a stale session through the Durable Object and re-sets the cookie on the proxied response', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    await env.DB.prepare("UPDATE users SET tier = 'gold' WHERE id = ?").bind(userId).run();
    const later = appWith(() => ({ now: () => Date.now() + 10 * 60_000 }));
    const res = await later(`${APP}/demo/gold/x`, { cookie });
    // The refresh re-read the tier from D1, so the gold route now admits the user.
    expect(res.status).toBe(200);
    expect((await res.json<Echo>()).headers['x-auth-tier']).toBe('gold');
    expect(cookieFrom(res, SESSION)!.header).toMatch(/HttpOnly; Secure; SameSite=Lax/);
  });

  it('refuses an expired session', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    const muchLater = appWith(() => ({ now: () => Date.now() + 31 * 86400_000 }));
    const res = await muchLater(`${APP}/demo/me/x`, { cookie, headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
  });

  it('fails closed with 503 when the session object cannot answer on a fresh route', async () => {
    const { brokenSessionsNamespace } = await import('../helpers');
    const { createSessionStore } = await import('../../src/sessions/session-store');
    const { email } = await createVerifiedUser();
    const { cookie } = await signInApp(email);
    const broken = appWith(() => ({ sessions: createSessionStore(brokenSessionsNamespace()) }));
    const res = await broken(`${APP}/demo/fresh/x`, { cookie });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'temporarily_unavailable' });
    // A non-fresh route needs no I/O for a fresh token and still works.
    expect((await broken(`${APP}/demo/me/x`, { cookie })).status).toBe(200);
  });
});
