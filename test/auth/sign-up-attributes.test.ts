import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import type { ProfileAttribute } from '../../src/identity/profile-attributes';
import { TestBrowser } from '../browser';
import { base } from '../config/helpers';
import { createVerifiedUser, lastMailTo, STRONG_PASSWORD, tokenFrom, uniqueEmail } from '../helpers';

/**
 * Profile attributes required at sign-up (PROFILE_ATTRIBUTES `required`): asked on the sign-up
 * form and the JSON API, checked before anything is stored or mailed, kept with the pending sign-up
 * and the account's from its first moment. Who attacks it: a sign-up that leaves one out, gives
 * the wrong type or an attribute nobody declared (400 naming it, nothing written), and someone
 * probing whether an address has an account (the answer must not change).
 */

const ATTRIBUTES: ProfileAttribute[] = parseConfig({
  ...base,
  PROFILE_ATTRIBUTES: JSON.stringify([
    { id: 'company', title: 'Company', type: 'string', maxLength: 20, required: true },
    { id: 'seats', title: 'Seats', type: 'number', min: 1, max: 500, required: true },
    { id: 'plan', title: 'Plan', type: 'enum', values: ['free', 'team'] },
    { id: 'newsletter', title: 'Newsletter', type: 'boolean' },
  ]),
}).attributes;

const browser = () => new TestBrowser().at((deps) => ({ config: { ...deps.config, attributes: ATTRIBUTES } }));
const signUp = (b: TestBrowser, json: unknown) => b.fetch('/auth/api/sign-up', { method: 'POST', json });
const tokensFor = async (email: string) =>
  (await env.DB.prepare('SELECT count(*) AS n FROM email_tokens WHERE email = ?').bind(email).first<{ n: number }>())!.n;
const attributesOf = async (email: string) =>
  JSON.parse(
    (await env.DB.prepare('SELECT profile_attributes FROM users WHERE email = ?').bind(email).first<{ profile_attributes: string }>())!
      .profile_attributes,
  ) as Record<string, unknown>;

describe('profile attributes required at sign-up', () => {
  it('are given with the sign-up and are the account’s once the address is confirmed', async () => {
    const b = browser();
    const email = uniqueEmail('attrs');
    const res = await signUp(b, {
      email,
      password: STRONG_PASSWORD,
      attributes: { company: 'Initech', seats: 12, plan: 'team' },
    });
    expect(res.status).toBe(202);
    const verified = await b.fetch('/auth/api/verify-email', { method: 'POST', json: { token: tokenFrom(await lastMailTo(email)) } });
    expect(verified.status).toBe(200);
    expect(await attributesOf(email)).toEqual({ company: 'Initech', seats: 12, plan: 'team' });
  });

  it('a missing required attribute, a wrong type or an undeclared one: 400 naming it, nothing stored, nothing mailed', async () => {
    const email = uniqueEmail('attrs-bad');
    for (const [attributes, field] of [
      [undefined, 'attributes.company'],
      [{ company: 'Initech' }, 'attributes.seats'],
      [{ company: 'Initech', seats: 'twelve' }, 'attributes.seats'],
      [{ company: 'Initech', seats: 9000 }, 'attributes.seats'],
      [{ company: 'x'.repeat(21), seats: 3 }, 'attributes.company'],
      [{ company: 'Initech', seats: 3, plan: 'enterprise' }, 'attributes.plan'],
      [{ company: 'Initech', seats: 3, is_admin: true }, 'attributes.is_admin'],
    ] as const) {
      const res = await signUp(browser(), { email, password: STRONG_PASSWORD, ...(attributes ? { attributes } : {}) });
      expect(res.status, JSON.stringify(attributes)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'invalid_request', field });
    }
    expect(await tokensFor(email)).toBe(0);
  });

  it('an address that has an account answers the same, and its account’s attributes do not change', async () => {
    const { email } = await createVerifiedUser();
    const fresh = uniqueEmail('attrs-fresh');
    const attributes = { company: 'Evil Corp', seats: 1 };
    const [a, b] = [
      await signUp(browser(), { email, password: STRONG_PASSWORD, attributes }),
      await signUp(browser(), { email: fresh, password: STRONG_PASSWORD, attributes }),
    ];
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(await a.json()).toEqual(await b.json());
    expect(await attributesOf(email)).toEqual({});
    // A missing attribute is refused for both alike too (checked before the address is looked up).
    const [c, d] = [
      await signUp(browser(), { email, password: STRONG_PASSWORD }),
      await signUp(browser(), { email: fresh, password: STRONG_PASSWORD }),
    ];
    expect([c.status, d.status]).toEqual([400, 400]);
  });

  it('the sign-up page asks for the required ones, refuses the form without them at their field, and keeps them', async () => {
    const b = browser();
    const { html } = await b.open('/auth/sign-up');
    expect(html).toContain('name="attr_company"');
    expect(html).toContain('name="attr_seats"');
    expect(html).not.toContain('name="attr_plan"');
    const email = uniqueEmail('attrs-page');
    const missing = await b.submit('/auth/sign-up', { email, password: STRONG_PASSWORD, method: 'password', attr_company: 'Initech' });
    expect(missing.status).toBe(400);
    expect(await missing.text()).toContain('Seats is required.');
    const ok = await b.submit('/auth/sign-up', {
      email,
      password: STRONG_PASSWORD,
      method: 'password',
      attr_company: 'Initech',
      attr_seats: '40',
    });
    expect(ok.status).toBe(202);
    await b.fetch('/auth/api/verify-email', { method: 'POST', json: { token: tokenFrom(await lastMailTo(email)) } });
    expect(await attributesOf(email)).toEqual({ company: 'Initech', seats: 40 });
  });

  it('with no attributes declared, sign-up asks none and takes none', async () => {
    const b = new TestBrowser();
    const email = uniqueEmail('attrs-none');
    const res = await b.fetch('/auth/api/sign-up', {
      method: 'POST',
      json: { email, password: STRONG_PASSWORD, attributes: { company: 'Initech' } },
    });
    expect(res.status).toBe(202);
    await b.fetch('/auth/api/verify-email', { method: 'POST', json: { token: tokenFrom(await lastMailTo(email)) } });
    expect(await attributesOf(email)).toEqual({});
  });
});
