import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// Offline: no Cloudflare lookups or metrics from wrangler/miniflare.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
process.env.WRANGLER_SEND_METRICS ??= 'false';

const migrations = await readD1Migrations('./migrations');

/**
 * The gateway routes the Workers tests run against: the echo origin (the same `npm run dev` uses)
 * behind an app host of its own, the documented default (Gatehouse itself on gatehouse.test), and a
 * hostile origin (demo/hostile.js) that answers with Set-Cookie headers chosen by the test.
 */
const APP = 'app.gatehouse.test';
const echo = (match: string, policy: Record<string, unknown>, more: Record<string, unknown> = {}) => ({
  match,
  host: APP,
  origin: 'service:ORIGIN_ECHO',
  policy,
  ...more,
});
const TEST_ROUTES = [
  echo('/demo/public/*', { access: 'public' }),
  echo('/demo/me/*', { access: 'authenticated', expose: ['email'] }),
  echo('/demo/admin/*', { rolesAny: ['admin'] }),
  echo('/demo/fresh/*', { fresh: true }),
  echo('/demo/api/*', { scopes: ['profile'], audiences: ['https://api.gatehouse.test'] }),
  echo('/demo/api-fresh/*', { audiences: ['https://api.gatehouse.test'], fresh: true }),
  echo('/demo/machine/*', { audiences: ['https://api.gatehouse.test'], machine: true }),
  echo('/demo/dpop/*', { audiences: ['https://api.gatehouse.test'], dpop: true, machine: true }),
  echo('/demo/partner/*', { audiences: ['https://api.gatehouse.test'], clients: ['partner-app'], machine: true }),
  echo('/demo/admin-api/*', { rolesAny: ['admin'], audiences: ['https://admin.gatehouse.test'] }),
  // API keys: either header, X-API-Key only, checked against D1 on every request; and a rate limit.
  echo('/demo/keys/*', { audiences: ['https://api.gatehouse.test'], apiKeys: ['authorization', 'x-api-key'], machine: true }),
  echo('/demo/keys-header/*', { audiences: ['https://api.gatehouse.test'], apiKeys: ['x-api-key'], machine: true }),
  echo('/demo/keys-fresh/*', { audiences: ['https://api.gatehouse.test'], apiKeys: ['authorization'], machine: true, fresh: true }),
  echo('/demo/keys-users/*', { audiences: ['https://api.gatehouse.test'], apiKeys: ['authorization'], scopes: ['orders:read'] }),
  echo(
    '/demo/limited/*',
    { audiences: ['https://api.gatehouse.test'], apiKeys: ['authorization'], machine: true },
    { rateLimit: { requests: 3, period: 60 } },
  ),
  echo('/demo/orders/*', { audiences: ['https://orders.gatehouse.test'], machine: true, apiKeys: ['authorization'] }),
  echo('/demo/gold/*', { tiers: ['gold', 'platinum'] }),
  echo('/demo/recent/*', { maxAuthAge: 60, audiences: ['https://api.gatehouse.test'] }),
  echo('/demo/mfa/*', { acr: ['urn:gatehouse:acr:mfa'] }),
  // One path, two routes by method: reading needs a sign-in, changing needs a second factor.
  { ...echo('/demo/split/*', { acr: ['urn:gatehouse:acr:mfa'] }), methods: ['POST', 'PUT', 'PATCH', 'DELETE'] },
  echo('/demo/split/*', { access: 'authenticated' }),
  echo('/demo/phr/*', { acr: ['urn:gatehouse:acr:phr'] }),
  echo('/demo/stripped/*', { access: 'public' }, { stripHeaders: ['X-Internal-User'] }),
  { match: '/demo/down/*', host: APP, origin: 'http://127.0.0.1:9', policy: { access: 'public' }, timeoutMs: 2000 },
  echo('/demo/slow/*', { access: 'public' }, { timeoutMs: 200 }),
  { match: '/hostile/public/*', host: APP, origin: 'service:ORIGIN_HOSTILE', policy: { access: 'public' } },
  { match: '/hostile/*', host: APP, origin: 'service:ORIGIN_HOSTILE', policy: { access: 'authenticated' } },
  // A second app host: its sessions are its own.
  { match: '/*', host: 'other.gatehouse.test', origin: 'service:ORIGIN_ECHO', policy: { access: 'authenticated' } },
];

// Two projects: `workers` runs in workerd through the Workers Vitest integration (real D1, Durable
// Objects and rate limiter from wrangler.toml, migrations from migrations/); `e2e` runs in Node and
// drives `wrangler dev` with a real browser.
export default defineConfig({
  test: {
    // CI also writes a JSON report; .ci/run prints its totals as one line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results/vitest.json' }]] : ['default'],
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              // A second database for tests that rewrite the signing-key table wholesale.
              d1Databases: ['KEYS_TEST_DB'],
              // The optional audit archive (commented out in wrangler.toml), bound here for test/db/retention-archive.test.ts.
              r2Buckets: ['AUDIT_ARCHIVE'],
              // The demo echo origin behind the gateway, reached through a service binding.
              workers: [
                { name: 'echo', modules: true, scriptPath: './demo/echo.js', compatibilityDate: '2026-10-20' },
                { name: 'hostile', modules: true, scriptPath: './test/hostile-origin.js', compatibilityDate: '2026-10-20' },
              ],
              serviceBindings: { ORIGIN_ECHO: 'echo', ORIGIN_HOSTILE: 'hostile' },
              // The webhook queues of wrangler.toml, delivering at once (a batch waits 50 ms, not 1 s).
              queueConsumers: {
                'gatehouse-webhooks': { maxBatchTimeout: 0.05, maxRetries: 30, deadLetterQueue: 'gatehouse-webhooks-dlq' },
                'gatehouse-webhooks-dlq': { maxBatchTimeout: 0.05, maxRetries: 3 },
              },
              bindings: {
                ROUTES: JSON.stringify(TEST_ROUTES),
                ENVIRONMENT: 'test',
                PUBLIC_URL: 'https://gatehouse.test',
                MAIL_PROVIDER: 'dev',
                AUTH_SECRET: 'dGVzdC1vbmx5LWF1dGgtc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg',
                KEY_ENCRYPTION_KEY: 'dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI',
                // Dynamic client registration on (test/oauth/registration*.test.ts turn it off per test).
                REGISTRATION_TOKEN: 'dGVzdC1vbmx5LWluaXRpYWwtYWNjZXNzLXRva2VuLTMyYg',
                // Webhook retries in seconds, not hours: 1 s, then 2 s; three attempts.
                WEBHOOK_BACKOFF_BASE: '1',
                WEBHOOK_MAX_ATTEMPTS: '3',
                TEST_MIGRATIONS: migrations,
              },
            },
          }),
        ],
        test: {
          name: 'workers',
          include: ['test/**/*.test.{ts,tsx}'],
          exclude: ['test/e2e/**'],
          setupFiles: ['./test/setup.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.e2e.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
