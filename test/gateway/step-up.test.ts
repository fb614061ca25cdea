import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { appWith, auditOf, createVerifiedUser, ORIGIN, SESSION, STRONG_PASSWORD, type Problem } from '../helpers';
import { codeAt, enrolled, passwordStep } from '../auth/helpers';

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyText: string;
}

const navigate = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
const formPost = (body: string) => ({
  method: 'POST',
  body,
  headers: { ...navigate, 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
});

/** A user with TOTP whose `browser` holds a password-only session (a known device: no second factor asked). */
async function passwordOnly() {
  const u = await enrolled();
  expect(await passwordStep(u.browser, u.email)).toMatchObject({ status: 'signed_in', session: { acr: 'urn:gatehouse:acr:1fa' } });
  return u;
}

describe('step-up on gateway routes', () => {
  it('takes a password-only browser session through the second factor and back, holding and replaying a form post once', async () => {
    const { browser, secret, userId } = await passwordOnly();
    const oldSid = (await (await browser.fetch('/auth/api/me')).json() as { session: { sid: string } }).session.sid;

    const post = await browser.fetch('/demo/mfa/orders?x=1', formPost('item=book&qty=2'));
    expect(post.status).toBe(303);
    const stepUp = new URL(post.headers.get('location')!, ORIGIN);
    expect(stepUp.pathname).toBe('/auth/second-factor');
    expect(stepUp.searchParams.get('acr')).toBe('urn:gatehouse:acr:mfa');
    const returnTo = stepUp.searchParams.get('return_to')!;
    expect(returnTo).toMatch(/^\/demo\/mfa\/orders\?x=1&gh_resume=[A-Za-z0-9_-]{22}$/);

    const page = await browser.open(`${stepUp.pathname}${stepUp.search}`);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('autocomplete="one-time-code"');
    const done = await browser.submit('/auth/second-factor', { code: codeAt(secret), return_to: returnTo }, `${stepUp.pathname}${stepUp.search}`);
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(returnTo);

    const replay = await browser.fetch(returnTo, { headers: navigate });
    expect(replay.status).toBe(200);
    const echo = (await replay.json()) as Echo;
    expect(echo).toMatchObject({ method: 'POST', path: '/demo/mfa/orders', query: 'x=1', bodyText: 'item=book&qty=2' });
    expect(echo.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(echo.headers['x-auth-acr']).toBe('urn:gatehouse:acr:mfa');
    expect(echo.headers['x-auth-amr']).toBe('mfa,otp,pwd');
    expect(echo.headers['x-auth-session-id']).not.toBe(oldSid); // step-up rotates the session id

    // At most once.
    const again = await browser.fetch(returnTo, { headers: navigate });
    expect(again.status).toBe(409);
    expect(((await again.json()) as Problem).code).toBe('request_not_held');
    const types = (await auditOf(userId)).results.map((r) => r.type);
    expect(types.filter((t) => t === 'request_held')).toHaveLength(1);
    expect(types.filter((t) => t === 'request_replayed')).toHaveLength(1);
    expect(types).toContain('step_up');
    // The old, weaker session is gone.
    const sessions = (await (await browser.fetch('/auth/api/sessions')).json()) as { sessions: { sid: string }[] };
    expect(sessions.sessions.map((s) => s.sid)).not.toContain(oldSid);
  });

  it('20 concurrent replays of one held request: exactly one reaches the origin', async () => {
    const { browser, secret } = await passwordOnly();
    const post = await browser.fetch('/demo/mfa/pay', formPost('amount=10'));
    const returnTo = new URL(post.headers.get('location')!, ORIGIN).searchParams.get('return_to')!;
    await browser.submit('/auth/second-factor', { code: codeAt(secret), return_to: returnTo }, `/auth/second-factor?return_to=${encodeURIComponent(returnTo)}`);
    const results = await Promise.all(Array.from({ length: 20 }, () => browser.fetch(returnTo, { headers: navigate })));
    expect(results.map((r) => r.status).sort()).toEqual([200, ...Array(19).fill(409)]);
  });

  it('a held request is only for its own user, for five minutes, and at most 1 MiB', async () => {
    const { browser, secret } = await passwordOnly();
    const big = await browser.fetch('/demo/mfa/upload', { ...formPost('x'.repeat(1024 * 1024 + 1)) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as Problem).code).toBe('payload_too_large');

    const post = await browser.fetch('/demo/mfa/pay', formPost('amount=10'));
    const returnTo = new URL(post.headers.get('location')!, ORIGIN).searchParams.get('return_to')!;

    // Someone else, with an MFA session of their own, cannot replay it.
    const other = await enrolled();
    const thief = new TestBrowser();
    expect((await passwordStep(thief, other.email)).status).toBe('second_factor_required');
    expect((await thief.post('/auth/api/sign-in/second-factor', { code: codeAt(other.secret) })).status).toBe(200);
    const stolen = await thief.fetch(returnTo, { headers: navigate });
    expect(stolen.status).toBe(409);

    // Six minutes later it is gone, even for its owner.
    await browser.submit('/auth/second-factor', { code: codeAt(secret), return_to: returnTo }, `/auth/second-factor?return_to=${encodeURIComponent(returnTo)}`);
    const later = appWith(() => ({ now: () => Date.now() + 6 * 60_000 }));
    const late = await later(returnTo, { headers: navigate, cookie: browser.cookieHeader });
    expect(late.status).toBe(409);
  });

  it('a route with a maximum sign-in age sends the browser to sign in again, then replays the held post', async () => {
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, user.email);
    // Two minutes later the 60-second route wants a fresh sign-in.
    const later = appWith(() => ({ now: () => Date.now() + 120_000 }));
    const held = await later('/demo/recent/profile', { ...formPost('name=Ada'), cookie: browser.cookieHeader });
    expect(held.status).toBe(303);
    const to = new URL(held.headers.get('location')!, ORIGIN);
    expect(to.pathname).toBe('/auth/sign-in');
    const returnTo = to.searchParams.get('return_to')!;
    expect(returnTo).toMatch(/^\/demo\/recent\/profile\?gh_resume=/);
    const signedIn = await browser.submit('/auth/sign-in', { email: user.email, password: STRONG_PASSWORD, return_to: returnTo }, `${to.pathname}${to.search}`);
    expect(signedIn.headers.get('location')).toBe(returnTo);
    const replay = await browser.fetch(returnTo, { headers: navigate });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ method: 'POST', path: '/demo/recent/profile', bodyText: 'name=Ada' });
  });

  it('sends an account without a second factor to set one up, and asks for a passkey where a route needs phishing resistance', async () => {
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, user.email);
    const res = await browser.fetch('/demo/mfa/x', { headers: navigate });
    expect(res.status).toBe(303);
    const page = await browser.open(res.headers.get('location')!);
    expect(page.res.status).toBe(403);
    expect(page.html).toContain('/auth/account/totp');

    const { browser: withTotp } = await passwordOnly();
    const phr = await withTotp.fetch('/demo/phr/x', { headers: navigate });
    expect(new URL(phr.headers.get('location')!, ORIGIN).searchParams.get('acr')).toBe('urn:gatehouse:acr:phr');
    const phrPage = await withTotp.open(phr.headers.get('location')!);
    expect(phrPage.res.status).toBe(403); // TOTP cannot reach phr: no code form is offered
    expect(phrPage.html).not.toContain('one-time-code');
  });

  it('API clients get 401 with the RFC 9470 hint instead of a redirect, and nothing is held', async () => {
    const { browser, userId } = await passwordOnly();
    const res = await browser.fetch('/demo/mfa/x', { method: 'POST', json: { a: 1 }, headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect((await auditOf(userId)).results.map((r) => r.type)).not.toContain('request_held');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse"');
    expect(browser.cookie(SESSION)).toBeDefined();
  });
});
