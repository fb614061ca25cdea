import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { applyMigrations, ROOT, startWranglerDev } from '../../scripts/lib/wrangler';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A private Gatehouse under `wrangler dev`: its own D1 and Durable Object state in a temp
 * directory (migrated with the same files as production), its own port and secret. Gatehouse is
 * on `base` (http://localhost:PORT); `appBase` (http://app.localhost:PORT, which Chromium resolves
 * to loopback) is the app host routes can name, as in `npm run dev`. `extraVars` may depend on them.
 */
export async function startGatehouse(extraVars: Record<string, string> | ((at: { base: string; appHost: string }) => Record<string, string>) = {}) {
  const persistTo = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
  applyMigrations({ remote: false, persistTo });
  const port = await freePort();
  const base = `http://localhost:${port}`;
  const appHost = `app.localhost:${port}`;
  const vars = {
    ENVIRONMENT: 'development',
    PUBLIC_URL: base,
    MAIL_PROVIDER: 'dev',
    AUTH_SECRET: randomBytes(32).toString('base64url'),
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
    ...(typeof extraVars === 'function' ? extraVars({ base, appHost }) : extraVars),
  };
  const start = () => startWranglerDev({ port, persistTo, vars, testScheduled: true });
  let dev = await start();
  return {
    base,
    appBase: `http://${appHost}`,
    port,
    persistTo,
    output: () => dev.output(),
    /** Stops the worker, keeping its state, so the test can change D1 underneath. */
    async pause() {
      await dev.stop();
    },
    /** Starts it again on the same port, state and secrets (fresh isolates, empty caches). */
    async resume() {
      dev = await start();
    },
    async stop() {
      await dev.stop();
      rmSync(persistTo, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser(): Promise<{ browser: Browser; context: BrowserContext }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    timeout: 30_000,
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(20_000);
  return { browser, context };
}

/** Runs the users CLI (as `npm run users --` does) and returns its exit code and output. */
export const usersCli = (args: string[]) => cli('users', args);
/** Runs the clients CLI (as `npm run clients --` does). */
export const clientsCli = (args: string[]) => cli('clients', args);

function cli(name: string, args: string[]) {
  const r = spawnSync(`${ROOT}node_modules/.bin/tsx`, [`scripts/${name}.ts`, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${ROOT}node_modules/.bin:${process.env.PATH}` },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Mail {
  to: string;
  subject: string;
  links: string[];
}

export async function mailbox(base: string, to: string): Promise<Mail[]> {
  const res = await fetch(`${base}/auth/dev/mailbox?format=json&to=${encodeURIComponent(to)}`, {
    signal: AbortSignal.timeout(10_000),
  });
  return ((await res.json()) as { messages: Mail[] }).messages;
}
