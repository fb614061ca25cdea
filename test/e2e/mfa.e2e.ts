import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startEchoServer } from '../../demo/echo-server';
import { launchChromium, newContext, signUpVerified, startGatehouse, uniqueIp, usersCli } from './harness';

// Passkeys, TOTP and step-up in headless Chromium against `wrangler dev`, with the DevTools
// WebAuthn virtual authenticator standing in for the platform authenticator. The worker, the echo
// origin and Chromium are shared; each test has a person and browser contexts of its own, and sets
// up the factors it needs, so any one runs alone.

const PASSWORD = 'two steps are better than one';

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let echo: Server;
let browser: Browser;

/** One test's account, and the TOTP steps the server has seen from it. */
interface Person {
  email: string;
  totpSecret: string;
  lastStep: number;
}

/** One test's browser profile, with a virtual authenticator when asked for. */
interface Device {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

let people = 0;
async function newPerson(): Promise<Person> {
  const email = `mfa-${Date.now()}-${++people}@example.com`;
  await signUpVerified(gatehouse.base, email, PASSWORD);
  return { email, totpSecret: '', lastStep: 0 };
}

/**
 * A fresh browser context (closed when the test ends) and its page, on an address of its own: the
 * per-IP limit on credential endpoints (every sign-in page load asks for passkey options) is not shared.
 */
async function device(opts: { authenticator?: boolean } = {}): Promise<Device> {
  const context = await newContext(browser, { extraHTTPHeaders: { 'cf-connecting-ip': uniqueIp() } });
  onTestFinished(() => context.close());
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log('[pageerror]', e.message));
  const cdp = await context.newCDPSession(page);
  let authenticatorId = '';
  if (opts.authenticator) {
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
  }
  return { context, page, cdp, authenticatorId };
}

/** A TOTP code for a step the server has not seen yet from `person` (waits for the next step when it must). */
async function nextCode(person: Person): Promise<string> {
  for (;;) {
    const current = Math.floor(Date.now() / 30_000);
    // The server accepts one step either side; never reuse one. The current step first, not the
    // one before: that one is refused if the clock passes a step boundary before the server checks
    // (seen on a loaded machine), while the current one stays good for a whole step more.
    const step = Math.max(current, person.lastStep + 1);
    if (step <= current + 1 && step >= current - 1) {
      person.lastStep = step;
      return TOTP.generate({ secret: Secret.fromBase32(person.totpSecret), timestamp: step * 30_000 + 15_000 });
    }
    // The steps follow wrangler dev's real clock, which no test can move: wait for the next one.
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * The virtual authenticator answers every request it can at once — including the conditional
 * (autofill) request the sign-in page makes on load. Turning presence off keeps requests pending.
 */
const presence = (d: Device, enabled: boolean) =>
  d.cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: d.authenticatorId, enabled });

async function signInWithPassword(p: Page, person: Person) {
  await p.goto(`${gatehouse.base}/auth/sign-in`);
  await p.getByLabel('Email address').fill(person.email);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
}

async function signOut(p: Page) {
  await p.goto(`${gatehouse.base}/auth/account`);
  await p.getByRole('button', { name: 'Sign out', exact: true }).click();
  await p.waitForURL(`${gatehouse.base}/auth/sign-in`);
}

const me = (p: Page) => p.evaluate(async () => (await (await fetch('/auth/api/me')).json()) as { session: { amr: string[] } });

/** From the account page: turns on an authenticator app for `person`, ending on the recovery codes. */
async function enrolTotp(p: Page, person: Person) {
  await p.getByRole('link', { name: 'Set up an authenticator app' }).click();
  await p.getByRole('img', { name: 'QR code for your authenticator app' }).waitFor();
  person.totpSecret = ((await p.locator('#totp-secret').textContent()) ?? '').replace(/\s/g, '');
  expect(person.totpSecret).toMatch(/^[A-Z2-7]{32}$/);
  await p.getByLabel('Code').fill(await nextCode(person));
  await p.getByRole('button', { name: 'Turn on two-step verification' }).click();
  await p.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
}

/** On the account page: registers a passkey in the device's virtual authenticator. */
async function addPasskey(d: Device) {
  await d.page.goto(`${gatehouse.base}/auth/account`);
  await d.page.getByLabel('Passkey name').fill('Virtual authenticator');
  await d.page.getByRole('button', { name: 'Add a passkey' }).click();
  await d.page.locator('#passkey-list li', { hasText: 'Virtual authenticator' }).waitFor();
}

/** A new person, signed in with a password on `p` and on the account page. */
async function signedIn(p: Page): Promise<Person> {
  const person = await newPerson();
  await signInWithPassword(p, person);
  await p.waitForURL(`${gatehouse.base}/auth/account`);
  return person;
}

beforeAll(async () => {
  echo = await startEchoServer(0);
  const echoPort = (echo.address() as AddressInfo).port;
  gatehouse = await startGatehouse(({ appHost }) => ({
    ROUTES: JSON.stringify([
      { match: '/demo/me/*', host: appHost, origin: `http://127.0.0.1:${echoPort}`, policy: { access: 'authenticated' } },
      { match: '/demo/mfa/*', host: appHost, origin: `http://127.0.0.1:${echoPort}`, policy: { acr: ['urn:gatehouse:acr:mfa'] } },
    ]),
  }));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await gatehouse?.stop();
  await new Promise((r) => echo?.close(r));
});

describe('second factors in a real browser', () => {
  it('enrols TOTP from a QR page and keeps the recovery codes', async () => {
    const { page } = await device();
    const person = await signedIn(page);
    await enrolTotp(page, person);
    expect(await page.locator('ul.codes li').count()).toBe(10);
    await page.getByRole('link', { name: 'Back to your account' }).click();
    expect(await page.locator('#totp-status').textContent()).toBe('Authenticator app: on');
  });

  it('registers a passkey, signs out, and signs in with it', async () => {
    const d = await device({ authenticator: true });
    await signedIn(d.page);
    await addPasskey(d);
    const { credentials } = await d.cdp.send('WebAuthn.getCredentials', { authenticatorId: d.authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });

    await presence(d, false);
    await signOut(d.page);
    await d.page.locator('html[data-passkeys-ready="true"]').waitFor();
    await d.page.getByRole('button', { name: 'Sign in with a passkey' }).click(); // aborts the pending autofill request
    await presence(d, true);
    await d.page.waitForURL(`${gatehouse.base}/auth/account`);
    expect((await me(d.page)).session.amr).toEqual(['hwk', 'mfa', 'user']);
  });

  it('signs in through passkey autofill (conditional UI) on the email field', async () => {
    const d = await device({ authenticator: true });
    await signedIn(d.page);
    await addPasskey(d);
    const { page } = d;

    await presence(d, false);
    await signOut(page);
    await presence(d, true);
    // Nothing is clicked: the page makes a conditional (autofill) request at load, which the
    // authenticator answers as a person picking the passkey from the email field's suggestions would.
    await page.goto(`${gatehouse.base}/auth/sign-in`);
    await page.waitForURL(`${gatehouse.base}/auth/account`);
    expect((await me(page)).session.amr).toEqual(['hwk', 'mfa', 'user']);
  });

  it('a new device signs in with password plus a generated TOTP code', async () => {
    const known = await device();
    const person = await signedIn(known.page);
    await enrolTotp(known.page, person);

    const { page: phone } = await device();
    await signInWithPassword(phone, person);
    await phone.waitForURL(/\/auth\/second-factor/);
    await phone.getByLabel('Code').fill(await nextCode(person));
    await phone.getByRole('button', { name: 'Verify' }).click();
    await phone.waitForURL(`${gatehouse.base}/auth/account`);
    expect((await me(phone)).session.amr).toEqual(['mfa', 'otp', 'pwd']);
  });

  it('steps a password-only session up on an MFA route and resumes the held form post', async () => {
    const d = await device();
    const person = await signedIn(d.page);
    await enrolTotp(d.page, person);
    const { page } = d;

    await signOut(page);
    await signInWithPassword(page, person); // a known device: no second step asked
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
    await page.getByLabel('Code').fill(await nextCode(person));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(new RegExp(`^${gatehouse.appBase}/demo/mfa/orders\\?gh_resume=`));
    const echoed = JSON.parse((await page.locator('body').textContent()) ?? '{}') as {
      method: string;
      bodyText: string;
      headers: Record<string, string>;
    };
    expect(echoed.method).toBe('POST');
    expect(echoed.bodyText).toBe('item=gatehouse-mug');
    expect(echoed.headers['x-auth-acr']).toBe('urn:gatehouse:acr:mfa');

    // Reloading does not post it again.
    const again = await page.reload();
    expect(again?.status()).toBe(409);
  });

  it("an operator resets a user's second factors with the users CLI", async () => {
    const d = await device({ authenticator: true });
    const person = await signedIn(d.page);
    await enrolTotp(d.page, person);
    await addPasskey(d);

    const reset = usersCli(['reset-mfa', '--email', person.email, '--passkeys', '--persist-to', gatehouse.persistTo]);
    expect(reset.code, reset.stderr).toBe(0);
    expect(JSON.parse(reset.stdout)).toMatchObject({ secondFactors: { totp: false, recoveryCodesLeft: 0, passkeys: 0 } });
    // A new device now signs in with the password alone (nothing left to ask for).
    const { page: laptop } = await device();
    await signInWithPassword(laptop, person);
    await laptop.waitForURL(`${gatehouse.base}/auth/account`);
    expect(await laptop.locator('#totp-status').textContent()).toBe('Authenticator app: off');
  });
});
