import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { RESOURCE_CACHE_TTL_MS } from '../../src/oauth/api-resource-cache';
import { buildResource } from '../../src/oauth/api-resources';
import { TestBrowser } from '../browser';
import { appWith, call, continueTarget, createVerifiedUser, signIn, STRONG_PASSWORD } from '../helpers';
import {
  authorizeUrl,
  basic,
  consentPage,
  decide,
  form,
  getCode,
  pkce,
  REDIRECT,
  registerClient,
  registerResource,
  tokenRequest,
} from './helpers';

/**
 * Registered APIs (RFC 8707 resources) with scopes of their own. The attackers: a machine client
 * asking for more than it was granted (another API, another scope), a client whose token for one
 * API would carry another API's scopes, and a client hammering the token endpoint past its API's limit.
 */
const scopes = (...names: string[]) => names.map((name) => ({ name, description: `Lets the app ${name.replace(':', ' ')}` }));
type Client = { clientId: string; clientSecret: string };
const cc = (client: Client, fields: Record<string, string>, request: typeof call = call) => {
  const init = form({ grant_type: 'client_credentials', ...fields });
  return request('/auth/token', { ...init, headers: { ...init.headers, authorization: basic(client.clientId, client.clientSecret) } });
};

describe('API resources at the token endpoint (client_credentials)', () => {
  it("issues a token for the API with the API's scopes the client was granted, and nothing more", async () => {
    const orders = await registerResource({ name: 'Orders', scopes: scopes('orders:read', 'orders:write', 'orders:admin') });
    const billing = await registerResource({ name: 'Billing', scopes: scopes('billing:read') });
    const client = await registerClient({
      grantTypes: ['client_credentials'],
      redirectUris: [],
      resources: [{ resource: orders, scopes: ['orders:read', 'orders:write'] }],
    });

    const all = await cc(client, { resource: orders });
    expect(all.status).toBe(200);
    const body = await all.json<{ access_token: string; scope: string; expires_in: number }>();
    expect(body.scope).toBe('orders:read orders:write');
    expect(decodeJwt(body.access_token)).toMatchObject({
      aud: orders,
      sub: client.clientId,
      client_id: client.clientId,
      scope: 'orders:read orders:write',
      gty: 'client_credentials',
    });

    const narrow = await (await cc(client, { resource: orders, scope: 'orders:read' })).json<{ access_token: string }>();
    expect(decodeJwt(narrow.access_token).scope).toBe('orders:read');

    // A scope of the API it was not granted, a scope of another API, an OpenID scope: invalid_scope, no token.
    for (const scope of ['orders:admin', 'orders:read orders:admin', 'billing:read', 'openid', 'profile']) {
      const res = await cc(client, { resource: orders, scope });
      expect(res.status, scope).toBe(400);
      expect(await res.json(), scope).toMatchObject({ error: 'invalid_scope' });
    }
    // An API it may not ask for, one that is not registered at all, or two at once: invalid_target.
    for (const resource of [billing, 'https://unregistered.gatehouse.test', `${orders} ${billing}`, `${orders}/`]) {
      const res = await cc(client, { resource, scope: 'orders:read' });
      expect(res.status, resource).toBe(400);
      expect(await res.json(), resource).toMatchObject({ error: 'invalid_target' });
    }
  });

  it('a client granted an API that was deleted since gets invalid_target, not a token', async () => {
    const gone = await registerResource({ scopes: scopes('gone:read') });
    const client = await registerClient({
      grantTypes: ['client_credentials'],
      redirectUris: [],
      resources: [{ resource: gone, scopes: ['gone:read'] }],
    });
    // Read once on another app instance, so this isolate's client cache holds the grant...
    const request = appWith(() => ({}));
    expect((await cc(client, { resource: gone }, request)).status).toBe(200);
    await env.DB.prepare('DELETE FROM api_resources WHERE identifier = ?').bind(gone).run();
    // ...and after the API record's staleness bound the API is gone, whatever the client record says.
    const later = appWith((deps) => ({ now: () => deps.now() + RESOURCE_CACHE_TTL_MS + 1 }));
    const res = await cc(client, { resource: gone }, later);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_target' });
  });

  it("takes the API's token format and the shorter of the API's and the client's lifetimes", async () => {
    const opaque = await registerResource({ scopes: scopes('o:read'), accessTokenFormat: 'opaque', accessTokenTtl: 120 });
    const client = await registerClient({
      grantTypes: ['client_credentials'],
      redirectUris: [],
      resources: [{ resource: opaque, scopes: ['o:read'] }],
    });
    const res = await (await cc(client, { resource: opaque })).json<{ access_token: string; expires_in: number }>();
    expect(res.access_token).toMatch(/^ot1\./);
    expect(res.expires_in).toBe(120);
    const shortLived = await registerClient({
      grantTypes: ['client_credentials'],
      redirectUris: [],
      accessTokenTtl: 60,
      resources: [{ resource: opaque, scopes: ['o:read'] }],
    });
    expect((await (await cc(shortLived, { resource: opaque })).json<{ expires_in: number }>()).expires_in).toBe(60);
    // The opaque token works where the API's tokens are introspected: its JWT says the API.
    const auth = { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) };
    const seen = await (await call('/auth/introspect', { ...form({ token: res.access_token }), headers: auth })).json();
    expect(seen).toMatchObject({ active: true, aud: opaque, scope: 'o:read' });
  });

  it("counts token requests per client against the API's limit: exactly the limit passes, then 429 with Retry-After until the window turns", async () => {
    const limited = await registerResource({ scopes: scopes('l:read'), rateLimit: { requests: 3, period: 60 } });
    const grant = [{ resource: limited, scopes: ['l:read'] }];
    const a = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [], resources: grant });
    const b = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [], resources: grant });
    // A clock at the start of a window, so the window cannot turn mid-test.
    const start = Math.ceil(Date.now() / 60_000) * 60_000 + 1_000;
    const at = (t: number) => appWith(() => ({ now: () => t }));
    for (let i = 0; i < 3; i++) expect((await cc(a, { resource: limited }, at(start + i))).status, `request ${i + 1}`).toBe(200);
    const over = await cc(a, { resource: limited }, at(start + 5_000));
    expect(over.status).toBe(429);
    // The window began a second before `start` and ends 60 s after that: 54 s are left.
    expect(over.headers.get('retry-after')).toBe('54');
    expect(await over.json()).toMatchObject({ error: 'rate_limited' });
    // Another client has a count of its own; a token for Gatehouse itself is not this API's.
    expect((await cc(b, { resource: limited }, at(start + 5_000))).status).toBe(200);
    // The next window.
    expect((await cc(a, { resource: limited }, at(start + 60_000))).status).toBe(200);
  });
});

describe('registering an API', () => {
  it('refuses what a consent page could not show faithfully, or a scope that is not the API’s to define, naming the field', () => {
    const problem = (input: Parameters<typeof buildResource>[0]) => {
      try {
        buildResource(input, Date.now());
      } catch (e) {
        const issue = (e as { issues: { path: PropertyKey[]; message: string }[] }).issues[0]!;
        return `${issue.path.join('.')}: ${issue.message}`;
      }
      return null;
    };
    const api = 'https://api.example.com';
    expect(
      problem({ identifier: api, name: 'Orders', scopes: [{ name: 'x:read', description: 'Read your orders \u202eetirw dna' }] }),
    ).toBe('scopes.0.description: description must not contain control or bidirectional-override characters');
    expect(problem({ identifier: api, name: 'Ord\u202eers' })).toBe(
      'name: name must not contain control or bidirectional-override characters',
    );
    expect(problem({ identifier: api, name: 'Orders', scopes: [{ name: 'openid', description: null }] })).toBe(
      'scopes.0.name: is an OpenID Connect scope, not an API scope',
    );
    expect(problem({ identifier: api, name: 'Orders', scopes: [{ name: 'a b', description: null }] })).toMatch(/^scopes\.0\.name: must be/);
    expect(problem({ identifier: `${api}#x`, name: 'Orders' })).toMatch(/^identifier: .* must not contain a fragment/);
    expect(problem({ identifier: 'http://api.example.com', name: 'Orders' })).toMatch(/^identifier: .* must be an https URL or a URN/);
    expect(
      problem({
        identifier: api,
        name: 'Orders',
        scopes: [
          { name: 'x', description: null },
          { name: 'x', description: null },
        ],
      }),
    ).toBe('scopes: names a scope twice');
    expect(problem({ identifier: api, name: 'Orders', rateLimit: { requests: 0, period: 60 } })).toMatch(/^rateLimit\.requests:/);
    expect(problem({ identifier: api, name: 'Orders', scopes: [{ name: 'orders:read', description: 'Read your orders' }] })).toBeNull();
  });
});

describe('API resources in user grants', () => {
  it("a user's token for an API carries its OpenID scopes and that API's scopes — never another API's", async () => {
    const one = await registerResource({ name: 'One', scopes: scopes('one:read') });
    const two = await registerResource({ name: 'Two', scopes: scopes('two:read') });
    const client = await registerClient({
      resources: [
        { resource: one, scopes: ['one:read'] },
        { resource: two, scopes: ['two:read'] },
      ],
    });
    const { cookie } = await signIn((await createVerifiedUser()).email);
    const tokenFor = async (resource?: string) => {
      const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid one:read two:read', resource: `${one} ${two}` });
      const res = await tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...(resource ? { resource } : {}) },
        basic(client.clientId, client.clientSecret),
      );
      expect(res.status).toBe(200);
      return res.json<{ access_token: string; scope: string }>();
    };
    const forOne = await tokenFor(one);
    expect(forOne.scope).toBe('openid one:read');
    expect(decodeJwt(forOne.access_token)).toMatchObject({ aud: one, scope: 'openid one:read' });
    expect(decodeJwt((await tokenFor(two)).access_token)).toMatchObject({ aud: two, scope: 'openid two:read' });
    // For Gatehouse itself (userinfo): the OpenID scopes only.
    expect(decodeJwt((await tokenFor()).access_token).scope).toBe('openid');
  });

  it('drops the scopes of an API a third-party request did not name, and a scope the client was not granted', async () => {
    const api = await registerResource({ scopes: scopes('x:read', 'x:write') });
    const client = await registerClient({ firstParty: false, resources: [{ resource: api, scopes: ['x:read'] }] });
    const browser = new TestBrowser();
    const user = await createVerifiedUser();
    expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
    const { challenge } = await pkce();
    // No resource named: the consent page (and so the grant) holds the OpenID scope only.
    const page = await consentPage(browser, authorizeUrl(client.clientId, challenge, { scope: 'openid x:read x:write' }));
    expect(page.html).not.toContain('x:read');
    expect(page.html).not.toContain('x:write');
  });

  it("the consent page names each API and describes its scopes in the API's words; the decision grants them", async () => {
    const api = await registerResource({ name: 'Orders API', scopes: scopes('orders:read', 'orders:cancel') });
    const client = await registerClient({
      firstParty: false,
      name: 'Shop Helper',
      resources: [{ resource: api, scopes: ['orders:read', 'orders:cancel'] }],
    });
    const browser = new TestBrowser();
    const user = await createVerifiedUser();
    expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
    const { challenge, verifier } = await pkce();
    const page = await consentPage(browser, authorizeUrl(client.clientId, challenge, { scope: 'openid orders:read', resource: api }));
    expect(page.html).toContain('Orders API');
    expect(page.html).toContain(`<code>${api}</code>`);
    expect(page.html).toContain('Lets the app orders read <code>orders:read</code>');
    // Only what was asked: the other scope the client may have is not on the page.
    expect(page.html).not.toContain('orders:cancel');
    const done = await decide(browser, { csrf_token: page.csrf, request: page.request, decision: 'approve' });
    const code = new URL(continueTarget(await done.text())).searchParams.get('code')!;
    const res = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: api },
      basic(client.clientId, client.clientSecret),
    );
    expect(decodeJwt((await res.json<{ access_token: string }>()).access_token)).toMatchObject({ aud: api, scope: 'openid orders:read' });
  });
});
