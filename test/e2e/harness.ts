import { spawnSync } from 'node:child_process';
import dns from 'node:dns';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions } from 'playwright-core';
import { applyMigrations, PortInUseError, ROOT, startWranglerDev } from '../../scripts/lib/wrangler';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Makes this process resolve `*.localhost` to loopback, as Chromium and curl do (RFC 6761 §6.3), so
 * Node's fetch can reach the app host (`app.localhost:PORT`) by name — the name is the Host the
 * gateway routes on. Node's own resolver would ask DNS and fail.
 */
export function resolveLocalhostNames(): void {
  const system = dns.lookup;
  const lookup = (host: string, options: unknown, callback?: unknown) => {
    const [opts, cb] = typeof options === 'function' ? [{}, options] : [(options ?? {}) as { all?: boolean }, callback];
    if (!host.endsWith('.localhost')) return (system as (...a: unknown[]) => void)(host, opts, cb);
    const done = cb as (e: null, a: unknown, f?: number) => void;
    return 'all' in opts && opts.all ? done(null, [{ address: '127.0.0.1', family: 4 }]) : done(null, '127.0.0.1', 4);
  };
  (dns as { lookup: unknown }).lookup = lookup;
}

/** Starts `server` on a port the system picks as it binds (never one chosen beforehand) and returns it. */
export async function listenOnFreePort(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/**
 * wrangler dev needs its port up front (PUBLIC_URL names it), so one is picked at random below
 * Linux's ephemeral range (32768+, where bind(0) and outgoing connections take theirs) and tried;
 * startGatehouse picks another when wrangler reports it taken.
 */
const candidatePort = () => 20_000 + Math.floor(Math.random() * 12_000);
const PORT_ATTEMPTS = 5;

/** The secrets a private Gatehouse runs with (CLIs that seal secrets need KEY_ENCRYPTION_KEY). */
export interface GatehouseSecrets {
  AUTH_SECRET: string;
  KEY_ENCRYPTION_KEY: string;
}

/**
 * A private Gatehouse under `wrangler dev`: its own D1 and Durable Object state in a temp
 * directory (migrated with the same files as production), its own port and secret. Gatehouse is
 * on `base` (http://localhost:PORT); `appBase` (http://app.localhost:PORT, which Chromium resolves
 * to loopback) is the app host routes can name, as in `npm run dev`. `extraVars` may depend on them.
 * `beforeStart` writes to the migrated D1 before the worker first reads it (nothing cached yet).
 */
export async function startGatehouse(
  extraVars: Record<string, string> | ((at: { base: string; appHost: string }) => Record<string, string>) = {},
  opts: { beforeStart?: (at: { persistTo: string; secrets: GatehouseSecrets }) => void } = {},
) {
  const persistTo = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
  applyMigrations({ remote: false, persistTo });
  const secrets: GatehouseSecrets = {
    AUTH_SECRET: randomBytes(32).toString('base64url'),
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
  };
  try {
    opts.beforeStart?.({ persistTo, secrets });
  } catch (e) {
    rmSync(persistTo, { recursive: true, force: true });
    throw e;
  }
  const on = (port: number) => {
    const base = `http://localhost:${port}`;
    const appHost = `app.localhost:${port}`;
    const vars = {
      ENVIRONMENT: 'development',
      PUBLIC_URL: base,
      MAIL_PROVIDER: 'dev',
      ...secrets,
      ...(typeof extraVars === 'function' ? extraVars({ base, appHost }) : extraVars),
    };
    return {
      port,
      base,
      appHost,
      start: (more: Record<string, string> = {}) => startWranglerDev({ port, persistTo, vars: { ...vars, ...more }, testScheduled: true }),
    };
  };
  let at = on(candidatePort());
  let dev: Awaited<ReturnType<typeof startWranglerDev>>;
  for (let attempt = 1; ; attempt++) {
    try {
      dev = await at.start();
      break;
    } catch (e) {
      if (!(e instanceof PortInUseError) || attempt === PORT_ATTEMPTS) {
        rmSync(persistTo, { recursive: true, force: true });
        throw e;
      }
      at = on(candidatePort());
    }
  }
  const { base, appHost, port, start } = at;
  return {
    base,
    appBase: `http://${appHost}`,
    port,
    persistTo,
    secrets,
    output: () => dev.output(),
    /** Stops the worker, keeping its state, so the test can change D1 underneath. */
    async pause() {
      await dev.stop();
    },
    /**
     * Starts it again on the same port, state and secrets (fresh isolates, empty caches), with
     * `vars` changed — as an operator's redeploy with new configuration would.
     */
    async resume(vars: Record<string, string> = {}) {
      dev = await start(vars);
    },
    async stop() {
      await dev.stop();
      rmSync(persistTo, { recursive: true, force: true });
    },
  };
}

/** Headless Chromium for a file's tests to share; each test opens contexts of its own (newContext). */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    timeout: 30_000,
  });
}

/** A fresh profile (cookies, storage, device cookie) in `browser`, with the suite's timeouts. */
export async function newContext(browser: Browser, options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(20_000);
  return context;
}

export async function launchBrowser(): Promise<{ browser: Browser; context: BrowserContext }> {
  const browser = await launchChromium();
  return { browser, context: await newContext(browser) };
}

/** Runs the users CLI (as `npm run users --` does) and returns its exit code and output. */
export const usersCli = (args: string[]) => cli('users', args);
/** Runs the clients CLI (as `npm run clients --` does). */
export const clientsCli = (args: string[]) => cli('clients', args);
/** Runs the resources CLI (as `npm run resources --` does). */
export const resourcesCli = (args: string[]) => cli('resources', args);
/** Runs the API keys CLI (as `npm run api-keys --` does). */
export const apiKeysCli = (args: string[]) => cli('api-keys', args);
/** Runs the providers CLI (as `npm run providers --` does); `env` gives it KEY_ENCRYPTION_KEY and PUBLIC_URL. */
export const providersCli = (args: string[], env: Record<string, string> = {}) => cli('providers', args, env);

function cli(name: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(`${ROOT}node_modules/.bin/tsx`, [`scripts/${name}.ts`, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${ROOT}node_modules/.bin:${process.env.PATH}`, ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Mail {
  to: string;
  subject: string;
  text: string;
  links: string[];
}

export async function mailbox(base: string, to: string): Promise<Mail[]> {
  const res = await fetch(`${base}/auth/dev/mailbox?format=json&to=${encodeURIComponent(to)}`, {
    signal: AbortSignal.timeout(10_000),
  });
  return ((await res.json()) as { messages: Mail[] }).messages;
}

/**
 * A client address of its own, for the CF-Connecting-IP header (wrangler dev passes it on): an
 * IPv6 documentation address in a random /64, the unit the per-IP limit on credential endpoints
 * counts, so the limit is not state that one test's traffic leaves to another's.
 */
export const uniqueIp = () => `2001:db8:${randomBytes(6).toString('hex').match(/.{4}/g)!.join(':')}::1`;

/**
 * A verified account for one test, made through the API as a newcomer would (sign-up, then the
 * link from the dev mailbox), from an address of its own: seconds quicker than the users CLI.
 */
export async function signUpVerified(base: string, email: string, password: string): Promise<void> {
  const ip = uniqueIp();
  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'cf-connecting-ip': ip },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  const up = await post('/auth/api/sign-up', { email, password });
  if (up.status !== 202) throw new Error(`sign-up of ${email}: ${up.status} ${await up.text()}`);
  let link: string | undefined;
  for (let attempt = 0; !link && attempt < 40; attempt++) {
    link = (await mailbox(base, email))[0]?.links[0];
    if (!link) await new Promise((r) => setTimeout(r, 100));
  }
  if (!link) throw new Error(`no verification mail to ${email}`);
  const verified = await post('/auth/api/verify-email', { token: new URL(link).searchParams.get('token') });
  if (verified.status !== 200) throw new Error(`verification of ${email}: ${verified.status} ${await verified.text()}`);
}
