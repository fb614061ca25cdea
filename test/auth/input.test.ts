import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { call } from '../helpers';
import type { Problem } from '../helpers';

const endpoints = [
  '/auth/api/sign-up',
  '/auth/api/sign-in',
  '/auth/api/forgot-password',
  '/auth/api/reset-password',
  '/auth/api/verify-email',
];

describe('bad input on the JSON API', () => {
  it('answers malformed JSON with 400 invalid_json on every endpoint', async () => {
    for (const path of endpoints) {
      const res = await call(path, { method: 'POST', body: '{"email": "a@b.c",', headers: { 'content-type': 'application/json' } });
      expect(res.status, path).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json(), path).toMatchObject({ code: 'invalid_json', status: 400 });
    }
  });

  it('names the missing or invalid field', async () => {
    const cases: [string, unknown, string][] = [
      ['/auth/api/sign-in', { password: 'x' }, 'email'],
      ['/auth/api/sign-in', { email: 'someone@example.com' }, 'password'],
      ['/auth/api/sign-in', { email: 42, password: 'x' }, 'email'],
      ['/auth/api/sign-up', { email: 'not-an-email', password: 'long enough pass' }, 'email'],
      ['/auth/api/sign-up', { email: 'a@b.co', password: ['array'] }, 'password'],
      ['/auth/api/reset-password', { password: 'x' }, 'token'],
      ['/auth/api/verify-email', {}, 'token'],
    ];
    for (const [path, json, field] of cases) {
      const res = await call(path, { method: 'POST', json });
      expect(res.status, `${path} ${JSON.stringify(json)}`).toBe(400);
      const body = await res.json<{ field: string; detail: string }>();
      expect(body.field).toBe(field);
      expect(body.detail).toContain(field);
    }
  });

  it('refuses a JSON body that is not an object', async () => {
    for (const body of ['[]', '"text"', 'null', '42']) {
      const res = await call('/auth/api/sign-in', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(res.status, body).toBe(400);
    }
  });

  it('refuses other content types with 415', async () => {
    const res = await call('/auth/api/sign-in', {
      method: 'POST',
      body: 'email=a%40b.co&password=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(415);
    expect((await res.json<Problem>()).code).toBe('unsupported_media_type');
  });

  it('refuses an oversize body (a 1 MB email) with 413 and writes nothing', async () => {
    const email = `${'a'.repeat(1024 * 1024)}@example.com`;
    const before = await env.DB.prepare('SELECT count(*) AS n FROM email_tokens').first<{ n: number }>();
    for (const path of ['/auth/api/sign-up', '/auth/api/sign-in']) {
      const res = await call(path, { method: 'POST', json: { email, password: 'long enough passphrase' } });
      expect(res.status, path).toBe(413);
      expect((await res.json<Problem>()).code).toBe('payload_too_large');
    }
    const after = await env.DB.prepare('SELECT count(*) AS n FROM email_tokens').first<{ n: number }>();
    expect(after!.n).toBe(before!.n);
  });

  it('refuses a long email under the body limit with 400 naming the field', async () => {
    const res = await call('/auth/api/sign-up', {
      method: 'POST',
      json: { email: `${'a'.repeat(300)}@example.com`, password: 'long enough passphrase' },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ field: 'email' });
  });

  it('answers unknown paths with a 404 problem, not a 500', async () => {
    const res = await call('/auth/api/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'not_found' });
  });
});
