import { createServer, type Server } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, listenOnFreePort, mailbox, resolveLocalhostNames, startGatehouse, usersCli } from './harness';

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** A site behind the gateway on the app host, answering every path with its own body. */
let site: Server;

beforeAll(async () => {
  resolveLocalhostNames();
  site = createServer((req, res) => res.end(`site: ${req.url}`));
  const to = `http://127.0.0.1:${await listenOnFreePort(site)}`;
  gatehouse = await startGatehouse(({ appHost }) => ({
    ROUTES: JSON.stringify([{ match: '/*', host: appHost, origin: to, policy: { access: 'public' } }]),
  }));
  ({ browser, context } = await launchBrowser());
  page = await context.newPage();
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await gatehouse?.stop();
  site?.close();
});

describe('a newcomer in a real browser against wrangler dev', () => {
  const email = `newcomer-${Date.now()}@example.com`;
  const password = 'my very own passphrase 2026';

  it('signs up, verifies from the dev mailbox, signs in, sees one session, signs out', async () => {
    await page.goto(`${gatehouse.base}/auth/sign-up`);
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Check your email' }).waitFor();

    const [mail] = await mailbox(gatehouse.base, email);
    expect(mail!.subject).toBe('Confirm your email address');
    const link = mail!.links[0]!;
    expect(link.startsWith(`${gatehouse.base}/auth/verify-email?token=`)).toBe(true);

    await page.goto(link);
    await page.getByRole('button', { name: 'Confirm email address' }).click();
    await page.getByRole('heading', { level: 1, name: 'Email address confirmed' }).waitFor();

    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByLabel('Email address').fill(email.toUpperCase());
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${gatehouse.base}/auth/account`);
    expect(await page.locator('#account-email').textContent()).toBe(email);
    const rows = page.locator('tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('This session');

    const cookies = await context.cookies(gatehouse.base);
    const session = cookies.find((c) => c.name === '__Host-gatehouse_session')!;
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(`${gatehouse.base}/auth/sign-in`);
    expect((await context.cookies(gatehouse.base)).some((c) => c.name === '__Host-gatehouse_session')).toBe(false);
    await page.goto(`${gatehouse.base}/auth/account`);
    await page.waitForURL(/\/auth\/sign-in\?return_to=/);
  });

  it('refuses a listed password on the sign-up page: the blocklist read through the ASSETS binding under wrangler dev', async () => {
    const fresh = await context.newPage();
    await fresh.goto(`${gatehouse.base}/auth/sign-up`);
    await fresh.getByLabel('Email address').fill(`listed-${Date.now()}@example.com`);
    await fresh.getByLabel('Password').fill('Password123');
    await fresh.getByRole('button', { name: 'Create account' }).click();
    await fresh.getByText('This password is too common; choose another.').waitFor();
    await fresh.close();
  });

  it('serves no static asset at a URL: the list’s path is the site’s on the app host, and unknown on Gatehouse’s own', async () => {
    const get = (url: string) => fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    const behind = await get(`${gatehouse.appBase}/common-passwords.bin`);
    expect(behind.status).toBe(200);
    expect(await behind.text()).toBe('site: /common-passwords.bin');
    const [own, unknown] = [await get(`${gatehouse.base}/common-passwords.bin`), await get(`${gatehouse.base}/no-such-file.bin`)];
    expect(own.status).toBe(unknown.status);
    expect(own.headers.get('content-type')).toBe(unknown.headers.get('content-type'));
    // The asset is 110,129 bytes of binary; what Gatehouse answers for a path it does not know is short.
    expect((await own.arrayBuffer()).byteLength).toBeLessThan(10_000);
    await unknown.arrayBuffer();
  });

  it('creates a user with the users CLI that can then sign in', async () => {
    const cliEmail = `Operator-${Date.now()}@Example.com`;
    const created = usersCli([
      'create',
      '--email',
      cliEmail,
      '--password',
      'operator passphrase 1',
      '--verified',
      '--role',
      'admin',
      '--persist-to',
      gatehouse.persistTo,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const user = JSON.parse(created.stdout);
    expect(user).toMatchObject({ email: cliEmail.toLowerCase(), emailVerified: true, roles: ['admin'], tier: 'free' });

    const res = await fetch(`${gatehouse.base}/auth/api/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: cliEmail, password: 'operator passphrase 1' }),
      signal: AbortSignal.timeout(15_000),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user: { id: string; roles: string[] } }).user).toMatchObject({ id: user.id, roles: ['admin'] });

    const again = usersCli(['create', '--email', cliEmail, '--password', 'operator passphrase 1', '--persist-to', gatehouse.persistTo]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');

    const set = usersCli([
      'set',
      '--email',
      cliEmail,
      '--role',
      'support',
      '--role',
      'billing',
      '--tier',
      'gold',
      '--persist-to',
      gatehouse.persistTo,
    ]);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ id: user.id, roles: ['billing', 'support'], tier: 'gold' });
    const none = usersCli(['set', '--email', cliEmail, '--no-roles', '--persist-to', gatehouse.persistTo]);
    expect(JSON.parse(none.stdout)).toMatchObject({ roles: [], tier: 'gold' });
  });

  it('refuses bad CLI arguments with the usage and exit code 2', () => {
    for (const args of [
      [],
      ['delete'],
      ['set', '--email', 'x@y.co'],
      ['set', '--email', 'x@y.co', '--role', 'Bad Role'],
      ['create', '--email', 'x@y.co'],
      ['create', '--email', 'nope', '--password', 'long enough pass'],
      ['create', '--email', 'a@b.co', '--password', 'password1'],
      ['create', '--bogus'],
    ]) {
      const r = usersCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('Usage: npm run users -- create');
    }
  });
});
