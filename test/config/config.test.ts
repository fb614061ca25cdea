import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/app';
import { parseConfig } from '../../src/config';
import { base, issuesOf } from './helpers';

describe('configuration', () => {
  it('parses a complete production config with defaults', () => {
    const c = parseConfig(base);
    expect(c).toMatchObject({
      environment: 'production',
      passwordMinLength: 8,
      requireVerifiedEmail: true,
      session: { tokenTtl: 300, idleTtl: 604800, absoluteTtl: 2592000 },
    });
    expect(c.publicUrl.origin).toBe('https://auth.example.com');
  });

  it('derives passkey settings from PUBLIC_URL and refuses an RP ID that does not cover the origins', () => {
    expect(parseConfig(base)).toMatchObject({
      webauthn: { rpId: 'auth.example.com', rpName: 'Gatehouse', origins: ['https://auth.example.com'] },
      mfa: { policy: 'adaptive', newSignInEmail: true },
    });
    expect(
      parseConfig({ ...base, WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://auth.example.com, https://app.example.com' })
        .webauthn,
    ).toEqual({
      rpId: 'example.com',
      rpName: 'Gatehouse',
      origins: ['https://auth.example.com', 'https://app.example.com'],
    });
    expect(issuesOf({ ...base, WEBAUTHN_RP_ID: 'other.com' })).toEqual([
      'WEBAUTHN_RP_ID: other.com is not auth.example.com or a parent domain of it',
    ]);
    expect(issuesOf({ ...base, WEBAUTHN_ORIGINS: 'https://auth.example.com/path' })[0]).toMatch(/^WEBAUTHN_ORIGINS: .* is not an origin/);
    expect(issuesOf({ ...base, WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://evil.com' })[0]).toMatch(
      /^WEBAUTHN_RP_ID: example.com is not evil.com/,
    );
    expect(issuesOf({ ...base, MFA_POLICY: 'sometimes' })[0]).toMatch(/^MFA_POLICY: /);
  });

  it('names each missing or bad variable, never its value', () => {
    expect(issuesOf({ ...base, AUTH_SECRET: undefined })).toEqual(['AUTH_SECRET: missing']);
    expect(issuesOf({ ...base, AUTH_SECRET: 'short-secret-value' })[0]).toMatch(/^AUTH_SECRET: must be at least 32 random bytes/);
    expect(issuesOf({ ...base, AUTH_SECRET: 'short-secret-value' }).join()).not.toContain('short-secret-value');
    expect(issuesOf({ ...base, PUBLIC_URL: 'not a url' })[0]).toMatch(/^PUBLIC_URL:/);
    expect(issuesOf({ ...base, PASSWORD_MIN_LENGTH: '6' })[0]).toMatch(/^PASSWORD_MIN_LENGTH:/);
    expect(issuesOf({ ...base, SESSION_IDLE_TTL: '999999999' })[0]).toMatch(/^SESSION_IDLE_TTL: must not exceed/);
    expect(issuesOf({ ...base, MAIL_HTTP_TOKEN: undefined })).toEqual(['MAIL_HTTP_TOKEN: required when MAIL_PROVIDER is "http"']);
  });

  it('validates the gateway routes at start, naming the bad field', () => {
    const routes = (r: unknown) => issuesOf({ ...base, ROUTES: JSON.stringify(r) });
    expect(routes([{ match: '/api/*', origin: 'https://api.internal' }])).toEqual([]);
    expect(routes([{ match: '/api/*', origin: 'https://api.internal/path' }])[0]).toMatch(/^ROUTES\.0\.origin: must be an origin URL/);
    expect(routes([{ match: 'api', origin: 'https://api.internal' }])[0]).toMatch(/^ROUTES\.0\.match:/);
    expect(routes([{ match: '/a/*/b', origin: 'https://api.internal' }])[0]).toMatch(/^ROUTES\.0\.match:/);
    expect(routes([{ match: '/a', origin: 'service:API', policy: { access: 'public', rolesAny: ['x'] } }])[0]).toMatch(
      /^ROUTES\.0\.policy: a public route cannot have identity requirements/,
    );
    expect(routes([{ match: '/a', origin: 'service:API', policy: { acces: 'public' } }])[0]).toMatch(/^ROUTES\.0\.policy:/);
    // API keys and rate limits: where they apply, and well-formed.
    expect(routes([{ match: '/a', origin: 'service:API', policy: { apiKeys: ['authorization'] } }])[0]).toMatch(
      /^ROUTES\.0\.policy\.apiKeys: only applies to access tokens and API keys: name the route's audiences too/,
    );
    expect(
      routes([{ match: '/a', origin: 'service:API', policy: { audiences: ['https://api.example'], apiKeys: ['cookie'] } }])[0],
    ).toMatch(/^ROUTES\.0\.policy\.apiKeys\.0:/);
    expect(
      routes([{ match: '/a', origin: 'service:API', policy: { access: 'public' }, rateLimit: { requests: 5, period: 60 } }])[0],
    ).toMatch(/^ROUTES\.0\.rateLimit: counts callers: a public route has none/);
    expect(routes([{ match: '/a', origin: 'service:API', rateLimit: { requests: 0, period: 60 } }])[0]).toMatch(
      /^ROUTES\.0\.rateLimit\.requests:/,
    );
    expect(routes([{ match: '/a', origin: 'service:API', rateLimit: { requests: 5, period: 60, bucket: 'a b' } }])[0]).toMatch(
      /^ROUTES\.0\.rateLimit\.bucket:/,
    );
    expect(routes([{ match: '/a', origin: 'service:API', rateLimit: { requests: 5, period: 60 } }])).toEqual([]);
    // Routes that share a count share its limit; a DPoP-only route takes no bearer keys.
    const limited = (match: string, requests: number) => ({
      match,
      origin: 'service:API',
      rateLimit: { requests, period: 60, bucket: 'orders' },
    });
    expect(routes([limited('/read/*', 5), limited('/write/*', 5)])).toEqual([]);
    expect(routes([limited('/read/*', 160), limited('/write/*', 2)])[0]).toMatch(
      /^ROUTES\.1\.rateLimit\.bucket: another route counts "orders" at 160\/60: routes sharing a bucket need the same requests and period/,
    );
    expect(
      routes([
        { match: '/a', origin: 'service:API', policy: { audiences: ['https://api.example'], dpop: true, apiKeys: ['authorization'] } },
      ])[0],
    ).toMatch(/^ROUTES\.0\.policy\.apiKeys: a route that takes DPoP-bound tokens only cannot take API keys/);
    expect(issuesOf({ ...base, ROUTES: '[{' })).toEqual(['ROUTES: must be a JSON array of routes']);
  });

  it('reads CONSENT_PURPOSES, naming the bad field of a purpose', () => {
    expect(parseConfig(base).purposes).toEqual([]);
    const purposes = [
      { id: 'terms', title: 'Terms of service', version: '2026-01', required: true, url: 'https://example.com/terms' },
      { id: 'marketing_email', title: 'News by mail', version: '1' },
    ];
    expect(parseConfig({ ...base, CONSENT_PURPOSES: JSON.stringify(purposes) }).purposes).toEqual([
      purposes[0],
      { ...purposes[1], required: false, url: null },
    ]);
    const bad = (p: unknown) => issuesOf({ ...base, CONSENT_PURPOSES: typeof p === 'string' ? p : JSON.stringify(p) });
    expect(bad('{not json')).toEqual(['CONSENT_PURPOSES: must be a JSON array of purposes']);
    expect(bad([{ id: 'Terms', title: 't', version: '1' }])[0]).toMatch(/^CONSENT_PURPOSES\.0\.id: must be a lowercase identifier/);
    expect(bad([{ id: 'terms', title: 't', version: 'v 1' }])[0]).toMatch(/^CONSENT_PURPOSES\.0\.version:/);
    expect(bad([{ id: 'terms', title: '', version: '1' }])[0]).toMatch(/^CONSENT_PURPOSES\.0\.title:/);
    expect(bad([{ id: 'terms', title: 't', version: '1', url: 'javascript:alert(1)' }])[0]).toMatch(/^CONSENT_PURPOSES\.0\.url:/);
    expect(bad([{ id: 'terms', title: 't', version: '1', required: 'yes' }])[0]).toMatch(/^CONSENT_PURPOSES\.0\.required:/);
    expect(bad([{ id: 'terms', title: 't', version: '1', extra: 1 }])[0]).toMatch(/^CONSENT_PURPOSES\.0:/);
    expect(
      bad([
        { id: 'terms', title: 't', version: '1' },
        { id: 'terms', title: 'u', version: '2' },
      ]),
    ).toEqual(['CONSENT_PURPOSES.1.id: terms is declared twice']);
  });

  it('never enables the dev mailbox, or plain http, in production', () => {
    expect(issuesOf({ ...base, MAIL_PROVIDER: 'dev' })).toEqual(['MAIL_PROVIDER: the dev mailbox is never enabled in production']);
    expect(issuesOf({ ...base, PUBLIC_URL: 'http://auth.example.com' })).toEqual(['PUBLIC_URL: must be https in production']);
    expect(issuesOf({ ...base, ENVIRONMENT: 'development', MAIL_PROVIDER: 'dev', PUBLIC_URL: 'http://localhost:8787' })).toEqual([]);
  });

  it('makes the worker answer 500 config_invalid, naming the variable in the log and not to the caller', async () => {
    const logged: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((line: string) => void logged.push(String(line)));
    try {
      const app = createApp();
      const res = await app.fetch(new Request('https://gatehouse.test/auth/api/me'), { ...env, AUTH_SECRET: undefined });
      expect(res.status).toBe(500);
      const body = await res.json<{ code: string; detail: string }>();
      expect(body.code).toBe('config_invalid');
      expect(body.detail).not.toContain('AUTH_SECRET');
      expect(logged.some((line) => line.includes('"event":"config_invalid"') && line.includes('AUTH_SECRET: missing'))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
