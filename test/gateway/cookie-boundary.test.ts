import { describe, expect, it } from 'vitest';
import { COOKIES, isGatehouseCookieName } from '../../src/lib/cookies';
import { enrolled } from '../auth/helpers';
import { TestBrowser } from '../browser';
import { newPerson, upstreamProvider, viaUpstream } from '../auth/upstream-helpers';
import { APP, appSession, call, createVerifiedUser, SESSION, signIn, uniqueEmail, type Problem } from '../helpers';

/**
 * Gatehouse's cookies never cross to an origin, and an origin never sets one of them (DESIGN.md
 * §3). The attacker is the origin itself — hostile or compromised — which sees every header we
 * forward and answers with any Set-Cookie it likes.
 */
interface Seen {
  path: string;
  headers: Record<string, string>;
}
const APP_HOST = new URL(APP).host;

const hostile = async (path: string, init: Parameters<typeof call>[1] = {}) => {
  const res = await call(`${APP}${path}`, init);
  return { res, seen: res.status === 200 ? await res.clone().json<Seen>() : null };
};

/** Every Gatehouse cookie name, and the values a browser holds for them after the real flows. */
async function browserWithEveryCookie() {
  const user = await enrolled();
  const b = user.browser;
  // Session, CSRF, device: signed in through the pages.
  expect(b.cookie(COOKIES.session)).toBeDefined();
  await b.open('/auth/sign-in');
  // A pending second factor: sign in again on a new device (second step asked, not finished).
  const pending = new TestBrowser();
  pending.cookies.set(COOKIES.device, 'x'.repeat(43));
  expect((await pending.post('/auth/api/sign-in', { email: user.email, password: 'correct horse battery staple 42' })).status).toBe(200);
  // The email sign-in binding, the QR handoff's wait cookie, a continue handoff's own cookie.
  expect((await b.post('/auth/api/email-sign-in', { email: user.email })).status).toBe(202);
  await b.open('/auth/handoff/qr');
  await b.open('/auth/handoff/continue');
  // An address change waiting for its confirmation (the binding of the browser that asked).
  expect((await b.post('/auth/api/email', { email: `new-${user.email}` })).status).toBe(202);
  for (const [name, value] of pending.cookies) if (!b.cookies.has(name)) b.cookies.set(name, value);
  // A sign-in waiting for a required consent purpose (terms never accepted).
  const terms = new TestBrowser().at((deps) => ({
    config: { ...deps.config, purposes: [{ id: 'terms', title: 'Terms', version: '1', required: true, url: null }] },
  }));
  expect(
    await (
      await terms.post('/auth/api/sign-in', { email: (await createVerifiedUser()).email, password: 'correct horse battery staple 42' })
    ).json(),
  ).toMatchObject({
    status: 'consent_required',
  });
  for (const [name, value] of terms.cookies) if (!b.cookies.has(name)) b.cookies.set(name, value);
  // An upstream sign-in: its binding (one started, not finished), and what an upstream not trusted
  // for the address answers — a link waiting for proof of the account that has it, and the binding
  // of a sign-up confirmed by mail (both set either way, so that the answer tells nothing).
  const provider = await upstreamProvider();
  const linking = new TestBrowser();
  const { res } = await viaUpstream(linking, provider, newPerson({ email: user.email }));
  expect(res.status).toBe(202);
  expect(linking.cookie(COOKIES.pendingLink)).toBeDefined();
  expect(linking.cookie(COOKIES.upstreamSignUp)).toBeDefined();
  const started = new TestBrowser();
  await started.at(() => ({ fetch: provider.upstream.fetch })).submit(`/auth/upstream/${provider.id}`, {}, '/auth/sign-in');
  for (const other of [linking, started]) for (const [name, value] of other.cookies) if (!b.cookies.has(name)) b.cookies.set(name, value);
  return { user, browser: b };
}

describe('the cookie boundary with origins', () => {
  it('forwards none of the cookies Gatehouse sets — each one, from the real flows — and keeps the origin’s own', async () => {
    const { browser } = await browserWithEveryCookie();
    const held = [...browser.cookies.keys()];
    // Every cookie the registry names was set by a flow above, except the app host's handshake state.
    expect(held.sort()).toEqual(
      Object.values(COOKIES)
        .filter((n) => n !== COOKIES.connect)
        .sort(),
    );
    // A browser on the app host sends its own cookies plus whatever Gatehouse's host set (a
    // same-site sibling could set them on the parent domain; the gateway must not care why they are there).
    const cookie = [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const { seen } = await hostile('/hostile/public/x', { headers: { cookie: `${cookie}; theme=dark; cart=7` } });
    expect(seen!.headers.cookie).toBe('theme=dark; cart=7');
    for (const [, value] of browser.cookies) expect(JSON.stringify(seen!.headers)).not.toContain(value);
  });

  it('the QR handoff wait cookie cannot be read off the origin and redeemed (the account takeover of the review)', async () => {
    const victim = await createVerifiedUser();
    const computer = new TestBrowser();
    const { html } = await computer.open('/auth/handoff/qr');
    const wait = computer.cookie(COOKIES.handoffWait)!;
    // The computer browses the app host; its Gatehouse cookies ride along in the Cookie field.
    const { seen } = await hostile('/hostile/public/log', { headers: { cookie: computer.cookieHeader } });
    expect(JSON.stringify(seen)).not.toContain(wait);
    expect(JSON.stringify(seen)).not.toContain(wait.split('.')[1]);
    // The victim approves on their phone; what the origin logged is worthless to a thief.
    const phone = new TestBrowser();
    expect((await phone.post('/auth/api/sign-in', { email: victim.email, password: victim.password })).status).toBe(200);
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
    const approved = await phone.submit(
      '/auth/handoff/approve',
      { h: link.searchParams.get('h')!, decision: 'approve' },
      `${link.pathname}${link.search}`,
    );
    expect(approved.status).toBe(200);
    const thief = new TestBrowser();
    for (const [name, value] of Object.entries(
      seen!.headers.cookie ? Object.fromEntries(seen!.headers.cookie.split('; ').map((p) => p.split('='))) : {},
    ))
      thief.cookies.set(name, value as string);
    const stolen = await thief.post('/auth/api/handoff/redeem', { kind: 'qr' });
    expect(stolen.status).toBe(403);
    // The computer itself still redeems it.
    expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(200);
  });

  it('strips a Gatehouse cookie however the Cookie field is framed', async () => {
    const { email } = await createVerifiedUser();
    const { cookie: auth } = await signIn(email);
    const app = await appSession(auth);
    const value = app.split('=').slice(1).join('=');
    const framings: [string, HeadersInit][] = [
      [
        'two Cookie fields (joined with ", ")',
        [
          ['cookie', 'theme=dark'],
          ['cookie', app],
        ],
      ],
      [
        'two fields, ours first',
        [
          ['cookie', app],
          ['cookie', 'theme=dark'],
        ],
      ],
      ['a comma inside one field', { cookie: `theme=dark, ${app}` }],
      ['no space after ;', { cookie: `theme=dark;${app};cart=1` }],
      ['padding around =', { cookie: `theme=dark; ${SESSION} =${value}` }],
      ['upper case name', { cookie: `theme=dark; ${SESSION.toUpperCase()}=${value}` }],
      ['percent-encoded name', { cookie: `theme=dark; %5F%5FHost-gatehouse_session=${value}` }],
      ['no prefix', { cookie: `theme=dark; gatehouse_session=${value}` }],
      ['__Secure- prefix', { cookie: `theme=dark; __Secure-gatehouse_session=${value}` }],
      ['full-width letters', { cookie: `theme=dark; __Host-ｇａｔｅｈｏｕｓｅ_session=${value}` }],
      ['tab and spaces', { cookie: `theme=dark;\t ${app}` }],
      ['nameless cookie carrying ours', { cookie: `theme=dark; =${app}` }],
    ];
    for (const [how, headers] of framings) {
      const h = new Headers(headers);
      const { res, seen } = await hostile('/hostile/public/x', { headers: h });
      expect(res.status, how).toBe(200);
      expect(JSON.stringify(seen!.headers), how).not.toContain(value);
      expect(JSON.stringify(seen!.headers).toLowerCase(), how).not.toMatch(/gatehouse[_-]session|ｇａｔｅｈｏｕｓｅ/);
    }
    // A cookie we cannot parse is dropped whole rather than half-forwarded.
    const { seen } = await hostile('/hostile/public/x', { headers: { cookie: `a=1; b=\u0001${value}` } });
    expect(seen!.headers.cookie).toBeUndefined();
  });

  it("drops an origin's Set-Cookie that names a Gatehouse cookie, in any spelling, and keeps the origin's own", async () => {
    const attacker = await createVerifiedUser(uniqueEmail('attacker'));
    const { cookie: attackerSession } = await signIn(attacker.email);
    const fixation = attackerSession.split('=').slice(1).join('=');
    const planted = [
      `${SESSION}=${fixation}; Path=/; Secure; HttpOnly; SameSite=Lax`,
      `${COOKIES.csrf}=${'a'.repeat(43)}; Path=/; Secure; HttpOnly`,
      `__HOST-GATEHOUSE_SESSION=${fixation}; Path=/; Secure`,
      `__host-gatehouse_session=${fixation}; Path=/; Secure`,
      `__Secure-gatehouse_session=${fixation}; Domain=gatehouse.test; Path=/; Secure`,
      `gatehouse_session=${fixation}; Path=/`,
      `%5F%5FHost-gatehouse_session=${fixation}; Path=/; Secure`,
      ` ${SESSION} =${fixation}; Path=/; Secure`,
      `=${SESSION}=${fixation}; Path=/; Secure`, // nameless: sent back as `__Host-gatehouse_session=…`
      `${SESSION}; Path=/; Secure`, // no = at all
      `theme=dark, ${SESSION}=${fixation}; Path=/`,
      `${COOKIES.device}=${'d'.repeat(43)}; Path=/; Secure; Max-Age=31536000`,
      `${COOKIES.secondFactor}=forged; Path=/; Secure`,
      `${COOKIES.handoffWait}=forged; Path=/; Secure`,
      `${COOKIES.connect}=forged; Path=/; Secure`,
    ];
    const query = new URLSearchParams([
      ...planted.map((sc) => ['sc', sc]),
      ['sc', 'theme=dark; Path=/'],
      ['sc', 'cart=7; Path=/; HttpOnly'],
    ]);
    for (const path of ['/hostile/public/x', '/hostile/x']) {
      const init = path === '/hostile/x' ? { cookie: await appSession((await signIn((await createVerifiedUser()).email)).cookie) } : {};
      const res = await call(`${APP}${path}?${query}`, init);
      expect(res.status).toBe(200);
      expect(res.headers.getSetCookie(), path).toEqual(['theme=dark; Path=/', 'cart=7; Path=/; HttpOnly']);
    }
    // The browser that followed the hostile answer still has no session: no fixation, no login CSRF.
    const victim = new TestBrowser();
    await victim.fetch(`${APP}/hostile/public/x?${query}`);
    expect(victim.cookie(SESSION, APP_HOST)).toBeUndefined();
    expect(victim.cookie(COOKIES.csrf, APP_HOST)).toBeUndefined();
  });

  it('drops Clear-Site-Data, with which an origin would wipe Gatehouse’s cookies on the host', async () => {
    const res = await call(`${APP}/hostile/public/x?clear=1&sc=${encodeURIComponent('theme=dark')}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('clear-site-data')).toBeNull();
    expect(res.headers.getSetCookie()).toEqual(['theme=dark']);
  });

  it('lets no origin script take over Gatehouse’s pages on its host: no Service-Worker-Allowed, no worker served from /', async () => {
    // An origin on /hostile/* serves a worker and asks for scope / (which would see /.gatehouse/session?code=).
    const widen = await call(`${APP}/hostile/public/sw.js?${new URLSearchParams({ h: 'service-worker-allowed:/', sc: 'theme=dark' })}`, {
      headers: { 'service-worker': 'script' },
    });
    expect(widen.status).toBe(200);
    expect(widen.headers.get('service-worker-allowed')).toBeNull();
    expect(widen.headers.getSetCookie()).toEqual(['theme=dark']);
    expect(((await widen.json()) as Seen).path).toBe('/hostile/public/sw.js');
    // An origin owning a host's `/*` may not serve a worker from the root directory (scope / by default)…
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const other = await appSession(cookie, 'other.gatehouse.test');
    for (const path of ['/sw.js', '/SW.js', '/x/../sw.js', '//sw.js']) {
      const root = await call(`https://other.gatehouse.test${path}`, { cookie: other, headers: { 'service-worker': 'script' } });
      expect(root.status, path).toBe(403);
      expect(((await root.json()) as Problem).detail, path).toBe(
        'A service worker script must be served from below a directory (e.g. /app/sw.js), not from /.',
      );
    }
    // …but may from below one; and the same path as a plain script load is forwarded.
    expect((await call('https://other.gatehouse.test/app/sw.js', { cookie: other, headers: { 'service-worker': 'script' } })).status).toBe(
      200,
    );
    expect((await call('https://other.gatehouse.test/sw.js', { cookie: other })).status).toBe(200);
  });

  it('drops planted cookies on a WebSocket upgrade response too', async () => {
    const { email } = await createVerifiedUser();
    const app = await appSession((await signIn(email)).cookie);
    const res = await call(`${APP}/hostile/ws?${new URLSearchParams({ sc: `${SESSION}=planted; Path=/; Secure` })}`, {
      cookie: app,
      headers: { upgrade: 'websocket' },
    });
    expect(res.status).toBe(101);
    expect(res.headers.getSetCookie()).toEqual([]);
    res.webSocket!.accept();
    res.webSocket!.close();
  });

  it('names a cookie Gatehouse’s by one rule the writers and the gateway share', () => {
    for (const name of Object.values(COOKIES)) expect(isGatehouseCookieName(name), name).toBe(true);
    for (const name of ['theme', 'gatehousefan', 'my_gatehouse', 'session', '__Host-session'])
      expect(isGatehouseCookieName(name), name).toBe(false);
    // Spellings a lenient origin framework would read as ours.
    for (const name of [
      '__HOST-GATEHOUSE_SESSION',
      ' gatehouse_x ',
      '%5F%5FHost-gatehouse_session',
      '__Host-ｇａｔｅｈｏｕｓｅ_session',
      '__Host-Http-gatehouse_x',
      'gatehouse',
    ])
      expect(isGatehouseCookieName(name), name).toBe(true);
  });
});
