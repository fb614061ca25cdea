import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import { forgetProviders } from '../../src/auth/upstream-provider-records';
import { buildProvider, type ProviderInput } from '../../src/auth/upstream-providers';
import { createDb } from '../../src/db/client';
import { identityProviders } from '../../src/db/schema';
import { randomToken } from '../../src/lib/crypto';
import type { TestBrowser } from '../browser';
import { ORIGIN } from '../helpers';
import { fakeUpstream, type FakeUpstream, type Misbehaviour, type Person } from './fake-upstream';

/** The key-encryption key the test worker runs with (vitest.config.ts). */
export const KEK = 'dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI';

/** A fake upstream and its provider registered in D1 (a new id each time: tests share D1 and the isolate's cache). */
export async function upstreamProvider(over: Partial<ProviderInput> = {}, sendIss = false) {
  const clientId = `gatehouse-${randomToken(4)}`;
  const clientSecret = randomToken(24);
  const upstream = await fakeUpstream({ clientId, clientSecret, sendIss });
  const id = `idp-${randomToken(6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}`;
  const row = await buildProvider(
    { id, kind: 'oidc', displayName: `Acme ${id}`, issuer: upstream.issuer, clientId, clientSecret, ...over } as ProviderInput,
    KEK,
    Date.now(),
  );
  await createDb(env.DB).insert(identityProviders).values(row);
  forgetProviders();
  return { id, name: row.displayName, upstream };
}

/** The Continue page's target: where Gatehouse sends the browser after a form post. */
export const continueHref = (html: string) => /<a href="([^"]+)">Continue<\/a>/.exec(html)?.[1]?.replace(/&amp;/g, '&');

/**
 * A browser that signs in with an upstream: presses the provider's button on the sign-in page, plays
 * the person at the upstream, and comes back through the callback. Returns the callback's response.
 */
export async function viaUpstream(
  browser: TestBrowser,
  provider: { id: string; upstream: FakeUpstream },
  person: Person,
  o: { returnTo?: string; misbehave?: Misbehaviour; startPath?: string; fields?: Record<string, string> } = {},
) {
  const back = browser.at(() => ({ fetch: provider.upstream.fetch }));
  const started = await back.submit(
    o.startPath ?? `/auth/upstream/${provider.id}`,
    { ...(o.returnTo ? { return_to: o.returnTo } : {}), ...o.fields },
    o.startPath ? '/auth/account' : `/auth/sign-in${o.returnTo ? `?return_to=${encodeURIComponent(o.returnTo)}` : ''}`,
  );
  const html = await started.text();
  expect(started.status, html.slice(0, 400)).toBe(200);
  const href = continueHref(html);
  expect(href, html.slice(0, 400)).toMatch(new RegExp(`^${provider.upstream.issuer}/authorize\\?`));
  const callback = provider.upstream.authorize(href!, person, o.misbehave);
  const res = await back.fetch(callback, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  return { res, href: href!, callback, back };
}

/**
 * An upstream's answer by a form post from its own site (Apple's response_mode=form_post): the
 * cross-site POST carries none of Gatehouse's cookies (none is SameSite=None) and answers a Continue
 * page; its GET, a same-site navigation, carries the browser's cookies and does the work. Returns
 * the POST's answer and the GET's.
 */
export async function formPostBack(browser: TestBrowser, path: string, form: URLSearchParams, origin: string) {
  const posted = await browser.crossSitePost(path, form, origin);
  const html = await posted.clone().text();
  expect(posted.status, html.slice(0, 400)).toBe(200);
  const href = continueHref(html);
  expect(href, html.slice(0, 400)).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\?`));
  const res = await browser.fetch(href!, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  return { posted, res };
}

export const newPerson = (over: Partial<Person> = {}): Person => ({
  sub: `upstream-${randomToken(8)}`,
  email: `person-${randomToken(6).toLowerCase()}@acme.example`,
  email_verified: true,
  name: 'Ada Upstream',
  ...over,
});

export const sessionOf = (b: TestBrowser) => b.cookie('__Host-gatehouse_session');
export { ORIGIN };
