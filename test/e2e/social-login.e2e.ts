import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  clientsCli,
  launchChromium,
  listenOnFreePort,
  mailbox,
  type Mail,
  newContext,
  providersCli,
  signUpVerified,
  startGatehouse,
  uniqueIp,
} from './harness';
import { codeRequest } from './relying-party';
import { type LocalUpstream, signInAtUpstream, startUpstream } from './upstream';

// Sign-in with upstream OpenID Providers in headless Chromium against `wrangler dev`: two local
// oidc-provider instances, one trusted for the test's email domain, one not, registered with the
// providers CLI. The worker, the upstreams and Chromium are shared; each test has people (upstream
// accounts and addresses) and browser contexts of its own, so any one runs alone.

/** The domain the trusted upstream may vouch for (--trusted-domain); addresses elsewhere it may not. */
const DOMAIN = 'social.example';
const TRUSTED = { id: 'trusted', name: 'Trusted ID' };
const UNTRUSTED = { id: 'untrusted', name: 'Open ID' };
const PASSWORD = 'a password of my own 2026';

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let trusted: LocalUpstream;
let untrusted: LocalUpstream;
let browser: Browser;

let people = 0;
const address = (label: string, domain = DOMAIN) => `${label}-${Date.now()}-${++people}@${domain}`;

/** Registers an upstream with the providers CLI, as an operator would; returns what it printed. */
function addProvider(persistTo: string, kek: string, upstream: LocalUpstream, p: { id: string; name: string }, more: string[] = []) {
  const r = providersCli(
    [
      'add',
      ...['--id', p.id, '--kind', 'oidc', '--name', p.name, '--issuer', upstream.issuer],
      ...['--client-id', upstream.clientId, '--client-secret', upstream.clientSecret],
      ...more,
      ...['--persist-to', persistTo],
    ],
    { KEY_ENCRYPTION_KEY: kek },
  );
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).not.toContain(upstream.clientSecret);
  return JSON.parse(r.stdout) as { id: string; issuer: string; trusted_email_domains: string[]; enabled: boolean };
}

beforeAll(async () => {
  [trusted, untrusted] = await Promise.all([startUpstream('trusted'), startUpstream('untrusted')]);
  // The providers go into D1 before the worker starts: it keeps the provider list 30 s once read.
  gatehouse = await startGatehouse(
    {},
    {
      beforeStart: ({ persistTo, secrets }) => {
        const t = addProvider(persistTo, secrets.KEY_ENCRYPTION_KEY, trusted, TRUSTED, ['--trusted-domain', DOMAIN]);
        expect(t).toMatchObject({ id: TRUSTED.id, issuer: trusted.issuer, trusted_email_domains: [DOMAIN], enabled: true });
        const u = addProvider(persistTo, secrets.KEY_ENCRYPTION_KEY, untrusted, UNTRUSTED);
        expect(u).toMatchObject({ id: UNTRUSTED.id, issuer: untrusted.issuer, trusted_email_domains: [], enabled: true });
      },
    },
  );
  await Promise.all([
    trusted.serve(`${gatehouse.base}/auth/upstream/${TRUSTED.id}/callback`),
    untrusted.serve(`${gatehouse.base}/auth/upstream/${UNTRUSTED.id}/callback`),
  ]);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await gatehouse?.stop();
  await Promise.all([trusted?.close(), untrusted?.close()]);
});

/** A fresh browser profile for this test (closed when it ends), on an address of its own. */
async function device(): Promise<Page> {
  const context = await newContext(browser, { extraHTTPHeaders: { 'cf-connecting-ip': uniqueIp() } });
  onTestFinished(() => context.close());
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log('[pageerror]', e.message));
  return page;
}

const upstreamOf = (p: { id: string }) => (p.id === TRUSTED.id ? trusted : untrusted);

/** From Gatehouse's sign-in page (or `from`): "Continue with NAME", then signs in at the upstream as `login`. */
async function continueWith(page: Page, p: { id: string; name: string }, login: string, from = '/auth/sign-in') {
  await page.goto(`${gatehouse.base}${from}`);
  await page.getByRole('button', { name: `Continue with ${p.name}` }).click();
  await signInAtUpstream(page, upstreamOf(p), login);
}

/** Waits for the browser to be back on Gatehouse's page `path` (the callback answered, redirects followed). */
const backAt = (page: Page, path: string) => page.waitForURL((u) => u.origin === gatehouse.base && u.pathname === path);

interface Me {
  user: { id: string; email: string | null; emailVerified: boolean | null };
  session: { sid: string; amr: string[] };
}
const me = (page: Page) =>
  page.evaluate(async () => {
    const res = await fetch('/auth/api/me', { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: res.status === 200 ? ((await res.json()) as Me) : null };
  });

/** The linked accounts the account page lists, as their text. */
const linkedOnAccountPage = (page: Page) => page.locator('section[aria-labelledby="linked-accounts"] li').allTextContents();

/** Waits (polling the dev mailbox, 10 s at most) for a mail to `to` with `subject`: mails go out after the response. */
async function mailTo(to: string, subject: string | ((subject: string) => boolean)): Promise<Mail> {
  const deadline = Date.now() + 10_000;
  const wanted = typeof subject === 'string' ? (s: string) => s === subject : subject;
  for (;;) {
    const mail = (await mailbox(gatehouse.base, to)).find((m) => wanted(m.subject));
    if (mail) return mail;
    if (Date.now() > deadline)
      throw new Error(`no mail "${String(subject)}" to ${to}: ${JSON.stringify(await mailbox(gatehouse.base, to))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The link in a mail that starts with `prefix` (Gatehouse's URL). */
const linkIn = (mail: Mail, prefix: string) => {
  const link = mail.links.find((l) => l.startsWith(`${gatehouse.base}${prefix}`));
  expect(link, JSON.stringify(mail.links)).toBeDefined();
  return link!;
};

/** Signs in with the password on the sign-in page the browser is on (or is sent to). */
async function signInWithPassword(page: Page, email: string) {
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** On the account page: the Unlink button of `p`'s linked account. */
const unlinkButton = (page: Page, p: { name: string }) => page.getByRole('button', { name: `Unlink ${p.name}` });

/**
 * A relying party for one test: a loopback server at its redirect URI, a first-party client made
 * with the clients CLI (its sign-in page showing the upstreams `providers`, listed with the
 * providers CLI), and openid-client to send authorization requests and redeem the code.
 */
async function relyingParty(providers: string[] = []) {
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('relying party'));
  const redirect = `http://127.0.0.1:${await listenOnFreePort(server)}/callback`;
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  const clientId = `social-rp-${Date.now()}-${++people}`;
  const created = clientsCli([
    'create',
    ...['--name', 'Social RP', '--client-id', clientId, '--redirect-uri', redirect, '--first-party'],
    ...['--grant', 'authorization_code', '--scope', 'openid', '--scope', 'email'],
    ...['--persist-to', gatehouse.persistTo],
  ]);
  expect(created.code, created.stderr).toBe(0);
  for (const id of providers) {
    const r = providersCli(['clients', '--id', id, '--client', clientId, '--persist-to', gatehouse.persistTo]);
    expect(r.code, r.stderr).toBe(0);
  }
  const { client_secret } = JSON.parse(created.stdout) as { client_secret: string };
  const config = await oidc.discovery(new URL(gatehouse.base), clientId, undefined, oidc.ClientSecretBasic(client_secret), {
    execute: [oidc.allowInsecureRequests],
  });
  return {
    clientId,
    config,
    /** A code + PKCE authorization request. */
    authorize: () => codeRequest(config, redirect, { scope: 'openid email' }),
    /** Waits for the browser at the redirect URI and redeems the code. */
    async tokens(page: Page, r: { verifier: string; state: string }) {
      await page
        .waitForURL((u) => u.href.startsWith(`${redirect}?`))
        .catch((e: Error) => {
          throw new Error(`${e.message}\n(the browser is at ${page.url()})`);
        });
      return oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: r.verifier, expectedState: r.state });
    },
  };
}

describe('social sign-in through local OpenID Providers', () => {
  it('signs up through the trusted upstream: a verified account, signed in, the identity listed', async () => {
    const email = address('newcomer');
    const login = trusted.account({ email, emailVerified: true, name: 'New Comer' });
    const page = await device();
    await continueWith(page, TRUSTED, login, '/auth/sign-up');
    await backAt(page, '/auth/account');

    expect(await page.locator('#account-email').textContent()).toBe(email);
    expect(await page.locator('p', { has: page.locator('#account-email') }).textContent()).toContain('(verified)');
    expect(await linkedOnAccountPage(page)).toEqual([expect.stringContaining(`${TRUSTED.name} ${email}`)]);
    const { status, body } = await me(page);
    expect(status).toBe(200);
    expect(body!.user).toMatchObject({ email, emailVerified: true, profile: { name: 'New Comer' } });
    expect(body!.session.amr).toEqual(['fed']);
  });

  it('signs in again through the same upstream account to the same account, its claims refreshed', async () => {
    const email = address('returning');
    const login = trusted.account({ email, emailVerified: true });
    const first = await device();
    await continueWith(first, TRUSTED, login);
    await backAt(first, '/auth/account');
    const { body: before } = await me(first);

    // Another device, and meanwhile the upstream account has another address: the identity is
    // (issuer, subject), so the same account; the link shows the new address, the account keeps its own.
    const moved = address('moved');
    trusted.update(login, { email: moved });
    const second = await device();
    await continueWith(second, TRUSTED, login);
    await backAt(second, '/auth/account');
    const { body: after } = await me(second);
    expect(after!.user).toMatchObject({ id: before!.user.id, email });
    expect(after!.session.amr).toEqual(['fed']);
    expect(await linkedOnAccountPage(second)).toEqual([expect.stringContaining(`${TRUSTED.name} ${moved}`)]);
  });

  it('asks an account with an authenticator app for its code after the upstream, on a new device', async () => {
    const email = address('two-step');
    const login = trusted.account({ email, emailVerified: true });
    const first = await device();
    await continueWith(first, TRUSTED, login);
    await backAt(first, '/auth/account');
    // Turn on an authenticator app (the sign-in is recent), as the account page offers.
    await first.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await first.getByRole('img', { name: 'QR code for your authenticator app' }).waitFor();
    const secret = ((await first.locator('#totp-secret').textContent()) ?? '').replace(/\s/g, '');
    const code = (at: number) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at });
    const enrolledAt = Date.now();
    await first.getByLabel('Code').fill(code(enrolledAt));
    await first.getByRole('button', { name: 'Turn on two-step verification' }).click();
    await first.getByRole('heading', { name: 'Your recovery codes' }).waitFor();

    // A new device: the upstream's answer comes back across sites, and the second-factor page must
    // still find this sign-in (its cookie is SameSite=Strict).
    const second = await device();
    await continueWith(second, TRUSTED, login);
    await backAt(second, '/auth/second-factor');
    await second.getByLabel('Code').waitFor({ timeout: 10_000 });
    // The step after the enrolment's: one the server has not seen, and within the one step ahead it allows.
    await second.getByLabel('Code').fill(code((Math.floor(enrolledAt / 30_000) + 1) * 30_000 + 15_000));
    await second.getByRole('button', { name: 'Verify' }).click();
    await backAt(second, '/auth/account');
    const { body } = await me(second);
    expect(body!.session.amr).toEqual(expect.arrayContaining(['fed', 'otp', 'mfa']));
  });

  it('refuses a callback replayed, or carried to another browser', async () => {
    const login = trusted.account({ email: address('replayed'), emailVerified: true });
    const page = await device();
    const callbacks: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${gatehouse.base}/auth/upstream/${TRUSTED.id}/callback?`)) callbacks.push(r.url());
    });
    await continueWith(page, TRUSTED, login);
    await backAt(page, '/auth/account');
    expect(callbacks).toHaveLength(1);
    const { body } = await me(page);

    const elsewhere = await device();
    for (const p of [page, elsewhere]) {
      await p.goto(callbacks[0]!);
      await p.getByRole('heading', { level: 1, name: 'Sign-in did not complete' }).waitFor();
      expect(await p.getByText('This sign-in was not started in this browser, or has already finished. Start again.').count()).toBe(1);
    }
    // The first browser is still signed in as before; the other is not signed in.
    expect((await me(page)).body).toMatchObject({ user: { id: body!.user.id }, session: { sid: body!.session.sid } });
    expect((await me(elsewhere)).status).toBe(401);
  });

  it('links an untrusted upstream to a password account once the person opens the mailed link, signs in to it and confirms', async () => {
    const email = address('linker');
    await signUpVerified(gatehouse.base, email, PASSWORD);
    const login = untrusted.account({ email, emailVerified: true, name: 'Link Er' });
    const page = await device();
    await continueWith(page, UNTRUSTED, login);

    // The untrusted upstream may not vouch for an address an account has: the page says to check
    // the mail (as it would for an address nobody has), and the account's owner is asked by mail.
    await backAt(page, `/auth/upstream/${UNTRUSTED.id}/callback`);
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
    expect(
      await page.getByText(`We sent a message to ${email}. Open the link in it, in this browser, within 30 minutes to continue.`).count(),
    ).toBe(1);
    expect((await me(page)).status).toBe(401);
    const request = await mailTo(email, `Link ${UNTRUSTED.name} to your account?`);
    const link = linkIn(request, '/auth/upstream/link?');

    // The link works only in the browser holding the pending link: another one, signed in to the
    // account, finds nothing to confirm.
    const elsewhere = await device();
    await elsewhere.goto(`${gatehouse.base}/auth/sign-in`);
    await signInWithPassword(elsewhere, email);
    await backAt(elsewhere, '/auth/account');
    await elsewhere.goto(link);
    await backAt(elsewhere, '/auth/account');
    expect(await elsewhere.getByRole('heading', { level: 1, name: `Link ${UNTRUSTED.name}?` }).count()).toBe(0);
    expect(await linkedOnAccountPage(elsewhere)).toEqual([]);

    // In the browser that started it: sign in to the account, then confirm.
    await page.goto(link);
    await backAt(page, '/auth/sign-in');
    await signInWithPassword(page, email);
    await backAt(page, '/auth/upstream/link');
    await page.getByRole('heading', { level: 1, name: `Link ${UNTRUSTED.name}?` }).waitFor();
    await page.getByRole('button', { name: 'Link', exact: true }).click();
    await backAt(page, '/auth/account');
    expect(await page.getByText(`${UNTRUSTED.name} is linked to your account.`).count()).toBe(1);
    expect(await linkedOnAccountPage(page)).toEqual([expect.stringContaining(`${UNTRUSTED.name} ${email}`)]);
    const mail = await mailTo(email, `${UNTRUSTED.name} was linked to your account`);
    expect(mail.links).toContain(`${gatehouse.base}/auth/account`);

    // From now on the upstream account signs in to it, on any device.
    const { body: local } = await me(page);
    const other = await device();
    await continueWith(other, UNTRUSTED, login);
    await backAt(other, '/auth/account');
    expect((await me(other)).body!.user.id).toBe(local!.user.id);
  });

  it('never links on an address the upstream did not verify, or one outside its trusted domain, even when trusted', async () => {
    const email = address('unverified');
    await signUpVerified(gatehouse.base, email, PASSWORD);
    const elsewhere = address('elsewhere', 'elsewhere.example');
    await signUpVerified(gatehouse.base, elsewhere, PASSWORD);
    for (const [label, login, who] of [
      ['email_verified false', trusted.account({ email, emailVerified: false }), email],
      ['another domain', trusted.account({ email: elsewhere, emailVerified: true }), elsewhere],
    ] as const) {
      const page = await device();
      await continueWith(page, TRUSTED, login);
      await backAt(page, `/auth/upstream/${TRUSTED.id}/callback`);
      await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
      expect(await page.getByText(`We sent a message to ${who}.`, { exact: false }).count(), label).toBe(1);
      expect((await me(page)).status, label).toBe(401);
      // The account's owner is asked by mail.
      await mailTo(who, `Link ${TRUSTED.name} to your account?`);
    }
    // Neither account got a linked identity (nor a mail saying so); the mailed link, opened in the
    // owner's own browser (not the one that holds the pending link), links nothing either.
    for (const who of [email, elsewhere]) {
      const page = await device();
      await page.goto(`${gatehouse.base}/auth/sign-in`);
      await signInWithPassword(page, who);
      await backAt(page, '/auth/account');
      expect(await linkedOnAccountPage(page)).toEqual([]);
      await page.goto(linkIn(await mailTo(who, `Link ${TRUSTED.name} to your account?`), '/auth/upstream/link?'));
      await backAt(page, '/auth/account');
      expect(await linkedOnAccountPage(page)).toEqual([]);
      expect((await mailbox(gatehouse.base, who)).map((m) => m.subject)).not.toContain(`${TRUSTED.name} was linked to your account`);
    }
  });

  it('links a trusted upstream at once, unlinks it from the account page, and links it again there', async () => {
    // A password account; the trusted upstream vouches for its domain, and both sides verified the address.
    const email = address('unlinker');
    await signUpVerified(gatehouse.base, email, PASSWORD);
    const page = await device();
    await continueWith(page, TRUSTED, trusted.account({ email, emailVerified: true }));
    await backAt(page, '/auth/account');
    expect((await me(page)).body).toMatchObject({ user: { email }, session: { amr: ['fed'] } });
    expect(await linkedOnAccountPage(page)).toEqual([expect.stringContaining(`${TRUSTED.name} ${email}`)]);
    await mailTo(email, `${TRUSTED.name} was linked to your account`);

    await unlinkButton(page, TRUSTED).click();
    await backAt(page, '/auth/account');
    expect(await page.getByText('No accounts from other services are linked.').count()).toBe(1);
    await mailTo(email, `${TRUSTED.name} was unlinked from your account`);

    // The account page's Link button (a recent sign-in here): the upstream remembers this browser.
    await page.getByRole('button', { name: `Link ${TRUSTED.name}` }).click();
    await backAt(page, '/auth/account');
    expect(await page.getByText(`${TRUSTED.name} is linked to your account.`).count()).toBe(1);
    expect(await linkedOnAccountPage(page)).toEqual([expect.stringContaining(`${TRUSTED.name} ${email}`)]);
  });

  it('never unlinks the last way to sign in: refused without an address, allowed while email sign-in reaches one', async () => {
    // An account made through an upstream that shared no address: no password, no passkey, no
    // address to mail a sign-in link to — its one linked identity is its only way in.
    const page = await device();
    await continueWith(page, UNTRUSTED, untrusted.account({ name: 'No Address' }));
    await backAt(page, '/auth/account');
    expect(await page.locator('#account-email').textContent()).toBe('No email address');
    const { body } = await me(page);
    // No address shown anywhere: not the placeholder the account row keeps (in .invalid).
    expect(body!.user).toMatchObject({ email: null, emailVerified: null, profile: { name: 'No Address' } });
    expect(body!.session.amr).toEqual(['fed']);
    await unlinkButton(page, UNTRUSTED).click();
    await page.getByRole('heading', { level: 1, name: 'Could not unlink' }).waitFor();
    expect(await page.getByText('This is the only way to sign in to your account: add another (a passkey) first.').count()).toBe(1);
    await page.goto(`${gatehouse.base}/auth/account`);
    expect(await linkedOnAccountPage(page)).toEqual([expect.stringContaining(`${UNTRUSTED.name} No Address`)]);

    // Made through an upstream with a (verified) address, no password either: the address remains.
    const email = address('mail-only');
    const withAddress = await device();
    await continueWith(withAddress, TRUSTED, trusted.account({ email, emailVerified: true }));
    await backAt(withAddress, '/auth/account');
    const { body: made } = await me(withAddress);
    await unlinkButton(withAddress, TRUSTED).click();
    await backAt(withAddress, '/auth/account');
    expect(await linkedOnAccountPage(withAddress)).toEqual([]);
    const other = await device();
    await other.goto(`${gatehouse.base}/auth/email-sign-in`);
    await other.getByLabel('Email address').fill(email);
    await other.getByRole('button', { name: 'Email me a link and a code' }).click();
    const code = /^Your sign-in code: (\d{4}) (\d{4})$/.exec((await mailTo(email, (s) => s.startsWith('Your sign-in code:'))).subject)!;
    await other.getByLabel('Sign-in code').fill(`${code[1]}${code[2]}`);
    await other.getByRole('button', { name: 'Sign in', exact: true }).click();
    await backAt(other, '/auth/account');
    expect((await me(other)).body).toMatchObject({ user: { id: made!.user.id }, session: { amr: ['email'] } });
  });

  it('signs up through the untrusted upstream by the mailed link, opened in the same browser: verified, with the identity linked', async () => {
    const email = address('mailed');
    const login = untrusted.account({ email, emailVerified: true, name: 'Mailed Person' });
    const page = await device();
    await continueWith(page, UNTRUSTED, login);
    await backAt(page, `/auth/upstream/${UNTRUSTED.id}/callback`);
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
    expect((await me(page)).status).toBe(401);

    // The mail says which upstream account asked (a stranger's attempt would show), and where to open it.
    const mail = await mailTo(email, 'Confirm your email address');
    expect(mail.text).toContain(`through ${UNTRUSTED.name} (the ${UNTRUSTED.name} account ${email})`);
    await page.goto(linkIn(mail, '/auth/verify-email?token='));
    await page.getByRole('button', { name: 'Confirm email address' }).click();
    await backAt(page, '/auth/account');
    const { body } = await me(page);
    expect(body!.user).toMatchObject({ email, emailVerified: true, profile: { name: 'Mailed Person' } });
    expect(await linkedOnAccountPage(page)).toEqual([expect.stringContaining(`${UNTRUSTED.name} ${email}`)]);

    // The upstream account signs in to it from now on.
    const again = await device();
    await continueWith(again, UNTRUSTED, login);
    await backAt(again, '/auth/account');
    expect((await me(again)).body!.user.id).toBe(body!.user.id);
  });

  it('makes the account but links nothing when the mailed sign-up link is opened in another browser', async () => {
    const email = address('mailed-elsewhere');
    const login = untrusted.account({ email, emailVerified: true, name: 'Not Linked' });
    const page = await device();
    await continueWith(page, UNTRUSTED, login);
    await backAt(page, `/auth/upstream/${UNTRUSTED.id}/callback`);
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();

    // The mailbox's owner opens it in a browser of their own: an account, verified, of their own.
    const owner = await device();
    await owner.goto(linkIn(await mailTo(email, 'Confirm your email address'), '/auth/verify-email?token='));
    await owner.getByRole('button', { name: 'Confirm email address' }).click();
    await backAt(owner, '/auth/account');
    const { body } = await me(owner);
    expect(body!.user).toMatchObject({ email, emailVerified: true });
    expect(JSON.stringify(body!.user)).not.toContain('Not Linked');
    expect(await linkedOnAccountPage(owner)).toEqual([]);

    // The upstream account is no way into it: its owner is asked by mail instead.
    const again = await device();
    await continueWith(again, UNTRUSTED, login);
    await backAt(again, `/auth/upstream/${UNTRUSTED.id}/callback`);
    await again.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
    expect((await me(again)).status).toBe(401);
    await mailTo(email, `Link ${UNTRUSTED.name} to your account?`);
  });

  it("shows a client's own providers on the sign-in page of its authorization request", async () => {
    const rp = await relyingParty();
    const buttons = async (page: Page) => (await page.locator('section.upstream button').allTextContents()).map((b) => b.trim());

    // Gatehouse's own sign-in shows every provider; the client's, none until the operator lists some.
    const page = await device();
    await page.goto(`${gatehouse.base}/auth/sign-in`);
    expect((await buttons(page)).sort()).toEqual([`Continue with ${UNTRUSTED.name}`, `Continue with ${TRUSTED.name}`]);
    await page.goto((await rp.authorize()).url.toString());
    await backAt(page, '/auth/sign-in');
    expect(await buttons(page)).toEqual([]);

    const listed = providersCli(['clients', '--id', TRUSTED.id, '--client', rp.clientId, '--persist-to', gatehouse.persistTo], {
      PUBLIC_URL: gatehouse.base,
    });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({
      id: TRUSTED.id,
      clients: [{ client_id: rp.clientId, share_tokens: false }],
      callback_url: `${gatehouse.base}/auth/upstream/${TRUSTED.id}/callback`,
    });

    const request = await rp.authorize();
    await page.goto(request.url.toString());
    await backAt(page, '/auth/sign-in');
    expect(await buttons(page)).toEqual([`Continue with ${TRUSTED.name}`]);

    // And through it, on to the client with a code.
    const email = address('client');
    await page.getByRole('button', { name: `Continue with ${TRUSTED.name}` }).click();
    await signInAtUpstream(page, trusted, trusted.account({ email, emailVerified: true }));
    const tokens = await rp.tokens(page, request);
    expect(tokens.claims()).toMatchObject({ aud: rp.clientId, amr: ['fed'] });
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, tokens.claims()!.sub);
    expect(info).toMatchObject({ email, email_verified: true });
  });

  it("goes on to the client after a link confirmed during the client's authorization request", async () => {
    const rp = await relyingParty([UNTRUSTED.id]);
    const email = address('client-linker');
    await signUpVerified(gatehouse.base, email, PASSWORD);
    const page = await device();
    const request = await rp.authorize();
    await page.goto(request.url.toString());
    await backAt(page, '/auth/sign-in');
    await page.getByRole('button', { name: `Continue with ${UNTRUSTED.name}` }).click();
    await signInAtUpstream(page, untrusted, untrusted.account({ email, emailVerified: true }));
    await backAt(page, `/auth/upstream/${UNTRUSTED.id}/callback`);
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();
    // The mailed link goes back to the link's confirmation, and from there to the client's request.
    const link = linkIn(await mailTo(email, `Link ${UNTRUSTED.name} to your account?`), '/auth/upstream/link?');
    expect(new URL(new URL(link).searchParams.get('return_to')!, gatehouse.base).pathname).toBe('/auth/authorize');
    await page.goto(link);
    await backAt(page, '/auth/sign-in');
    await signInWithPassword(page, email);
    await backAt(page, '/auth/upstream/link');
    await page.getByRole('button', { name: 'Link', exact: true }).click();

    const tokens = await rp.tokens(page, request);
    expect(tokens.claims()).toMatchObject({ aud: rp.clientId });
    expect(await oidc.fetchUserInfo(rp.config, tokens.access_token, tokens.claims()!.sub)).toMatchObject({ email });
    await page.goto(`${gatehouse.base}/auth/account`);
    expect(await linkedOnAccountPage(page)).toEqual([expect.stringContaining(`${UNTRUSTED.name} ${email}`)]);
  });
});
