import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { appWith, call, continueTarget, cookieFrom, CSRF, SESSION, STRONG_PASSWORD } from '../helpers';
import { authorizeUrl, basic, getCode, pkce, REDIRECT, registerClient, signedInUser, tokenRequest } from './helpers';

const locationOf = (res: Response) => new URL(res.headers.get('location')!, 'https://gatehouse.test');

/** Submits the hosted sign-in form for `email` (through `via`) and returns the new session cookie and where it went. */
async function signInThroughPage(email: string, returnTo: string, via: typeof call = call) {
  const page = await via(`/auth/sign-in?return_to=${encodeURIComponent(returnTo)}`);
  const csrf = cookieFrom(page, CSRF)!.pair;
  const token = /name="csrf_token" value="([^"]+)"/.exec(await page.text())![1]!;
  const res = await via('/auth/sign-in', {
    method: 'POST',
    cookie: csrf,
    body: new URLSearchParams({ email, password: STRONG_PASSWORD, csrf_token: token, return_to: returnTo }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://gatehouse.test' },
  });
  // Toward an authorization request the form answers with a Continue page (CSP form-action 'self').
  expect(res.status).toBe(200);
  return { cookie: `${cookieFrom(res, SESSION)!.pair}; ${csrf}`, location: continueTarget(await res.text()) };
}

describe('prompt, max_age and login', () => {
  it('answers prompt=none without a session with login_required at the redirect URI, with state and iss', async () => {
    const { clientId } = await registerClient();
    const { challenge } = await pkce();
    const res = await call(authorizeUrl(clientId, challenge, { prompt: 'none', state: 's1' }));
    expect(res.status).toBe(302);
    const loc = locationOf(res);
    expect(loc.origin + loc.pathname).toBe(REDIRECT);
    expect(Object.fromEntries(loc.searchParams)).toMatchObject({ error: 'login_required', state: 's1', iss: 'https://gatehouse.test' });
  });

  it('sends a signed-out browser to sign in and back, then issues the code', async () => {
    const { clientId } = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    const start = await call(authorizeUrl(clientId, challenge, { login_hint: user.email }));
    const signInAt = locationOf(start);
    expect(signInAt.pathname).toBe('/auth/sign-in');
    expect(signInAt.searchParams.get('login_hint')).toBe(user.email);
    const page = await call(`${signInAt.pathname}${signInAt.search}`);
    expect(await page.text()).toContain(`value="${user.email}"`);
    const returnTo = signInAt.searchParams.get('return_to')!;
    const { cookie, location } = await signInThroughPage(user.email, returnTo);
    expect(location).toBe(returnTo);
    const done = await call(location, { cookie });
    expect(locationOf(done).searchParams.get('code')).toMatch(/^ac1\./);
  });

  it('re-authenticates for max_age=0 and prompt=login, with a new auth_time', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const first = await getCode(client.clientId, user.cookie);
    const t1 = await tokenRequest(
      { grant_type: 'authorization_code', code: first.code, redirect_uri: REDIRECT, code_verifier: first.verifier },
      basic(client.clientId, client.clientSecret),
    );
    const authTime1 = decodeJwt((await t1.json<{ id_token: string }>()).id_token).auth_time as number;
    // Signing in again on a clock two seconds ahead: a later second for auth_time, without waiting for it.
    const later = appWith(() => ({ now: () => Date.now() + 2000 }));

    for (const over of [{ max_age: '0' }, { prompt: 'login' }]) {
      const { verifier, challenge } = await pkce();
      const res = await call(authorizeUrl(client.clientId, challenge, over), { cookie: user.cookie });
      const signInAt = locationOf(res);
      expect(signInAt.pathname, JSON.stringify(over)).toBe('/auth/sign-in');
      const returnTo = signInAt.searchParams.get('return_to')!;
      expect(returnTo).toContain('gh_reauth=');
      expect(returnTo).not.toContain('prompt=login');
      // Coming back without signing in again does not pass.
      const again = await call(returnTo, { cookie: user.cookie });
      expect(locationOf(again).pathname).toBe('/auth/sign-in');

      const { cookie } = await signInThroughPage(user.email, returnTo, later);
      const done = await later(returnTo, { cookie });
      const code = locationOf(done).searchParams.get('code')!;
      const t2 = await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
        basic(client.clientId, client.clientSecret),
      );
      const authTime2 = decodeJwt((await t2.json<{ id_token: string }>()).id_token).auth_time as number;
      expect(authTime2).toBeGreaterThan(authTime1);
    }
  });

  it('refuses a forged re-authentication marker', async () => {
    const { clientId } = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    const url = `${authorizeUrl(clientId, challenge, { max_age: '0' })}&gh_reauth=${Date.now()}.-.${'A'.repeat(43)}`;
    expect(locationOf(await call(url, { cookie: user.cookie })).pathname).toBe('/auth/sign-in');
  });

  it('refuses response types other than code at the redirect URI', async () => {
    const { clientId } = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    for (const type of ['token', 'id_token', 'code id_token', 'code token']) {
      const res = await call(authorizeUrl(clientId, challenge, { response_type: type }), { cookie: user.cookie });
      expect(locationOf(res).searchParams.get('error'), type).toBe('unsupported_response_type');
    }
    // Unknown scopes are ignored (OIDC Core §3.1.2.1); a request with none the client may have is refused.
    const scope = await call(authorizeUrl(clientId, challenge, { scope: 'admin superuser' }), { cookie: user.cookie });
    expect(locationOf(scope).searchParams.get('error')).toBe('invalid_scope');
  });
});

describe('consent', () => {
  it("asks a third-party client's user once, remembers it, and honours deny", async () => {
    const { clientId } = await registerClient({ firstParty: false, name: 'Third Party App' });
    const user = await signedInUser();
    const { challenge } = await pkce();
    const none = await call(authorizeUrl(clientId, challenge, { prompt: 'none' }), { cookie: user.cookie });
    expect(locationOf(none).searchParams.get('error')).toBe('consent_required');

    const ask = async () => {
      const res = await call(authorizeUrl(clientId, challenge, { state: 'c1' }), { cookie: user.cookie });
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain('Third Party App');
      expect(html).toContain('See your email address');
      const fields = Object.fromEntries(
        [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.replace(/&amp;/g, '&')]),
      );
      return { fields, cookie: `${user.cookie}; ${cookieFrom(res, CSRF)?.pair ?? ''}` };
    };
    const decide = (fields: Record<string, string>, cookie: string, decision: string) =>
      call('/auth/authorize/decision', {
        method: 'POST',
        cookie,
        body: new URLSearchParams({ ...fields, decision }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://gatehouse.test' },
      });

    const first = await ask();
    const denied = await decide(first.fields, first.cookie, 'deny');
    expect(Object.fromEntries(new URL(continueTarget(await denied.text())).searchParams)).toMatchObject({
      error: 'access_denied',
      state: 'c1',
    });

    const noCsrf = await decide({ ...first.fields, csrf_token: 'x' }, first.cookie, 'approve');
    expect(noCsrf.status).toBe(403);

    const second = await ask();
    const approved = await decide(second.fields, second.cookie, 'approve');
    const target = new URL(continueTarget(await approved.text()));
    expect(target.origin + target.pathname).toBe(REDIRECT);
    expect(target.searchParams.get('code')).toMatch(/^ac1\./);

    // Remembered: no page the next time, even with prompt=none.
    const silent = await call(authorizeUrl(clientId, challenge, { prompt: 'none' }), { cookie: user.cookie });
    expect(locationOf(silent).searchParams.get('code')).toMatch(/^ac1\./);
    const forced = await call(authorizeUrl(clientId, challenge, { prompt: 'consent' }), { cookie: user.cookie });
    expect(forced.status).toBe(200);
  });
});

describe('RP-initiated logout', () => {
  it('signs out with a valid id_token_hint and returns to a registered URI with state', async () => {
    const client = await registerClient({ postLogoutRedirectUris: ['https://app.example.com/signed-out'] });
    const user = await signedInUser();
    const { code, verifier } = await getCode(client.clientId, user.cookie);
    const tokens = await (
      await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
        basic(client.clientId, client.clientSecret),
      )
    ).json<{ id_token: string; refresh_token: string }>();

    const bad = await call(
      `/auth/logout?${new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: 'https://evil.example/' })}`,
      { cookie: user.cookie },
    );
    expect(bad.status).toBe(400);
    expect(bad.headers.get('location')).toBeNull();

    const res = await call(
      `/auth/logout?${new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: 'https://app.example.com/signed-out', state: 'bye' })}`,
      { cookie: user.cookie },
    );
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://app.example.com/signed-out?state=bye');
    expect(res.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
    expect((await call('/auth/api/sessions', { cookie: user.cookie })).status).toBe(401);
    // The refresh token born of that session is revoked with it.
    expect(
      (
        await tokenRequest(
          { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
          basic(client.clientId, client.clientSecret),
        )
      ).status,
    ).toBe(400);
  });

  it('asks before signing out when there is no hint', async () => {
    const user = await signedInUser();
    const res = await call('/auth/logout', { cookie: user.cookie });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('An application asked to sign you out');
    expect(cookieFrom(res, SESSION)).toBeUndefined();
    expect((await call('/auth/api/sessions', { cookie: user.cookie })).status).toBe(200);
    // Confirming on that page signs out.
    const token = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const confirmed = await call('/auth/logout/confirm', {
      method: 'POST',
      cookie: `${user.cookie}; ${cookieFrom(res, CSRF)!.pair}`,
      body: new URLSearchParams({ csrf_token: token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://gatehouse.test' },
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;/);
    expect((await call('/auth/api/sessions', { cookie: user.cookie })).status).toBe(401);
  });

  it('a cross-site POST without the session cookie (SameSite=Lax keeps it back) clears no cookie', async () => {
    const user = await signedInUser();
    const res = await call('/auth/logout', {
      method: 'POST',
      body: '',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie().some((c) => c.startsWith(`${SESSION}=`))).toBe(false);
    expect((await call('/auth/api/sessions', { cookie: user.cookie })).status).toBe(200);
  });
});
