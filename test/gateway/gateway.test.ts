import { env } from 'cloudflare:workers';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { call, cookieFrom, createVerifiedUser, SESSION, signIn, uniqueEmail } from '../helpers';
import { basic, registerClient, tokenRequest } from '../oauth/helpers';
import { signedByUs } from '../tokens/attacks';

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
}

const echoed = async (res: Response) => {
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Echo>();
};
// Paths a non-admin might use to reach /demo/admin/secret through a public or signed-in route.
const PATHS = [
  '/demo/public/../admin/secret', '/demo/public/%2e%2e/admin/secret', '/demo/public/%2E%2E/admin/secret', '/demo/public/.%2e/admin/secret',
  '/demo/public/..%2fadmin/secret', '/demo/public%2f..%2fadmin/secret', '/demo/public/..%5cadmin/secret', '/demo/public/..\\admin/secret',
  '/demo//admin/secret', '/demo/./admin/secret', '/DEMO/ADMIN/secret', '/Demo/Admin/secret', '/demo/%61dmin/secret', '/demo/%41DMIN/secret',
  '/demo/admin./secret', '/demo/admin%2e/secret', '/demo/admin%20/secret', '/demo/admin;/secret', '/demo/admin;jsessionid=1/secret',
  '/demo/public/..;/admin/secret', '/demo/admin%3b/secret', '/demo/admin%00/secret', '/demo/public/%c0%ae%c0%ae/admin/secret',
  '/demo/public/%e0%80%ae%e0%80%ae/admin/secret', '/demo/public/%ff/../../demo/admin/secret', '/demo/public/%/../admin/secret',
  '/demo/admin%09/secret', '/demo/public/..%00/admin/secret', '/demo/me/../admin/secret', '/demo/me/%2e%2e/admin/secret',
  '/demo/me/..%2Fadmin/secret', '/demo/public%23/../admin/secret', '/demo/public/./../admin/./secret', '/demo/public/../../demo/admin/secret',
  '/demo/me//../admin/secret', '/demo/ADMIN./secret', '/demo/adm%69n/secret', '/demo/public/%2e%2e%2fadmin%2fsecret',
  '/demo/public/..%252fadmin/secret', '/demo/public/%252e%252e/admin/secret', '/demo/admin/%2e%2e/admin/secret',
];

const identityHeaders = (e: Echo) => Object.keys(e.headers).filter((h) => h.replace(/[_.]/g, '-').startsWith('x-auth-'));

const SPOOFS: [string, string][] = [
  ['X-Auth-User-Id', 'admin'], ['x-auth-user-id', 'root'], ['X_Auth_User_Id', 'admin'], ['x.auth.user-id', 'admin'], ['X-AUTH-ROLES', 'admin'],
  ['X-Auth-Tier', 'platinum'], ['X-Auth-Email', 'ceo@example.com'], ['X-Auth-Email-Verified', 'true'], ['X-Auth-Session-Id', 'x'],
  ['X-Auth-Amr', 'hwk'], ['X-Auth-Acr', 'max'], ['X-Auth-Auth-Time', '9999999999'], ['X-Auth-Assertion', 'eyJhbGciOiJub25lIn0.e30.'],
  ['X_AUTH_ASSERTION', 'forged'], ['X-Auth-Other', 'x'], ['X-Custom', 'nominated'], ['Connection', 'X-Custom, X-Auth-Hidden'],
  ['X-Forwarded-For', '10.0.0.1'], ['X-Forwarded-Host', 'admin.internal'], ['Forwarded', 'for=10.0.0.1'], ['X-Real-IP', '10.0.0.1'],
  ['x_auth_roles', 'admin'], ['X.Auth.Tier', 'gold'], ['X-Auth_Session.Id', 's2'], ['X-AUTH-AMR', 'mfa'], ['x-Auth-Acr', 'x'],
  ['X-Auth-User-ID', 'root'], ['X-Auth-Assertion-Extra', 'x'], ['X-Forwarded-Proto', 'https'], ['X-Original-URL', '/admin'],
  ['Keep-Alive', 'timeout=5'],
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
  return { ...user, ...(await signIn(user.email)) };
}

describe('the gateway', () => {
  it(`delivers none of ${SPOOFS.length + 1} spoofed identity headers to the origin, signed in or not`, async () => {
    expect(SPOOFS.length + 1).toBeGreaterThanOrEqual(30);
    const anonymous = await echoed(await call('/demo/public/x', { headers: spoofed() }));
    expect(identityHeaders(anonymous)).toEqual([]);
    const { email, userId } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    // The same names, with values no real identity could have.
    const headers = new Headers({ accept: 'application/json', cookie });
    SPOOFS.forEach(([name], i) => headers.append(name, name.toLowerCase() === 'connection' ? 'X-Custom, X-Auth-Hidden' : `spoof-${i}`));
    headers.append('x-auth-user-id', 'spoof-dup');
    const signedIn = await echoed(await call('/demo/me/x', { headers }));
    expect(Object.values(signedIn.headers).filter((v) => v.includes('spoof-'))).toEqual([]);
    expect(signedIn.headers['x-auth-user-id']).toBe(userId);
    expect(signedIn.headers['x-custom']).toBeUndefined();
    expect(signedIn.headers['keep-alive']).toBeUndefined();
  });

  it('forwards an anonymous request on a public route with no identity headers at all, spoofed or not', async () => {
    const e = await echoed(await call('/demo/public/hello?x=1', { headers: spoofed(), ip: '203.0.113.9' }));
    expect(e).toMatchObject({ method: 'GET', path: '/demo/public/hello', query: 'x=1' });
    expect(identityHeaders(e)).toEqual([]);
    expect(e.headers['x-custom']).toBeUndefined();
    expect(e.headers['x-forwarded-for']).toBe('203.0.113.9');
    expect(e.headers['x-forwarded-host']).toBe('gatehouse.test');
    expect(e.headers['forwarded']).toBeUndefined();
    expect(e.headers['x-real-ip']).toBeUndefined();
  });

  it('sends a signed-out browser to sign in and back, and answers an API client 401 with a Bearer challenge', async () => {
    const browser = await call('/demo/me/page?tab=2', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(302);
    expect(browser.headers.get('location')).toBe('/auth/sign-in?return_to=%2Fdemo%2Fme%2Fpage%3Ftab%3D2');
    const api = await call('/demo/me/page', { headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse"');
  });

  it('injects only the verified identity and a signed assertion, whatever the client sent', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie, body } = await signIn(email);
    const headers = spoofed();
    headers.set('cookie', `${cookie}; theme=dark; __Host-gatehouse_csrf=abc`);
    const e = await echoed(await call('/demo/me/profile', { headers }));
    expect(e.headers).toMatchObject({
      'x-auth-user-id': userId,
      'x-auth-email': email,
      'x-auth-email-verified': 'true',
      'x-auth-tier': 'free',
      'x-auth-session-id': body.session.sid,
      'x-auth-amr': 'pwd',
      'x-auth-acr': 'urn:gatehouse:acr:1fa',
    });
    expect(e.headers['x-auth-roles']).toBeUndefined(); // no roles: no empty header
    expect(identityHeaders(e).sort()).toEqual(
      ['x-auth-acr', 'x-auth-amr', 'x-auth-assertion', 'x-auth-auth-time', 'x-auth-email', 'x-auth-email-verified', 'x-auth-session-id', 'x-auth-tier', 'x-auth-user-id'].sort(),
    );
    expect(e.headers.cookie).toBe('theme=dark');

    const jwks = createLocalJWKSet(await (await call('/.well-known/jwks.json')).json());
    const { payload, protectedHeader } = await jwtVerify(e.headers['x-auth-assertion']!, jwks, {
      issuer: 'https://gatehouse.test',
      audience: 'service:ORIGIN_ECHO',
      typ: 'gatehouse-assertion+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: userId, sid: body.session.sid, email, tier: 'free', amr: ['pwd'], acr: 'urn:gatehouse:acr:1fa' });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
  });

  it('does not expose the email where the route does not opt in', async () => {
    const admin = await withRole('admin');
    const e = await echoed(await call('/demo/admin/x', { cookie: admin.cookie }));
    expect(e.headers['x-auth-email']).toBeUndefined();
    expect(e.headers['x-auth-roles']).toBe('admin');
  });

  it('enforces roles and tiers, and matches routes whatever the case of the path', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const forbidden = await call('/demo/admin/x', { cookie, headers: { accept: 'application/json' } });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ code: 'forbidden', detail: 'Requires one of the roles: admin.' });
    expect(forbidden.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse"');
    expect((await call('/DEMO/ADMIN/x', { cookie })).status).toBe(403);
    expect((await call('/demo/gold/x', { cookie })).status).toBe(403);
    const admin = await withRole('admin');
    expect((await call('/Demo/Admin/x', { cookie: admin.cookie })).status).toBe(200);
  });

  it(`lets none of ${PATHS.length} path confusions reach the admin route without its policy`, async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    for (const path of PATHS) {
      const res = await call(path, { cookie, headers: { accept: 'application/json' } });
      if (res.status === 200) expect((await res.json<Echo>()).path.toLowerCase(), path).not.toMatch(/\/demo\/admin(\/|$)/);
      else expect([400, 403, 404], path).toContain(res.status);
    }
    expect((await call('/AUTH/account')).status).toBe(404);
    expect((await call('/.WELL-KNOWN/x')).status).toBe(404);
  });

  it('accepts a bearer access token with the right scope, and refuses ID tokens, other audiences and missing scopes', async () => {
    const client = await registerClient();
    const token = async (scope: string) =>
      (await (await tokenRequest({ grant_type: 'client_credentials', scope }, basic(client.clientId, client.clientSecret))).json<{ access_token: string }>()).access_token;
    const ok = await echoed(await call('/demo/api/x', { headers: { authorization: `Bearer ${await token('profile')}` } }));
    expect(ok.headers['x-auth-user-id']).toBe(client.clientId);
    expect(ok.headers.authorization).toMatch(/^Bearer /); // the origin may still see the token itself

    // A route that wants a recent sign-in: a token with none says so in RFC 9470's terms.
    const stale = await call('/demo/recent/x', { headers: { authorization: `Bearer ${await token('profile')}` } });
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse", error="insufficient_user_authentication"');
    const narrow = await call('/demo/api/x', { headers: { authorization: `Bearer ${await token('email')}` } });
    expect(narrow.status).toBe(403);
    expect(narrow.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse", error="insufficient_scope"');
    for (const bad of [
      await signedByUs({ typ: 'JWT' }, { scope: 'profile' }), // an ID token
      await signedByUs({}, { aud: 'https://other-api.example', scope: 'profile' }),
      await signedByUs({}, { scope: 'profile', iat: 1, exp: 2 }),
      'not-a-token',
    ]) {
      const res = await call('/demo/api/x', { headers: { authorization: `Bearer ${bad}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse", error="invalid_token"');
    }
  });

  it('refuses a revoked session at once on a fresh route, and at the next refresh elsewhere', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie, body } = await signIn(email);
    expect((await call('/demo/fresh/x', { cookie })).status).toBe(200);
    await env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId)).revoke(body.session.sid);
    const fresh = await call('/demo/fresh/x', { cookie, headers: { accept: 'application/json' } });
    expect(fresh.status).toBe(401);
    expect(fresh.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
    // A non-fresh route still trusts the token until it needs refreshing (≤ SESSION_TOKEN_TTL).
    expect((await call('/demo/me/x', { cookie })).status).toBe(200);
  });

  it('streams bodies, passes origin redirects through, and times out slow origins with 504', async () => {
    const upload = new Uint8Array(5 * 1024 * 1024).fill(7);
    const posted = await echoed(await call('/demo/public/upload?kind=big', { method: 'POST', body: upload, headers: { 'content-type': 'application/octet-stream' } }));
    expect(posted).toMatchObject({ method: 'POST', query: 'kind=big', bodyBytes: upload.byteLength });
    const download = await call('/demo/public/file?bytes=8388608');
    expect(download.status).toBe(200);
    let received = 0;
    for await (const chunk of download.body!) received += chunk.byteLength;
    expect(received).toBe(8 * 1024 * 1024);
    const redirect = await call(`/demo/public/r?redirect=${encodeURIComponent('https://elsewhere.example/next')}`);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('https://elsewhere.example/next');
    const slow = await call('/demo/slow/x?delay=1000');
    expect(slow.status).toBe(504);
    expect(await slow.json()).toMatchObject({ code: 'temporarily_unavailable' });
  });

  it('passes a WebSocket upgrade through after authentication', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    expect((await call('/demo/me/ws', { headers: { upgrade: 'websocket', accept: 'application/json' } })).status).toBe(401);
    const res = await call('/demo/me/ws', { cookie, headers: { upgrade: 'websocket' } });
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
    const { access_token } = await (await tokenRequest({ grant_type: 'client_credentials', scope: 'profile' }, basic(client.clientId, client.clientSecret))).json<{ access_token: string }>();
    expect(access_token).toMatch(/^ot1\./);
    const e = await echoed(await call('/demo/api/x', { headers: { authorization: `Bearer ${access_token}` } }));
    expect(e.headers['x-auth-user-id']).toBe(client.clientId);
    const forged = `${access_token.slice(0, -4)}AAAA`;
    expect((await call('/demo/api/x', { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
  });

  it('answers 502 with a problem body when the origin cannot be reached', async () => {
    const res = await call('/demo/down/x');
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'temporarily_unavailable' });
  });

  it('treats a tampered session cookie as signed out and clears it', async () => {
    const res = await call('/demo/me/x', { cookie: `${SESSION}=garbage~${'A'.repeat(43)}`, headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
    expect(cookieFrom(res, SESSION)?.header).toMatch(/Max-Age=0/);
  });
});

describe('the gateway with time and failures', () => {
  it('refreshes a stale session through the Durable Object and re-sets the cookie on the proxied response', async () => {
    const { appWith } = await import('../helpers');
    const { email, userId } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    await env.DB.prepare("UPDATE users SET tier = 'gold' WHERE id = ?").bind(userId).run();
    const later = appWith(() => ({ now: () => Date.now() + 10 * 60_000 }));
    const res = await later('/demo/gold/x', { cookie });
    // The refresh re-read the tier from D1, so the gold route now admits the user.
    expect(res.status).toBe(200);
    expect((await res.json<Echo>()).headers['x-auth-tier']).toBe('gold');
    expect(cookieFrom(res, SESSION)!.header).toMatch(/HttpOnly; Secure; SameSite=Lax/);
  });

  it('refuses an expired session', async () => {
    const { appWith } = await import('../helpers');
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const muchLater = appWith(() => ({ now: () => Date.now() + 31 * 86400_000 }));
    const res = await muchLater('/demo/me/x', { cookie, headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(res.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
  });

  it('fails closed with 503 when the session object cannot answer on a fresh route', async () => {
    const { appWith, brokenSessionsNamespace } = await import('../helpers');
    const { createSessionStore } = await import('../../src/sessions/store');
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const broken = appWith(() => ({ sessions: createSessionStore(brokenSessionsNamespace()) }));
    const res = await broken('/demo/fresh/x', { cookie });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'temporarily_unavailable' });
    // A non-fresh route needs no I/O for a fresh token and still works.
    expect((await broken('/demo/me/x', { cookie })).status).toBe(200);
  });
});
