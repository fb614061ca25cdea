import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { forgetProviders } from '../../src/auth/upstream-provider-records';
import { createDb } from '../../src/db/client';
import { clientProviders } from '../../src/db/schema';
import { randomToken } from '../../src/lib/crypto';
import { TestBrowser } from '../browser';
import { auditOf, createVerifiedUser, lastMailTo, ORIGIN, STRONG_PASSWORD, tokenFrom } from '../helpers';
import { authorizeUrl, pkce, registerClient } from '../oauth/helpers';
import { codeAt, enrolled, PENDING } from './helpers';
import { continueHref, newPerson, sessionOf, upstreamProvider, viaUpstream } from './upstream-helpers';

/**
 * Sign-in through upstream identity providers and the linking rules (docs/authentication.md
 * "Linking"). The attackers: someone who owns an upstream account that claims a victim's address
 * (unverified, or at an upstream not trusted for that domain), a forged or replayed callback, a
 * callback from another browser (login CSRF), an upstream that changes a user's address, and one
 * that is down. The upstream is a fake OpenID Provider behind deps.fetch (fake-upstream.ts); the
 * end-to-end suite runs panva's oidc-provider.
 */
const identityOf = (issuer: string, subject: string) =>
  env.DB.prepare('SELECT * FROM linked_identities WHERE issuer = ? AND subject = ?').bind(issuer, subject).first<Record<string, unknown>>();
const userByEmail = (email: string) => env.DB.prepare('SELECT * FROM users WHERE email = ?').bind(email).first<Record<string, unknown>>();
const PENDING_LINK = '__Host-gatehouse_pending_link';
const UPSTREAM_SIGN_UP = '__Host-gatehouse_upstream_sign_up';
const me = async (b: TestBrowser) =>
  (await (await b.fetch('/auth/api/me')).json()) as { user: { id: string; email: string }; session: { amr: string[] } };

describe('signing up and in through an upstream', () => {
  it('a verified address at an upstream trusted for its domain makes a verified account, linked, signed in with amr fed', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const b = new TestBrowser();
    const person = newPerson();
    const { res } = await viaUpstream(b, p, person, { returnTo: '/auth/account' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/auth/account');
    const user = (await userByEmail(person.email!))!;
    expect(user.email_verified_at).not.toBeNull();
    expect(user.password_hash).toBeNull();
    expect(user.name).toBe('Ada Upstream');
    expect(await identityOf(p.upstream.issuer, person.sub)).toMatchObject({
      user_id: user.id,
      provider_id: p.id,
      email: person.email,
      email_verified: 1,
    });
    const { user: seen, session } = await me(b);
    expect(seen.id).toBe(user.id);
    expect(session.amr).toEqual(['fed']);
    const types = (await auditOf(user.id as string)).results.map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(['sign_up', 'identity_linked', 'sign_in']));
  });

  it('signs the same person in again as the same account, with the upstream’s claims refreshed — even after the upstream changed their address', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const person = newPerson();
    await viaUpstream(new TestBrowser(), p, person);
    const first = (await identityOf(p.upstream.issuer, person.sub))!;
    // The upstream now says another name and another (even unverified) address for the same subject.
    const later = new TestBrowser();
    await viaUpstream(later, p, { ...person, email: 'changed@elsewhere.example', email_verified: false, name: 'Ada Renamed' });
    expect((await me(later)).user.id).toBe(first.user_id);
    expect(await identityOf(p.upstream.issuer, person.sub)).toMatchObject({
      user_id: first.user_id,
      email: 'changed@elsewhere.example',
      name: 'Ada Renamed',
      email_verified: 0,
    });
    // The local account's own address is untouched: the upstream does not get to move it.
    expect((await userByEmail(person.email!))!.id).toBe(first.user_id);
  });

  it('a new address from an upstream not trusted for it makes nothing until the mailed link is opened in the starting browser; then the account is verified and linked', async () => {
    const p = await upstreamProvider();
    const person = newPerson();
    const b = new TestBrowser();
    const { res } = await viaUpstream(b, p, person);
    expect(res.status).toBe(202);
    expect(await res.text()).toContain(
      `We sent a message to ${person.email}. Open the link in it, in this browser, within 30 minutes to continue.`,
    );
    expect(sessionOf(b)).toBeUndefined();
    expect(b.cookie(UPSTREAM_SIGN_UP)).toBeDefined();
    expect(await userByEmail(person.email!)).toBeNull();
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
    const mail = await lastMailTo(person.email!);
    expect(mail.subject).toBe('Confirm your email address');
    expect(mail.text).toContain(`through ${p.name} (the ${p.name} account ${person.email})`);
    const token = tokenFrom(mail);
    // Opened in the browser that started it: the account is made, linked, with the upstream's name.
    const verified = await b.submit('/auth/verify-email', { token }, `/auth/verify-email?token=${token}`);
    expect(verified.status).toBe(303);
    expect(verified.headers.get('location')).toBe('/auth/account?setup=passkey');
    expect(b.cookie(UPSTREAM_SIGN_UP)).toBeUndefined();
    const user = (await userByEmail(person.email!))!;
    expect(user.email_verified_at).not.toBeNull();
    expect(user.password_hash).toBeNull();
    expect(user.name).toBe('Ada Upstream');
    expect(await identityOf(p.upstream.issuer, person.sub)).toMatchObject({
      user_id: user.id,
      provider_id: p.id,
      email: person.email,
      name: 'Ada Upstream',
    });
    // Signed in by the confirmed address (it has no password), as a passkey sign-up is.
    expect((await me(b)).user.id).toBe(user.id);
    expect((await me(b)).session.amr).toEqual(['email']);
    // Now the upstream signs them in.
    const again = new TestBrowser();
    await viaUpstream(again, p, person);
    expect((await me(again)).user.id).toBe(user.id);
    expect((await me(again)).session.amr).toEqual(['fed']);
  });

  it('the mailed link opened in another browser makes the account, verified, but links no identity and copies nothing from the upstream', async () => {
    const p = await upstreamProvider();
    const person = newPerson({ name: 'Someone Upstream', picture: 'https://pictures.example/someone.png' });
    const started = new TestBrowser();
    expect((await viaUpstream(started, p, person)).res.status).toBe(202);
    const token = tokenFrom(await lastMailTo(person.email!));
    // The mailbox's owner, in a browser of their own (or anyone else's: the cookie is what counts).
    const elsewhere = new TestBrowser();
    elsewhere.cookies.set(UPSTREAM_SIGN_UP, randomToken(32));
    const verified = await elsewhere.submit('/auth/verify-email', { token }, `/auth/verify-email?token=${token}`);
    expect(verified.status).toBe(303);
    const user = (await userByEmail(person.email!))!;
    expect(user.email_verified_at).not.toBeNull();
    expect(user.name).toBeNull();
    expect(user.picture).toBeNull();
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
    expect(
      (await env.DB.prepare('SELECT count(*) AS n FROM linked_identities WHERE user_id = ?').bind(user.id).first<{ n: number }>())!.n,
    ).toBe(0);
    expect((await me(elsewhere)).user.id).toBe(user.id);
    // The token is spent: the starting browser cannot link it afterwards.
    const late = await started.submit('/auth/verify-email', { token }, `/auth/verify-email?token=${token}`);
    expect(late.status).toBe(400);
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
    // The upstream account now meets an account with its address: it asks the owner, by mail.
    const again = new TestBrowser();
    expect((await viaUpstream(again, p, person)).res.status).toBe(202);
    expect(sessionOf(again)).toBeUndefined();
    expect((await lastMailTo(person.email!)).subject).toBe(`Link ${p.name} to your account?`);
  });

  it('a provider disabled before the mailed link is opened gets nothing linked, even in the starting browser', async () => {
    const p = await upstreamProvider();
    const person = newPerson();
    const b = new TestBrowser();
    expect((await viaUpstream(b, p, person)).res.status).toBe(202);
    const token = tokenFrom(await lastMailTo(person.email!));
    await env.DB.prepare('UPDATE identity_providers SET enabled = 0 WHERE id = ?').bind(p.id).run();
    forgetProviders();
    const verified = await b.submit('/auth/verify-email', { token }, `/auth/verify-email?token=${token}`);
    expect(verified.status).toBe(303);
    const user = (await userByEmail(person.email!))!;
    expect(user.email_verified_at).not.toBeNull();
    expect(user.name).toBeNull();
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
  });

  it('an upstream that shares no address makes an account without one: nothing shows or mails one', async () => {
    const p = await upstreamProvider();
    const person = newPerson({ email: undefined, email_verified: undefined });
    const b = new TestBrowser();
    await viaUpstream(b, p, person);
    const identity = (await identityOf(p.upstream.issuer, person.sub))!;
    const account = await b.open('/auth/account');
    expect(account.html).toContain('No email address');
    expect(account.html).not.toContain('.invalid');
    const { user } = await me(b);
    expect(user.id).toBe(identity.user_id);
    expect(JSON.stringify(await (await b.fetch('/auth/api/me')).json())).not.toContain('.invalid');
    // A passkey's name, shown by the browser's and the phone's passkey pickers, is not the placeholder.
    const options = await b.post('/auth/api/passkeys/registration-options', {});
    expect(options.status).toBe(200);
    const { options: creation } = (await options.json()) as { options: { user: { name: string; displayName: string } } };
    expect(`${creation.user.name} ${creation.user.displayName}`).not.toContain('.invalid');
    // Nor the account's name in an authenticator app, nor "signed in as" on a consent page.
    const totp = await b.post('/auth/api/totp', {});
    expect(totp.status).toBe(201);
    expect(decodeURIComponent(((await totp.json()) as { uri: string }).uri)).not.toContain('.invalid');
    const thirdParty = await registerClient({ firstParty: false });
    const { challenge } = await pkce();
    const consent = await b.open(authorizeUrl(thirdParty.clientId, challenge));
    expect(consent.html).toContain('Signed in as <strong>an account without an email address</strong>');
    expect(consent.html).not.toContain('.invalid');
  });
});

describe('linking an upstream identity to an existing account', () => {
  it('links at once only when the upstream is trusted for the domain, says verified, and the local address is verified — and mails the account', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['example.com'] });
    const local = await createVerifiedUser();
    const b = new TestBrowser();
    await viaUpstream(b, p, newPerson({ email: local.email }));
    expect((await me(b)).user.id).toBe(local.userId);
    const mail = await lastMailTo(local.email);
    expect(mail.subject).toBe(`${p.name} was linked to your account`);
    expect(
      (await auditOf(local.userId)).results.some((r) => r.type === 'identity_linked' && String(r.detail).includes('"how":"automatic"')),
    ).toBe(true);
  });

  it('never links an address the upstream did not verify, or one it is not trusted for: the account’s owner is mailed, and must sign in and confirm', async () => {
    const trusted = await upstreamProvider({ trustedEmailDomains: ['example.com'] });
    const untrusted = await upstreamProvider();
    const victim = await createVerifiedUser();
    for (const [what, provider, person] of [
      ['unverified at a trusted upstream', trusted, newPerson({ email: victim.email, email_verified: false })],
      ['verified at an upstream not trusted for the domain', untrusted, newPerson({ email: victim.email })],
    ] as const) {
      const attacker = new TestBrowser();
      const { res } = await viaUpstream(attacker, provider, person);
      const html = await res.text();
      // The same page as for an address nobody has (test/auth/upstream-review.test.ts, F3).
      expect(res.status, what).toBe(202);
      expect(html, what).toContain('Check your email');
      expect(html, what).toContain(`We sent a message to ${victim.email}.`);
      expect(html, what).not.toContain('Sign in to link your account');
      expect(attacker.cookie(PENDING_LINK), what).toBeDefined();
      expect(sessionOf(attacker), what).toBeUndefined();
      expect(await identityOf(provider.upstream.issuer, person.sub), what).toBeNull();
      const mail = await lastMailTo(victim.email);
      expect(mail.subject, what).toBe(`Link ${provider.name} to your account?`);
      expect(mail.text, what).toContain(`the ${provider.name} account ${victim.email}`);
      expect(mail.links[0], what).toBe(`${ORIGIN}/auth/upstream/link?${new URLSearchParams({ return_to: '/auth/account' })}`);
    }
    const requested = (await auditOf(victim.userId)).results.filter((r) => r.type === 'identity_link_requested');
    expect(requested).toHaveLength(2);
    expect((await auditOf(victim.userId)).results.map((r) => r.type)).not.toContain('identity_linked');
  });

  it('links after the person opens the mailed link in the same browser, signs in to the account and confirms — only into the account that signed in, only from this browser', async () => {
    const p = await upstreamProvider();
    const local = await createVerifiedUser();
    const b = new TestBrowser();
    const person = newPerson({ email: local.email });
    const { res } = await viaUpstream(b, p, person);
    expect(res.status).toBe(202);
    const mail = await lastMailTo(local.email);
    expect(mail.subject).toBe(`Link ${p.name} to your account?`);
    const link = new URL(mail.links[0]!);
    const back = `${link.pathname}${link.search}`;
    expect(back).toMatch(/^\/auth\/upstream\/link\?/);
    // Another browser signed in to the account has no pending link: the mailed link shows nothing to confirm.
    const other = new TestBrowser();
    expect((await other.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    const nothing = await other.open(back);
    expect(nothing.res.status).toBe(303);
    expect(nothing.res.headers.get('location')).toBe('/auth/account');
    // This browser, signed out: the link sends it to sign in, and back.
    const signIn = await b.open(back);
    expect(signIn.res.status).toBe(303);
    expect(signIn.res.headers.get('location')).toBe(`/auth/sign-in?${new URLSearchParams({ return_to: back })}`);
    // The person proves the account here, then confirms.
    expect((await b.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    const confirm = await b.open(back);
    expect(confirm.html).toContain(`Link ${p.name}?`);
    expect(confirm.html).toContain(`Your ${p.name} account (${local.email}) will be able to sign you in to this account (${local.email}).`);
    const pending = /name="pending" value="([^"]+)"/.exec(confirm.html)![1]!;
    // The other browser, signed in to the same account, cannot confirm it with the page's field either.
    expect((await other.submit('/auth/upstream/link', { decision: 'link', pending }, '/auth/account')).status).toBe(400);
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
    const done = await b.submit(back, { decision: 'link', pending }, back);
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`/auth/account?${new URLSearchParams({ linked: p.name })}`);
    expect(await identityOf(p.upstream.issuer, person.sub)).toMatchObject({ user_id: local.userId });
    expect(b.cookie(PENDING_LINK)).toBeUndefined();
    expect((await lastMailTo(local.email, mail.id)).subject).toBe(`${p.name} was linked to your account`);
    // From now on the upstream signs in as the account.
    const later = new TestBrowser();
    await viaUpstream(later, p, person);
    expect((await me(later)).user.id).toBe(local.userId);
  });

  it('refuses an identity already linked to another account', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const person = newPerson();
    await viaUpstream(new TestBrowser(), p, person);
    const someoneElse = await createVerifiedUser();
    const b = new TestBrowser();
    expect((await b.post('/auth/api/sign-in', { email: someoneElse.email, password: STRONG_PASSWORD })).status).toBe(200);
    const { res } = await viaUpstream(b, p, person, { startPath: `/auth/account/identities/link/${p.id}` });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain('already linked to another account');
  });
});

describe('linking from the account page', () => {
  it('links into the account that started it; a callback that finds another account signed in links nothing', async () => {
    const p = await upstreamProvider();
    const owner = await createVerifiedUser();
    const b = new TestBrowser();
    expect((await b.post('/auth/api/sign-in', { email: owner.email, password: STRONG_PASSWORD })).status).toBe(200);
    // An address of no account, from an upstream trusted for nothing: linking asks for none of that.
    const person = newPerson();
    const { res } = await viaUpstream(b, p, person, { startPath: `/auth/account/identities/link/${p.id}` });
    expect(res.status).toBe(303);
    expect(await identityOf(p.upstream.issuer, person.sub)).toMatchObject({ user_id: owner.userId });
    expect((await auditOf(owner.userId)).results.filter((r) => r.type === 'identity_linked')).toHaveLength(1);

    // Started by one account; by the callback the browser is signed in to another.
    const other = await createVerifiedUser();
    const c = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
    expect((await c.post('/auth/api/sign-in', { email: owner.email, password: STRONG_PASSWORD })).status).toBe(200);
    const started = await c.submit(`/auth/account/identities/link/${p.id}`, {}, '/auth/account');
    const second = newPerson();
    const callback = p.upstream.authorize(continueHref(await started.text())!, second);
    expect((await c.fetch('/auth/api/sign-out', { method: 'POST', json: {} })).status).toBe(204);
    expect((await c.post('/auth/api/sign-in', { email: other.email, password: STRONG_PASSWORD })).status).toBe(200);
    const swapped = await c.fetch(callback, { headers: { accept: 'text/html' } });
    expect(swapped.status).toBe(400);
    expect(await identityOf(p.upstream.issuer, second.sub)).toBeNull();
  });
});

describe('a session that is not recent', () => {
  it('cannot start a link, nor confirm a pending one: both send it to sign in again, and nothing is linked', async () => {
    const p = await upstreamProvider();
    const local = await createVerifiedUser();
    // Signed in eleven minutes ago: the session is live, the sign-in no longer recent.
    const b = new TestBrowser();
    const earlier = b.at((deps) => ({ now: () => deps.now() - 11 * 60_000 }));
    expect((await earlier.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    expect((await me(b)).user.id).toBe(local.userId);
    const start = await b.submit(`/auth/account/identities/link/${p.id}`, {}, '/auth/account');
    expect(start.status).toBe(303);
    expect(new URL(start.headers.get('location')!, ORIGIN).pathname).toBe('/auth/sign-in');
    expect(new URL(start.headers.get('location')!, ORIGIN).searchParams.get('reason')).toBe('recent');
    expect(b.cookie('__Host-gatehouse_upstream')).toBeUndefined();
    // An identity with the account's address, from an upstream not trusted for it, waits for proof;
    // the old sign-in is no proof.
    const person = newPerson({ email: local.email });
    const { res } = await viaUpstream(b, p, person);
    expect(res.status).toBe(202);
    expect(b.cookie(PENDING_LINK)).toBeDefined();
    const page = await b.open('/auth/upstream/link');
    const pending = /name="pending" value="([^"]+)"/.exec(page.html)![1]!;
    const refused = await b.submit('/auth/upstream/link', { decision: 'link', pending }, '/auth/upstream/link');
    expect(refused.status).toBe(303);
    const location = new URL(refused.headers.get('location')!, ORIGIN);
    expect(location.pathname).toBe('/auth/sign-in');
    // Signed in again, the person comes back to the confirmation page.
    expect(location.searchParams.get('return_to')).toBe(`/auth/upstream/link?${new URLSearchParams({ return_to: '/auth/account' })}`);
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
    expect(b.cookie(PENDING_LINK)).toBeDefined();
  });

  it('a proof given now suffices for both, however old the sign-in', async () => {
    const p = await upstreamProvider();
    const local = await createVerifiedUser();
    const b = new TestBrowser();
    const earlier = b.at((deps) => ({ now: () => deps.now() - 11 * 60_000 }));
    expect((await earlier.post('/auth/api/sign-in', { email: local.email, password: STRONG_PASSWORD })).status).toBe(200);
    // Starting a link from the account page, with the password.
    const own = newPerson();
    const { res } = await viaUpstream(b, p, own, {
      startPath: `/auth/account/identities/link/${p.id}`,
      fields: { proof_password: STRONG_PASSWORD },
    });
    expect(res.status).toBe(303);
    expect(await identityOf(p.upstream.issuer, own.sub)).toMatchObject({ user_id: local.userId });
    // Confirming a pending link, with the password.
    const person = newPerson({ email: local.email });
    expect((await viaUpstream(b, p, person)).res.status).toBe(202);
    const page = await b.open('/auth/upstream/link');
    const pending = /name="pending" value="([^"]+)"/.exec(page.html)![1]!;
    const done = await b.submit(
      '/auth/upstream/link',
      { decision: 'link', pending, proof_password: STRONG_PASSWORD },
      '/auth/upstream/link',
    );
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`/auth/account?${new URLSearchParams({ linked: p.name })}`);
    expect(await identityOf(p.upstream.issuer, person.sub)).toMatchObject({ user_id: local.userId });
  });
});

describe('attacks on the callback', () => {
  it('refuses a callback without the starting browser’s binding (login CSRF), a replayed one, and one whose state was tampered with', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const attacker = new TestBrowser();
    const person = newPerson();
    const started = await attacker.at(() => ({ fetch: p.upstream.fetch })).submit(`/auth/upstream/${p.id}`, {}, '/auth/sign-in');
    const callback = p.upstream.authorize(continueHref(await started.text())!, person);
    // The victim's browser is made to open the attacker's callback: with no binding at all, and with
    // the binding of a sign-in of its own under way — neither is the attacker's.
    for (const ownSignIn of [false, true]) {
      const victim = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
      if (ownSignIn) await victim.submit(`/auth/upstream/${p.id}`, {}, '/auth/sign-in');
      expect(Boolean(victim.cookie('__Host-gatehouse_upstream'))).toBe(ownSignIn);
      const planted = await victim.fetch(callback, { headers: { accept: 'text/html' } });
      expect(planted.status).toBe(400);
      expect(await planted.text()).toContain('not started in this browser');
      expect(sessionOf(victim)).toBeUndefined();
    }
    // The state, changed by one character, matches no request.
    const tampered = callback.replace(/state=([^&])/, (_, c) => `state=${c === 'A' ? 'B' : 'A'}`);
    expect((await attacker.at(() => ({ fetch: p.upstream.fetch })).fetch(tampered)).status).toBe(400);
    // The genuine one, in the right browser, once.
    const ok = await attacker.at(() => ({ fetch: p.upstream.fetch })).fetch(callback);
    expect(ok.status).toBe(400); // the tampered attempt took the binding cookie away: start again
    expect(await identityOf(p.upstream.issuer, person.sub)).toBeNull();
  });

  it('a replayed callback is refused: the request is taken once', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const b = new TestBrowser();
    const person = newPerson();
    const binding = async () => b.cookie('__Host-gatehouse_upstream');
    const { callback, back } = await viaUpstream(b, p, person);
    expect(sessionOf(b)).toBeDefined();
    expect(await binding()).toBeUndefined();
    // Even with the binding cookie put back, the request is gone.
    const replay = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
    const res = await back.fetch(callback);
    expect(res.status).toBe(400);
    void replay;
  });

  it('refuses ID tokens for another audience or issuer, with another nonce, expired, or signed with a key the upstream never published — and writes nothing', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const cases = {
      'another audience': { idToken: { aud: 'someone-else' } },
      'another issuer': { idToken: { iss: 'https://evil.example' } },
      'a nonce from another request (replay)': { idToken: { nonce: 'an-old-nonce' } },
      expired: { idToken: { exp: Math.floor(Date.now() / 1000) - 3600 } },
      'a key the upstream never published': { unpublishedKey: true },
    };
    for (const [what, misbehave] of Object.entries(cases)) {
      const b = new TestBrowser();
      const person = newPerson();
      const { res } = await viaUpstream(b, p, person, { misbehave });
      expect(res.status, what).toBe(400);
      expect(await res.text(), what).toContain('could not be verified');
      expect(sessionOf(b), what).toBeUndefined();
      expect(await identityOf(p.upstream.issuer, person.sub), what).toBeNull();
      expect(await userByEmail(person.email!), what).toBeNull();
    }
  });

  it('a callback that carries the upstream’s error, or an iss that is not the upstream (RFC 9207), is a clear page and nothing else', async () => {
    const p = await upstreamProvider({}, true);
    const b = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
    const started = await b.submit(`/auth/upstream/${p.id}`, {}, '/auth/sign-in');
    const href = continueHref(await started.text())!;
    const denied = await b.fetch(p.upstream.deny(href), { headers: { accept: 'text/html' } });
    expect(denied.status).toBe(400);
    expect(await denied.text()).toContain('You did not allow the sign-in');
    const again = await b.submit(`/auth/upstream/${p.id}`, {}, '/auth/sign-in');
    const callback = p.upstream.authorize(continueHref(await again.text())!, newPerson());
    const mixedUp = await b.fetch(callback.replace(/iss=[^&]+/, `iss=${encodeURIComponent('https://evil.example')}`));
    expect(mixedUp.status).toBe(400);
    expect(sessionOf(b)).toBeUndefined();
  });

  it('an upstream that is down is a clear page (502), and nothing is written', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const b = new TestBrowser().at(() => ({ fetch: p.upstream.fetch }));
    const started = await b.submit(`/auth/upstream/${p.id}`, {}, '/auth/sign-in');
    const person = newPerson();
    const callback = p.upstream.authorize(continueHref(await started.text())!, person);
    p.upstream.setDown(true);
    const res = await b.fetch(callback, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(502);
    expect(await res.text()).toContain(`${p.name} could not be reached. Try again in a moment, or sign in another way.`);
    expect(await userByEmail(person.email!)).toBeNull();
    // Up, but its token endpoint failing on its side: the same page, not "could not be verified".
    p.upstream.setDown(false);
    const again = await viaUpstream(new TestBrowser(), p, person, { misbehave: { tokenStatus: 503 } });
    expect(again.res.status).toBe(502);
    expect(await again.res.text()).toContain('could not be reached');
    expect(await userByEmail(person.email!)).toBeNull();
  });

  it('never goes back to another site: return_to is kept to this origin', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    for (const returnTo of ['https://evil.example/x', '//evil.example/x', '/\\evil.example']) {
      const b = new TestBrowser();
      const { res } = await viaUpstream(b, p, newPerson(), { returnTo });
      expect(res.status, returnTo).toBe(303);
      expect(new URL(res.headers.get('location')!, ORIGIN).origin, returnTo).toBe(ORIGIN);
    }
  });
});

describe('upstream sign-in follows the same rules as any first factor', () => {
  it('an account with a second factor is asked for it after the upstream, and acr rises only with it', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['example.com'] });
    const { email, secret } = await enrolled();
    // Link through the automatic path (trusted, verified), from a new browser (a new device: adaptive MFA asks).
    const b = new TestBrowser();
    const { res } = await viaUpstream(b, p, newPerson({ email }));
    // Not a redirect: the way back from the upstream is another site's navigation, on which browsers
    // hold back the SameSite=Strict cookie of the pending sign-in; a page of ours starts a new one.
    expect(res.status).toBe(200);
    const next = continueHref(await res.text())!;
    expect(new URL(next, ORIGIN).pathname).toBe('/auth/second-factor');
    expect(b.cookie(PENDING)).toBeDefined();
    expect(sessionOf(b)).toBeUndefined();
    expect((await b.open(next)).res.status).toBe(200);
    const done = await b.submit('/auth/second-factor', { code: codeAt(secret) }, next);
    expect(done.status).toBe(303);
    const session = decodeJwt(sessionOf(b)!.split('~')[0]!);
    expect(session.amr).toEqual(['fed', 'mfa', 'otp']);
    // Now two factors: a client that requires MFA gets its code without asking again.
    const client = await registerClient({ requireMfa: true, firstParty: true });
    const { challenge } = await pkce();
    const authorized = await b.fetch(authorizeUrl(client.clientId, challenge));
    expect(authorized.status).toBe(302);
    expect(new URL(authorized.headers.get('location')!).searchParams.get('code')).toBeTruthy();
  });

  it('a client that requires MFA still asks for the second factor after an upstream sign-in', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const client = await registerClient({ requireMfa: true, firstParty: true });
    const b = new TestBrowser();
    await viaUpstream(b, p, newPerson());
    const { challenge } = await pkce();
    const res = await b.fetch(authorizeUrl(client.clientId, challenge), { headers: { accept: 'text/html' } });
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!, ORIGIN).pathname).toBe('/auth/second-factor');
  });

  it('a client’s sign-in page shows the client’s own providers; Gatehouse’s own shows every enabled one', async () => {
    const mine = await upstreamProvider();
    const theirs = await upstreamProvider();
    const client = await registerClient({ firstParty: true });
    await createDb(env.DB).insert(clientProviders).values({ clientId: client.clientId, providerId: mine.id });
    const { challenge } = await pkce();
    const forClient = await new TestBrowser().open(
      `/auth/sign-in?return_to=${encodeURIComponent(authorizeUrl(client.clientId, challenge))}`,
    );
    expect(forClient.html).toContain(`data-provider="${mine.id}"`);
    expect(forClient.html).not.toContain(`data-provider="${theirs.id}"`);
    const own = await new TestBrowser().open('/auth/sign-in');
    expect(own.html).toContain(`data-provider="${mine.id}"`);
    expect(own.html).toContain(`data-provider="${theirs.id}"`);
  });

  it('the session an upstream sign-in makes says amr fed (the ID token too: test/oauth/upstream-token.test.ts)', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const b = new TestBrowser();
    await viaUpstream(b, p, newPerson());
    const session = decodeJwt(b.cookie('__Host-gatehouse_session')!.split('~')[0]!);
    expect(session.amr).toEqual(['fed']);
  });
});

describe('unlinking', () => {
  it('unlinks from the account page after a recent sign-in, audits and mails it', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['example.com'] });
    const local = await createVerifiedUser();
    const b = new TestBrowser();
    await viaUpstream(b, p, newPerson({ email: local.email }));
    const identity = (await env.DB.prepare('SELECT id FROM linked_identities WHERE user_id = ?')
      .bind(local.userId)
      .first<{ id: string }>())!;
    const res = await b.submit(`/auth/account/identities/${identity.id}/unlink`, {}, '/auth/account');
    expect(res.status).toBe(303);
    expect(await env.DB.prepare('SELECT id FROM linked_identities WHERE id = ?').bind(identity.id).first()).toBeNull();
    expect((await lastMailTo(local.email)).subject).toBe(`${p.name} was unlinked from your account`);
    expect((await auditOf(local.userId)).results.some((r) => r.type === 'identity_unlinked')).toBe(true);
  });

  it('never unlinks the last way to sign in, and a stale session cannot unlink at all', async () => {
    const p = await upstreamProvider();
    const b = new TestBrowser();
    await viaUpstream(b, p, newPerson({ email: undefined, email_verified: undefined }));
    const { user } = await me(b);
    const identity = (await env.DB.prepare('SELECT id FROM linked_identities WHERE user_id = ?').bind(user.id).first<{ id: string }>())!;
    const last = await b.submit(`/auth/account/identities/${identity.id}/unlink`, {}, '/auth/account');
    expect(last.status).toBe(409);
    expect(await last.text()).toContain('This is the only way to sign in to your account: add another (a passkey) first.');
    // Eleven minutes later the session is no longer recent: unlinking is refused, even with another way left.
    const local = await createVerifiedUser();
    const q = await upstreamProvider({ trustedEmailDomains: ['example.com'] });
    const c = new TestBrowser();
    await viaUpstream(c, q, newPerson({ email: local.email }));
    const linked = (await env.DB.prepare('SELECT id FROM linked_identities WHERE user_id = ?').bind(local.userId).first<{ id: string }>())!;
    const stale = c.at((deps) => ({ now: () => deps.now() + 11 * 60_000 }));
    const refused = await stale.submit(`/auth/account/identities/${linked.id}/unlink`, {}, '/auth/account');
    expect(refused.status).toBe(303);
    expect(new URL(refused.headers.get('location')!, ORIGIN).pathname).toBe('/auth/sign-in');
    expect(await env.DB.prepare('SELECT id FROM linked_identities WHERE id = ?').bind(linked.id).first()).not.toBeNull();
  });
});
