import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import type { ProfileAttribute } from '../../src/identity/profile-attributes';
import { TestBrowser } from '../browser';
import { base, issuesOf } from '../config/helpers';
import { createVerifiedUser, type Problem, STRONG_PASSWORD } from '../helpers';
import { authorizeUrl, pkce, registerClient } from '../oauth/helpers';

/**
 * Operator-declared profile attributes and progressive profiling. Who attacks it: the person
 * (values of the wrong type, too long, outside the list, attributes nobody declared), and an app
 * trying to get a code — silently (prompt=none) or not — before the person has given what it needs.
 */

const ATTRIBUTES = [
  { id: 'company', title: 'Company', type: 'string', maxLength: 20, clients: [] as string[] },
  { id: 'seats', title: 'Seats', type: 'number', min: 1, max: 500 },
  { id: 'newsletter', title: 'Newsletter', type: 'boolean' },
  { id: 'plan', title: 'Plan', type: 'enum', values: ['free', 'team'] },
];
const declared = (clients: string[] = [], required = false): ProfileAttribute[] =>
  parseConfig({
    ...base,
    PROFILE_ATTRIBUTES: JSON.stringify(ATTRIBUTES.map((a) => (a.id === 'company' ? { ...a, clients, required } : a))),
  }).attributes;

async function person(attributes: ProfileAttribute[]) {
  const u = await createVerifiedUser();
  const browser = new TestBrowser().at((deps) => ({ config: { ...deps.config, attributes } }));
  expect((await browser.post('/auth/api/sign-in', { email: u.email, password: STRONG_PASSWORD })).status).toBe(200);
  return { ...u, browser };
}
const patch = (b: TestBrowser, json: unknown) =>
  b.fetch('/auth/api/profile', { method: 'PATCH', json, headers: { origin: 'https://gatehouse.test' } });

describe('PROFILE_ATTRIBUTES', () => {
  it('is validated at start-up, naming the bad field', () => {
    expect(declared().map((a) => a.id)).toEqual(['company', 'seats', 'newsletter', 'plan']);
    for (const [value, name] of [
      ['[{"id":"plan","title":"Plan","type":"enum"}]', 'PROFILE_ATTRIBUTES.0.values'],
      ['[{"id":"Bad Id","title":"X","type":"string"}]', 'PROFILE_ATTRIBUTES.0.id'],
      ['[{"id":"x","title":"X","type":"date"}]', 'PROFILE_ATTRIBUTES.0.type'],
      ['[{"id":"x","title":"X","type":"string"},{"id":"x","title":"Y","type":"string"}]', 'PROFILE_ATTRIBUTES.1.id'],
      ['not json', 'PROFILE_ATTRIBUTES'],
    ] as [string, string][]) {
      const issues = issuesOf({ ...base, PROFILE_ATTRIBUTES: value });
      expect(issues[0], value).toMatch(new RegExp(`^${name.replace(/\./g, '\\.')}: `));
    }
  });
});

describe('setting attribute values', () => {
  it('each of its type; null clears one; stored on the record, in the export, audited by name', async () => {
    const p = await person(declared());
    const res = await patch(p.browser, { attributes: { company: 'Initech', seats: 12, newsletter: true, plan: 'team' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { attributes: unknown }).attributes).toEqual({
      company: 'Initech',
      seats: 12,
      newsletter: true,
      plan: 'team',
    });
    const cleared = await patch(p.browser, { attributes: { seats: null } });
    expect(((await cleared.json()) as { attributes: unknown }).attributes).toEqual({ company: 'Initech', newsletter: true, plan: 'team' });
    const row = await env.DB.prepare('SELECT profile_attributes FROM users WHERE id = ?')
      .bind(p.userId)
      .first<{ profile_attributes: string }>();
    expect(JSON.parse(row!.profile_attributes)).toEqual({ company: 'Initech', newsletter: true, plan: 'team' });
    const doc = (await (await p.browser.fetch('/auth/api/export')).json()) as { account: { attributes: unknown } };
    expect(doc.account.attributes).toEqual({ company: 'Initech', newsletter: true, plan: 'team' });
    const fields = await env.DB.prepare("SELECT detail FROM audit_events WHERE user_id = ? AND type = 'user_updated' ORDER BY id")
      .bind(p.userId)
      .all<{ detail: string }>();
    expect(fields.results.map((r) => JSON.parse(r.detail).fields)).toEqual([
      ['attributes.company', 'attributes.seats', 'attributes.newsletter', 'attributes.plan'],
      ['attributes.seats'],
    ]);
  });

  it('too long, wrong type, out of range, not in the list, undeclared: 400 naming the attribute, nothing written', async () => {
    const p = await person(declared());
    await patch(p.browser, { attributes: { company: 'Before' } });
    for (const [attributes, field] of [
      [{ company: 'x'.repeat(21) }, 'attributes.company'],
      [{ company: 7 }, 'attributes.company'],
      [{ seats: '12' }, 'attributes.seats'],
      [{ seats: 501 }, 'attributes.seats'],
      [{ newsletter: 'yes' }, 'attributes.newsletter'],
      [{ plan: 'enterprise' }, 'attributes.plan'],
      [{ company: 'After', shoe_size: 44 }, 'attributes.shoe_size'],
    ] as const) {
      const res = await patch(p.browser, { attributes });
      expect(res.status, JSON.stringify(attributes)).toBe(400);
      expect(((await res.json()) as Problem).field, JSON.stringify(attributes)).toBe(field);
    }
    const row = await env.DB.prepare('SELECT profile_attributes FROM users WHERE id = ?')
      .bind(p.userId)
      .first<{ profile_attributes: string }>();
    expect(JSON.parse(row!.profile_attributes)).toEqual({ company: 'Before' });
  });
});

describe('progressive profiling', () => {
  it('an app that needs an attribute the person lacks: asked once, after sign-in, before the code; then straight through', async () => {
    const client = await registerClient({ firstParty: true });
    const p = await person(declared([client.clientId]));
    const { challenge } = await pkce();
    const url = authorizeUrl(client.clientId, challenge);
    const first = await p.browser.fetch(url);
    expect(first.status).toBe(302);
    const ask = new URL(first.headers.get('location')!, 'https://gatehouse.test');
    expect(ask.pathname).toBe('/auth/account/profile');
    expect(ask.searchParams.get('return_to')).toBe(url);
    const { html } = await p.browser.open(`${ask.pathname}${ask.search}`);
    expect(html).toContain('Company (needed)');
    expect(html).toContain(`name="return_to" value="${url.replace(/&/g, '&amp;')}"`);

    // Silently, the app gets interaction_required rather than a code.
    const silent = await p.browser.fetch(authorizeUrl(client.clientId, challenge, { prompt: 'none' }));
    expect(new URL(silent.headers.get('location')!).searchParams.get('error')).toBe('interaction_required');

    const saved = await p.browser.submit(
      '/auth/account/profile',
      { name: '', locale: '', zoneinfo: '', attr_company: 'Initech', return_to: url },
      `${ask.pathname}${ask.search}`,
    );
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe(url);
    const second = await p.browser.fetch(url);
    expect(second.status).toBe(302);
    expect(new URL(second.headers.get('location')!).searchParams.get('code')).toBeTruthy();
  });

  it('another app that needs nothing gets its code at once; a required attribute is needed by every app', async () => {
    const [needy, other] = await Promise.all([registerClient({ firstParty: true }), registerClient({ firstParty: true })]);
    const p = await person(declared([needy.clientId]));
    const { challenge } = await pkce();
    const res = await p.browser.fetch(authorizeUrl(other.clientId, challenge));
    expect(new URL(res.headers.get('location')!).searchParams.get('code')).toBeTruthy();
    const everyone = await person(declared([], true));
    const asked = await everyone.browser.fetch(authorizeUrl(other.clientId, challenge));
    expect(new URL(asked.headers.get('location')!, 'https://gatehouse.test').pathname).toBe('/auth/account/profile');
  });

  it('the return_to of the form goes nowhere but this origin', async () => {
    const p = await person(declared());
    const saved = await p.browser.submit(
      '/auth/account/profile',
      { name: 'X', locale: '', zoneinfo: '', return_to: 'https://evil.example/steal' },
      '/auth/account/profile',
    );
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/auth/account');
  });
});
