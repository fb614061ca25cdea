import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { launchChromium, newContext, signUpVerified, startGatehouse, uniqueIp } from './harness';

// The re-consent prompt in headless Chromium against `wrangler dev`: a required purpose (the terms)
// is asked before the first sign-in finishes; the operator publishes a new version (a redeploy with
// another CONSENT_PURPOSES), and the next sign-in asks again, the record keeping both answers.

const PASSWORD = 'terms and conditions apply 2026';
const purposes = (termsVersion: string) =>
  JSON.stringify([
    { id: 'terms', title: 'Terms of service', version: termsVersion, required: true },
    { id: 'marketing_email', title: 'News by mail', version: '1' },
  ]);

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let browser: Browser;

beforeAll(async () => {
  gatehouse = await startGatehouse({ CONSENT_PURPOSES: purposes('2026-01') });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await gatehouse?.stop();
}, 60_000);

/** A fresh profile (closed when the test ends) on an address of its own. */
async function page(): Promise<Page> {
  const context = await newContext(browser, { extraHTTPHeaders: { 'cf-connecting-ip': uniqueIp() } });
  onTestFinished(() => context.close());
  const p = await context.newPage();
  p.on('pageerror', (e) => console.log('[pageerror]', e.message));
  return p;
}

async function signIn(p: Page, email: string) {
  await p.goto(`${gatehouse.base}/auth/sign-in`);
  await p.getByLabel('Email address').fill(email);
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
}

describe('the re-consent prompt', () => {
  const email = `consent-${Date.now()}@example.com`;

  it('asks for the terms before the first sign-in finishes', async () => {
    await signUpVerified(gatehouse.base, email, PASSWORD);
    const p = await page();
    await signIn(p, email);
    await p.waitForURL(/\/auth\/purposes\?return_to=/);
    await p.getByRole('heading', { name: 'Before you continue' }).waitFor();
    // Not signed in yet: the account API refuses.
    expect(await p.evaluate(async () => (await fetch('/auth/api/me')).status)).toBe(401);
    await p.getByLabel(/Terms of service/).check();
    await p.getByRole('button', { name: 'Agree and continue' }).click();
    await p.waitForURL(`${gatehouse.base}/auth/account`);
    await p.getByRole('heading', { name: 'Your agreements' }).waitFor();
    expect(await p.getByLabel(/Terms of service/).isChecked()).toBe(true);
  }, 60_000);

  it('asks again after a new version of the terms, and keeps the history', async () => {
    await gatehouse.pause();
    await gatehouse.resume({ CONSENT_PURPOSES: purposes('2026-06') });
    const p = await page();
    await signIn(p, email);
    await p.waitForURL(/\/auth\/purposes\?return_to=/);
    await p.getByText('accepted version 2026-01').waitFor();
    await p.getByText(/version 2026-06, required/).waitFor();
    // The box is required: the browser does not submit without it.
    await p.getByRole('button', { name: 'Agree and continue' }).click();
    expect(await p.getByLabel(/Terms of service/).evaluate((el) => (el as HTMLInputElement).validity.valueMissing)).toBe(true);
    expect(new URL(p.url()).pathname).toBe('/auth/purposes');
    await p.getByLabel(/Terms of service/).check();
    await p.getByRole('button', { name: 'Agree and continue' }).click();
    await p.waitForURL(`${gatehouse.base}/auth/account`);
    const history = await p.evaluate(
      async () =>
        ((await (await fetch('/auth/api/purposes/history')).json()) as { history: { purpose: string; version: string }[] }).history,
    );
    expect(history.map((h) => `${h.purpose}@${h.version}`)).toEqual(['terms@2026-06', 'terms@2026-01']);
  }, 120_000);
});
