import { Secret, TOTP } from 'otpauth';
import { expect } from 'vitest';
import { TestBrowser } from '../browser';
import { createVerifiedUser, STRONG_PASSWORD } from '../helpers';

// Shared by the second-factor, step-up and OIDC acr tests.

export const PENDING = '__Host-gatehouse_2fa';
export const codeAt = (secret: string, timestamp = Date.now()) => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp });

/** A verified user signed in on `browser`, with an authenticator app enrolled through the pages. */
export async function enrolled(browser = new TestBrowser()) {
  const user = await createVerifiedUser();
  expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
  const { html } = await browser.open('/auth/account/totp');
  expect(html).toMatch(/<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
  const secret = /<code id="totp-secret">([A-Z2-7 ]+)<\/code>/.exec(html)![1]!.replace(/ /g, '');
  // The first code confirms enrolment; it is a step in the past so later tests can use "now". If
  // the clock crosses a step boundary between making and checking it, that step is out of the
  // window: make it again (a refused code claims nothing).
  let res = await browser.submit('/auth/account/totp', { code: codeAt(secret, Date.now() - 30_000), return_to: '/auth/account' });
  if (res.status === 400)
    res = await browser.submit('/auth/account/totp', { code: codeAt(secret, Date.now() - 30_000), return_to: '/auth/account' });
  expect(res.status).toBe(200);
  const codes = [...(await res.text()).matchAll(/<code>([0-9A-Z]{5}-[0-9A-Z]{5})<\/code>/g)].map((m) => m[1]!);
  return { ...user, browser, secret, codes };
}

export async function passwordStep(browser: TestBrowser, email: string) {
  const res = await browser.post('/auth/api/sign-in', { email, password: STRONG_PASSWORD });
  expect(res.status).toBe(200);
  return (await res.json()) as { status: string; session?: { amr: string[]; acr: string } };
}
