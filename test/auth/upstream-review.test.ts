import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { forgetProviders } from '../../src/auth/upstream-provider-records';
import { UPSTREAM_MAX_BYTES } from '../../src/auth/upstream-protocol';
import { buildProvider, type ProviderInput } from '../../src/auth/upstream-providers';
import { createDb } from '../../src/db/client';
import { identityProviders } from '../../src/db/schema';
import type { Deps } from '../../src/deps';
import { randomToken, sha256 } from '../../src/lib/crypto';
import { TestBrowser } from '../browser';
import { auditOf, call, createVerifiedUser, lastMailTo, ORIGIN, STRONG_PASSWORD, tokenFrom, uniqueEmail, type Problem } from '../helpers';
import { SoftAuthenticator } from '../webauthn';
import { apple as fakeApple, appleKey, type Claims } from './fake-presets';
import { enrolled, PENDING } from './helpers';
import { continueHref, KEK, newPerson, sessionOf, upstreamProvider, viaUpstream } from './upstream-helpers';

/**
 * Review 14: attacks on upstream sign-in and account linking (F1–F8). Each test plays the attack
 * and asserts the defence that now stops it — the answer, the rows, the mail, the cookies.
 */

const PENDING_LINK = '__Host-gatehouse_pending_link';
const UPSTREAM_SIGN_UP = '__Host-gatehouse_upstream_sign_up';
const BINDING = '__Host-gatehouse_upstream';

const identityOf = (issuer: string, subject: string) =>
  env.DB.prepare('SELECT * FROM linked_identities WHERE issuer = ? AND subject = ?')
    .bind(issuer, subject)
    .first<{ id: string; user_id: string }>();
const identitiesOfUser = async (userId: string) =>
  (await env.DB.prepare('SELECT subject FROM linked_identities WHERE user_id = ?').bind(userId).all<{ subject: string }>()).results;
const userByEmail = (email: string) =>
  env.DB.prepare('SELECT id, email_verified_at, password_hash, name, picture FROM users WHERE email = ?')
    .bind(email)
    .first<{ id: string; email_verified_at: number | null; password_hash: string | null; name: string | null; picture: string | null }>();
/** The upstream requests waiting for a provider's answer (started, not finished). */
const requestsFor = async (providerId: string) =>
  (await env.DB.prepare('SELECT count(*) AS n FROM upstream_requests WHERE provider_id = ?').bind(providerId).first<{ n: number }>())!.n;
const me = async (b: TestBrowser) => {
  const res = await b.fetch('/auth/api/me');
  return res.status === 200 ? ((await res.json()) as { user: { id: string } }).user.id : null;
};
const mailbox = async (to: string) =>
  ((await (await call(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(to)}`)).json()) as { messages: { subject: string }[] })
    .messages;
/** The confirmation page's hidden `pending` field: which pending link it shows. */
const pendingOn = (html: string) => /name="pending" value="([^"]+)"/.exec(html)?.[1];
/** The form of `action` on a page (its inner HTML). */
const formOf = (html: string, action: string) =>
  new RegExp(`<form[^>]*action="${action.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*>([\\s\\S]*?)</form>`).exec(html)?.[1];
/** The same browser where an origin shares Gatehouse's host (a route without `host`): its scripts run on Gatehouse's origin. */
const sharedHost = (b: TestBrowser, fetch: typeof globalThis.fetch) =>
  b.at((deps: Deps) => ({ config: { ...deps.config, gateway: { ...deps.config.gateway, sharedHost: true } }, fetch }));
const navigate = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };

describe('F1 — linking is a sensitive action: where an origin shares the host, only a proof given now links', () => {
  it('a same-origin script cannot start a link from the account page without a proof; the person’s password starts one that links', async () => {
    const p = await upstreamProvider();
    const victim = await createVerifiedUser();
    const b = new TestBrowser();
    expect((await b.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    const script = sharedHost(b, p.upstream.fetch);
    // The account page's Link form asks for the proof itself.
    const account = await script.open('/auth/account');
    expect(formOf(account.html, `/auth/account/identities/link/${p.id}`)).toContain('name="proof_password"');

    // The origin's script: reads the account page's CSRF token (same origin) and posts the Link form.
    const started = await script.submit(`/auth/account/identities/link/${p.id}`, {}, '/auth/account');
    expect(started.status).toBe(403);
    const asked = await started.text();
    // What every other sensitive action answers on a shared host: the same action, asking for the proof.
    expect(formOf(asked, `/auth/account/identities/link/${p.id}`)).toContain('autocomplete="current-password"');
    expect(continueHref(asked)).toBeUndefined();
    expect(b.cookie(BINDING)).toBeUndefined();
    expect(await requestsFor(p.id)).toBe(0);
    // A wrong password is no proof either.
    const wrong = await script.submit(
      `/auth/account/identities/link/${p.id}`,
      { proof_password: 'not the password at all' },
      '/auth/account',
    );
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toContain('That password is not right.');
    expect(await requestsFor(p.id)).toBe(0);

    // With no authorization URL to hand over, the attacker's upstream account is no way into the victim's account.
    const attacker = newPerson({ email: `attacker-${randomToken(4).toLowerCase()}@evil.example` });
    const intruder = new TestBrowser();
    const { res } = await viaUpstream(intruder, p, attacker);
    expect(res.status).toBe(202);
    expect(await me(intruder)).toBeNull();
    expect(await identityOf(p.upstream.issuer, attacker.sub)).toBeNull();
    expect(await identitiesOfUser(victim.userId)).toEqual([]);

    // The person, typing their password in the form, links their own upstream account.
    const own = newPerson();
    const proved = await script.submit(`/auth/account/identities/link/${p.id}`, { proof_password: STRONG_PASSWORD }, '/auth/account');
    expect(proved.status).toBe(200);
    const href = continueHref(await proved.text())!;
    expect(href).toMatch(new RegExp(`^${p.upstream.issuer}/authorize\\?`));
    const done = await script.fetch(p.upstream.authorize(href, own), { headers: navigate });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`/auth/account?${new URLSearchParams({ linked: p.name })}`);
    expect(await identityOf(p.upstream.issuer, own.sub)).toMatchObject({ user_id: victim.userId });
    expect(await identitiesOfUser(victim.userId)).toEqual([{ subject: own.sub }]);
    const events = (await auditOf(victim.userId)).results;
    expect(events.filter((e) => e.type === 'proof_failed')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'identity_linked').map((e) => JSON.parse(e.detail!).subject)).toEqual([own.sub]);
  });

  it('a same-origin script cannot confirm a pending link (an address claimed at the upstream) without a proof; a wrong one keeps the page, the password links', async () => {
    const p = await upstreamProvider();
    const victim = await createVerifiedUser();
    const b = new TestBrowser();
    expect((await b.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    const script = sharedHost(b, p.upstream.fetch);
    // The script starts an upstream sign-in in the person's browser; the attacker answers it at the
    // upstream with an account that claims the victim's address (Entra, a lax OpenID Provider).
    const started = await script.submit(`/auth/upstream/${p.id}`, { return_to: '/auth/account/totp' }, '/auth/account');
    const attacker = newPerson({ email: victim.email, email_verified: false });
    const callback = p.upstream.authorize(continueHref(await started.text())!, attacker);
    const answered = await script.fetch(callback, { headers: navigate });
    expect(answered.status).toBe(202);
    expect(await answered.text()).toContain('Check your email');
    expect(b.cookie(PENDING_LINK)).toBeDefined();
    // The owner is told, by mail, what wants to be linked.
    const mail = await lastMailTo(victim.email);
    expect(mail.subject).toBe(`Link ${p.name} to your account?`);
    const back = new URL(mail.links[0]!);
    expect(`${back.pathname}${back.search}`).toBe(`/auth/upstream/link?${new URLSearchParams({ return_to: '/auth/account/totp' })}`);

    // The confirmation page draws the proof fields, and the POST checks them.
    const confirm = await script.open(`${back.pathname}${back.search}`);
    expect(confirm.res.status).toBe(200);
    expect(confirm.html).toContain('name="proof_password"');
    const pending = pendingOn(confirm.html)!;
    const refused = await script.submit(`${back.pathname}${back.search}`, { decision: 'link', pending }, `${back.pathname}${back.search}`);
    expect(refused.status).toBe(403);
    const asked = await refused.text();
    expect(asked).toContain('autocomplete="current-password"');
    // The proof page posts the same decision, for the same pending link, to the same place.
    const action = `/auth/upstream/link?${new URLSearchParams({ return_to: '/auth/account/totp' })}`;
    expect(formOf(asked, action.replace(/&/g, '&amp;'))).toContain(`name="pending" value="${pending}"`);
    expect(await identityOf(p.upstream.issuer, attacker.sub)).toBeNull();
    const wrong = await script.submit(action, { decision: 'link', pending, proof_password: 'not the password at all' }, action);
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toContain('That password is not right.');
    expect(await identityOf(p.upstream.issuer, attacker.sub)).toBeNull();
    // Refused, the pending link is kept, to confirm with a proof.
    expect(b.cookie(PENDING_LINK)).toBeDefined();

    // Only the person, typing their password, confirms it — and goes on where the link request said.
    const done = await script.submit(action, { decision: 'link', pending, proof_password: STRONG_PASSWORD }, action);
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/auth/account/totp');
    expect(await identityOf(p.upstream.issuer, attacker.sub)).toMatchObject({ user_id: victim.userId });
    expect(b.cookie(PENDING_LINK)).toBeUndefined();
  });
});

describe('F2 — a mailed upstream sign-up says which upstream account asked, and links it only in the browser that started it', () => {
  it('the owner who opens a stranger’s upstream sign-up mail gets an account of their own: verified, without the stranger’s identity or name', async () => {
    const p = await upstreamProvider(); // trusted for nothing: Entra, GitHub, a lax OpenID Provider
    const email = uniqueEmail('owner');
    // The owner signs up with a password…
    expect((await call('/auth/api/sign-up', { method: 'POST', json: { email, password: STRONG_PASSWORD } })).status).toBe(202);
    const ownMail = await lastMailTo(email);
    // …while an attacker whose upstream account claims the owner's address signs in there.
    const attacker = newPerson({ email, name: 'Mallory Upstream' });
    const attackerBrowser = new TestBrowser();
    const { res } = await viaUpstream(attackerBrowser, p, attacker);
    expect(res.status).toBe(202);
    const attackerMail = await lastMailTo(email, ownMail.id);
    // Same subject, but the mail names the provider and the upstream account, and where to open it.
    expect(attackerMail.subject).toBe('Confirm your email address');
    expect(attackerMail.text).toContain(`through ${p.name} (the ${p.name} account ${email})`);
    expect(attackerMail.text).toContain('Open the link in the browser where you started');
    expect(ownMail.text).not.toContain(p.name);
    const body = (m: typeof ownMail) => m.text.replace(tokenFrom(m), 'TOKEN');
    expect(body(attackerMail)).not.toBe(body(ownMail));
    // The pending sign-up keeps only a hash of the starting browser's cookie.
    const binding = attackerBrowser.cookie(UPSTREAM_SIGN_UP)!;
    expect(binding).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const pending = (await env.DB.prepare('SELECT upstream_identity FROM email_tokens WHERE token_hash = ?')
      .bind(await sha256(tokenFrom(attackerMail)))
      .first<{ upstream_identity: string }>())!;
    expect(JSON.parse(pending.upstream_identity)).toMatchObject({ subject: attacker.sub, bindingHash: await sha256(binding) });
    expect(pending.upstream_identity).not.toContain(binding);

    // The owner opens the newest one, as anyone would, in their own browser.
    const token = tokenFrom(attackerMail);
    const owner = new TestBrowser();
    const opened = await owner.submit('/auth/verify-email', { token }, `/auth/verify-email?token=${token}`);
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe('/auth/account?setup=passkey');
    const account = (await userByEmail(email))!;
    expect(account.email_verified_at).not.toBeNull();
    // Not the stranger's: no identity, not even their name.
    expect(account.name).toBeNull();
    expect(await identitiesOfUser(account.id)).toEqual([]);
    expect(await identityOf(p.upstream.issuer, attacker.sub)).toBeNull();
    expect(await me(owner)).toBe(account.id);

    // The attacker's upstream account is no way into it: the account's owner is mailed, that is all.
    const intruder = new TestBrowser();
    const again = await viaUpstream(intruder, p, attacker);
    expect(again.res.status).toBe(202);
    expect(await me(intruder)).toBeNull();
    expect(sessionOf(intruder)).toBeUndefined();
    expect((await lastMailTo(email, attackerMail.id)).subject).toBe(`Link ${p.name} to your account?`);
    expect(await identityOf(p.upstream.issuer, attacker.sub)).toBeNull();
  });
});

describe('F3 — upstream sign-in does not tell whether an address has an account (docs/security.md “No account enumeration”)', () => {
  it('answers an address with an account and an unknown one alike — status, page, cookies, mail limit — and mails the owner a link request', async () => {
    const p = await upstreamProvider();
    const existing = await createVerifiedUser();
    const nobody = uniqueEmail('nobody');
    // An upstream where a person can set any address (Entra's email claim, a lax OpenID Provider).
    const knownBrowser = new TestBrowser();
    const claimant = newPerson({ email: existing.email, email_verified: false });
    const known = await viaUpstream(knownBrowser, p, claimant);
    const unknown = await viaUpstream(new TestBrowser(), p, newPerson({ email: nobody, email_verified: false }));
    expect(known.res.status).toBe(202);
    expect(unknown.res.status).toBe(202);
    const knownHtml = await known.res.text();
    const unknownHtml = await unknown.res.text();
    expect(knownHtml).toContain('Check your email');
    expect(knownHtml).not.toContain('Sign in to link');
    expect(knownHtml.replaceAll(existing.email, 'ADDRESS')).toBe(unknownHtml.replaceAll(nobody, 'ADDRESS'));
    // The same cookies, by name and attributes.
    const shape = (res: Response) =>
      res.headers
        .getSetCookie()
        .map((c) => c.replace(/=[^;]*/, '=VALUE'))
        .sort();
    expect(shape(known.res)).toEqual(shape(unknown.res));
    expect(shape(known.res).map((c) => c.split('=')[0])).toEqual(
      // The D1 bookmark comes back after every state change, known address or not (src/request-session.ts).
      ['__Host-gatehouse_device', '__Host-gatehouse_d1_bookmark', BINDING, PENDING_LINK, UPSTREAM_SIGN_UP].sort(),
    );

    // What went to each address: a link request to the account's owner, a sign-up link to the other.
    const request = await lastMailTo(existing.email);
    expect(request.subject).toBe(`Link ${p.name} to your account?`);
    expect(request.text).toContain(`the ${p.name} account ${existing.email}`);
    expect((await lastMailTo(nobody)).subject).toBe('Confirm your email address');
    expect((await auditOf(existing.userId)).results.map((r) => r.type)).toContain('identity_link_requested');

    // The mailed link works only in the browser holding the pending link: another browser signed in
    // to the account is sent to the account page, with nothing to confirm.
    const link = new URL(request.links[0]!);
    const path = `${link.pathname}${link.search}`;
    expect(path).toBe(`/auth/upstream/link?${new URLSearchParams({ return_to: '/auth/account' })}`);
    const elsewhere = new TestBrowser();
    expect((await elsewhere.post('/auth/api/sign-in', { email: existing.email, password: STRONG_PASSWORD })).status).toBe(200);
    const nothing = await elsewhere.open(path);
    expect(nothing.res.status).toBe(303);
    expect(nothing.res.headers.get('location')).toBe('/auth/account');
    // In the browser that started it: sign in, see the confirmation page, confirm.
    const first = await knownBrowser.open(path);
    expect(first.res.status).toBe(303);
    expect(first.res.headers.get('location')).toBe(`/auth/sign-in?${new URLSearchParams({ return_to: path })}`);
    expect((await knownBrowser.post('/auth/api/sign-in', { email: existing.email, password: STRONG_PASSWORD })).status).toBe(200);
    const confirm = await knownBrowser.open(path);
    expect(confirm.html).toContain(`Link ${p.name}?`);
    const done = await knownBrowser.submit(path, { decision: 'link', pending: pendingOn(confirm.html)! }, path);
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`/auth/account?${new URLSearchParams({ linked: p.name })}`);
    expect(await identityOf(p.upstream.issuer, claimant.sub)).toMatchObject({ user_id: existing.userId });

    // Both count against the address's mail limit: past it, the same answer and no mail, either way.
    const answers = { known: [] as number[], unknown: [] as number[] };
    for (let i = 0; i < 5; i++) {
      const k = await viaUpstream(new TestBrowser(), p, newPerson({ email: existing.email, email_verified: false }));
      const u = await viaUpstream(new TestBrowser(), p, newPerson({ email: nobody, email_verified: false }));
      answers.known.push(k.res.status);
      answers.unknown.push(u.res.status);
      expect((await k.res.text()).replaceAll(existing.email, 'ADDRESS')).toBe((await u.res.text()).replaceAll(nobody, 'ADDRESS'));
    }
    expect(answers.known).toEqual([202, 202, 202, 202, 202]);
    expect(answers.unknown).toEqual(answers.known);
    // Five mails each (the account's own sign-up link was its first), then none; the mails that
    // say what happened to the account (linked, a new sign-in) are not held back.
    const limited = async (to: string) =>
      (await mailbox(to)).filter((m) => m.subject === 'Confirm your email address' || m.subject === `Link ${p.name} to your account?`)
        .length;
    expect(await limited(existing.email)).toBe(5);
    expect(await limited(nobody)).toBe(5);
  });
});

describe('F4 — Apple’s form post goes on as a same-site GET, which carries the session a link needs', () => {
  it('links an Apple account to the signed-in account: the cross-site post answers a Continue page, the GET it leads to links', async () => {
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
    // No cookie of Gatehouse's is SameSite=None any more: the binding is Lax like the session.
    const binding = started.headers.getSetCookie().find((c) => c.startsWith(`${BINDING}=`))!;
    expect(binding).toMatch(/SameSite=Lax/i);
    expect([...(b.crossSiteCookies.get(new URL(ORIGIN).host) ?? [])]).toEqual([]);
    const person: Claims = {
      sub: `001234.${randomToken(12).replace(/[^a-zA-Z0-9]/g, '0')}.0923`,
      email: `${slug}@privaterelay.appleid.com`,
      email_verified: 'true',
    };
    const answer = a.authorize(continueHref(await started.text())!, person);
    // Anything Apple's page might carry besides the answer is not passed on.
    answer.form.set('extra', 'not an answer parameter');
    const posted = await b.crossSitePost(answer.path, answer.form, 'https://appleid.apple.com');
    expect(posted.status).toBe(200);
    expect(posted.headers.get('cache-control')).toContain('no-store');
    // It did nothing itself: no cookie cleared or set, the request still waiting.
    expect(posted.headers.getSetCookie()).toEqual([]);
    expect(await requestsFor(id)).toBe(1);
    const html = await posted.text();
    const next = continueHref(html)!;
    expect(html).toContain('http-equiv="refresh"');
    const url = new URL(next, ORIGIN);
    expect(url.pathname).toBe(`/auth/upstream/${id}/callback`);
    expect([...url.searchParams.keys()].sort()).toEqual(['code', 'state']);
    expect(url.searchParams.get('code')).toBe(answer.form.get('code'));
    expect(url.searchParams.get('state')).toBe(answer.form.get('state'));
    // The page's GET is a same-site navigation: the browser sends its cookies, session and binding.
    const res = await b.fetch(next, { headers: navigate });
    expect(res.status, (await res.clone().text()).slice(0, 500)).toBe(303);
    expect(res.headers.get('location')).toBe(`/auth/account?${new URLSearchParams({ linked: `Apple ${slug}` })}`);
    expect((await identityOf('https://appleid.apple.com', person.sub as string))?.user_id).toBe(local.userId);
    expect(await requestsFor(id)).toBe(0);
    expect(b.cookie(BINDING)).toBeUndefined();
  });
});

describe('F5 — removing a passkey keeps the “last way to sign in” rule that unlinking keeps', () => {
  /** An account without an address or password: an upstream identity and a passkey, signed in. */
  async function passkeyAndIdentity() {
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
    return { b, userId, auth, identity };
  }
  const waysIn = async (userId: string) =>
    (await env.DB.prepare(
      `SELECT (SELECT count(*) FROM linked_identities WHERE user_id = ?1) AS identities, (SELECT count(*) FROM passkeys WHERE user_id = ?1) AS passkeys,
              (SELECT count(*) FROM users WHERE id = ?1 AND (password_hash IS NOT NULL OR email NOT LIKE '%@no-email.invalid')) AS other`,
    )
      .bind(userId)
      .first<{ identities: number; passkeys: number; other: number }>())!;

  it('an account without an address: the identity unlinks (a passkey remains), then that passkey cannot be removed', async () => {
    const { b, userId, auth, identity } = await passkeyAndIdentity();
    // Unlinking is allowed: the passkey is another way in.
    expect((await b.submit(`/auth/account/identities/${identity.id}/unlink`, {}, '/auth/account')).status).toBe(303);
    // Removing that passkey is refused, with why.
    const removed = await b.fetch(`/auth/api/passkeys/${auth.id}`, { method: 'DELETE', headers: { origin: ORIGIN } });
    expect(removed.status).toBe(409);
    expect((await removed.json()) as Problem).toMatchObject({
      code: 'last_sign_in_method',
      detail: 'This passkey is the only way to sign in to your account: add another first.',
    });
    // The page's Remove button too.
    const page = await b.submit(`/auth/account/passkeys/${encodeURIComponent(auth.id)}/remove`, {}, '/auth/account');
    expect(page.status).toBe(409);
    expect(await page.text()).toContain('only way to sign in');
    expect(await waysIn(userId)).toEqual({ identities: 0, passkeys: 1, other: 0 });
    expect((await auditOf(userId)).results.map((r) => r.type)).not.toContain('passkey_removed');
    // And it still signs in.
    const later = new TestBrowser();
    const { challengeId, options } = (await (await later.post('/auth/api/passkeys/authentication-options', {})).json()) as {
      challengeId: string;
      options: never;
    };
    const signedIn = await later.post('/auth/api/passkeys/sign-in', {
      challengeId,
      response: await auth.assert(options, { origin: ORIGIN }),
    });
    expect(await signedIn.json()).toMatchObject({ status: 'signed_in', user: { id: userId } });
  });

  it('an unlink and a passkey removal racing each other cannot both win: one way in remains', async () => {
    const { b, userId, auth, identity } = await passkeyAndIdentity();
    const { html } = await b.open('/auth/account');
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
    const [unlink, remove] = await Promise.all([
      b.fetch(`/auth/account/identities/${identity.id}/unlink`, {
        method: 'POST',
        body: new URLSearchParams({ csrf_token: csrf }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html' },
      }),
      b.fetch(`/auth/api/passkeys/${auth.id}`, { method: 'DELETE', headers: { origin: ORIGIN } }),
    ]);
    const statuses = [unlink.status === 303 ? 'unlinked' : unlink.status, remove.status === 204 ? 'removed' : remove.status];
    expect([
      ['unlinked', 409],
      [409, 'removed'],
    ]).toContainEqual(statuses);
    const left = await waysIn(userId);
    expect(left.identities + left.passkeys).toBe(1);
    expect(left.other).toBe(0);
  });

  it('unlinking the last identity names what to add instead', async () => {
    const p = await upstreamProvider();
    const b = new TestBrowser();
    await viaUpstream(b, p, newPerson({ email: undefined, email_verified: undefined }));
    const userId = (await me(b))!;
    const identity = (await env.DB.prepare('SELECT id FROM linked_identities WHERE user_id = ?').bind(userId).first<{ id: string }>())!;
    const res = await b.submit(`/auth/account/identities/${identity.id}/unlink`, {}, '/auth/account');
    expect(res.status).toBe(409);
    expect(await res.text()).toContain('This is the only way to sign in to your account: add another (a passkey) first.');
    expect(await waysIn(userId)).toEqual({ identities: 1, passkeys: 0, other: 0 });
  });
});

describe('F6 — every call to an upstream has a deadline and a size limit', () => {
  it('every request Gatehouse makes to an upstream carries an abort signal', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const signals: { url: string; signal: boolean }[] = [];
    const timed = (async (input: RequestInfo | URL, init?: RequestInit) => {
      signals.push({ url: String(input instanceof Request ? input.url : input), signal: init?.signal instanceof AbortSignal });
      return p.upstream.fetch(input, init);
    }) as typeof fetch;
    // A fresh issuer: discovery, token, JWKS are all fetched in this sign-in.
    const { res } = await viaUpstream(new TestBrowser(), { id: p.id, upstream: { ...p.upstream, fetch: timed } }, newPerson());
    expect(res.status).toBe(303);
    expect(signals.map((s) => new URL(s.url).pathname)).toEqual(
      expect.arrayContaining(['/.well-known/openid-configuration', '/token', '/jwks']),
    );
    expect(signals.filter((s) => !s.signal).map((s) => s.url)).toEqual([]);
  });

  it('an upstream that does not answer in time is “could not be reached” (502), and nothing is written', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    // The token endpoint hangs: the deadline's signal fires (here at once), and fetch rejects as it then does.
    const hanging = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.pathname === '/token' && init?.signal instanceof AbortSignal)
        throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
      return p.upstream.fetch(input, init);
    }) as typeof fetch;
    const person = newPerson();
    const b = new TestBrowser();
    const { res } = await viaUpstream(b, { id: p.id, upstream: { ...p.upstream, fetch: hanging } }, person);
    expect(res.status).toBe(502);
    expect(await res.text()).toContain(`${p.name} could not be reached. Try again in a moment, or sign in another way.`);
    expect(sessionOf(b)).toBeUndefined();
    expect(await userByEmail(person.email!)).toBeNull();
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
    expect(await requestsFor(p.id)).toBe(0);
  });

  for (const declared of [true, false])
    it(`a discovery document larger than 256 KiB (${declared ? 'its length declared' : 'streamed, no length'}) is “could not be reached” (502), and nothing is written`, async () => {
      const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
      // A valid document, padded past the limit: only its size is wrong.
      const bloated = (async (input: RequestInfo | URL, init?: RequestInit) => {
        const res = await p.upstream.fetch(input, init);
        const url = new URL(input instanceof Request ? input.url : String(input));
        if (url.pathname !== '/.well-known/openid-configuration') return res;
        const bytes = new TextEncoder().encode(JSON.stringify({ ...(await res.json<object>()), padding: 'x'.repeat(UPSTREAM_MAX_BYTES) }));
        expect(bytes.byteLength).toBeGreaterThan(UPSTREAM_MAX_BYTES);
        const headers = { 'content-type': 'application/json', ...(declared ? { 'content-length': String(bytes.byteLength) } : {}) };
        if (declared) return new Response(bytes, { headers });
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            for (let at = 0; at < bytes.byteLength; at += 16_384) c.enqueue(bytes.slice(at, at + 16_384));
            c.close();
          },
        });
        return new Response(body, { headers });
      }) as typeof fetch;
      const b = new TestBrowser().at(() => ({ fetch: bloated }));
      const started = await b.submit(`/auth/upstream/${p.id}`, {}, '/auth/sign-in');
      expect(started.status).toBe(502);
      const html = await started.text();
      expect(html).toContain(`${p.name} could not be reached. Try again in a moment, or sign in another way.`);
      expect(continueHref(html)).toBeUndefined();
      expect(b.cookie(BINDING)).toBeUndefined();
      expect(await requestsFor(p.id)).toBe(0);
    });
});

describe('F7 — a link started before “sign out everywhere” does not complete with the revoked session', () => {
  it('a thief’s session, revoked by the owner, cannot finish the link it started: sent to sign in, nothing linked', async () => {
    const p = await upstreamProvider();
    const victim = await createVerifiedUser();
    const thief = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
    expect((await thief.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    const started = await thief.submit(`/auth/account/identities/link/${p.id}`, {}, '/auth/account');
    expect(started.status).toBe(200);
    const attacker = newPerson();
    const callback = p.upstream.authorize(continueHref(await started.text())!, attacker);
    // The owner notices and signs out everywhere from their own browser.
    const owner = new TestBrowser();
    expect((await owner.post('/auth/api/sign-in', { email: victim.email, password: STRONG_PASSWORD })).status).toBe(200);
    expect((await owner.post('/auth/api/sign-out-everywhere', {})).status).toBeLessThan(300);
    expect((await thief.fetch('/auth/api/me')).status).toBe(401);
    // The thief's browser, still holding the (now revoked) session token, comes back with the answer.
    const res = await thief.fetch(callback, { headers: navigate });
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, ORIGIN).pathname).toBe('/auth/sign-in');
    expect(await identityOf(p.upstream.issuer, attacker.sub)).toBeNull();
    expect(await identitiesOfUser(victim.userId)).toEqual([]);
    expect((await auditOf(victim.userId)).results.map((r) => r.type)).not.toContain('identity_linked');
    // The request is spent: the thief cannot try again with a new session.
    expect(await requestsFor(p.id)).toBe(0);
  });
});

describe('F8 — two tabs: the confirmation page links only the pending link it showed', () => {
  it('a person shown “Link A?” who presses Link after another upstream sign-in in another tab links nothing; the page shown afresh links B', async () => {
    const p = await upstreamProvider();
    const local = await createVerifiedUser();
    const b = new TestBrowser();
    const first = newPerson({ email: local.email, name: 'First Account' });
    expect((await viaUpstream(b, p, first)).res.status).toBe(202);
    expect((await b.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    const page = await b.open('/auth/upstream/link');
    expect(page.html).toContain(local.email);
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.html)![1]!;
    const shown = pendingOn(page.html)!;
    expect(shown).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // Another tab: another upstream account with the same address comes back meanwhile.
    const second = newPerson({ email: local.email, name: 'Second Account', sub: `other-${randomToken(6)}` });
    expect((await viaUpstream(b, p, second)).res.status).toBe(202);
    // The first tab's form is submitted.
    const stale = await b.fetch('/auth/upstream/link', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: csrf, decision: 'link', pending: shown }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html' },
    });
    expect(stale.status).toBe(400);
    expect(await stale.text()).toContain('Another link request replaced this one. Look at it again before you confirm.');
    expect(await identityOf(p.upstream.issuer, second.sub), 'linked an account the page never showed').toBeNull();
    expect(await identityOf(p.upstream.issuer, first.sub)).toBeNull();
    // Without the field at all, nothing either.
    const bare = await b.fetch('/auth/upstream/link', {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: csrf, decision: 'link' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html' },
    });
    expect(bare.status).toBe(400);
    expect(await identityOf(p.upstream.issuer, second.sub)).toBeNull();
    // Shown again, the page names the second one; confirming it links that one only.
    const again = await b.open('/auth/upstream/link');
    const now = pendingOn(again.html)!;
    expect(now).not.toBe(shown);
    expect((await b.submit('/auth/upstream/link', { decision: 'link', pending: now }, '/auth/upstream/link')).status).toBe(303);
    expect(await identityOf(p.upstream.issuer, second.sub)).toMatchObject({ user_id: local.userId });
    expect(await identityOf(p.upstream.issuer, first.sub)).toBeNull();
  });
});

describe('held: what was tried and did not give', () => {
  it('mix-up: an answer to provider A’s request brought to provider B’s callback matches nothing, and A’s request stays usable', async () => {
    const a = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const b2 = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const browser = new TestBrowser().at(() => ({ fetch: a.upstream.fetch }));
    const started = await browser.submit(`/auth/upstream/${a.id}`, {}, '/auth/sign-in');
    const callback = a.upstream.authorize(continueHref(await started.text())!, newPerson());
    const binding = browser.cookie(BINDING)!;
    const mixed = await browser.fetch(callback.replace(`/upstream/${a.id}/`, `/upstream/${b2.id}/`), { headers: { accept: 'text/html' } });
    expect(mixed.status).toBe(400);
    // The callback cleared the binding cookie; put it back: A's request is still there, once.
    browser.cookies.set(BINDING, binding);
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
    signedIn.cookies.set(PENDING_LINK, pending!);
    const res = await signedIn.fetch('/auth/upstream/link', { headers: { accept: 'text/html' } });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/auth/account');
  });
});
