import { env } from 'cloudflare:workers';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { forgetProviders } from '../../src/auth/upstream-provider-records';
import { buildProvider, type ProviderInput } from '../../src/auth/upstream-providers';
import { createDb } from '../../src/db/client';
import { identityProviders } from '../../src/db/schema';
import { randomToken } from '../../src/lib/crypto';
import { TestBrowser } from '../browser';
import { auditOf, createVerifiedUser, lastMailTo, ORIGIN, tokenFrom } from '../helpers';
import {
  APPLE,
  apple as fakeApple,
  appleKey,
  type Claims,
  entra,
  entraIssuer,
  github as fakeGitHub,
  GITHUB,
  type GitHubAccount,
  google,
  GOOGLE,
  MSA_TENANT,
  type RegisteredClient,
} from './fake-presets';
import { continueHref, formPostBack, KEK } from './upstream-helpers';

/**
 * The presets (Google, Entra, Apple, GitHub) against fakes of their real hosts, through the real
 * pages: the sign-in page's button, the Continue page, the upstream's authorization endpoint, the
 * callback. Each preset's quirks, and the attacks on them, end in rows: the linked identity (issuer,
 * subject), the user, the session, the audit trail.
 */

const PENDING_LINK = '__Host-gatehouse_pending_link';
const callbackUrl = (id: string) => `${ORIGIN}/auth/upstream/${id}/callback`;
const slug = () =>
  randomToken(6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x');

/** A provider of a preset, registered as the operator would (buildProvider seals its secrets), and its client at the fake upstream. */
async function register(
  fake: { clients: Map<string, RegisteredClient> },
  input: Omit<ProviderInput, 'id' | 'displayName' | 'clientId'>,
  client: Partial<RegisteredClient> = {},
) {
  const id = `${input.kind}-${slug()}`;
  const clientId = `client-${slug()}`;
  const row = await buildProvider({ id, displayName: `${input.kind} ${id}`, clientId, ...input } as ProviderInput, KEK, Date.now());
  await createDb(env.DB).insert(identityProviders).values(row);
  forgetProviders();
  fake.clients.set(clientId, { clientId, redirectUri: callbackUrl(id), secret: input.clientSecret, ...client });
  return { id, clientId };
}

/** Presses the provider's button on the sign-in page: the Continue page's target, the upstream's authorization URL. */
async function start(browser: TestBrowser, providerId: string): Promise<URL> {
  const { html } = await browser.open('/auth/sign-in');
  expect(html).toContain(`data-provider="${providerId}"`);
  const res = await browser.submit(`/auth/upstream/${providerId}`, {}, '/auth/sign-in');
  const page = await res.text();
  expect(res.status, page.slice(0, 400)).toBe(200);
  return new URL(continueHref(page)!);
}

const back = (browser: TestBrowser, path: string) =>
  browser.fetch(path, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });

const linkedIdentity = (issuer: string, subject: string) =>
  env.DB.prepare('SELECT * FROM linked_identities WHERE issuer = ? AND subject = ?')
    .bind(issuer, subject)
    .first<{ user_id: string; provider_id: string; email: string | null; email_verified: number; name: string | null }>();
const identitiesOf = (userId: string) =>
  env.DB.prepare('SELECT issuer, subject FROM linked_identities WHERE user_id = ?').bind(userId).all<{ issuer: string; subject: string }>();
const userRow = (id: string) =>
  env.DB.prepare('SELECT email, email_verified_at, name FROM users WHERE id = ?')
    .bind(id)
    .first<{ email: string; email_verified_at: number | null; name: string | null }>();

/** The signed-in account and session on this browser (the session the callback set). */
async function signedIn(browser: TestBrowser) {
  const res = await browser.fetch('/auth/api/me');
  expect(res.status).toBe(200);
  return (await res.json()) as { user: { id: string; email: string | null }; session: { amr: string[] } };
}

/** A callback that signed the person in: a redirect on, the session cookie, amr `fed`. */
async function expectSignedIn(browser: TestBrowser, res: Response) {
  expect(res.status, (await res.clone().text()).slice(0, 600)).toBe(303);
  expect(browser.cookie('__Host-gatehouse_session')).toBeTruthy();
  const me = await signedIn(browser);
  expect(me.session.amr).toContain('fed');
  return me;
}

const auditTypes = async (userId: string) => (await auditOf(userId)).results.map((r) => r.type);

/**
 * An upstream that may not vouch for an address an account has: the page every such answer gets
 * (as for an address nobody has), a pending link in this browser, no session, nothing linked —
 * and the account's owner asked by mail.
 */
async function expectLinkRequested(browser: TestBrowser, res: Response, local: { email: string; userId: string }, provider: string) {
  const html = await res.text();
  expect(res.status, html.slice(0, 600)).toBe(202);
  expect(html).toContain('Check your email');
  expect(html).toContain(`We sent a message to ${local.email}.`);
  expect(browser.cookie(PENDING_LINK)).toBeTruthy();
  expect(browser.cookie('__Host-gatehouse_session')).toBeUndefined();
  expect((await identitiesOf(local.userId)).results).toEqual([]);
  expect(await auditTypes(local.userId)).not.toContain('identity_linked');
  expect(await auditTypes(local.userId)).toContain('identity_link_requested');
  expect((await lastMailTo(local.email)).subject).toBe(`Link ${provider} to your account?`);
}

describe('Google', () => {
  const person = (over: Claims = {}): Claims => ({
    sub: `1${Math.floor(Math.random() * 1e17)}`,
    email: `ada.${slug()}@gmail.com`,
    email_verified: true,
    name: 'Ada Lovelace',
    picture: 'https://lh3.googleusercontent.com/a/fake',
    ...over,
  });

  async function viaGoogle(browser: TestBrowser, claims: Claims) {
    const g = await google();
    const provider = await register(g, { kind: 'google', clientSecret: randomToken(24) });
    const b = browser.at(() => ({ fetch: g.fetch }));
    const href = await start(b, provider.id);
    expect(href.origin + href.pathname).toBe(GOOGLE.authorize);
    return { b, href, provider, res: await back(b, g.authorize(href.toString(), claims)) };
  }

  it('asks Google at its own endpoints with PKCE and a nonce, and signs up a Gmail address verified, keyed on issuer and sub', async () => {
    const claims = person();
    const { b, href, provider, res } = await viaGoogle(new TestBrowser(), claims);
    expect(href.searchParams.get('scope')).toBe('openid email profile');
    expect(href.searchParams.get('code_challenge_method')).toBe('S256');
    expect(href.searchParams.get('nonce')).toBeTruthy();
    expect(href.searchParams.get('redirect_uri')).toBe(callbackUrl(provider.id));
    // Offline access only for a provider that keeps tokens (below).
    expect(href.searchParams.get('access_type')).toBeNull();
    const me = await expectSignedIn(b, res);
    const linked = await linkedIdentity(GOOGLE.issuer, claims.sub as string);
    expect(linked).toMatchObject({ user_id: me.user.id, provider_id: provider.id, email: claims.email, email_verified: 1 });
    expect(await userRow(me.user.id)).toMatchObject({ email: claims.email, name: 'Ada Lovelace', email_verified_at: expect.any(Number) });
    expect(await auditTypes(me.user.id)).toEqual(expect.arrayContaining(['sign_up', 'identity_linked', 'sign_in']));
  });

  it('asks Google for offline access (a refresh token) only when the provider keeps tokens', async () => {
    const g = await google();
    const provider = await register(g, { kind: 'google', clientSecret: randomToken(24), storeTokens: true });
    const href = await start(
      new TestBrowser().at(() => ({ fetch: g.fetch })),
      provider.id,
    );
    expect(href.searchParams.get('access_type')).toBe('offline');
  });

  it('links a verified Gmail address to the verified local account that has it, at once', async () => {
    const claims = person();
    const local = await createVerifiedUser(claims.email as string);
    const { b, res } = await viaGoogle(new TestBrowser(), claims);
    const me = await expectSignedIn(b, res);
    expect(me.user.id).toBe(local.userId);
    expect(await linkedIdentity(GOOGLE.issuer, claims.sub as string)).toMatchObject({ user_id: local.userId });
    const linked = (await auditOf(local.userId)).results.find((r) => r.type === 'identity_linked');
    expect(JSON.parse(linked!.detail!)).toMatchObject({ issuer: GOOGLE.issuer, subject: claims.sub, how: 'automatic' });
  });

  it('links a Workspace account whose hd is its address’s domain at once', async () => {
    const domain = `acme-${slug()}.example`;
    const claims = person({ email: `ada@${domain}`, hd: domain });
    const local = await createVerifiedUser(claims.email as string);
    const { b, res } = await viaGoogle(new TestBrowser(), claims);
    expect((await expectSignedIn(b, res)).user.id).toBe(local.userId);
    expect(await linkedIdentity(GOOGLE.issuer, claims.sub as string)).toMatchObject({ user_id: local.userId });
  });

  for (const [what, over] of [
    ['an address outside Google without hd (a Google account made with another address)', { hd: undefined }],
    ['a Workspace hd that is not the address’s domain', { hd: 'attacker-workspace.example' }],
    ['a Gmail address Google did not verify', { email_verified: false }],
  ] as const) {
    it(`does not link ${what} by itself: the account’s owner is asked by mail`, async () => {
      const email = 'email_verified' in over ? `ada.${slug()}@gmail.com` : `ada@victim-${slug()}.example`;
      const claims = person({ email, ...over });
      const local = await createVerifiedUser(email);
      const { b, provider, res } = await viaGoogle(new TestBrowser(), claims);
      await expectLinkRequested(b, res, local, `google ${provider.id}`);
      expect(await linkedIdentity(GOOGLE.issuer, claims.sub as string)).toBeNull();
    });
  }
});

describe('Microsoft Entra ID', () => {
  const person = (tid: string, over: Claims = {}): Claims => ({
    tid,
    oid: crypto.randomUUID(),
    // Entra's sub is pairwise: per application, never the identity Gatehouse keys on.
    sub: randomToken(32),
    name: 'Ada Lovelace',
    preferred_username: `ada@contoso-${slug()}.onmicrosoft.com`,
    ...over,
  });

  async function viaEntra(
    browser: TestBrowser,
    claims: Claims,
    o: { tenant?: string; tenants?: string[]; misbehave?: { idToken?: Claims } } = {},
  ) {
    const e = await entra();
    const provider = await register(e, {
      kind: 'entra',
      clientSecret: randomToken(24),
      ...(o.tenant ? { tenant: o.tenant } : {}),
      ...(o.tenants ? { tenants: o.tenants } : {}),
    });
    const b = browser.at(() => ({ fetch: e.fetch }));
    const href = await start(b, provider.id);
    expect(href.origin + href.pathname).toBe(`https://login.microsoftonline.com/${o.tenant ?? 'common'}/oauth2/v2.0/authorize`);
    return { b, href, provider, res: await back(b, e.authorize(href.toString(), claims, o.misbehave)) };
  }

  const refused = async (b: TestBrowser, res: Response, claims: Claims, message: string) => {
    const html = await res.text();
    expect(res.status, html.slice(0, 600)).toBe(400);
    expect(html).toContain('Sign-in did not complete');
    expect(html).toContain(message);
    expect(b.cookie('__Host-gatehouse_session')).toBeUndefined();
    const rows = await env.DB.prepare('SELECT count(*) AS n FROM linked_identities WHERE subject IN (?, ?)')
      .bind(claims.oid, claims.sub)
      .first<{ n: number }>();
    expect(rows!.n).toBe(0);
  };

  it('through the common authority: the token’s tid names the issuer stored, and the identity is the oid, not the sub', async () => {
    const tid = crypto.randomUUID();
    const claims = person(tid);
    const { b, href, res } = await viaEntra(new TestBrowser(), claims);
    expect(href.searchParams.get('nonce')).toBeTruthy();
    const me = await expectSignedIn(b, res);
    expect((await identitiesOf(me.user.id)).results).toEqual([{ issuer: entraIssuer(tid), subject: claims.oid }]);
    // No address shared: an account without one (its handle a placeholder that is never mailed).
    expect(await userRow(me.user.id)).toMatchObject({ email: `${me.user.id}@no-email.invalid`, email_verified_at: null });
    expect(await auditTypes(me.user.id)).toEqual(expect.arrayContaining(['sign_up', 'identity_linked', 'sign_in']));
  });

  for (const [what, over, message] of [
    [
      'whose iss names another tenant than its tid',
      (tid: string) => ({ iss: entraIssuer(crypto.randomUUID()), tid }),
      'could not be verified',
    ],
    [
      'whose iss is the templated {tenantid} one',
      (tid: string) => ({ iss: 'https://login.microsoftonline.com/{tenantid}/v2.0', tid }),
      'could not be verified',
    ],
    ['that names no tenant', () => ({ tid: undefined }), 'names no tenant'],
  ] as const) {
    it(`refuses a token ${what}`, async () => {
      const tid = crypto.randomUUID();
      const claims = person(tid);
      const { b, res } = await viaEntra(new TestBrowser(), claims, { misbehave: { idToken: over(tid) } });
      await refused(b, res, claims, message);
    });
  }

  it('with allowed tenants, refuses another tenant’s user with a page that says so, and signs in an allowed one', async () => {
    const allowed = crypto.randomUUID();
    const stranger = person(crypto.randomUUID());
    const first = await viaEntra(new TestBrowser(), stranger, { tenants: [allowed] });
    await refused(first.b, first.res, stranger, 'Accounts of this organisation cannot sign in with');
    const insider = person(allowed);
    const second = await viaEntra(new TestBrowser(), insider, { tenants: [allowed] });
    await expectSignedIn(second.b, second.res);
    expect(await linkedIdentity(entraIssuer(allowed), insider.oid as string)).not.toBeNull();
  });

  it('with allowed tenants, refuses a token from another tenant that claims an allowed tid', async () => {
    const allowed = crypto.randomUUID();
    const claims = person(allowed);
    const { b, res } = await viaEntra(new TestBrowser(), claims, {
      tenants: [allowed],
      misbehave: { idToken: { iss: entraIssuer(crypto.randomUUID()) } },
    });
    await refused(b, res, claims, 'could not be verified');
  });

  it('never links by the email claim, even one it calls verified: the account’s owner is asked by mail', async () => {
    const local = await createVerifiedUser();
    const claims = person(crypto.randomUUID(), { email: local.email, email_verified: true });
    const { b, provider, res } = await viaEntra(new TestBrowser(), claims);
    await expectLinkRequested(b, res, local, `entra ${provider.id}`);
  });

  it('keeps the same account when the person’s email claim changes (the identity is the oid)', async () => {
    const tid = crypto.randomUUID();
    const before = `ada-${slug()}@contoso.example`;
    const claims = person(tid, { email: before });
    // An address Entra does not verify: the account is made once the mailed link is opened (in this
    // browser: only there is the identity linked).
    const first = await viaEntra(new TestBrowser(), claims);
    expect(first.res.status).toBe(202);
    const verified = await first.b.post('/auth/api/verify-email', { token: tokenFrom(await lastMailTo(before)) });
    expect(verified.status).toBe(200);
    expect(await verified.json()).toMatchObject({ status: 'email_verified', email: before, accountCreated: true });
    const linked = await linkedIdentity(entraIssuer(tid), claims.oid as string);
    expect(linked).toMatchObject({ email: before, email_verified: 0 });

    const after = `ada.lovelace-${slug()}@contoso.example`;
    const again = new TestBrowser();
    const e = await entra();
    const b = again.at(() => ({ fetch: e.fetch }));
    const href = await start(b, linked!.provider_id);
    // Even said to be verified, Entra's email claim is not taken as such.
    const res = await back(b, e.authorize(href.toString(), { ...claims, email: after, email_verified: true }));
    const me = await expectSignedIn(b, res);
    expect(me.user.id).toBe(linked!.user_id);
    expect(await userRow(me.user.id)).toMatchObject({ email: before });
    expect(await linkedIdentity(entraIssuer(tid), claims.oid as string)).toMatchObject({ email: after, email_verified: 0 });
    expect(await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(after).first()).toBeNull();
  });

  it('signs in a personal Microsoft account through the consumers authority (its document names the tenant)', async () => {
    const claims = person(MSA_TENANT);
    const { b, res } = await viaEntra(new TestBrowser(), claims, { tenant: 'consumers' });
    const me = await expectSignedIn(b, res);
    expect(await linkedIdentity(entraIssuer(MSA_TENANT), claims.oid as string)).toMatchObject({ user_id: me.user.id });
  });

  it('takes no list of allowed tenants for the consumers authority (it has one tenant; the list would go unchecked)', async () => {
    const input = {
      id: `entra-${slug()}`,
      kind: 'entra',
      displayName: 'Microsoft',
      clientId: 'c',
      clientSecret: 's',
      tenant: 'consumers',
    } as const;
    await expect(buildProvider({ ...input, tenants: [crypto.randomUUID()] }, KEK, Date.now())).rejects.toThrow(/common or organizations/);
    await expect(buildProvider(input, KEK, Date.now())).resolves.toMatchObject({ issuer: entraIssuer('consumers') });
  });

  it('through a single tenant’s authority, refuses a token from another tenant', async () => {
    const tid = crypto.randomUUID();
    const ok = person(tid);
    const signedUp = await viaEntra(new TestBrowser(), ok, { tenant: tid });
    await expectSignedIn(signedUp.b, signedUp.res);
    const other = person(tid);
    const { b, res } = await viaEntra(new TestBrowser(), other, {
      tenant: tid,
      misbehave: { idToken: { iss: entraIssuer(crypto.randomUUID()) } },
    });
    await refused(b, res, other, 'could not be verified');
  });
});

describe('Apple', () => {
  const APPLE_ORIGIN = 'https://appleid.apple.com';
  const appleId = () =>
    randomToken(8)
      .toUpperCase()
      .replace(/[^A-Z0-9]/g, 'Q')
      .slice(0, 10)
      .padEnd(10, '7');
  const relay = () => `${slug()}${slug()}@privaterelay.appleid.com`;
  const person = (over: Claims = {}): Claims => ({
    // Apple's sub: per developer team, stable.
    sub: `001234.${randomToken(16).replace(/[^a-zA-Z0-9]/g, '0')}.0923`,
    email: relay(),
    email_verified: 'true',
    is_private_email: 'true',
    ...over,
  });

  /** An Apple provider: the key Gatehouse is given, and what Apple knows of it (by default the same key). */
  async function registerApple(
    apple?: Partial<{ teamId: string; keyId: string; publicKey: Awaited<ReturnType<typeof appleKey>>['publicKey'] }>,
  ) {
    const a = await fakeApple();
    const key = await appleKey();
    const teamId = appleId();
    const keyId = appleId();
    return register(
      a,
      { kind: 'apple', apple: { teamId, keyId, privateKey: key.pem } },
      { apple: { teamId, keyId, publicKey: key.publicKey, ...apple } },
    );
  }

  /** Apple's answer: a form post from Apple's page, across sites, then the GET its Continue page leads to. */
  async function viaApple(
    browser: TestBrowser,
    provider: { id: string },
    claims: Claims,
    user?: { name?: { firstName?: string; lastName?: string } },
  ) {
    const a = await fakeApple();
    const b = browser.at(() => ({ fetch: a.fetch }));
    const href = await start(b, provider.id);
    const answer = a.authorize(href.toString(), claims, user ? { user } : {});
    const { posted, res } = await formPostBack(b, answer.path, answer.form, APPLE_ORIGIN);
    return { b, href, answer, posted, res };
  }

  it('asks for a form post, takes it across sites on to a same-site GET (which carries the binding cookie), and pays with an ES256 client secret JWT', async () => {
    const a = await fakeApple();
    const provider = await registerApple();
    const claims = person();
    const { b, href, posted, res } = await viaApple(new TestBrowser(), provider, claims);
    // The cross-site post itself sets and clears nothing; the GET it leads to finishes the sign-in.
    expect(posted.headers.getSetCookie()).toEqual([]);
    expect(href.origin + href.pathname).toBe(APPLE.authorize);
    expect(href.searchParams.get('response_mode')).toBe('form_post');
    expect(href.searchParams.get('scope')).toBe('openid email name');
    expect(href.searchParams.get('nonce')).toBeTruthy();
    expect(a.refusedSecrets).toEqual([]);
    const me = await expectSignedIn(b, res);
    expect(await linkedIdentity(APPLE.issuer, claims.sub as string)).toMatchObject({ user_id: me.user.id, provider_id: provider.id });
    // The client secret Apple got: ES256 for the team and key, to Apple.
    const secret = a.calls
      .filter((c) => c.url === APPLE.token)
      .at(-1)!
      .form!.get('client_secret')!;
    const client = a.clients.get(provider.clientId)!.apple!;
    expect(decodeProtectedHeader(secret)).toMatchObject({ alg: 'ES256', kid: client.keyId });
    expect(decodeJwt(secret)).toMatchObject({ iss: client.teamId, sub: provider.clientId, aud: APPLE_ORIGIN });
  });

  for (const started of [false, true])
    it(`refuses Apple’s answer to an attacker’s sign-in posted into a victim’s browser (${started ? 'with a sign-in of its own under way' : 'with none'})`, async () => {
      const provider = await registerApple();
      const a = await fakeApple();
      // The attacker starts a sign-in with their own Apple account and has the victim's browser post the answer.
      const attacker = new TestBrowser().at(() => ({ fetch: a.fetch }));
      const answer = a.authorize((await start(attacker, provider.id)).toString(), person());
      const victim = new TestBrowser().at(() => ({ fetch: a.fetch }));
      if (started) await start(victim, provider.id);
      else await victim.open('/auth/sign-in');
      const { res } = await formPostBack(victim, answer.path, answer.form, APPLE_ORIGIN);
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('was not started in this browser');
      expect(victim.cookie('__Host-gatehouse_session')).toBeUndefined();
      // Nothing was taken: the request still belongs to the browser that started it.
      expect((await formPostBack(attacker, answer.path, answer.form, APPLE_ORIGIN)).res.status).toBe(303);
      expect(attacker.cookie('__Host-gatehouse_session')).toBeTruthy();
    });

  it('says the person cancelled when Apple posts its own user_cancelled_authorize', async () => {
    const a = await fakeApple();
    const provider = await registerApple();
    const b = new TestBrowser().at(() => ({ fetch: a.fetch }));
    const cancelled = a.cancel((await start(b, provider.id)).toString());
    const { res } = await formPostBack(b, cancelled.path, cancelled.form, APPLE_ORIGIN);
    const html = await res.text();
    expect(res.status, html.slice(0, 600)).toBe(400);
    expect(html).toContain(`You did not allow the sign-in at apple ${provider.id}.`);
    expect(b.cookie('__Host-gatehouse_session')).toBeUndefined();
  });

  it('refuses a replay of Apple’s answer', async () => {
    const provider = await registerApple();
    const own = await viaApple(new TestBrowser(), provider, person());
    await expectSignedIn(own.b, own.res);
    const { res: replay } = await formPostBack(own.b, own.answer.path, own.answer.form, APPLE_ORIGIN);
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('has already finished');
  });

  for (const [what, known] of [
    ['signed with a key Apple does not have', async () => ({ publicKey: (await appleKey()).publicKey })],
    ['for another team', async () => ({ teamId: 'ZZZZZZZZZZ' })],
    ['naming another key', async () => ({ keyId: 'ZZZZZZZZZZ' })],
  ] as const) {
    it(`fails the sign-in when Apple refuses a client secret ${what}`, async () => {
      const a = await fakeApple();
      const before = a.refusedSecrets.length;
      const provider = await registerApple(await known());
      const claims = person();
      const { b, res } = await viaApple(new TestBrowser(), provider, claims);
      const html = await res.text();
      expect(res.status, html.slice(0, 600)).toBe(400);
      expect(html).toContain('could not be verified');
      expect(a.refusedSecrets.length).toBe(before + 1);
      expect(b.cookie('__Host-gatehouse_session')).toBeUndefined();
      expect(await linkedIdentity(APPLE.issuer, claims.sub as string)).toBeNull();
    });
  }

  it('signs up a private relay address, verified, as Apple said it with the string "true"', async () => {
    const provider = await registerApple();
    const claims = person({ email_verified: 'true' });
    const { b, res } = await viaApple(new TestBrowser(), provider, claims);
    const me = await expectSignedIn(b, res);
    expect(await userRow(me.user.id)).toMatchObject({ email: claims.email, email_verified_at: expect.any(Number) });
    expect(await linkedIdentity(APPLE.issuer, claims.sub as string)).toMatchObject({ email: claims.email, email_verified: 1 });
  });

  it('takes email_verified "false" (a string) as not verified: the address is confirmed by mail first', async () => {
    const provider = await registerApple();
    const claims = person({ email_verified: 'false' });
    const { b, res } = await viaApple(new TestBrowser(), provider, claims);
    expect(res.status).toBe(202);
    expect(await res.text()).toContain('Check your email');
    expect(b.cookie('__Host-gatehouse_session')).toBeUndefined();
    expect(await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(claims.email).first()).toBeNull();
    const mail = await lastMailTo(claims.email as string);
    expect(mail.subject).toBe('Confirm your email address');
    expect(mail.text).toContain(`through apple ${provider.id} (the apple ${provider.id} account ${claims.email})`);
    // Opened in this browser: the account, verified, with the Apple identity linked.
    const verified = await b.post('/auth/api/verify-email', { token: tokenFrom(mail) });
    expect(await verified.json()).toMatchObject({ status: 'email_verified', email: claims.email, accountCreated: true });
    const linked = await linkedIdentity(APPLE.issuer, claims.sub as string);
    expect(linked).toMatchObject({ email: claims.email, email_verified: 0 });
    expect(await userRow(linked!.user_id)).toMatchObject({ email: claims.email, email_verified_at: expect.any(Number) });
  });

  it('keeps the name Apple sends only at the first authorization', async () => {
    const provider = await registerApple();
    const claims = person();
    const first = await viaApple(new TestBrowser(), provider, claims, { name: { firstName: 'Ada', lastName: 'Lovelace' } });
    const me = await expectSignedIn(first.b, first.res);
    expect(await userRow(me.user.id)).toMatchObject({ name: 'Ada Lovelace' });
    expect(await linkedIdentity(APPLE.issuer, claims.sub as string)).toMatchObject({ name: 'Ada Lovelace' });

    const later = await viaApple(new TestBrowser(), provider, claims);
    expect((await expectSignedIn(later.b, later.res)).user.id).toBe(me.user.id);
    expect(await userRow(me.user.id)).toMatchObject({ name: 'Ada Lovelace' });
    expect(await linkedIdentity(APPLE.issuer, claims.sub as string)).toMatchObject({ name: 'Ada Lovelace' });
  });
});

describe('GitHub', () => {
  const account = (over: Partial<GitHubAccount> = {}): GitHubAccount => {
    const login = `ada-${slug()}`;
    return {
      id: 100_000 + Math.floor(Math.random() * 1e8),
      login,
      name: 'Ada Lovelace',
      avatar_url: 'https://avatars.githubusercontent.com/u/1?v=4',
      emails: [],
      ...over,
    };
  };

  async function viaGitHub(browser: TestBrowser, provider: { id: string }, person: GitHubAccount) {
    const g = await fakeGitHub();
    const b = browser.at(() => ({ fetch: g.fetch }));
    const href = await start(b, provider.id);
    return { b, href, res: await back(b, g.authorize(href.toString(), person)) };
  }
  const registerGitHub = async (over: Partial<ProviderInput> = {}) =>
    register(await fakeGitHub(), { kind: 'github', clientSecret: randomToken(20), ...over } as ProviderInput);

  it('speaks OAuth 2 without a nonce or ID token, mails the verified primary address, and keys the identity on the numeric id', async () => {
    const g = await fakeGitHub();
    const provider = await registerGitHub();
    const primary = `ada-${slug()}@acme.example`;
    const person = account({
      email: `public-${slug()}@acme.example`,
      emails: [
        { email: `old-${slug()}@acme.example`, primary: false, verified: true },
        { email: primary, primary: true, verified: true },
      ],
    });
    const { b, href, res } = await viaGitHub(new TestBrowser(), provider, person);
    expect(href.origin + href.pathname).toBe(GITHUB.authorize);
    expect(href.searchParams.get('scope')).toBe('read:user user:email');
    expect(href.searchParams.has('nonce')).toBe(false);
    expect(href.searchParams.get('code_challenge_method')).toBe('S256');
    // GitHub is no authority for the address: the account is made when the mailed link is opened.
    expect(res.status).toBe(202);
    expect(await res.text()).toContain(primary);
    // Opened in the browser that signed in with GitHub: the identity is linked there.
    const verified = await b.post('/auth/api/verify-email', { token: tokenFrom(await lastMailTo(primary)) });
    expect(verified.status).toBe(200);
    const linked = await linkedIdentity(GITHUB.issuer, String(person.id));
    expect(linked).toMatchObject({ provider_id: provider.id, email: primary, name: 'Ada Lovelace' });
    expect(await userRow(linked!.user_id)).toMatchObject({ email: primary, email_verified_at: expect.any(Number) });

    // Then on with GitHub again (a new login name: the id is what counts), its API asked as GitHub requires.
    const again = await viaGitHub(new TestBrowser(), provider, { ...person, login: `lovelace-${slug()}` });
    expect((await expectSignedIn(again.b, again.res)).user.id).toBe(linked!.user_id);
    expect(await linkedIdentity(GITHUB.issuer, String(person.id))).toMatchObject({ email: primary, email_verified: 1 });
    const api = g.calls.filter((c) => c.url.startsWith(GITHUB.api)).slice(-2);
    expect(api.map((c) => new URL(c.url).pathname)).toEqual(['/user', '/user/emails']);
    for (const c of api) {
      expect(c.headers.get('authorization')).toMatch(/^Bearer gho_/);
      expect(c.headers.get('user-agent')).toBeTruthy();
    }
    expect(await auditTypes(linked!.user_id)).toEqual(expect.arrayContaining(['sign_up', 'sign_in']));
  });

  for (const [what, emails] of [
    [
      'an unverified primary address, nor a verified one that is not primary',
      (a: string, b: string) => [
        { email: a, primary: true, verified: false },
        { email: b, primary: false, verified: true },
      ],
    ],
    ['no address at all', () => []],
  ] as const) {
    it(`makes an account without an address for a person with ${what}`, async () => {
      const provider = await registerGitHub();
      const a = `ada-${slug()}@acme.example`;
      const b = `ada-${slug()}@acme.example`;
      // The public profile address is whatever the person typed: never used either.
      const person = account({ email: b, emails: [...emails(a, b)] });
      const { b: browser, res } = await viaGitHub(new TestBrowser(), provider, person);
      const me = await expectSignedIn(browser, res);
      expect(await userRow(me.user.id)).toMatchObject({ email: `${me.user.id}@no-email.invalid`, email_verified_at: null });
      expect(await linkedIdentity(GITHUB.issuer, String(person.id))).toMatchObject({ user_id: me.user.id, email: null, email_verified: 0 });
      expect(await env.DB.prepare('SELECT count(*) AS n FROM users WHERE email IN (?, ?)').bind(a, b).first()).toEqual({ n: 0 });
    });
  }

  it('fails the sign-in when GitHub answers the code exchange with an error in a 200 response', async () => {
    const g = await fakeGitHub();
    // Gatehouse was given a secret GitHub does not know.
    const provider = await register(g, { kind: 'github', clientSecret: randomToken(20) }, { secret: randomToken(20) });
    const person = account({ emails: [{ email: `ada-${slug()}@acme.example`, primary: true, verified: true }] });
    const { b, res } = await viaGitHub(new TestBrowser(), provider, person);
    const html = await res.text();
    expect(res.status, html.slice(0, 600)).toBe(400);
    expect(html).toContain('could not be verified');
    const exchange = g.calls.filter((c) => c.url === GITHUB.token).at(-1)!;
    expect(exchange.headers.get('accept')).toContain('application/json');
    expect(b.cookie('__Host-gatehouse_session')).toBeUndefined();
    expect(await linkedIdentity(GITHUB.issuer, String(person.id))).toBeNull();
  });

  it('links a verified primary address to the account that has it only where the operator trusts GitHub for its domain', async () => {
    const domain = `acme-${slug()}.example`;
    const local = await createVerifiedUser(`ada@${domain}`);
    const person = account({ emails: [{ email: local.email, primary: true, verified: true }] });
    const untrustedProvider = await registerGitHub();
    const untrusted = await viaGitHub(new TestBrowser(), untrustedProvider, person);
    await expectLinkRequested(untrusted.b, untrusted.res, local, `github ${untrustedProvider.id}`);
    expect(await linkedIdentity(GITHUB.issuer, String(person.id))).toBeNull();

    const trusted = await viaGitHub(new TestBrowser(), await registerGitHub({ trustedEmailDomains: [domain] }), person);
    expect((await expectSignedIn(trusted.b, trusted.res)).user.id).toBe(local.userId);
    expect(await linkedIdentity(GITHUB.issuer, String(person.id))).toMatchObject({ user_id: local.userId });
  });
});
