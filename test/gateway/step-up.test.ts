import { describe, expect, it } from 'vitest';
import { codeAt, enrolled, passwordStep } from '../auth/helpers';
import { TestBrowser } from '../browser';
import { APP, appWith, auditOf, continueTarget, createVerifiedUser, ORIGIN, SESSION, STRONG_PASSWORD, type Problem } from '../helpers';

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyText: string;
}

const APP_HOST = new URL(APP).host;
const navigate = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
const formPost = (body: string) => ({
  method: 'POST',
  body,
  headers: { ...navigate, 'content-type': 'application/x-www-form-urlencoded', origin: APP },
});

/** A user with TOTP whose `browser` holds a password-only session on Gatehouse and on the app host. */
async function passwordOnly() {
  const u = await enrolled();
  expect(await passwordStep(u.browser, u.email)).toMatchObject({ status: 'signed_in', session: { acr: 'urn:gatehouse:acr:1fa' } });
  await onApp(u.browser);
  return u;
}

/** Gets the browser a session on the app host (the host handshake, followed as a browser would). */
async function onApp(browser: TestBrowser) {
  const { res, visited } = await browser.navigate(`${APP}/demo/me/start`);
  expect(res.status, visited.join(' → ')).toBe(200);
  expect(browser.cookie(SESSION, APP_HOST)).toBeDefined();
}

/**
 * Where a step-up redirect from the app host leads: Gatehouse's page (`to`), and the address the
 * browser finally comes back to on the app host (inside the handshake's return_to).
 */
function stepUpTarget(res: Response) {
  expect(res.status).toBe(303);
  const to = new URL(res.headers.get('location')!);
  expect(to.origin).toBe(ORIGIN);
  const connect = new URL(to.searchParams.get('return_to')!, ORIGIN);
  expect(connect.pathname).toBe('/auth/connect');
  return {
    to,
    page: `${to.pathname}${to.search}`,
    returnTo: to.searchParams.get('return_to')!,
    back: connect.searchParams.get('return_to')!,
  };
}

/** Steps up with a TOTP code on Gatehouse's page and follows the way back to the app host (`replay`: up to the replay itself). */
async function stepUpWithCode(browser: TestBrowser, secret: string, target: ReturnType<typeof stepUpTarget>, replay = true) {
  const done = await browser.submit('/auth/second-factor', { code: codeAt(secret), return_to: target.returnTo }, target.page);
  // The way back leaves Gatehouse's origin, so the form submission ends on a Continue page (CSP form-action).
  expect(done.status).toBe(200);
  const next = continueTarget(await done.text());
  expect(next).toBe(target.returnTo);
  if (replay) return browser.navigate(next);
  // connect → the app host's handshake end → (stop) the 303 to the held request.
  const stopped = await browser.navigate(next, {}, 1);
  expect(stopped.res.status).toBe(303);
  expect(stopped.res.headers.get('location')).toBe(target.back);
  return stopped;
}

describe('step-up on gateway routes', () => {
  it('takes a password-only browser session through the second factor and back, holding and replaying a form post once', async () => {
    const { browser, secret, userId } = await passwordOnly();
    const oldSid = ((await (await browser.fetch(`${APP}/demo/me/x`)).json()) as Echo).headers['x-auth-session-id'];

    const post = await browser.fetch(`${APP}/demo/mfa/orders?x=1`, formPost('item=book&qty=2'));
    const target = stepUpTarget(post);
    expect(target.to.pathname).toBe('/auth/second-factor');
    expect(target.to.searchParams.get('acr')).toBe('urn:gatehouse:acr:mfa');
    expect(target.back).toMatch(/^\/demo\/mfa\/orders\?x=1&gh_resume=[A-Za-z0-9_-]{22}$/);

    const page = await browser.open(target.page);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('autocomplete="one-time-code"');
    const { res: replay, visited } = await stepUpWithCode(browser, secret, target);
    expect(visited.at(-1)).toBe(`${APP}${target.back}`);
    expect(replay.status).toBe(200);
    const echo = (await replay.json()) as Echo;
    expect(echo).toMatchObject({ method: 'POST', path: '/demo/mfa/orders', query: 'x=1', bodyText: 'item=book&qty=2' });
    expect(echo.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(echo.headers['x-auth-acr']).toBe('urn:gatehouse:acr:mfa');
    expect(echo.headers['x-auth-amr']).toBe('mfa,otp,pwd');
    expect(echo.headers['x-auth-session-id']).not.toBe(oldSid); // step-up rotates the session id

    // At most once.
    const again = await browser.fetch(`${APP}${target.back}`, { headers: navigate });
    expect(again.status).toBe(409);
    expect(((await again.json()) as Problem).code).toBe('request_not_held');
    const types = (await auditOf(userId)).results.map((r) => r.type);
    expect(types.filter((t) => t === 'request_held')).toHaveLength(1);
    expect(types.filter((t) => t === 'request_replayed')).toHaveLength(1);
    expect(types).toContain('step_up');
  });

  it('20 concurrent replays of one held request: exactly one reaches the origin', async () => {
    const { browser, secret } = await passwordOnly();
    const target = stepUpTarget(await browser.fetch(`${APP}/demo/mfa/pay`, formPost('amount=10')));
    await stepUpWithCode(browser, secret, target, false);
    const results = await Promise.all(Array.from({ length: 20 }, () => browser.fetch(`${APP}${target.back}`, { headers: navigate })));
    expect(results.map((r) => r.status).sort()).toEqual([200, ...Array(19).fill(409)]);
  });

  it('a held request is only for its own user, for five minutes, and at most 1 MiB', async () => {
    const { browser, secret } = await passwordOnly();
    const big = await browser.fetch(`${APP}/demo/mfa/upload`, { ...formPost('x'.repeat(1024 * 1024 + 1)) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as Problem).code).toBe('payload_too_large');

    const target = stepUpTarget(await browser.fetch(`${APP}/demo/mfa/pay`, formPost('amount=10')));

    // Someone else, with an MFA session of their own, cannot replay it.
    const other = await enrolled();
    const thief = new TestBrowser();
    expect((await passwordStep(thief, other.email)).status).toBe('second_factor_required');
    expect((await thief.post('/auth/api/sign-in/second-factor', { code: codeAt(other.secret) })).status).toBe(200);
    await onApp(thief);
    const stolen = await thief.fetch(`${APP}${target.back}`, { headers: navigate });
    expect(stolen.status).toBe(409);

    // Six minutes later it is gone, even for its owner.
    await stepUpWithCode(browser, secret, target, false);
    const later = appWith(() => ({ now: () => Date.now() + 6 * 60_000 }));
    const late = await later(`${APP}${target.back}`, { headers: navigate, cookie: browser.cookieHeaderFor(APP_HOST) });
    expect(late.status).toBe(409);
  });

  it('a route with a maximum sign-in age sends the browser to sign in again, then replays the held post', async () => {
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, user.email);
    await onApp(browser);
    // Two minutes later the 60-second route wants a fresh sign-in.
    const later = browser.at(() => ({ now: () => Date.now() + 120_000 }));
    const held = await later.fetch(`${APP}/demo/recent/profile`, formPost('name=Ada'));
    const target = stepUpTarget(held);
    expect(target.to.pathname).toBe('/auth/sign-in');
    expect(target.back).toMatch(/^\/demo\/recent\/profile\?gh_resume=/);
    const signedIn = await browser.submit(
      '/auth/sign-in',
      { email: user.email, password: STRONG_PASSWORD, return_to: target.returnTo },
      target.page,
    );
    expect(continueTarget(await signedIn.text())).toBe(target.returnTo);
    const { res: replay } = await browser.navigate(target.returnTo);
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ method: 'POST', path: '/demo/recent/profile', bodyText: 'name=Ada' });
  });

  it('sends an account without a second factor to set one up, and asks for a passkey where a route needs phishing resistance', async () => {
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, user.email);
    await onApp(browser);
    const target = stepUpTarget(await browser.fetch(`${APP}/demo/mfa/x`, { headers: navigate }));
    const page = await browser.open(target.page);
    expect(page.res.status).toBe(403);
    expect(page.html).toContain('/auth/account/totp');

    const { browser: withTotp } = await passwordOnly();
    const phr = stepUpTarget(await withTotp.fetch(`${APP}/demo/phr/x`, { headers: navigate }));
    expect(phr.to.searchParams.get('acr')).toBe('urn:gatehouse:acr:phr');
    const phrPage = await withTotp.open(phr.page);
    expect(phrPage.res.status).toBe(403); // TOTP cannot reach phr: no code form is offered
    expect(phrPage.html).not.toContain('one-time-code');
  });

  it('API clients get 401 with the RFC 9470 hint instead of a redirect, and nothing is held', async () => {
    const { browser, userId } = await passwordOnly();
    const res = await browser.fetch(`${APP}/demo/mfa/x`, { method: 'POST', json: { a: 1 }, headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect((await auditOf(userId)).results.map((r) => r.type)).not.toContain('request_held');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse", DPoP algs="ES256 ES384 PS256 RS256 EdDSA"');
    expect(browser.cookie(SESSION, APP_HOST)).toBeDefined();
  });
});

describe('a held request is replayed only under the route, method, host and policy that held it', () => {
  /** A one-factor browser whose POST to the MFA-only write route was held; returns the way back. */
  async function heldWrite() {
    const u = await passwordOnly();
    const target = stepUpTarget(await u.browser.fetch(`${APP}/demo/split/orders`, formPost('item=book')));
    expect(target.back).toMatch(/^\/demo\/split\/orders\?gh_resume=/);
    return { ...u, target };
  }

  it('skipping the second factor and GETting the resume URL does not replay the POST under the GET route', async () => {
    const { browser, target, secret } = await heldWrite();
    // The GET route only needs a sign-in, which this browser has; the held POST's route needs MFA.
    const skipped = await browser.fetch(`${APP}${target.back}`, { headers: navigate });
    expect(skipped.status).toBe(303);
    const again = stepUpTarget(skipped);
    expect(again.to.pathname).toBe('/auth/second-factor');
    expect(again.back).toBe(target.back); // still held, still only for after the step-up
    // A script (no navigation) is told no, and is not given the POST either.
    const scripted = await browser.fetch(`${APP}${target.back}`, { headers: { accept: 'application/json' } });
    expect(scripted.status).toBe(401);
    expect(await scripted.text()).not.toContain('item=book');
    // After the real step-up it is replayed, once, as the POST it was.
    const { res } = await stepUpWithCode(browser, secret, again);
    expect(await res.json()).toMatchObject({ method: 'POST', path: '/demo/split/orders', bodyText: 'item=book' });
  });

  it('refuses the resume id on another path, another host, or after the route changed', async () => {
    const { browser, target, secret } = await heldWrite();
    await stepUpWithCode(browser, secret, target, false);
    const id = new URL(target.back, APP).searchParams.get('gh_resume')!;
    // Another path under the same route, and a path of another route.
    for (const path of [`/demo/split/refund?gh_resume=${id}`, `/demo/me/x?gh_resume=${id}`, `/demo/split/orders?x=1&gh_resume=${id}`]) {
      const res = await browser.fetch(`${APP}${path}`, { headers: navigate });
      expect(res.status, path).toBe(409);
    }
    // Another app host where the same user has a session of its own.
    const { res: there } = await browser.navigate('https://other.gatehouse.test/start');
    expect(there.status).toBe(200);
    const otherHost = await browser.fetch(`https://other.gatehouse.test${target.back}`, { headers: navigate });
    expect(otherHost.status).toBe(409);
    // The operator changed the route meanwhile (a new policy is another route).
    const changed = browser.at((deps) => ({
      config: {
        ...deps.config,
        gateway: {
          ...deps.config.gateway,
          routes: deps.config.gateway.routes.map((r) =>
            r.match === '/demo/split/*' && r.methods ? { ...r, policy: { ...r.policy, fresh: true } } : r,
          ),
        },
      },
    }));
    expect((await changed.fetch(`${APP}${target.back}`, { headers: navigate })).status).toBe(409);
    // Untouched, it is still there for its own URL.
    const replay = await browser.fetch(`${APP}${target.back}`, { headers: navigate });
    expect(await replay.json()).toMatchObject({ method: 'POST', bodyText: 'item=book' });
  });

  it('holds no request another site sent — a sibling host, another site, or no Origin at all — and says why', async () => {
    const { browser, userId } = await passwordOnly();
    const variants: Record<string, string>[] = [
      { origin: 'https://evil.gatehouse.test', 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { origin: APP, 'sec-fetch-site': 'same-site' }, // Origin forged by a non-browser, Fetch Metadata disagrees
      { origin: 'null' },
      {},
    ];
    for (const headers of variants) {
      const res = await browser.fetch(`${APP}/demo/mfa/transfer`, {
        method: 'POST',
        body: 'to=attacker&amount=1000',
        headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('requests from another site are not held');
    }
    expect((await auditOf(userId)).results.map((r) => r.type)).not.toContain('request_held');
    // The same post from the app's own page is held (the baseline the refusals differ from).
    stepUpTarget(await browser.fetch(`${APP}/demo/mfa/transfer`, formPost('to=friend&amount=1')));
  });

  for (const query of ['?flag', '?q=a%20b&q=c', '?a=1&&b=%2B', '?x=1'])
    it(`replays a post to a URL with the query ${query} exactly as it was sent`, async () => {
      const { browser, secret } = await passwordOnly();
      const target = stepUpTarget(await browser.fetch(`${APP}/demo/mfa/orders${query}`, formPost('a=1')));
      expect(target.back.startsWith(`/demo/mfa/orders${query}&gh_resume=`)).toBe(true);
      const { res } = await stepUpWithCode(browser, secret, target);
      expect(res.status).toBe(200);
      const echo = (await res.json()) as Echo;
      expect(echo).toMatchObject({ method: 'POST', bodyText: 'a=1', query: query.slice(1) });
    });
});
