import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { randomToken } from '../../src/lib/crypto';
import { TestBrowser } from '../browser';
import { continueTarget, createVerifiedUser, signIn, STRONG_PASSWORD, withinOneLimiterWindow } from '../helpers';
import {
  authorizeUrl,
  basic,
  consentPage,
  decide,
  getCode,
  pkce,
  REDIRECT,
  registerClient,
  registerResource,
  tokenRequest,
} from './helpers';

/**
 * Attacks an outside review ran against API resources at the authorization and token endpoints,
 * kept as regression tests: a peer spending a public client's budget, and one API's consent
 * standing in for another's scope of the same name.
 */
const scopes = (...names: string[]) => names.map((name) => ({ name, description: `Lets the app ${name}` }));

describe("the token endpoint's rate limit per client per API", () => {
  it("a peer with no credentials cannot spend a public client's token budget for an API (its users still get tokens)", async () => {
    const limited = await registerResource({ scopes: scopes('l:read'), rateLimit: { requests: 3, period: 60 } });
    const spa = await registerClient({
      public: true,
      grantTypes: ['authorization_code', 'refresh_token'],
      resources: [{ resource: limited, scopes: ['l:read'] }],
    });
    const { cookie } = await signIn((await createVerifiedUser()).email);
    await withinOneLimiterWindow();
    // Anyone on the internet: the client_id is public, a made-up but well-formed code is enough.
    for (let i = 0; i < 3; i++) {
      const bogus = await tokenRequest({
        grant_type: 'authorization_code',
        client_id: spa.clientId,
        code: `ac1.${crypto.randomUUID()}.${randomToken(32)}`,
        redirect_uri: REDIRECT,
        code_verifier: randomToken(48),
        resource: limited,
      });
      expect(bogus.status).toBe(400);
    }
    // A real user of the app, with a real code, a minute's worth of nothing.
    const { code, verifier } = await getCode(spa.clientId, cookie, { scope: 'openid l:read', resource: limited });
    const res = await tokenRequest({
      grant_type: 'authorization_code',
      client_id: spa.clientId,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      resource: limited,
    });
    expect(res.status, JSON.stringify(await res.clone().json())).toBe(200);
  });
});

describe('consent names each API with its scopes', () => {
  it("approving API A's `read` and API B's `b:basic` does not silently cover API B's `read`", async () => {
    // Two APIs that both call a scope `read` (nothing forbids it), meaning very different things.
    const posts = await registerResource({ name: 'Posts', scopes: [{ name: 'read', description: 'Read your public posts' }] });
    const bank = await registerResource({
      name: 'Bank',
      scopes: [
        { name: 'read', description: 'Read every statement of your bank account' },
        { name: 'b:basic', description: 'See your account number' },
      ],
    });
    const app = await registerClient({
      firstParty: false,
      resources: [
        { resource: posts, scopes: ['read'] },
        { resource: bank, scopes: ['read', 'b:basic'] },
      ],
    });
    const browser = new TestBrowser();
    const user = await createVerifiedUser();
    expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);

    const approve = async (scope: string, resource: string) => {
      const { challenge } = await pkce();
      const page = await consentPage(browser, authorizeUrl(app.clientId, challenge, { scope, resource }));
      const done = await decide(browser, { csrf_token: page.csrf, request: page.request, decision: 'approve' });
      expect(new URL(continueTarget(await done.text())).searchParams.get('code')).toBeTruthy();
      return page.html;
    };
    // The person agrees the app may read their public posts ...
    const first = await approve('openid read', posts);
    expect(first).toContain('Read your public posts');
    expect(first).not.toContain('Read every statement');
    // ... and may see their bank account number.
    const second = await approve('openid b:basic', bank);
    expect(second).not.toContain('Read every statement');

    // The app now asks for the bank's `read`: the person never saw "Read every statement of your bank account".
    const { challenge, verifier } = await pkce();
    const { res, html } = await browser.open(authorizeUrl(app.clientId, challenge, { scope: 'openid read', resource: bank }));
    if (res.status === 302) {
      const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
      const token = await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: bank },
        basic(app.clientId, app.clientSecret),
      );
      const claims = decodeJwt((await token.json<{ access_token: string }>()).access_token);
      expect.fail(`no consent page: a token for ${String(claims.aud)} with scope "${String(claims.scope)}" was issued`);
    }
    expect(html).toContain('Read every statement of your bank account');
  });
});
