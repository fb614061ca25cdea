import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createEndpoint } from '../../src/admin/webhook-endpoints';
import { WEBHOOK_EVENTS } from '../../src/admin/webhook-events';
import { webhookUrlProblem } from '../../src/admin/webhook-urls';
import { ConfigError, parseConfig } from '../../src/config';
import { depsFor } from '../../src/deps';
import { GatehouseError } from '../../src/lib/errors';

/**
 * SSRF: who attacks is an operator's admin client (or whoever stole its token) pointing a webhook
 * at Gatehouse's own network — cloud metadata, a database on a private address, loopback — to make
 * Gatehouse POST there and read the answer in last_error. One case per range, in each spelling.
 */

const refused: [string, string][] = [
  ['https://0.0.0.0/', '"this network"'],
  ['https://10.1.2.3/', 'a private range'],
  ['https://172.16.0.1/', 'a private range'],
  ['https://172.31.255.255/', 'a private range'],
  ['https://192.168.1.1/', 'a private range'],
  ['https://100.64.0.1/', 'the CGNAT range'],
  ['https://100.127.255.254/', 'the CGNAT range'],
  ['https://127.0.0.1/', 'loopback'],
  ['https://127.8.9.10/', 'loopback'],
  ['https://169.254.169.254/latest/meta-data', 'link-local'],
  ['https://192.0.0.8/', 'IETF protocol assignments'],
  ['https://198.18.0.1/', 'the benchmarking range'],
  ['https://224.0.0.1/', 'multicast'],
  ['https://255.255.255.255/', 'reserved (and broadcast)'],
  // Other spellings of an IPv4 address (the URL parser normalises them to dotted decimal).
  ['https://2130706433/', 'loopback'],
  ['https://0x7f.1/', 'loopback'],
  ['https://0177.0.0.1/', 'loopback'],
  ['https://10.1/', 'a private range'],
  // IPv6.
  ['https://[::]/', 'the unspecified address'],
  ['https://[::1]/', 'loopback'],
  ['https://[0:0:0:0:0:0:0:1]/', 'loopback'],
  ['https://[fe80::1]/', 'link-local'],
  ['https://[fc00::1]/', 'unique-local'],
  ['https://[fd12:3456::1]/', 'unique-local'],
  ['https://[fec0::1]/', 'site-local'],
  ['https://[ff02::1]/', 'multicast'],
  ['https://[::ffff:127.0.0.1]/', 'IPv4-mapped loopback'],
  ['https://[::ffff:169.254.169.254]/', 'IPv4-mapped link-local'],
  ['https://[::ffff:a00:1]/', 'IPv4-mapped a private range'],
  ['https://[::ffff:100.64.0.1]/', 'IPv4-mapped the CGNAT range'],
  ['https://[::127.0.0.1]/', 'IPv4-compatible (deprecated)'],
  ['https://[64:ff9b::10.0.0.1]/', 'NAT64 of a private range'],
  ['https://[2002:a00:1::]/', '6to4 of a private range'],
  ['https://[100::1]/', 'discard-only'],
  ['https://[::ffff:0:127.0.0.1]/', 'IPv4-translated loopback'],
  ['https://[::ffff:0:a9fe:a9fe]/', 'IPv4-translated link-local'],
  ['https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/', 'Teredo of loopback'],
  // Names that only resolve inside a network.
  ['https://localhost/', 'localhost'],
  ['https://LOCALHOST./', 'localhost'],
  ['https://localhost../', 'localhost'],
  ['https://api.internal.../', 'api.internal'],
  ['https://api.localhost/', 'api.localhost'],
  ['https://printer.local/', 'printer.local'],
  ['https://metadata.google.internal/', 'metadata.google.internal'],
  ['https://router.home.arpa/', 'router.home.arpa'],
  ['https://intranet/', 'intranet'],
];

describe('where webhooks may go in production', () => {
  it.each(refused)('refuses %s (%s)', (url, why) => {
    expect(webhookUrlProblem(url, 'production')).toContain(why);
  });

  it.each([
    'https://hooks.example.com/in',
    'https://8.8.8.8/',
    'https://172.32.0.1/',
    'https://100.128.0.1/',
    'https://192.169.0.1/',
    'https://[2606:4700::1111]/',
    'https://[::ffff:8.8.8.8]/',
    'https://[64:ff9b::8.8.8.8]/',
    'https://[::ffff:0:8.8.8.8]/',
    'https://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/',
    'https://hooks.example.com:8443/path?q=1',
  ])('takes %s', (url) => {
    expect(webhookUrlProblem(url, 'production')).toBeNull();
  });

  it('wants https, no credentials and no fragment', () => {
    expect(webhookUrlProblem('http://hooks.example.com/', 'production')).toBe('must be https');
    expect(webhookUrlProblem('https://a:b@hooks.example.com/', 'production')).toContain('credentials');
    expect(webhookUrlProblem('https://hooks.example.com/#x', 'production')).toContain('fragment');
    expect(webhookUrlProblem('javascript:alert(1)', 'production')).toBe('must be https');
  });

  it('lets development and test use http://localhost (a local receiver), never another scheme', () => {
    for (const environment of ['development', 'test'] as const) {
      expect(webhookUrlProblem('http://localhost:8788/hook', environment)).toBeNull();
      expect(webhookUrlProblem('http://127.0.0.1:8788/hook', environment)).toBeNull();
      expect(webhookUrlProblem('file:///etc/passwd', environment)).toBe('must be http or https');
    }
  });

  it('refuses such an endpoint when it is saved in production, naming url, and writes nothing', async () => {
    const deps = await depsFor(env);
    const production = { ...deps, config: { ...deps.config, environment: 'production' as const } };
    const before = await env.DB.prepare('SELECT count(*) AS n FROM webhook_endpoints').first<{ n: number }>();
    const auditBefore = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'admin_change'").first<{ n: number }>();
    const error = await createEndpoint(
      production,
      { actor: 'client:x', meta: { ip: null, userAgent: null } as never },
      {
        url: 'https://[::ffff:10.0.0.1]/hook',
        eventTypes: ['*'],
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatehouseError);
    expect(error).toMatchObject({ code: 'invalid_request', extra: { field: 'url' } });
    expect((error as Error).message).toContain('IPv4-mapped a private range');
    expect(await env.DB.prepare('SELECT count(*) AS n FROM webhook_endpoints').first()).toEqual(before);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'admin_change'").first<{ n: number }>()).toEqual(
      auditBefore,
    );
  });
});

describe('the event table', () => {
  it('is the one the outbox trigger uses (migrations/0013)', async () => {
    const { results } = await env.DB.prepare('SELECT audit_type, event_type FROM webhook_event_types ORDER BY audit_type').all<{
      audit_type: string;
      event_type: string;
    }>();
    const mine = Object.entries(WEBHOOK_EVENTS)
      .flatMap(([event, audits]) => audits.map((a) => ({ audit_type: a, event_type: event })))
      .sort((a, b) => a.audit_type.localeCompare(b.audit_type));
    expect(results).toEqual(mine);
  });
});

describe('webhook configuration', () => {
  const base = {
    ENVIRONMENT: 'production',
    PUBLIC_URL: 'https://auth.example.com',
    AUTH_SECRET: 'dGVzdC1vbmx5LWF1dGgtc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg',
    KEY_ENCRYPTION_KEY: 'dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI',
    MAIL_PROVIDER: 'http',
    MAIL_HTTP_URL: 'https://mail.example.com/send',
    MAIL_HTTP_TOKEN: 'token',
  };

  it('defaults to ten attempts from a minute apart, and ten failed deliveries in a row to turn an endpoint off', () => {
    expect(parseConfig(base).webhooks).toEqual({ maxAttempts: 10, backoffBase: 60, disableAfter: 10 });
    expect(parseConfig({ ...base, WEBHOOK_MAX_ATTEMPTS: '3', WEBHOOK_BACKOFF_BASE: '1', WEBHOOK_DISABLE_AFTER: '2' }).webhooks).toEqual({
      maxAttempts: 3,
      backoffBase: 1,
      disableAfter: 2,
    });
  });

  it.each([
    ['WEBHOOK_MAX_ATTEMPTS', '0'],
    ['WEBHOOK_MAX_ATTEMPTS', '31'],
    ['WEBHOOK_BACKOFF_BASE', '-1'],
    ['WEBHOOK_BACKOFF_BASE', '7200'],
    ['WEBHOOK_DISABLE_AFTER', 'often'],
  ])('refuses %s=%s, naming it', (name, value) => {
    const error = (() => {
      try {
        parseConfig({ ...base, [name]: value });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.join('\n')).toContain(name);
  });
});
