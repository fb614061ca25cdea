import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { forgetProviders } from '../../src/auth/upstream-provider-records';
import { buildProvider, type ProviderInput } from '../../src/auth/upstream-providers';
import { createDb } from '../../src/db/client';
import { identityProviders } from '../../src/db/schema';
import type { Deps } from '../../src/deps';
import { randomToken } from '../../src/lib/crypto';
import { TestBrowser } from '../browser';
import { call, createVerifiedUser, lastMailTo, ORIGIN, STRONG_PASSWORD, tokenFrom, uniqueEmail } from '../helpers';
import { SoftAuthenticator } from '../webauthn';
import { apple as fakeApple, appleKey, type Claims } from './fake-presets';
import { enrolled, PENDING } from './helpers';
import { continueHref, KEK, newPerson, upstreamProvider, viaUpstream } from './upstream-helpers';

/**
 * Review 14: attacks on upstream sign-in and account linking. Each test states the property that
 * should hold; a failing test is a finding (see the report on branch review14).
 */

const identityOf = (issuer: string, subject: string) =>
  env.DB.prepare('SELECT * FROM linked_identities WHERE issuer = ? AND subject = ?')
    .bind(issuer, subject)
    .first<{ id: string; user_id: string }>();
const me = async (b: TestBrowser) => {
  const res = await b.fetch('/auth/api/me');
  return res.status === 200 ? ((await res.json()) as { user: { id: string } }).user.id : null;
};
/** The same browser where an origin shares Gatehouse's host (a route without `host`): its scripts run on Gatehouse's origin. */
const sharedHost = (b: TestBrowser, fetch: typeof globalThis.fetch) =>
  b.at((deps: Deps) => ({ config: { ...deps.config, gateway: { ...deps.config.gateway, sharedHost: true } }, fetch }));

describe('F1 — one host for everything: linking is a sensitive action that asks no proof', () => {
  it('a same-origin script links the attacker’s upstream account to the signed-in person’s account from the account page, with no proof', async () => {
    const p = await upstreamProvider();
    const victim = await createVerifiedUser();
    const b = new TestBrowser();
    expect((await b.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    // The origin's script: reads the account page's CSRF token (same origin) and posts the Link form.
    const script = sharedHost(b, p.upstream.fetch);
    const started = await script.submit(`/auth/account/identities/link/${p.id}`, {}, '/auth/account');
    const href = continueHref(await started.clone().text());
    const attacker = newPerson({ email: `attacker-${randomToken(4).toLowerCase()}@evil.example` });
    if (href) {
      // The script hands the authorization URL to the attacker, who completes it at the upstream as
      // themselves, in their own browser. Their browser's callback fails (no binding) without
      // spending the code; the script then opens the same callback with the person's cookies.
      const callback = p.upstream.authorize(href, attacker);
      const own = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
      expect((await own.fetch(callback, { headers: { accept: 'text/html' } })).status).toBe(400);
      await script.fetch(callback, { headers: { accept: 'text/html' } });
    }
    // The attacker's upstream account is now a way into the victim's account.
    const intruder = new TestBrowser();
    await viaUpstream(intruder, p, attacker);
    expect(await me(intruder), 'the attacker signed in to the victim’s account').not.toBe(victim.userId);
    expect((await identityOf(p.upstream.issuer, attacker.sub))?.user_id).not.toBe(victim.userId);
    // What every other sensitive action answers on a shared host.
    expect(started.status).toBe(403);
  });

  it('a same-origin script confirms a pending link of the attacker’s upstream account (an address claimed at the upstream), with no proof', async () => {
    const p = await upstreamProvider();
    const victim = await createVerifiedUser();
    const b = new TestBrowser();
    expect((await b.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    const script = sharedHost(b, p.upstream.fetch);
    // The script starts an upstream sign-in in the person's browser; the attacker answers it at the
    // upstream with an account that claims the victim's address (Entra, a lax OpenID Provider).
    const started = await script.submit(`/auth/upstream/${p.id}`, {}, '/auth/account');
    const attacker = newPerson({ email: victim.email, email_verified: false });
    const callback = p.upstream.authorize(continueHref(await started.text())!, attacker);
    const prove = await script.fetch(callback, { headers: { accept: 'text/html' } });
    expect(prove.status).toBe(200);
    // The confirmation page even draws the proof fields (askProof), but the POST never checks them.
    const confirm = await script.open('/auth/upstream/link');
    expect(confirm.html).toContain('proof_password');
    const done = await script.submit('/auth/upstream/link', { decision: 'link' }, '/auth/upstream/link');
    expect((await identityOf(p.upstream.issuer, attacker.sub))?.user_id, 'linked without a proof').not.toBe(victim.userId);
    expect(done.status).toBe(403);
  });
});

describe('F2 — a mailed upstream sign-up is indistinguishable from the owner’s own sign-up mail', () => {
  it('the owner who opens the newest “Confirm your email address” mail gets an account the attacker’s upstream account signs in to', async () => {
    const p = await upstreamProvider(); // trusted for nothing: Entra, GitHub, a lax OpenID Provider
    const email = uniqueEmail('owner');
    // The owner signs up with a password…
    expect((await call('/auth/api/sign-up', { method: 'POST', json: { email, password: STRONG_PASSWORD } })).status).toBe(202);
    const ownMail = await lastMailTo(email);
    // …while an attacker whose upstream account claims the owner's address signs in there.
    const attacker = newPerson({ email });
    const { res } = await viaUpstream(new TestBrowser(), p, attacker);
    expect(res.status).toBe(202);
    const attackerMail = await lastMailTo(email, ownMail.id);
    // Nothing in the two mails tells them apart (only the token differs).
    const body = (m: typeof ownMail) => m.text.replace(tokenFrom(m), 'TOKEN');
    expect(attackerMail.subject).toBe(ownMail.subject);
    expect(body(attackerMail)).toBe(body(ownMail));
    // The owner opens the newest one, as anyone would.
    const token = tokenFrom(attackerMail);
    const owner = new TestBrowser();
    expect((await owner.submit('/auth/verify-email', { token }, `/auth/verify-email?token=${token}`)).status).toBeLessThan(400);
    const account = (await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>())!;
    // The attacker's upstream account is a way into it: pre-hijacked, and it survives a password reset.
    const intruder = new TestBrowser();
    await viaUpstream(intruder, p, attacker);
    expect(await me(intruder), 'the attacker signed in to the owner’s new account').not.toBe(account.id);
  });
});

describe('F3 — upstream sign-in tells whether an address has an account (docs/security.md “No account enumeration”)', () => {
  it('answers an upstream account that claims an address with an account differently from one that claims an unknown address', async () => {
    const p = await upstreamProvider();
    const existing = await createVerifiedUser();
    // An upstream where a person can set any address (Entra's email claim, a lax OpenID Provider).
    const known = await viaUpstream(new TestBrowser(), p, newPerson({ email: existing.email, email_verified: false }));
    const unknown = await viaUpstream(new TestBrowser(), p, newPerson({ email: uniqueEmail('nobody'), email_verified: false }));
    const knownHtml = await known.res.text();
    const unknownHtml = await unknown.res.text();
    expect(knownHtml).toContain('Sign in to link');
    expect(unknownHtml).toContain('Check your email');
    // Sign-up, sign-in and forgot-password answer the same for both; this should too.
    expect(known.res.status).toBe(unknown.res.status);
  });
});

describe('F4 — Apple (form_post) cannot be linked from the account page', () => {
  it('links an Apple account to the signed-in account: the cross-site form post carries no SameSite=Lax session', async () => {
    const a = await fakeApple();
    const key = await appleKey();
    const slug = randomToken(6)
      .toLowerCase()
      .replace(/[^a-z0-9]/g, 'x');
    const ten = () =>
      randomToken(8)
        .toUpperCase()
        .replace(/[^A-Z0-9]/g, 'Q')
        .slice(0, 10)
        .padEnd(10, '7');
    const id = `apple-${slug}`;
    const clientId = `client-${slug}`;
    const teamId = ten();
    const keyId = ten();
    const row = await buildProvider(
      { id, kind: 'apple', displayName: `Apple ${slug}`, clientId, apple: { teamId, keyId, privateKey: key.pem } } as ProviderInput,
      KEK,
      Date.now(),
    );
    await createDb(env.DB).insert(identityProviders).values(row);
    forgetProviders();
    a.clients.set(clientId, {
      clientId,
      redirectUri: `${ORIGIN}/auth/upstream/${id}/callback`,
      apple: { teamId, keyId, publicKey: key.publicKey },
    });

    const local = await createVerifiedUser();
    const b = new TestBrowser().at(() => ({ fetch: a.fetch }));
    expect((await b.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    const started = await b.submit(`/auth/account/identities/link/${id}`, {}, '/auth/account');
    expect(started.status).toBe(200);
    const person: Claims = {
      sub: `001234.${randomToken(12).replace(/[^a-zA-Z0-9]/g, '0')}.0923`,
      email: `${slug}@privaterelay.appleid.com`,
      email_verified: 'true',
    };
    const answer = a.authorize(continueHref(await started.text())!, person);
    const res = await b.crossSitePost(answer.path, answer.form, 'https://appleid.apple.com');
    const html = await res.text();
    expect(res.status, html.slice(0, 500)).toBe(303);
    expect((await identityOf('https://appleid.apple.com', person.sub as string))?.user_id).toBe(local.userId);
  });
});

describe('F5 — removing a passkey ignores the “last way to sign in” rule that unlinking keeps', () => {
  it('an account without an address ends with no way in at all: unlink the identity (a passkey remains), then remove the passkey', async () => {
    const p = await upstreamProvider();
    const b = new TestBrowser();
    await viaUpstream(b, p, newPerson({ email: undefined, email_verified: undefined }));
    const userId = (await me(b))!;
    const auth = await SoftAuthenticator.create();
    const { challengeId, options } = (await (await b.post('/auth/api/passkeys/registration-options', {})).json()) as {
      challengeId: string;
      options: never;
    };
    const reg = await b.post('/auth/api/passkeys', {
      challengeId,
      name: 'Laptop',
      response: await auth.register(options, { origin: ORIGIN }),
    });
    expect(reg.status).toBe(201);
    const identity = (await env.DB.prepare('SELECT id FROM linked_identities WHERE user_id = ?').bind(userId).first<{ id: string }>())!;
    // Unlinking is allowed: the passkey is another way in.
    expect((await b.submit(`/auth/account/identities/${identity.id}/unlink`, {}, '/auth/account')).status).toBe(303);
    // Removing that passkey is not checked at all.
    const passkeyId = auth.id;
    await b.fetch(`/auth/api/passkeys/${passkeyId}`, { method: 'DELETE', headers: { origin: ORIGIN } });
    const ways = (await env.DB.prepare(
      `SELECT (SELECT count(*) FROM linked_identities WHERE user_id = ?1) + (SELECT count(*) FROM passkeys WHERE user_id = ?1)
              + (SELECT count(*) FROM users WHERE id = ?1 AND (password_hash IS NOT NULL OR email NOT LIKE '%@no-email.invalid')) AS n`,
    )
      .bind(userId)
      .first<{ n: number }>())!;
    expect(ways.n, 'the account has no way to sign in left').toBeGreaterThan(0);
  });
});

describe('F6 — calls to an upstream have no deadline', () => {
  it('every request Gatehouse makes to an upstream carries an abort signal (a slow upstream otherwise holds the request until the edge gives up)', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const signals: { url: string; signal: boolean }[] = [];
    const timed = (async (input: RequestInfo | URL, init?: RequestInit) => {
      signals.push({ url: String(input instanceof Request ? input.url : input), signal: init?.signal instanceof AbortSignal });
      return p.upstream.fetch(input, init);
    }) as typeof fetch;
    // A fresh issuer: discovery, token, JWKS are all fetched in this sign-in.
    const { res } = await viaUpstream(new TestBrowser(), { id: p.id, upstream: { ...p.upstream, fetch: timed } }, newPerson());
    expect(res.status).toBe(303);
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.filter((s) => !s.signal).map((s) => s.url)).toEqual([]);
  });
});

describe('F7 — a link started before “sign out everywhere” still completes with the revoked session', () => {
  it('a thief’s session, revoked by the owner, finishes the link it started (the callback checks the session token only)', async () => {
    const p = await upstreamProvider();
    const victim = await createVerifiedUser();
    const thief = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
    expect((await thief.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    const started = await thief.submit(`/auth/account/identities/link/${p.id}`, {}, '/auth/account');
    const attacker = newPerson();
    const callback = p.upstream.authorize(continueHref(await started.text())!, attacker);
    // The owner notices and signs out everywhere from their own browser.
    const owner = new TestBrowser();
    expect((await owner.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    expect((await owner.post('/auth/api/sign-out-everywhere', {})).status).toBeLessThan(300);
    expect((await thief.fetch('/auth/api/me')).status).toBe(401);
    // …yet the thief's browser, still holding the (now revoked) session token, completes the link.
    await thief.fetch(callback, { headers: { accept: 'text/html' } });
    expect((await identityOf(p.upstream.issuer, attacker.sub))?.user_id, 'linked by a revoked session').not.toBe(victim.userId);
  });
});

describe('F8 — two tabs: the confirmation page links whatever the pending-link cookie names when it is posted', () => {
  it('a person shown “Link A?” who presses Link after another upstream sign-in in another tab links B', async () => {
    const p = await upstreamProvider();
    const local = await createVerifiedUser();
    const b = new TestBrowser();
    const first = newPerson({ email: local.email, name: 'First Account' });
    await viaUpstream(b, p, first);
    expect((await b.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    const page = await b.open('/auth/upstream/link');
    expect(page.html).toContain(local.email);
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.html)![1]!;
    // Another tab: another upstream account with the same address comes back meanwhile.
    const second = newPerson({ email: local.email, name: 'Second Account', sub: `other-${randomToken(6)}` });
    await viaUpstream(b, p, second);
    // The first tab's form is submitted.
    await b.fetch('/auth/upstream/link', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: csrf, decision: 'link' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html' },
    });
    expect(await identityOf(p.upstream.issuer, second.sub), 'linked an account the page never showed').toBeNull();
  });
});

describe('held: what was tried and did not give', () => {
  it('mix-up: an answer to provider A’s request brought to provider B’s callback matches nothing, and A’s request stays usable', async () => {
    const a = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const b2 = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const browser = new TestBrowser().at(() => ({ fetch: a.upstream.fetch }));
    const started = await browser.submit(`/auth/upstream/${a.id}`, {}, '/auth/sign-in');
    const callback = a.upstream.authorize(continueHref(await started.text())!, newPerson());
    const binding = browser.cookie('__Host-gatehouse_upstream')!;
    const mixed = await browser.fetch(callback.replace(`/upstream/${a.id}/`, `/upstream/${b2.id}/`), { headers: { accept: 'text/html' } });
    expect(mixed.status).toBe(400);
    // The callback cleared the binding cookie; put it back: A's request is still there, once.
    browser.cookies.set('__Host-gatehouse_upstream', binding);
    expect((await browser.fetch(callback, { headers: { accept: 'text/html' } })).status).toBe(303);
  });

  it('a pending second-factor token (same key, other typ) is not taken as a pending link', async () => {
    const u = await enrolled();
    // A new browser: the adaptive policy asks for the second factor, and a pending token is set.
    const b = new TestBrowser();
    expect((await b.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
    const pending = b.cookie(PENDING);
    expect(pending).toBeDefined();
    const signedIn = new TestBrowser();
    const local = await createVerifiedUser();
    expect((await signedIn.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    signedIn.cookies.set('__Host-gatehouse_pending_link', pending!);
    const res = await signedIn.fetch('/auth/upstream/link', { headers: { accept: 'text/html' } });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/auth/account');
  });
});
