import { describe, expect, it } from 'vitest';
import { COOKIES } from '../../src/lib/cookies';
import { TestBrowser } from '../browser';
import { APP, appSession, appWith, call, cookieFrom, createVerifiedUser, ORIGIN, SESSION, STRONG_PASSWORD } from '../helpers';

/**
 * The trust boundary itself (docs/security.md, "Hosts"): origins run on app hosts, never on the
 * host where Gatehouse's pages and APIs live, and each app host gets its own session through a
 * redirect handshake. The attackers: an origin's script acting with the person's cookies, someone
 * planting their own handshake code in a victim's browser (login CSRF), and a stolen cookie of one
 * host replayed at another.
 */
const APP_HOST = new URL(APP).host;
const OTHER = 'https://other.gatehouse.test';

/** Starts a handshake on `host` as a signed-out navigation would; returns the connect URL and the state cookie. */
async function begin(browser: TestBrowser, host = APP) {
  const res = await browser.fetch(`${host}/demo/me/x`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location')!);
}

async function signedInBrowser() {
  const user = await createVerifiedUser();
  const browser = new TestBrowser();
  expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
  return { user, browser };
}

describe('Gatehouse’s own host and the app hosts', () => {
  it('serves no Gatehouse page or API on an app host, and takes no state change from an app host’s pages', async () => {
    const { browser } = await signedInBrowser();
    const appCookie = await appSession(browser.cookieHeader);
    for (const path of ['/auth/api/me', '/auth/account', '/auth/api/totp', '/.well-known/openid-configuration', '/auth/authorize']) {
      const res = await call(`${APP}${path}`, { cookie: appCookie, headers: { accept: 'application/json' } });
      expect(res.status, path).toBe(404);
      expect(await res.json(), path).toMatchObject({ code: 'not_found', detail: `No route for ${path}.` });
    }
    // An app host's script calling Gatehouse's API with the person's cookies (same site, so they are sent).
    const fromApp = { origin: APP };
    const json = await browser.fetch('/auth/api/totp', { method: 'POST', json: {}, headers: fromApp });
    expect(json.status).toBe(403);
    expect(await json.json()).toMatchObject({ code: 'csrf_failed' });
    const { html } = await browser.open('/auth/account');
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const posted = await browser.fetch('/auth/sign-out-everywhere', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: csrf }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...fromApp },
    });
    expect(posted.status).toBe(403);
    expect((await browser.fetch('/auth/api/me')).status).toBe(200);
  });

  it('a session cookie is good only on the host it was made for', async () => {
    const { browser } = await signedInBrowser();
    const auth = browser.cookieHeader;
    const app = await appSession(auth);
    const other = await appSession(auth, new URL(OTHER).host);
    const me = (url: string, cookie: string) => call(url, { cookie, headers: { accept: 'application/json' } });
    expect((await me(`${APP}/demo/me/x`, app)).status).toBe(200);
    expect((await me(`${APP}/demo/me/x`, auth)).status).toBe(401); // Gatehouse's own cookie, replayed at an app host
    expect((await me(`${APP}/demo/me/x`, other)).status).toBe(401); // another app host's
    expect((await me(`${OTHER}/x`, app)).status).toBe(401);
    expect((await me('/auth/api/me', app)).status).toBe(401); // an app host's cookie at Gatehouse's API
    // A stale (refreshing) app cookie replayed elsewhere is cleared, not refreshed.
    const later = appWith(() => ({ now: () => Date.now() + 10 * 60_000 }));
    const res = await later(`${OTHER}/x`, { cookie: app, headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(cookieFrom(res, SESSION)?.header).toMatch(/Max-Age=0/);
  });
});

describe('the host handshake', () => {
  it('signs a browser in on the app host with a code bound to that browser, that host and that session', async () => {
    const { browser, user } = await signedInBrowser();
    const connect = await begin(browser);
    expect(connect.origin).toBe(ORIGIN);
    const state = browser.cookie(COOKIES.connect, APP_HOST)!;
    expect(connect.searchParams.get('state')).toBe(state);
    const minted = await browser.fetch(`${connect.pathname}${connect.search}`);
    const back = new URL(minted.headers.get('location')!);
    expect(back.origin).toBe(APP);
    expect(back.pathname).toBe('/.gatehouse/session');
    expect(back.searchParams.get('code')).toMatch(new RegExp(`^cx1\\.${user.userId}\\.[A-Za-z0-9_-]{43}$`));
    const done = await browser.fetch(back.toString());
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/demo/me/x');
    expect(browser.cookie(COOKIES.connect, APP_HOST)).toBeUndefined();
    expect((await browser.fetch(`${APP}/demo/me/x`)).status).toBe(200);
  });

  it('an attacker’s code planted in a victim’s browser signs the victim into nothing (login CSRF)', async () => {
    const attacker = await signedInBrowser();
    const connect = await begin(attacker.browser);
    const code = new URL((await attacker.browser.fetch(`${connect.pathname}${connect.search}`)).headers.get('location')!);
    // The victim follows the attacker's link, with or without a handshake of their own under way.
    for (const victim of [
      new TestBrowser(),
      await (async () => {
        const v = new TestBrowser();
        await begin(v);
        return v;
      })(),
    ]) {
      const res = await victim.fetch(code.toString());
      expect(res.status).toBe(400);
      expect(victim.cookie(SESSION, APP_HOST)).toBeUndefined();
    }
    // A code is spent by any attempt: even the attacker's own browser, with the right state, is refused now.
    const own = await call(code.toString(), { cookie: `${COOKIES.connect}=${connect.searchParams.get('state')}` });
    expect(own.status).toBe(400);
  });

  it('refuses a code at another host, twice, late, or without a state', async () => {
    const { browser } = await signedInBrowser();
    const mint = async () => {
      const connect = await begin(browser);
      return {
        code: new URL((await browser.fetch(`${connect.pathname}${connect.search}`)).headers.get('location')!),
        state: browser.cookie(COOKIES.connect, APP_HOST)!,
      };
    };
    const a = await mint();
    const atOther = await call(`${OTHER}/.gatehouse/session${a.code.search}`, { cookie: `${COOKIES.connect}=${a.state}` });
    expect(atOther.status).toBe(400);
    const b = await mint();
    const late = appWith(() => ({ now: () => Date.now() + 2 * 60_000 }));
    expect((await late(b.code.toString(), { cookie: `${COOKIES.connect}=${b.state}` })).status).toBe(400);
    const c = await mint();
    expect((await call(c.code.toString())).status).toBe(400);
    const tampered = new URL(c.code);
    const original = c.code.searchParams.get('code')!;
    tampered.searchParams.set('code', `${original.slice(0, -1)}${original.endsWith('A') ? 'B' : 'A'}`);
    expect((await call(tampered.toString(), { cookie: `${COOKIES.connect}=${c.state}` })).status).toBe(400);
  });

  it('mints codes only for hosts Gatehouse fronts, and brings the browser back only to a path there', async () => {
    const { browser } = await signedInBrowser();
    const state = (await begin(browser)).searchParams.get('state')!;
    for (const host of [
      'evil.example',
      'gatehouse.test',
      'app.gatehouse.test.evil.example',
      'APP.gatehouse.test',
      'app.gatehouse.test:444',
    ]) {
      const res = await browser.fetch(`/auth/connect?${new URLSearchParams({ host, state, return_to: '/x' })}`);
      expect(res.status, host).toBe(400);
      expect(res.headers.get('location'), host).toBeNull();
    }
    for (const returnTo of ['https://evil.example/x', '//evil.example/x', '/\\evil.example']) {
      const minted = await browser.fetch(`/auth/connect?${new URLSearchParams({ host: APP_HOST, state, return_to: returnTo })}`);
      const back = new URL(minted.headers.get('location')!);
      expect(back.origin).toBe(APP);
      const done = await call(back.toString(), { cookie: `${COOKIES.connect}=${state}` });
      expect(done.headers.get('location'), returnTo).toBe('/');
    }
  });

  it('mints no code for a state the app host did not make: made up, expired, or made for another host', async () => {
    const { browser } = await signedInBrowser();
    const genuine = (await begin(browser)).searchParams.get('state')!;
    const [nonce, exp, mac] = genuine.split('.');
    const forOther = (await begin(browser, OTHER)).searchParams.get('state')!;
    const later = String(Number(exp) + 60);
    for (const state of ['A'.repeat(43), `${nonce}.${later}.${mac}`, `${'B'.repeat(43)}.${exp}.${mac}`, forOther, `${genuine}x`]) {
      const res = await browser.fetch(`/auth/connect?${new URLSearchParams({ host: APP_HOST, state, return_to: '/x' })}`);
      expect(res.status, state).toBe(400);
      expect(await res.text(), state).toContain('state is missing, expired or was not made by that host.');
    }
    // The genuine one, 16 minutes on, has expired.
    const late = browser.at(() => ({ now: () => Date.now() + 16 * 60_000 }));
    expect((await late.fetch(`/auth/connect?${new URLSearchParams({ host: APP_HOST, state: genuine, return_to: '/x' })}`)).status).toBe(
      400,
    );
    expect((await browser.fetch(`/auth/connect?${new URLSearchParams({ host: APP_HOST, state: genuine, return_to: '/x' })}`)).status).toBe(
      302,
    );
  });

  it('a code read off a failed redemption is spent: a hostile script that asks for one in the victim’s browser gets nothing', async () => {
    const { browser: victim } = await signedInBrowser();
    await victim.navigate(`${APP}/demo/me/x`);
    expect(victim.cookie(COOKIES.connect, APP_HOST)).toBeUndefined();
    // The attacker starts a handshake in their own browser and keeps its (genuine) state…
    const attacker = new TestBrowser();
    const state = (await begin(attacker)).searchParams.get('state')!;
    expect(attacker.cookie(COOKIES.connect, APP_HOST)).toBe(state);
    // …and a script on the app host has the victim's browser ask /auth/connect with it (an iframe).
    const minted = await victim.fetch(`/auth/connect?${new URLSearchParams({ host: APP_HOST, state, return_to: '/hostile/x' })}`);
    expect(minted.status).toBe(302);
    const back = minted.headers.get('location')!;
    // The victim's browser lands on the app host without that state cookie: refused, and the code spent.
    const failed = await victim.fetch(back);
    expect(failed.status).toBe(400);
    // The script reads the URL and sends it home; the attacker's browser, with the matching state, gets nothing.
    const stolen = await attacker.fetch(back);
    expect(stolen.status).toBe(400);
    expect(attacker.cookie(SESSION, APP_HOST)).toBeUndefined();
    const me = await attacker.fetch(`${APP}/demo/me/x`, { headers: { accept: 'application/json' } });
    expect(me.status).toBe(401);
    // Every app-host session is on the account's list, under the session it came from.
    const list = (await (await victim.fetch('/auth/api/sessions')).json()) as {
      sessions: { sid: string; host: string | null; parentSid: string | null; current: boolean }[];
    };
    const current = list.sessions.find((s) => s.current)!;
    expect(list.sessions).toEqual([
      expect.objectContaining({ sid: current.sid, host: null, parentSid: null }),
      expect.objectContaining({ host: APP_HOST, parentSid: current.sid }),
    ]);
  });

  it('lists app-host sessions on the account page and API, and ends one alone', async () => {
    const { browser } = await signedInBrowser();
    await browser.navigate(`${APP}/demo/me/x`);
    const seen = (await (await browser.fetch(`${APP}/demo/me/x`, { headers: { accept: 'application/json' } })).json()) as {
      headers: Record<string, string>;
    };
    const appSid = seen.headers['x-auth-session-id']!;
    const { html } = await browser.open('/auth/account');
    expect(html).toContain(`data-sid="${appSid}" data-host="${APP_HOST}"`);
    expect(html).toContain(`↳ on ${APP_HOST}`);
    const del = await browser.fetch(`/auth/api/sessions/${appSid}`, { method: 'DELETE', headers: { origin: ORIGIN } });
    expect(del.status).toBe(204);
    expect((await browser.fetch(`${APP}/demo/fresh/x`, { headers: { accept: 'application/json' } })).status).toBe(401);
    // The Gatehouse session it came from lives on.
    expect((await browser.fetch('/auth/api/me')).status).toBe(200);
  });

  it('signing out of Gatehouse ends the app hosts’ sessions; signing out on an app host ends Gatehouse’s', async () => {
    const { browser } = await signedInBrowser();
    await browser.navigate(`${APP}/demo/fresh/x`);
    expect((await browser.fetch(`${APP}/demo/fresh/x`)).status).toBe(200);
    expect((await browser.post('/auth/api/sign-out', {})).status).toBe(204);
    expect((await browser.fetch(`${APP}/demo/fresh/x`, { headers: { accept: 'application/json' } })).status).toBe(401);

    const second = await signedInBrowser();
    await second.browser.navigate(`${APP}/demo/me/x`);
    // A cross-site page cannot sign the person out from the app host…
    const forged = await second.browser.fetch(`${APP}/.gatehouse/sign-out`, {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
    });
    expect(forged.status).toBe(403);
    expect((await second.browser.fetch('/auth/api/me')).status).toBe(200);
    // …the app's own page can, and that ends the Gatehouse session too.
    const out = await second.browser.fetch(`${APP}/.gatehouse/sign-out`, { method: 'POST', headers: { origin: APP } });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe(`${ORIGIN}/auth/sign-in`);
    expect(second.browser.cookie(SESSION, APP_HOST)).toBeUndefined();
    const me = await second.browser.fetch('/auth/api/me');
    expect(me.status).toBe(401);
  });
});
