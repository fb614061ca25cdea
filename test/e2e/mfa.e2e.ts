import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer } from '../../demo/echo-server';
import { launchBrowser, startGatehouse, usersCli } from './harness';

// Passkeys, TOTP and step-up in headless Chromium against `wrangler dev`, with the DevTools
// WebAuthn virtual authenticator standing in for the platform authenticator.

const EMAIL = `mfa-${Date.now()}@example.com`;
const PASSWORD = 'two steps are better than one';

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let echo: Server;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let cdp: CDPSession;
let authenticatorId = '';
let totpSecret = '';
let lastStep = 0;

/** A TOTP code for a step the server has not seen yet (waits for the next step when it must). */
async function nextCode(): Promise<string> {
  for (;;) {
    const current = Math.floor(Date.now() / 30_000);
    // The server accepts one step either side; never reuse one.
    const step = Math.max(current - 1, lastStep + 1);
    if (step <= current + 1 && step >= current - 1) {
      lastStep = step;
      return TOTP.generate({ secret: Secret.fromBase32(totpSecret), timestamp: step * 30_000 + 15_000 });
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * The virtual authenticator answers every request it can at once — including the conditional
 * (autofill) request the sign-in page makes on load. Turning presence off keeps requests pending.
 */
const presence = (enabled: boolean) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });

async function signInWithPassword(p: Page) {
  await p.goto(`${gatehouse.base}/auth/sign-in`);
  await p.getByLabel('Email address').fill(EMAIL);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
}

async function signOut(p: Page) {
  await p.goto(`${gatehouse.base}/auth/account`);
  await p.getByRole('button', { name: 'Sign out', exact: true }).click();
  await p.waitForURL(`${gatehouse.base}/auth/sign-in`);
}

const me = (p: Page) =>
  p.evaluate(async () => (await (await fetch('/auth/api/me')).json()) as { session: { amr: string[] } });

beforeAll(async () => {
  echo = await startEchoServer(0);
  const echoPort = (echo.address() as AddressInfo).port;
  gatehouse = await startGatehouse(({ appHost }) => ({
    ROUTES: JSON.stringify([
      { match: '/demo/me/*', host: appHost, origin: `http://127.0.0.1:${echoPort}`, policy: { access: 'authenticated' } },
      { match: '/demo/mfa/*', host: appHost, origin: `http://127.0.0.1:${echoPort}`, policy: { acr: ['urn:gatehouse:acr:mfa'] } },
    ]),
  }));
  const created = usersCli(['create', '--email', EMAIL, '--password', PASSWORD, '--verified', '--persist-to', gatehouse.persistTo]);
  expect(created.code, created.stderr).toBe(0);
  ({ browser, context } = await launchBrowser());
  page = await context.newPage();
  page.on('pageerror', (e) => console.log('[pageerror]', e.message));
  cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  }));
}, 120_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await gatehouse?.stop();
  await new Promise((r) => echo?.close(r));
});

describe('second factors in a real browser', () => {
  it('enrols TOTP from a QR page and keeps the recovery codes', async () => {
    await signInWithPassword(page);
    await page.waitForURL(`${gatehouse.base}/auth/account`);
    await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await page.getByRole('img', { name: 'QR code for your authenticator app' }).waitFor();
    totpSecret = ((await page.locator('#totp-secret').textContent()) ?? '').replace(/\s/g, '');
    expect(totpSecret).toMatch(/^[A-Z2-7]{32}$/);
    await page.getByLabel('Code').fill(await nextCode());
    await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
    await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
    expect(await page.locator('ul.codes li').count()).toBe(10);
    await page.getByRole('link', { name: 'Back to your account' }).click();
    expect(await page.locator('#totp-status').textContent()).toBe('Authenticator app: on');
  });

  it('registers a passkey, signs out, and signs in with it', async () => {
    await page.goto(`${gatehouse.base}/auth/account`);
    await page.getByLabel('Passkey name').fill('Virtual authenticator');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.locator('#passkey-list li', { hasText: 'Virtual authenticator' }).waitFor();
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });

    await presence(false);
    await signOut(page);
    await page.locator('html[data-passkeys-ready="true"]').waitFor();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click(); // aborts the pending autofill request
    await presence(true);
    await page.waitForURL(`${gatehouse.base}/auth/account`);
    expect((await me(page)).session.amr).toEqual(['hwk', 'mfa', 'user']);
  });

  it('signs in through passkey autofill (conditional UI) on the email field', async () => {
    await presence(false);
    await signOut(page);
    await presence(true);
    // Nothing is clicked: the page makes a conditional (autofill) request at load, which the
    // authenticator answers as a person picking the passkey from the email field's suggestions would.
    await page.goto(`${gatehouse.base}/auth/sign-in`);
    await page.waitForURL(`${gatehouse.base}/auth/account`);
    expect((await me(page)).session.amr).toEqual(['hwk', 'mfa', 'user']);
  });

  it('a new device signs in with password plus a generated TOTP code', async () => {
    const other = await browser.newContext();
    try {
      other.setDefaultTimeout(15_000);
      const phone = await other.newPage();
      await signInWithPassword(phone);
      await phone.waitForURL(/\/auth\/second-factor/);
      await phone.getByLabel('Code').fill(await nextCode());
      await phone.getByRole('button', { name: 'Verify' }).click();
      await phone.waitForURL(`${gatehouse.base}/auth/account`);
      expect((await me(phone)).session.amr).toEqual(['mfa', 'otp', 'pwd']);
    } finally {
      await other.close();
    }
  });

  it('steps a password-only session up on an MFA route and resumes the held form post', async () => {
    await presence(false); // no passkey autofill: this sign-in is a password alone
    await signOut(page);
    await signInWithPassword(page); // a known device: no second step asked
    await page.waitForURL(`${gatehouse.base}/auth/account`);
    expect((await me(page)).session.amr).toEqual(['pwd']);

    // On the app host (its own session, through the host handshake), a form posts to the protected route.
    await page.goto(`${gatehouse.appBase}/demo/me/home`);
    await page.waitForURL(`${gatehouse.appBase}/demo/me/home`);
    await page.evaluate(() => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = '/demo/mfa/orders';
      const field = document.createElement('input');
      field.name = 'item';
      field.value = 'gatehouse-mug';
      form.append(field);
      document.body.append(form);
      form.submit();
    });
    await page.waitForURL(/\/auth\/second-factor\?/);
    await page.getByLabel('Code').fill(await nextCode());
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(new RegExp(`^${gatehouse.appBase}/demo/mfa/orders\\?gh_resume=`));
    const echoed = JSON.parse((await page.locator('body').textContent()) ?? '{}') as { method: string; bodyText: string; headers: Record<string, string> };
    expect(echoed.method).toBe('POST');
    expect(echoed.bodyText).toBe('item=gatehouse-mug');
    expect(echoed.headers['x-auth-acr']).toBe('urn:gatehouse:acr:mfa');

    // Reloading does not post it again.
    const again = await page.reload();
    expect(again?.status()).toBe(409);
  });

  it('an operator resets a user\'s second factors with the users CLI', async () => {
    const reset = usersCli(['reset-mfa', '--email', EMAIL, '--passkeys', '--persist-to', gatehouse.persistTo]);
    expect(reset.code, reset.stderr).toBe(0);
    expect(JSON.parse(reset.stdout)).toMatchObject({ secondFactors: { totp: false, recoveryCodesLeft: 0, passkeys: 0 } });
    // A new device now signs in with the password alone (nothing left to ask for).
    const other = await browser.newContext();
    try {
      const laptop = await other.newPage();
      await signInWithPassword(laptop);
      await laptop.waitForURL(`${gatehouse.base}/auth/account`);
      expect(await laptop.locator('#totp-status').textContent()).toBe('Authenticator app: off');
    } finally {
      await other.close();
    }
  });
});
