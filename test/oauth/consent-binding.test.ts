import { describe, expect, it } from 'vitest';
import { enrolled, passwordStep } from '../auth/helpers';
import { TestBrowser } from '../browser';
import { appWith, auditOf, call, continueTarget, createVerifiedUser, ORIGIN, signIn } from '../helpers';
import { authorizeUrl, pkce, REDIRECT, registerClient } from './helpers';

/**
 * The consent decision and the re-authentication marker, attacked by a signed-in person (or a
 * thief with their session) who skips the pages: posting the decision form directly, replaying
 * it, reusing a marker minted elsewhere.
 */
const locationOf = (res: Response) => new URL(res.headers.get('location')!, ORIGIN);
const form = (fields: Record<string, string>) => ({
  method: 'POST',
  body: new URLSearchParams(fields).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html' },
});

/** Opens the consent page of a request in `browser` and returns its CSRF token and held request id. */
async function consentPage(browser: TestBrowser, url: string) {
  const { res, html } = await browser.open(url);
  expect(res.status, html.slice(0, 300)).toBe(200);
  expect(html).toContain('/auth/authorize/decision');
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
  const request = /name="request" value="([^"]+)"/.exec(html)![1]!;
  // The page carries the request's id only: no parameter rides in the form.
  expect([...html.matchAll(/<input type="hidden" name="([^"]+)"/g)].map((m) => m[1]).sort()).toEqual(['csrf_token', 'request']);
  return { csrf, request };
}

const decide = (browser: TestBrowser, fields: Record<string, string>) => browser.fetch('/auth/authorize/decision', form(fields));

const codesGranted = async (userId: string) => (await auditOf(userId)).results.filter((r) => r.type === 'authorization_granted').length;

describe('the consent decision', () => {
  it('is refused when posted with a made-up request: the checks of /authorize cannot be skipped', async () => {
    // A client that requires MFA; the person signed in with a password only.
    const mfa = await registerClient({ firstParty: false, requireMfa: true, name: 'Bank' });
    const { browser, userId } = await enrolled();
    await passwordStep(browser, (await (await browser.fetch('/auth/api/me')).json<{ user: { email: string } }>()).user.email);
    const { challenge } = await pkce();
    const url = authorizeUrl(mfa.clientId, challenge);
    // /authorize itself asks for the second factor, never for consent.
    expect(locationOf(await browser.fetch(url, { headers: { accept: 'text/html' } })).pathname).toBe('/auth/second-factor');
    const { html } = await browser.open('/auth/sign-in');
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const params = Object.fromEntries(new URL(url, ORIGIN).searchParams);
    for (const fields of [
      { ...params, decision: 'approve' }, // the old form: every parameter in hidden fields
      { ...params, decision: 'approve', request: 'A'.repeat(43) }, // a request id that was never held
      { decision: 'approve', request: '' },
      { decision: 'approve', request: '../../x' },
    ]) {
      const res = await decide(browser, { ...fields, csrf_token: csrf });
      expect(res.status, JSON.stringify(fields).slice(0, 80)).toBe(400);
      expect(await res.text()).not.toContain('code=');
    }
    expect(await codesGranted(userId)).toBe(0);
  });

  it('counts only while the request still needs exactly that decision (max_age, step-up, a new session)', async () => {
    const client = await registerClient({ firstParty: false, name: 'Third Party' });
    const { email, userId } = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, email);
    const { challenge } = await pkce();

    // max_age: the page was shown while the sign-in was fresh; the answer comes too late.
    const page = await consentPage(browser, authorizeUrl(client.clientId, challenge, { max_age: '60' }));
    const later = browser.at(() => ({ now: () => Date.now() + 5 * 60_000 }));
    const late = await later.fetch('/auth/authorize/decision', form({ csrf_token: page.csrf, request: page.request, decision: 'approve' }));
    expect(late.status).toBe(303);
    expect(locationOf(late).pathname).toBe('/auth/sign-in');
    expect(await codesGranted(userId)).toBe(0);
    // …and the held request was used up by that answer.
    const replay = await decide(browser, { csrf_token: page.csrf, request: page.request, decision: 'approve' });
    expect(replay.status).toBe(400);

    // acr_values: a request that needs a second factor the session lacks goes to step-up first.
    const enrolledUser = await enrolled();
    await passwordStep(enrolledUser.browser, enrolledUser.email);
    const stepUp = await enrolledUser.browser.fetch(authorizeUrl(client.clientId, challenge, { acr_values: 'urn:gatehouse:acr:mfa' }), { headers: { accept: 'text/html' } });
    expect(locationOf(stepUp).pathname).toBe('/auth/second-factor');

    // A page answered by another session (signed out and in again meanwhile) counts for nothing.
    const fresh = await consentPage(browser, authorizeUrl(client.clientId, challenge));
    await browser.post('/auth/api/sign-out', {});
    await passwordStep(browser, email);
    const other = await decide(browser, { csrf_token: fresh.csrf, request: fresh.request, decision: 'approve' });
    expect(other.status).toBe(400);
    expect(await codesGranted(userId)).toBe(0);

    // The page answered in time by the session that saw it: the code.
    const ok = await consentPage(browser, authorizeUrl(client.clientId, challenge, { state: 'ok' }));
    const approved = await decide(browser, { csrf_token: ok.csrf, request: ok.request, decision: 'approve' });
    const target = new URL(continueTarget(await approved.text()));
    expect(target.origin + target.pathname).toBe(REDIRECT);
    expect(target.searchParams.get('state')).toBe('ok');
    expect(target.searchParams.get('code')).toMatch(/^ac1\./);
  });

  it('is single-use — two tabs, a replay — and only for the person who was asked', async () => {
    const client = await registerClient({ firstParty: false, name: 'Third Party' });
    const { email } = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, email);
    const { challenge } = await pkce();
    const a = await consentPage(browser, authorizeUrl(client.clientId, challenge, { state: 'a' }));
    const b = await consentPage(browser, authorizeUrl(client.clientId, challenge, { state: 'b' }));
    // Someone else, signed in, posting this person's request id.
    const thief = new TestBrowser();
    await passwordStep(thief, (await createVerifiedUser()).email);
    const { html } = await thief.open('/auth/sign-in');
    const stolen = await decide(thief, { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(html)![1]!, request: a.request, decision: 'approve' });
    expect(stolen.status).toBe(400);
    // The same person's other device (another live session) cannot answer it either.
    const laptop = new TestBrowser();
    await passwordStep(laptop, email);
    const { html: laptopPage } = await laptop.open('/auth/sign-in');
    const elsewhere = await decide(laptop, { csrf_token: /name="csrf_token" value="([^"]+)"/.exec(laptopPage)![1]!, request: a.request, decision: 'approve' });
    expect(elsewhere.status).toBe(400);
    const again = await consentPage(browser, authorizeUrl(client.clientId, challenge, { state: 'a' }));
    a.request = again.request;
    // The tabs answer their own requests; a second answer to the same one is refused.
    const first = await Promise.all([1, 2, 3].map(() => decide(browser, { csrf_token: a.csrf, request: a.request, decision: 'approve' })));
    expect(first.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    const second = await decide(browser, { csrf_token: b.csrf, request: b.request, decision: 'deny' });
    expect(Object.fromEntries(new URL(continueTarget(await second.text())).searchParams)).toMatchObject({ error: 'access_denied', state: 'b' });
  });
});

describe('the re-authentication marker', () => {
  /** Starts a prompt=login request in `cookie`'s browser and returns the marked way back. */
  async function markedReturn(clientId: string, cookie: string | undefined, over: Record<string, string> = {}) {
    const { challenge } = await pkce();
    const res = await call(authorizeUrl(clientId, challenge, { prompt: 'login', ...over }), cookie ? { cookie } : {});
    const to = locationOf(res);
    expect(to.pathname).toBe('/auth/sign-in');
    const back = to.searchParams.get('return_to')!;
    expect(back).toContain('gh_reauth=');
    return back;
  }
  const marker = (back: string) => new URL(back, ORIGIN).searchParams.get('gh_reauth')!;
  const withMarker = (url: string, m: string) => `${url}&gh_reauth=${encodeURIComponent(m)}`;

  it('minted while signed out, it does not make an older session count as a fresh sign-in', async () => {
    const client = await registerClient();
    const old = await createVerifiedUser();
    const { cookie } = await signIn(old.email); // signed in before the marker exists
    await new Promise((r) => setTimeout(r, 1100));
    const back = await markedReturn(client.clientId, undefined);
    const res = await call(back, { cookie });
    expect(locationOf(res).pathname).toBe('/auth/sign-in');
  });

  it('is bound to its client and its request, and lasts ten minutes', async () => {
    const a = await registerClient();
    const b = await registerClient();
    const user = await createVerifiedUser();
    const back = await markedReturn(a.clientId, undefined, { nonce: 'n-1' });
    await new Promise((r) => setTimeout(r, 1100));
    const { cookie } = await signIn(user.email); // a sign-in after the marker
    const m = marker(back);
    const { challenge } = await pkce();
    // Client B's request, client A's request with another nonce, scope or redirect: the marker does not apply.
    for (const url of [
      authorizeUrl(b.clientId, challenge, { nonce: 'n-1' }),
      authorizeUrl(a.clientId, challenge, { nonce: 'n-2' }),
      authorizeUrl(a.clientId, challenge, { nonce: 'n-1', scope: 'openid' }),
    ]) {
      const res = await call(withMarker(`${url}&max_age=0`, m), { cookie });
      expect(locationOf(res).pathname, url).toBe('/auth/sign-in');
    }
    // Its own request, after that sign-in: the code.
    expect(locationOf(await call(back, { cookie })).searchParams.get('code')).toMatch(/^ac1\./);
    // Eleven minutes later, not even that.
    const later = appWith(() => ({ now: () => Date.now() + 11 * 60_000 }));
    expect(locationOf(await later(back, { cookie })).pathname).toBe('/auth/sign-in');
  });

  it('does not count a session relayed by a handoff, which keeps the older sign-in', async () => {
    const client = await registerClient();
    const user = await createVerifiedUser();
    const phone = new TestBrowser();
    await passwordStep(phone, user.email);
    await new Promise((r) => setTimeout(r, 1100));
    const back = await markedReturn(client.clientId, undefined);
    // A computer signed in by approving its QR code on the phone (after the marker was minted).
    const computer = new TestBrowser();
    const { html } = await computer.open('/auth/handoff/qr');
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
    expect((await phone.submit('/auth/handoff/approve', { h: link.searchParams.get('h')!, decision: 'approve' }, `${link.pathname}${link.search}`)).status).toBe(200);
    expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(200);
    const res = await computer.fetch(back, { headers: { accept: 'text/html' } });
    expect(locationOf(res).pathname).toBe('/auth/sign-in');
  });
});
