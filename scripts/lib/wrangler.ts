import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const WRANGLER = `${ROOT}node_modules/.bin/wrangler`;

/** Offline-friendly environment for wrangler: no metrics, no Cloudflare lookups. */
export const wranglerEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_SEND_METRICS: 'false',
  // Puts the repo's Node (the `node` devDependency, v22) first, as npm scripts do.
  PATH: `${ROOT}node_modules/.bin:${process.env.PATH ?? ''}`,
  ...extra,
});

export interface Target {
  remote: boolean;
  persistTo?: string | undefined;
}

const targetArgs = (t: Target) => (t.remote ? ['--remote'] : ['--local', ...(t.persistTo ? ['--persist-to', t.persistTo] : [])]);

/** Runs a wrangler command to completion; throws with its output when it fails. */
export function wrangler(args: string[], opts: { env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): string {
  const result = spawnSync(WRANGLER, args, {
    cwd: ROOT,
    env: wranglerEnv({ CI: 'true', ...opts.env }),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) {
    throw new Error(`wrangler ${args.slice(0, 3).join(' ')} failed:\n${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

/** Applies migrations/ to the D1 database (local by default). Idempotent. */
export function applyMigrations(t: Target): void {
  wrangler(['d1', 'migrations', 'apply', 'DB', ...targetArgs(t)]);
}

/** Runs SQL against D1 and returns the rows of the last statement. */
export function d1Query<T = Record<string, unknown>>(t: Target, sqlText: string): T[] {
  const out = wrangler(['d1', 'execute', 'DB', ...targetArgs(t), '--json', '--command', sqlText]);
  const parsed = JSON.parse(out.slice(out.indexOf('['))) as { results: T[] }[];
  return parsed.at(-1)?.results ?? [];
}

/** An SQL string literal (SQLite quoting: double the single quotes; nothing else is special). */
export const sqlString = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);

const answers = (port: number) =>
  fetch(`http://127.0.0.1:${port}/auth/sign-in`, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );

/** `wrangler dev` could not listen on its port: another process has it. */
export class PortInUseError extends Error {}

/**
 * Starts `wrangler dev` and resolves once it answers on `port`. With piped output it also waits for
 * wrangler's own "Ready on" line (log levels info, log and debug print it), so that another server
 * holding the port is never taken for it; if the port is taken, it rejects with PortInUseError.
 */
export async function startWranglerDev(opts: {
  port: number;
  persistTo?: string;
  vars?: Record<string, string>;
  stdio?: 'inherit' | 'pipe';
  logLevel?: string;
  /** Serve /__scheduled to run the cron handler on demand (tests). */
  testScheduled?: boolean;
}) {
  const args = ['dev', '--port', String(opts.port), '--ip', '127.0.0.1', '--log-level', opts.logLevel ?? 'info'];
  if (opts.testScheduled) args.push('--test-scheduled');
  if (opts.persistTo) args.push('--persist-to', opts.persistTo);
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push('--var', `${k}:${v}`);
  const stdio = opts.stdio ?? 'pipe';
  const child = spawn(WRANGLER, args, { cwd: ROOT, env: wranglerEnv(), stdio, detached: false });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const ready = () => stdio === 'inherit' || output.includes(`Ready on http://127.0.0.1:${opts.port}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      if (/Address already in use/.test(output)) throw new PortInUseError(`port ${opts.port} is in use:\n${output}`);
      throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`);
    }
    if (ready() && (await answers(opts.port))) break;
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`wrangler dev did not start within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          r(undefined);
        }, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    },
  };
}
