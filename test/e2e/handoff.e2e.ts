import * as oidc from 'openid-client';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { clientsCli, launchChromium, newContext, signUpVerified, startGatehouse, uniqueIp } from './harness';

// Cross-device handoff in two browser contexts — the "computer" and the "phone" — against
// `wrangler dev`, and the device grant driven by openid-client as a CLI would. The worker and
// Chromium are shared; each test has its own person and devices, so any one runs alone.

const PASSWORD = 'one account, many devices';
const PHONE = {
  userAgent: 'Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0 Mobile Safari/537.36',
};

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let browser: Browser;

/**
 * A fresh browser context (closed when the test ends) and its page, on an address of its own: the
 * per-IP limit on credential endpoints (every sign-in page load asks for passkey options) is not shared.
 */
async function device(options: BrowserContextOptions = {}): Promise<Page> {
  const context = await newContext(browser, { ...options, extraHTTPHeaders: { 'cf-connecting-ip': uniqueIp() } });
  onTestFinished(() => context.close());
  return context.newPage();
}

let people = 0;
/** A new person, signed in on a phone of their own; returns the email and the phone. */
async function signedInPhone(): Promise<{ email: string; phone: Page }> {
  const email = `handoff-${Date.now()}-${++people}@example.com`;
  await signUpVerified(gatehouse.base, email, PASSWORD);
  const phone = await device(PHONE);
  await phone.goto(`${gatehouse.base}/auth/sign-in`);
  await phone.getByLabel('Email address').fill(email);
  await phone.getByLabel('Password').fill(PASSWORD);
  await phone.getByRole('button', { name: 'Sign in', exact: true }).click();
  await phone.waitForURL(`${gatehouse.base}/auth/account`);
  return { email, phone };
}

beforeAll(async () => {
  gatehouse = await startGatehouse();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await gatehouse?.stop();
});

describe('cross-device handoff in real browsers', () => {
  it('the phone approves and the computer is signed in without reloading', async () => {
    const { email, phone } = await signedInPhone();
    const computer = await device();
    await computer.goto(`${gatehouse.base}/auth/handoff/qr`);
    await computer.locator('html[data-handoff-ready="true"]').waitFor();
    const code = await computer.locator('#handoff-code').textContent();
    const link = await computer.locator('#approve-link').getAttribute('href');
    expect(link).toMatch(/\/auth\/handoff\/approve\?h=/);
    // Nothing on the computer reloads from here on: a navigation other than the final one would fail this.
    let navigations = 0;
    computer.on('framenavigated', (f) => f === computer.mainFrame() && navigations++);

    await phone.goto(link!);
    await phone.getByText(code!).waitFor();
    await phone.getByText('Requested from').waitFor();
    const approvedAt = Date.now();
    await phone.getByRole('button', { name: 'Approve' }).click();
    await phone.getByText('Approved').first().waitFor();

    await computer.waitForURL(`${gatehouse.base}/auth/account`);
    expect(navigations).toBe(1); // the script's own move to the account page, after it was signed in
    console.log(`approval → computer signed in: ${Date.now() - approvedAt} ms`);
    expect(await computer.locator('#account-email').textContent()).toBe(email);
    // Two sessions now: the phone's and the computer's own.
    expect(await computer.locator('tbody tr').count()).toBe(2);
  });

  it('continues a signed-in page on another device after confirming on the first', async () => {
    const { email, phone } = await signedInPhone();
    const tablet = await device();
    await phone.goto(`${gatehouse.base}/auth/handoff/continue?return_to=${encodeURIComponent('/auth/account?from=phone')}`);
    await phone.locator('html[data-handoff-ready="true"]').waitFor();
    const code = (await phone.locator('#handoff-code').textContent())!;
    await tablet.goto(`${gatehouse.base}/auth/handoff/join`);
    await tablet.getByLabel('Code').fill(code);
    await tablet.getByRole('button', { name: 'Continue' }).click();
    await tablet.getByRole('heading', { name: 'Confirm on your other device' }).waitFor();
    // The phone is told at once and asks for confirmation.
    await phone.waitForURL(`${gatehouse.base}/auth/handoff/continue/confirm`);
    await phone.getByRole('button', { name: 'Approve' }).click();
    await tablet.waitForURL(`${gatehouse.base}/auth/account?from=phone`);
    expect(await tablet.locator('#account-email').textContent()).toBe(email);
  });

  it('authorizes a CLI with the device grant (openid-client polling the token endpoint)', async () => {
    const { phone } = await signedInPhone();
    const created = clientsCli([
      'create',
      '--name',
      'Gatehouse CLI',
      '--public',
      '--redirect-uri',
      'http://127.0.0.1/callback',
      '--grant',
      'urn:ietf:params:oauth:grant-type:device_code',
      '--scope',
      'openid',
      '--scope',
      'profile',
      '--persist-to',
      gatehouse.persistTo,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const { client_id } = JSON.parse(created.stdout) as { client_id: string };
    const config = await oidc.discovery(new URL(gatehouse.base), client_id, undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile' });
    expect(started.user_code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    const tokens = oidc.pollDeviceAuthorizationGrant(config, started);

    await phone.goto(started.verification_uri_complete!);
    await phone.getByRole('button', { name: 'Next' }).click();
    await phone.getByText('Gatehouse CLI is asking for access').waitFor();
    await phone.getByRole('button', { name: 'Approve' }).click();
    const result = await tokens;
    expect(result.claims()).toMatchObject({ aud: client_id, amr: ['pwd'], acr: 'urn:gatehouse:acr:1fa' });
    const info = await oidc.fetchUserInfo(config, result.access_token, result.claims()!.sub);
    expect(info.sub).toBe(result.claims()!.sub);
  }, 60_000);
});
