import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { auditOf, createVerifiedUser, type Problem, STRONG_PASSWORD } from '../helpers';

/**
 * The profile a person edits themselves: name, preferred language, time zone. Who attacks it: the
 * person themselves, sending fields only an operator may set (tier, roles, metadata, the address)
 * or values of the wrong type or length; another site posting the form.
 */

async function person() {
  const u = await createVerifiedUser();
  const browser = new TestBrowser();
  expect((await browser.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
  return { ...u, browser };
}

const patch = (b: TestBrowser, json: unknown) =>
  b.fetch('/auth/api/profile', { method: 'PATCH', json, headers: { origin: 'https://gatehouse.test' } });
const row = (id: string) =>
  env.DB.prepare('SELECT name, locale, zoneinfo, tier, email FROM users WHERE id = ?').bind(id).first<Record<string, string | null>>();

describe('editing one’s profile', () => {
  it('sets name, locale and time zone (null clears one), audits the field names, and shows them', async () => {
    const p = await person();
    const res = await patch(p.browser, { name: 'Ada Lovelace', locale: 'fr-CA', zoneinfo: 'Europe/Paris' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ profile: { name: 'Ada Lovelace', locale: 'fr-CA', zoneinfo: 'Europe/Paris' }, attributes: {} });
    expect(await row(p.userId)).toMatchObject({ name: 'Ada Lovelace', locale: 'fr-CA', zoneinfo: 'Europe/Paris' });
    const cleared = await patch(p.browser, { zoneinfo: null });
    expect(await cleared.json()).toEqual({ profile: { name: 'Ada Lovelace', locale: 'fr-CA' }, attributes: {} });
    const events = (await auditOf(p.userId)).results.filter((e) => e.type === 'user_updated').map((e) => JSON.parse(e.detail!).fields);
    expect(events).toEqual([['profile.name', 'profile.locale', 'profile.zoneinfo'], ['profile.zoneinfo']]);
    const me = (await (await p.browser.fetch('/auth/api/me')).json()) as { user: { profile: Record<string, string> } };
    expect(me.user.profile).toMatchObject({ name: 'Ada Lovelace', locale: 'fr-CA' });
  });

  it('too long, wrong type, a bad locale or time zone, an operator-only field: 400 naming the field, and nothing written', async () => {
    const p = await person();
    await patch(p.browser, { name: 'Before' });
    for (const [body, field] of [
      [{ name: 'x'.repeat(201) }, 'name'],
      [{ name: 42 }, 'name'],
      [{ locale: 'not a locale!!' }, 'locale'],
      [{ locale: 5 }, 'locale'],
      [{ zoneinfo: 'Mars/Olympus' }, 'zoneinfo'],
      [{ name: 'After', tier: 'platinum' }, 'tier'],
      [{ app_metadata: { vip: true } }, 'app_metadata'],
      [{ email: 'elsewhere@example.com' }, 'email'],
      [{}, 'body'],
    ] as const) {
      const res = await patch(p.browser, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as Problem).field, JSON.stringify(body)).toBe(field);
    }
    expect(await row(p.userId)).toMatchObject({ name: 'Before', tier: 'free', email: p.email });
  });

  it('another site cannot change it, and a signed-out caller gets 401', async () => {
    const p = await person();
    const res = await p.browser.fetch('/auth/api/profile', {
      method: 'PATCH',
      json: { name: 'Mallory' },
      headers: { origin: 'https://evil.example' },
    });
    expect(res.status).toBe(403);
    expect((await patch(new TestBrowser(), { name: 'Nobody' })).status).toBe(401);
    expect((await row(p.userId))!.name).toBeNull();
  });

  it('the page form saves, clears an emptied field, and re-renders a bad value with its message', async () => {
    const p = await person();
    const saved = await p.browser.submit('/auth/account/profile', { name: 'Grace Hopper', locale: 'en-US', zoneinfo: '' });
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/auth/account?profile=saved');
    expect(await row(p.userId)).toMatchObject({ name: 'Grace Hopper', locale: 'en-US', zoneinfo: null });
    const bad = await p.browser.submit('/auth/account/profile', { name: 'Grace Hopper', locale: 'en-US', zoneinfo: 'Nowhere/Land' });
    expect(bad.status).toBe(400);
    const html = await bad.text();
    expect(html).toContain('must be an IANA time zone');
    expect(html).toContain('value="Nowhere/Land"');
    const { html: account } = await p.browser.open('/auth/account');
    expect(account).toContain('Grace Hopper');
  });
});
