import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { auditOf, call, continueTarget, createVerifiedUser, ORIGIN, STRONG_PASSWORD } from '../helpers';
import { API, authorizeUrl, basic, consentPage, decide, pkce, REDIRECT, registerClient, tokenRequest } from '../oauth/helpers';

/**
 * Connected apps: every client the person let in, and taking that back. The attackers: another
 * person naming this one's app, a stale (stolen) session disconnecting apps, and the app itself,
 * whose refresh token, access token and unredeemed code must stop working the moment access is
 * taken back.
 */
const later = (minutes: number) => () => ({ now: () => Date.now() + minutes * 60_000 });

interface App {
  clientId: string;
  name: string;
  scopes: string[];
  apis: Record<string, string[]>;
  grantedAt: number | null;
  refreshTokens: number;
}

async function signedIn(email: string) {
  const browser = new TestBrowser();
  expect((await browser.post('/auth/api/sign-in', { email, password: STRONG_PASSWORD })).status).toBe(200);
  return browser;
}

/** A third-party app the person approves on the consent page; returns its tokens. */
async function connect(browser: TestBrowser, client: { clientId: string; clientSecret: string }, scope = 'openid email offline_access') {
  const { verifier, challenge } = await pkce();
  const url = authorizeUrl(client.clientId, challenge, { scope, resource: API });
  const page = await consentPage(browser, url);
  const approved = await decide(browser, { csrf_token: page.csrf, request: page.request, decision: 'approve' });
  const code = new URL(continueTarget(await approved.text())).searchParams.get('code')!;
  expect(code).toBeTruthy();
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API },
    basic(client.clientId, client.clientSecret),
  );
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
}

/** A code for an app already approved (no page), not yet redeemed. */
async function silentCode(browser: TestBrowser, clientId: string) {
  const { verifier, challenge } = await pkce();
  const res = await browser.fetch(authorizeUrl(clientId, challenge, { prompt: 'none', scope: 'openid email' }));
  const location = new URL(res.headers.get('location')!);
  return { code: location.searchParams.get('code'), error: location.searchParams.get('error'), verifier };
}

const refresh = (client: { clientId: string; clientSecret: string }, token: string) =>
  tokenRequest({ grant_type: 'refresh_token', refresh_token: token }, basic(client.clientId, client.clientSecret));

const appsOf = async (browser: TestBrowser) => ((await (await browser.fetch('/auth/api/connected-apps')).json()) as { apps: App[] }).apps;
const revoke = (browser: TestBrowser, clientId: string) =>
  browser.fetch(`/auth/api/connected-apps/${encodeURIComponent(clientId)}`, { method: 'DELETE', headers: { origin: ORIGIN } });

async function setUp() {
  const client = await registerClient({ firstParty: false, name: 'Photo Printer' });
  const user = await createVerifiedUser();
  const browser = await signedIn(user.email);
  const tokens = await connect(browser, client);
  return { client, user, browser, tokens };
}

describe('connected apps', () => {
  it('lists an approved app with its name, scopes, APIs, when, and its live refresh token', async () => {
    const { client, browser } = await setUp();
    const apps = await appsOf(browser);
    expect(apps).toEqual([
      {
        clientId: client.clientId,
        name: 'Photo Printer',
        logoUri: null,
        scopes: ['email', 'offline_access', 'openid'],
        apis: { [API]: [] },
        grantedAt: expect.any(Number),
        refreshTokens: 1,
        lastAuthTime: expect.any(Number),
      },
    ]);
    expect(Math.abs(apps[0]!.grantedAt! - Date.now())).toBeLessThan(60_000);
    const { html } = await browser.open('/auth/account');
    expect(html).toContain(`data-client-id="${client.clientId}"`);
    expect(html).toContain('Photo Printer');
  });

  it('a first-party app (which asks no consent) is listed by its refresh token', async () => {
    const client = await registerClient({ name: 'Own App' });
    const user = await createVerifiedUser();
    const browser = await signedIn(user.email);
    const { verifier, challenge } = await pkce();
    const res = await browser.fetch(authorizeUrl(client.clientId, challenge, { scope: 'openid offline_access' }));
    const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
    const tokens = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(tokens.status).toBe(200);
    expect(await appsOf(browser)).toEqual([
      expect.objectContaining({
        clientId: client.clientId,
        name: 'Own App',
        grantedAt: null,
        refreshTokens: 1,
        scopes: ['offline_access', 'openid'],
      }),
    ]);
  });

  it('revoking ends the app’s access at once: refresh token, access token, unredeemed code; consent gone; audited', async () => {
    const { client, user, browser, tokens } = await setUp();
    const pending = await silentCode(browser, client.clientId);
    expect(pending.code).toBeTruthy();
    // A gateway route that checks liveness (fresh) accepts the app's access token…
    const api = () =>
      call('https://app.gatehouse.test/demo/api-fresh/orders', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect((await api()).status).toBe(200);

    const res = await revoke(browser, client.clientId);
    expect(res.status).toBe(204);

    const refreshed = await refresh(client, tokens.refresh_token);
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    const redeemed = await tokenRequest(
      { grant_type: 'authorization_code', code: pending.code!, redirect_uri: REDIRECT, code_verifier: pending.verifier },
      basic(client.clientId, client.clientSecret),
    );
    expect(await redeemed.json()).toMatchObject({ error: 'invalid_grant' });
    // …and refuses it once access is taken back.
    expect((await api()).status).toBe(401);

    expect(await appsOf(browser)).toEqual([]);
    const row = await env.DB.prepare('SELECT 1 FROM consents WHERE user_id = ? AND client_id = ?')
      .bind(user.userId, client.clientId)
      .first();
    expect(row).toBeNull();
    // The app must ask again: prompt=none cannot get a code.
    expect((await silentCode(browser, client.clientId)).error).toBe('consent_required');
    const events = (await auditOf(user.userId)).results.filter((e) => e.type === 'consent_revoked');
    expect(events.map((e) => JSON.parse(e.detail!))).toEqual([
      { clientId: client.clientId, by: 'user', refreshTokensRevoked: 1, hadConsent: true },
    ]);
    const column = await env.DB.prepare("SELECT client_id FROM audit_events WHERE user_id = ? AND type = 'consent_revoked'")
      .bind(user.userId)
      .first<{ client_id: string }>();
    expect(column!.client_id).toBe(client.clientId);
    // Again: there is nothing left to revoke.
    expect((await revoke(browser, client.clientId)).status).toBe(404);
  });

  it('another person cannot revoke this person’s grant by naming its client id: 404, and nothing changes', async () => {
    const { client, user, browser, tokens } = await setUp();
    const other = await signedIn((await createVerifiedUser()).email);
    const res = await revoke(other, client.clientId);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'not_found', field: 'clientId' });
    expect((await refresh(client, tokens.refresh_token)).status).toBe(200);
    expect(await appsOf(browser)).toHaveLength(1);
    expect((await auditOf(user.userId)).results.some((e) => e.type === 'consent_revoked')).toBe(false);
  });

  it('a stale session cannot disconnect apps (sensitive-action rule); a proof given now can', async () => {
    const { client, browser, tokens } = await setUp();
    const stale = browser.at(later(11));
    const res = await revoke(stale, client.clientId);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'recent_sign_in_required' });
    const page = await stale.submit(`/auth/account/connected-apps/${client.clientId}/revoke`, {}, '/auth/account');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toMatch(/reason=recent$/);
    const next = await refresh(client, tokens.refresh_token);
    expect(next.status).toBe(200);
    const withProof = await stale.fetch(`/auth/api/connected-apps/${client.clientId}`, {
      method: 'DELETE',
      json: { proof: { password: STRONG_PASSWORD } },
      headers: { origin: ORIGIN },
    });
    expect(withProof.status).toBe(204);
    expect((await refresh(client, ((await next.json()) as { refresh_token: string }).refresh_token)).status).toBe(400);
  });

  it('a cross-site call is refused, and signed out is a 401', async () => {
    const { client, browser } = await setUp();
    const res = await browser.fetch(`/auth/api/connected-apps/${client.clientId}`, {
      method: 'DELETE',
      headers: { origin: 'https://evil.example' },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'csrf_failed' });
    expect((await new TestBrowser().fetch('/auth/api/connected-apps')).status).toBe(401);
    expect(await appsOf(browser)).toHaveLength(1);
  });

  it('the account page’s button revokes, and only this app', async () => {
    const { client, browser, tokens } = await setUp();
    const second = await registerClient({ firstParty: false, name: 'Calendar Sync' });
    const kept = await connect(browser, second);
    const res = await browser.submit(`/auth/account/connected-apps/${client.clientId}/revoke`, {}, '/auth/account');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/auth/account?app=revoked');
    expect((await refresh(client, tokens.refresh_token)).status).toBe(400);
    expect((await refresh(second, kept.refresh_token)).status).toBe(200);
    expect((await appsOf(browser)).map((a) => a.name)).toEqual(['Calendar Sync']);
  });
});
