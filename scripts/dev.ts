/**
 * `npm run dev`: the whole stack locally, safe to re-run.
 *  1. writes .dev.vars (git-ignored) with fresh secrets when it is missing, adds any missing secret;
 *  2. applies migrations/ to the local D1;
 *  3. seeds the demo user, the demo OIDC client, the demo API and an API key for it (kept if they exist);
 *  4. starts the demo echo origin (:8788) behind the gateway's demo routes, and `wrangler dev` on
 *     http://localhost:8787, and prints where to go.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { main as apiKeys } from './api-keys';
import { main as clients } from './clients';
import { main as resources } from './resources';
import { main as users } from './users';
import { startEchoServer } from '../demo/echo-server';
import { applyMigrations, ROOT, startWranglerDev } from './lib/wrangler';

const PORT = Number(process.env.PORT ?? 8787);
const ECHO_PORT = PORT + 1;
/**
 * The demo routes: the echo origin behind a public, a signed-in, an admin-only and an MFA route, on
 * an app host of its own (app.localhost: browsers and curl resolve it to loopback) — Gatehouse's
 * pages stay on localhost, where no origin runs script (docs/security.md, "Hosts").
 */
const APP_HOST = `app.localhost:${PORT}`;
const demo = (match: string, policy: Record<string, unknown>) => ({
  match,
  host: APP_HOST,
  origin: `http://127.0.0.1:${ECHO_PORT}`,
  policy,
});
const DEMO_ROUTES = JSON.stringify([
  demo('/demo/public/*', { access: 'public' }),
  demo('/demo/me/*', { access: 'authenticated', expose: ['email'] }),
  demo('/demo/admin/*', { rolesAny: ['admin'] }),
  demo('/demo/mfa/*', { acr: ['urn:gatehouse:acr:mfa'] }),
  // The demo API: access tokens for it and API keys, machines included, 60 requests a minute per caller.
  {
    ...demo('/demo/api/*', { audiences: ['https://api.gatehouse.dev'], machine: true, apiKeys: ['authorization', 'x-api-key'] }),
    rateLimit: { requests: 60, period: 60 },
  },
]);
const DEMO_API = 'https://api.gatehouse.dev';
const BASE = `http://localhost:${PORT}`;
const DEMO = { email: 'demo@gatehouse.dev', password: 'gatehouse demo passphrase' };

const devVars = `${ROOT}.dev.vars`;
const secret = () => randomBytes(32).toString('base64url');
if (!existsSync(devVars)) {
  writeFileSync(
    devVars,
    [
      '# Local development only (git-ignored). Written by `npm run dev`; delete it to start over.',
      'ENVIRONMENT=development',
      `PUBLIC_URL=${BASE}`,
      'MAIL_PROVIDER=dev',
      `AUTH_SECRET=${secret()}`,
      `KEY_ENCRYPTION_KEY=${secret()}`,
      `ROUTES=${DEMO_ROUTES}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  console.log('• wrote .dev.vars with new secrets');
} else {
  // Settings added by later versions are appended; existing values are never touched.
  const missing: Record<string, () => string> = { AUTH_SECRET: secret, KEY_ENCRYPTION_KEY: secret, ROUTES: () => DEMO_ROUTES };
  for (const [name, value] of Object.entries(missing)) {
    const present = readFileSync(devVars, 'utf8');
    if (!new RegExp(`^${name}=`, 'm').test(present)) {
      appendFileSync(devVars, `${present.endsWith('\n') ? '' : '\n'}${name}=${value()}\n`);
      console.log(`• added ${name} to .dev.vars`);
    }
  }
  // ROUTES that are an older version's demo table (only /demo/* to the echo origin) are brought up
  // to date; routes a developer wrote are left alone.
  const present = readFileSync(devVars, 'utf8');
  const line = /^ROUTES=(.*)$/m.exec(present);
  type Entry = { match?: unknown; origin?: unknown };
  const parse = (text: string): Entry[] | null => {
    try {
      const value: unknown = JSON.parse(text);
      return Array.isArray(value) ? (value as Entry[]) : null;
    } catch {
      return null;
    }
  };
  const routes = line ? parse(line[1]!) : null;
  const demoOnly = routes?.every((r) => String(r.match).startsWith('/demo/') && r.origin === `http://127.0.0.1:${ECHO_PORT}`);
  if (line && demoOnly && line[1] !== DEMO_ROUTES) {
    writeFileSync(devVars, present.replace(line[0], `ROUTES=${DEMO_ROUTES}`), { mode: 0o600 });
    console.log('• updated the demo ROUTES in .dev.vars');
  }
}

console.log('• applying D1 migrations (local)');
applyMigrations({ remote: false });

/** Runs a CLI main() and returns what it printed. */
async function quietly(run: () => Promise<void>): Promise<string> {
  const log = console.log;
  let out = '';
  console.log = (s: string) => {
    out += s;
  };
  try {
    await run();
  } finally {
    console.log = log;
  }
  return out;
}

console.log('• seeding the demo user');
await quietly(() => users(['create', '--email', DEMO.email, '--password', DEMO.password, '--verified', '--role', 'admin', '--if-missing']));

console.log('• seeding the demo client');
// The secret is shown once at creation; keep it beside the local state so re-runs can print it.
const demoClientFile = `${ROOT}.wrangler/demo-client.json`;
const demoClient = JSON.parse(
  await quietly(() =>
    clients([
      'create',
      '--name',
      'Demo app',
      '--client-id',
      'demo-app',
      '--first-party',
      '--redirect-uri',
      'http://localhost:3000/callback',
      '--post-logout-redirect-uri',
      'http://localhost:3000/',
      '--grant',
      'authorization_code',
      '--grant',
      'refresh_token',
      '--grant',
      'client_credentials',
      '--scope',
      'openid',
      '--scope',
      'profile',
      '--scope',
      'email',
      '--scope',
      'offline_access',
      '--if-missing',
    ]),
  ),
) as { client_id: string; client_secret?: string };
if (demoClient.client_secret) writeFileSync(demoClientFile, JSON.stringify(demoClient, null, 2), { mode: 0o600 });
const demoSecret =
  demoClient.client_secret ??
  (existsSync(demoClientFile)
    ? (JSON.parse(readFileSync(demoClientFile, 'utf8')) as { client_secret: string }).client_secret
    : '(unknown: delete .wrangler/ to re-seed)');

console.log('• seeding the demo API and its key');
await quietly(() =>
  resources(['create', '--id', DEMO_API, '--name', 'Demo API', '--scope', 'demo:read=Read the demo data', '--if-missing']),
);
await quietly(() => resources(['grant', '--id', DEMO_API, '--client', 'demo-app', '--scope', 'demo:read']));
// Like the client secret, the key is shown once: kept beside the local state for re-runs.
const demoKeyFile = `${ROOT}.wrangler/demo-api-key.json`;
if (!existsSync(demoKeyFile)) {
  const created = await quietly(() =>
    apiKeys(['create', '--resource', DEMO_API, '--client', 'demo-app', '--name', 'Demo key', '--scope', 'demo:read']),
  );
  writeFileSync(demoKeyFile, created, { mode: 0o600 });
}
const demoKey = (JSON.parse(readFileSync(demoKeyFile, 'utf8')) as { key: string }).key;

console.log(`• starting the demo echo origin on http://127.0.0.1:${ECHO_PORT}`);
const echoServer = await startEchoServer(ECHO_PORT);

console.log('• starting wrangler dev');
const dev = await startWranglerDev({ port: PORT, stdio: 'inherit', logLevel: 'info' });
console.log(`
  Gatehouse is running at ${BASE}

  Sign in      ${BASE}/auth/sign-in     demo user: ${DEMO.email} / ${DEMO.password}
  Sign up      ${BASE}/auth/sign-up
  Your account ${BASE}/auth/account
  Dev mailbox  ${BASE}/auth/dev/mailbox  (verification and reset mail land here)

  Gateway demo     http://${APP_HOST}/demo/public/hello   (anyone; an app host of its own)
                   http://${APP_HOST}/demo/me/hello       (signed in: see the X-Auth-* headers the origin got)
                   http://${APP_HOST}/demo/admin/hello    (role admin: the demo user has it)
                   http://${APP_HOST}/demo/mfa/hello      (two-step verification: steps a password sign-in up)

  OpenID Provider  ${BASE}/.well-known/openid-configuration
  Demo client      client_id ${demoClient.client_id}   client_secret ${demoSecret}
                   redirect_uri http://localhost:3000/callback (client_secret_basic, PKCE S256)

  Demo API         ${DEMO_API} (scope demo:read), behind http://${APP_HOST}/demo/api/*
                   curl -H 'X-API-Key: ${demoKey}' http://${APP_HOST}/demo/api/hello
                   curl -u ${demoClient.client_id}:${demoSecret} -d grant_type=client_credentials \\
                        -d resource=${DEMO_API} ${BASE}/auth/token

  Ctrl-C stops it.
`);
const stop = async () => {
  echoServer.close();
  await dev.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
dev.child.on('exit', (code) => process.exit(code ?? 0));
