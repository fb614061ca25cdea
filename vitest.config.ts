import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// Offline: no Cloudflare lookups or metrics from wrangler/miniflare.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
process.env.WRANGLER_SEND_METRICS ??= 'false';

const migrations = await readD1Migrations('./migrations');

/** The gateway routes the Workers tests run against (the same echo origin `npm run dev` uses). */
const TEST_ROUTES = [
  { match: '/demo/public/*', origin: 'service:ORIGIN_ECHO', policy: { access: 'public' } },
  { match: '/demo/me/*', origin: 'service:ORIGIN_ECHO', policy: { access: 'authenticated', expose: ['email'] } },
  { match: '/demo/admin/*', origin: 'service:ORIGIN_ECHO', policy: { rolesAny: ['admin'] } },
  { match: '/demo/fresh/*', origin: 'service:ORIGIN_ECHO', policy: { fresh: true } },
  { match: '/demo/api/*', origin: 'service:ORIGIN_ECHO', policy: { scopes: ['profile'] } },
  { match: '/demo/gold/*', origin: 'service:ORIGIN_ECHO', policy: { tiers: ['gold', 'platinum'] } },
  { match: '/demo/recent/*', origin: 'service:ORIGIN_ECHO', policy: { maxAuthAge: 60 } },
  { match: '/demo/mfa/*', origin: 'service:ORIGIN_ECHO', policy: { acr: ['urn:gatehouse:acr:mfa'] } },
  { match: '/demo/phr/*', origin: 'service:ORIGIN_ECHO', policy: { acr: ['urn:gatehouse:acr:phr'] } },
  { match: '/demo/down/*', origin: 'http://127.0.0.1:9', policy: { access: 'public' }, timeoutMs: 2000 },
  { match: '/demo/slow/*', origin: 'service:ORIGIN_ECHO', policy: { access: 'public' }, timeoutMs: 200 },
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
              // The demo echo origin behind the gateway, reached through a service binding.
              workers: [{ name: 'echo', modules: true, scriptPath: './demo/echo.js', compatibilityDate: '2026-10-20' }],
              serviceBindings: { ORIGIN_ECHO: 'echo' },
              bindings: {
                ROUTES: JSON.stringify(TEST_ROUTES),
                ENVIRONMENT: 'test',
                PUBLIC_URL: 'https://gatehouse.test',
                MAIL_PROVIDER: 'dev',
                AUTH_SECRET: 'dGVzdC1vbmx5LWF1dGgtc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg',
                KEY_ENCRYPTION_KEY: 'dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI',
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
