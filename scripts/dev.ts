/**
 * `npm run dev`: the whole stack locally, safe to re-run.
 *  1. writes .dev.vars (git-ignored) with fresh secrets when it is missing, adds any missing secret;
 *  2. applies migrations/ to the local D1;
 *  3. seeds the demo user (kept if it exists);
 *  4. starts `wrangler dev` on http://localhost:8787 and prints where to go.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { main as users } from './users';
import { applyMigrations, ROOT, startWranglerDev } from './lib/wrangler';

const PORT = Number(process.env.PORT ?? 8787);
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
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  console.log('• wrote .dev.vars with new secrets');
} else {
  // Secrets added by later versions are appended; existing values are never touched.
  const present = readFileSync(devVars, 'utf8');
  for (const name of ['AUTH_SECRET', 'KEY_ENCRYPTION_KEY']) {
    if (!new RegExp(`^${name}=`, 'm').test(present)) {
      appendFileSync(devVars, `${present.endsWith('\n') ? '' : '\n'}${name}=${secret()}\n`);
      console.log(`• added ${name} to .dev.vars`);
    }
  }
}

console.log('• applying D1 migrations (local)');
applyMigrations({ remote: false });

console.log('• seeding the demo user');
const log = console.log;
console.log = () => undefined;
await users(['create', '--email', DEMO.email, '--password', DEMO.password, '--verified', '--role', 'admin', '--if-missing']);
console.log = log;

console.log('• starting wrangler dev');
const dev = await startWranglerDev({ port: PORT, stdio: 'inherit', logLevel: 'info' });
console.log(`
  Gatehouse is running at ${BASE}

  Sign in      ${BASE}/auth/sign-in     demo user: ${DEMO.email} / ${DEMO.password}
  Sign up      ${BASE}/auth/sign-up
  Your account ${BASE}/auth/account
  Dev mailbox  ${BASE}/auth/dev/mailbox  (verification and reset mail land here)

  Ctrl-C stops it.
`);
const stop = async () => {
  await dev.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
dev.child.on('exit', (code) => process.exit(code ?? 0));
