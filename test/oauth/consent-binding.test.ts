import { describe, expect, it } from 'vitest';
import { enrolled, passwordStep } from '../auth/helpers';
import { TestBrowser } from '../browser';
import {
  APP,
  appWith,
  auditOf,
  call,
  continueTarget,
  cookieFrom,
  createVerifiedUser,
  ORIGIN,
  SESSION,
  signIn,
  STRONG_PASSWORD,
} from '../helpers';
import { API_SCOPES, authorizeUrl, basic, consentPage, decide, getCode, pkce, REDIRECT, registerClient, tokenRequest } from './helpers';

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
    const stepUp = await enrolledUser.browser.fetch(authorizeUrl(client.clientId, challenge, { acr_values: 'urn:gatehouse:acr:mfa' }), {
      headers: { accept: 'text/html' },
    });
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
    const stolen = await decide(thief, {
      csrf_token: /name="csrf_token" value="([^"]+)"/.exec(html)![1]!,
      request: a.request,
      decision: 'approve',
    });
    expect(stolen.status).toBe(400);
    // The same person's other device (another live session) cannot answer it either.
    const laptop = new TestBrowser();
    await passwordStep(laptop, email);
    const { html: laptopPage } = await laptop.open('/auth/sign-in');
    const elsewhere = await decide(laptop, {
      csrf_token: /name="csrf_token" value="([^"]+)"/.exec(laptopPage)![1]!,
      request: a.request,
      decision: 'approve',
    });
    expect(elsewhere.status).toBe(400);
    const again = await consentPage(browser, authorizeUrl(client.clientId, challenge, { state: 'a' }));
    a.request = again.request;
    // The tabs answer their own requests; a second answer to the same one is refused.
    const first = await Promise.all([1, 2, 3].map(() => decide(browser, { csrf_token: a.csrf, request: a.request, decision: 'approve' })));
    expect(first.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    const second = await decide(browser, { csrf_token: b.csrf, request: b.request, decision: 'deny' });
    expect(Object.fromEntries(new URL(continueTarget(await second.text())).searchParams)).toMatchObject({
      error: 'access_denied',
      state: 'b',
    });
  });
});

describe('the re-authentication marker', () => {
  /** Starts a prompt=login request in `cookie`'s browser (through `via`) and returns the marked way back. */
  async function markedReturn(clientId: string, cookie: string | undefined, over: Record<string, string> = {}, via: typeof call = call) {
    const { challenge } = await pkce();
    const res = await via(authorizeUrl(clientId, challenge, { prompt: 'login', ...over }), cookie ? { cookie } : {});
    const to = locationOf(res);
    expect(to.pathname).toBe('/auth/sign-in');
    const back = to.searchParams.get('return_to')!;
    expect(back).toContain('gh_reauth=');
    return back;
  }
  const marker = (back: string) => new URL(back, ORIGIN).searchParams.get('gh_reauth')!;
  const withMarker = (url: string, m: string) => `${url}&gh_reauth=${encodeURIComponent(m)}`;
  // auth_time has one-second resolution. What must happen in a later second runs on a clock two
  // seconds ahead rather than after a wait.
  const ahead = () => ({ now: () => Date.now() + 2000 });
  const callAhead = appWith(ahead);

  it('minted while signed out, it does not make an older session count as a fresh sign-in', async () => {
    const client = await registerClient();
    const old = await createVerifiedUser();
    const { cookie } = await signIn(old.email); // signed in before the marker exists
    const back = await markedReturn(client.clientId, undefined, {}, callAhead);
    const res = await callAhead(back, { cookie });
    expect(locationOf(res).pathname).toBe('/auth/sign-in');
  });

  it('is bound to its client and its request, and lasts ten minutes', async () => {
    const a = await registerClient();
    const b = await registerClient();
    const user = await createVerifiedUser();
    const back = await markedReturn(a.clientId, undefined, { nonce: 'n-1' });
    const signedIn = await callAhead('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: STRONG_PASSWORD } }); // a sign-in after the marker
    const cookie = cookieFrom(signedIn, SESSION)!.pair;
    const m = marker(back);
    const { challenge } = await pkce();
    // Client B's request, client A's request with another nonce, scope or redirect: the marker does not apply.
    for (const url of [
      authorizeUrl(b.clientId, challenge, { nonce: 'n-1' }),
      authorizeUrl(a.clientId, challenge, { nonce: 'n-2' }),
      authorizeUrl(a.clientId, challenge, { nonce: 'n-1', scope: 'openid' }),
    ]) {
      const res = await callAhead(withMarker(`${url}&max_age=0`, m), { cookie });
      expect(locationOf(res).pathname, url).toBe('/auth/sign-in');
    }
    // Its own request, after that sign-in: the code.
    expect(locationOf(await callAhead(back, { cookie })).searchParams.get('code')).toMatch(/^ac1\./);
    // Eleven minutes later, not even that.
    const later = appWith(() => ({ now: () => Date.now() + 11 * 60_000 }));
    expect(locationOf(await later(back, { cookie })).pathname).toBe('/auth/sign-in');
  });

  it('does not count a session relayed by a handoff, which keeps the older sign-in', async () => {
    const client = await registerClient();
    const user = await createVerifiedUser();
    const phone = new TestBrowser();
    await passwordStep(phone, user.email);
    const back = await markedReturn(client.clientId, undefined, {}, callAhead);
    // A computer signed in by approving its QR code on the phone (after the marker was minted).
    const computer = new TestBrowser().at(ahead);
    const { html } = await computer.open('/auth/handoff/qr');
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
    expect(
      (
        await phone
          .at(ahead)
          .submit('/auth/handoff/approve', { h: link.searchParams.get('h')!, decision: 'approve' }, `${link.pathname}${link.search}`)
      ).status,
    ).toBe(200);
    expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(200);
    const res = await computer.fetch(back, { headers: { accept: 'text/html' } });
    expect(locationOf(res).pathname).toBe('/auth/sign-in');
  });
});

describe('what a consent covers', () => {
  const API = 'https://api.gatehouse.test';
  const ADMIN_API = 'https://admin.gatehouse.test';
  const codeOf = async (res: Response) => new URL(continueTarget(await res.text())).searchParams.get('code')!;
  const exchange = (client: { clientId: string; clientSecret: string }, code: string, verifier: string, resource?: string) =>
    tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...(resource ? { resource } : {}) },
      basic(client.clientId, client.clientSecret),
    );

  it('an API is reached only on a consent page that named it: not by a code from a sign-in-only consent, nor silently later', async () => {
    const client = await registerClient({ firstParty: false, name: 'Third Party', resources: [API, ADMIN_API] });
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);

    // 1. Consent to "sign in" only: the page names no API, and its code buys no token for one.
    const first = await pkce();
    const page = await consentPage(browser, authorizeUrl(client.clientId, first.challenge, { scope: 'openid profile' }));
    const firstCode = await codeOf(await decide(browser, { csrf_token: page.csrf, request: page.request, decision: 'approve' }));
    const forApi = await exchange(client, firstCode, first.verifier, API);
    expect(forApi.status).toBe(400);
    expect(await forApi.json()).toMatchObject({ error: 'invalid_target' });

    // 2. The same scopes for the API: consent is asked again, and the page names the API.
    const second = await pkce();
    const again = await consentPage(browser, authorizeUrl(client.clientId, second.challenge, { scope: 'openid profile', resource: API }));
    expect(again.html).toContain(API);
    // An operator's client: where approving leads, and no "registered itself" warning.
    expect(again.html).toContain('<code id="consent-destination">app.example.com</code>');
    expect(again.html).not.toContain('registered itself');
    const code = await codeOf(await decide(browser, { csrf_token: again.csrf, request: again.request, decision: 'approve' }));
    const token = await exchange(client, code, second.verifier, API);
    expect(token.status).toBe(200);
    const { access_token } = await token.json<{ access_token: string }>();
    expect(
      (await call(`${APP}/demo/api/x`, { headers: { authorization: `Bearer ${access_token}`, accept: 'application/json' } })).status,
    ).toBe(200);

    // 3. Now that API is covered (no page); the other API is not.
    const third = await pkce();
    const silent = await browser.fetch(authorizeUrl(client.clientId, third.challenge, { scope: 'openid', resource: API }), {
      headers: { accept: 'text/html' },
    });
    expect(silent.status).toBe(302);
    expect(locationOf(silent).origin + locationOf(silent).pathname).toBe(REDIRECT);
    const other = await browser.fetch(
      authorizeUrl(client.clientId, third.challenge, { scope: 'openid', resource: `${API} ${ADMIN_API}` }),
      { headers: { accept: 'text/html' } },
    );
    expect(other.status).toBe(200);
    expect(await other.text()).toContain(ADMIN_API);
  });

  it('a first-party client asks no consent, so its grant reaches every API it is registered for', async () => {
    const client = await registerClient({ firstParty: true, resources: [{ resource: API, scopes: API_SCOPES }] });
    const { cookie } = await signIn((await createVerifiedUser()).email);
    const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid' });
    expect((await exchange(client, code, verifier, API)).status).toBe(200);
  });
});

describe('offline access', () => {
  const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

  it('takes a recent sign-in on this device, as approving a device does: a stale or stolen cookie mints no refresh token that outlives it', async () => {
    const client = await registerClient({
      grantTypes: ['authorization_code', 'refresh_token', DEVICE_GRANT],
      scopes: ['openid', 'offline_access', 'profile'],
    });
    const user = await createVerifiedUser();
    const victim = new TestBrowser();
    expect((await victim.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
    const thief = victim.at(() => ({ now: () => Date.now() + 60 * 60_000 })); // the cookie, an hour later
    const { challenge } = await pkce();
    for (const prompt of [undefined, 'none']) {
      const res = await thief.fetch(authorizeUrl(client.clientId, challenge, { scope: 'openid offline_access', prompt }), {
        headers: { accept: 'text/html' },
      });
      expect(res.status, prompt).toBe(302);
      const to = locationOf(res);
      if (prompt === 'none') expect(to.searchParams.get('error')).toBe('login_required');
      else expect(to.pathname).toBe('/auth/sign-in');
      expect(to.searchParams.get('code')).toBeNull();
    }
    // Without offline_access the stale session still signs in to the app (its tokens die with it).
    const plain = await thief.fetch(authorizeUrl(client.clientId, challenge, { scope: 'openid' }), { headers: { accept: 'text/html' } });
    expect(locationOf(plain).searchParams.get('code')).toMatch(/^ac1\./);
    // Signed in just now, on this device: offline_access is granted.
    const recent = await victim.fetch(authorizeUrl(client.clientId, challenge, { scope: 'openid offline_access' }), {
      headers: { accept: 'text/html' },
    });
    expect(locationOf(recent).searchParams.get('code')).toMatch(/^ac1\./);
  });

  it('is not granted to a session a handoff relayed', async () => {
    const client = await registerClient();
    const user = await createVerifiedUser();
    const phone = new TestBrowser();
    await passwordStep(phone, user.email);
    const computer = new TestBrowser();
    const { html } = await computer.open('/auth/handoff/qr');
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&'));
    expect(
      (
        await phone.submit(
          '/auth/handoff/approve',
          { h: link.searchParams.get('h')!, decision: 'approve' },
          `${link.pathname}${link.search}`,
        )
      ).status,
    ).toBe(200);
    expect((await computer.post('/auth/api/handoff/redeem', { kind: 'qr' })).status).toBe(200);
    const { challenge } = await pkce();
    const res = await computer.fetch(authorizeUrl(client.clientId, challenge, { scope: 'openid offline_access' }), {
      headers: { accept: 'text/html' },
    });
    expect(locationOf(res).pathname).toBe('/auth/sign-in');
    const plain = await computer.fetch(authorizeUrl(client.clientId, challenge, { scope: 'openid' }), { headers: { accept: 'text/html' } });
    expect(locationOf(plain).searchParams.get('code')).toMatch(/^ac1\./);
  });
});
