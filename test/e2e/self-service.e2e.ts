import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { launchChromium, type Mail, mailbox, newContext, signUpVerified, startGatehouse, uniqueIp } from './harness';

// Self-service privacy in headless Chromium against `wrangler dev`: changing the address through
// the link mailed to the new one (dev mailbox), downloading one's data, and deleting the account.

const PASSWORD = 'my data is mine to take 2026';

let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let browser: Browser;

beforeAll(async () => {
  gatehouse = await startGatehouse();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await gatehouse?.stop();
}, 60_000);

async function page(): Promise<Page> {
  const context = await newContext(browser, { extraHTTPHeaders: { 'cf-connecting-ip': uniqueIp() }, acceptDownloads: true });
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
  await p.waitForURL(`${gatehouse.base}/auth/account`);
}

/** The newest mail to `to` with this subject, waiting for it to arrive. */
async function mailTo(to: string, subject: string): Promise<Mail> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const found = (await mailbox(gatehouse.base, to)).find((m) => m.subject === subject);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no “${subject}” mail to ${to}`);
}

const apiStatus = (p: Page, path: string) => p.evaluate(async (url) => (await fetch(url)).status, path);

describe('self-service privacy', () => {
  it('changes the address through the mailed link, downloads the data, and deletes the account', async () => {
    const email = `self-${Date.now()}@example.com`;
    const next = `self-moved-${Date.now()}@example.com`;
    await signUpVerified(gatehouse.base, email, PASSWORD);
    const p = await page();
    await signIn(p, email);

    // Email change: asked on the account page, confirmed from the new address in this browser.
    await p.getByRole('link', { name: 'Change address' }).click();
    await p.getByLabel('New address').fill(next);
    await p.getByRole('button', { name: 'Send the link' }).click();
    await p.getByText('a link is on its way').waitFor();
    const confirm = await mailTo(next, 'Confirm your new address');
    await p.goto(confirm.links[0]!);
    await p.getByRole('button', { name: 'Use this address' }).click();
    await p.waitForURL(`${gatehouse.base}/auth/account?email=changed`);
    expect(await p.locator('#account-email').textContent()).toBe(next);
    const told = await mailTo(email, 'The address of your account was changed');
    expect(told.links.some((l) => l.includes('/auth/account/email/undo?token='))).toBe(true);

    // Export: the button answers with a JSON attachment holding the account as it is now.
    const [download] = await Promise.all([
      p.waitForEvent('download', { timeout: 15_000 }),
      p.getByRole('button', { name: 'Download your data' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^gatehouse-export-\d{4}-\d{2}-\d{2}\.json$/);
    const text = await readFile((await download.path())!, 'utf8');
    const doc = JSON.parse(text) as { format: string; account: { email: string }; audit_events: { items: { type: string }[] } };
    expect(doc.format).toBe('gatehouse.export');
    expect(doc.account.email).toBe(next);
    expect(doc.audit_events.items.map((e) => e.type)).toContain('email_changed');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toMatch(/\$argon2/);

    // Deletion: confirmed by typing the address; afterwards nothing signs in.
    await p.goto(`${gatehouse.base}/auth/account`);
    await p.getByRole('link', { name: 'Delete your account' }).click();
    await p.getByLabel(/Type your address/).fill(next);
    await p.getByRole('button', { name: 'Delete your account' }).click();
    await p.getByText('Your account was deleted.').waitFor();
    expect(await apiStatus(p, '/auth/api/me')).toBe(401);
    await mailTo(next, 'Your account was deleted');
    const again = await fetch(`${gatehouse.base}/auth/api/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'cf-connecting-ip': uniqueIp() },
      body: JSON.stringify({ email: next, password: PASSWORD }),
      signal: AbortSignal.timeout(15_000),
    });
    expect(again.status).toBe(401);
  }, 120_000);
});
