import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { ROOT, wrangler } from '../scripts/lib/wrangler';

const BUILD = join(ROOT, 'bench/.build');

/**
 * Bundles a worker entry exactly as `wrangler deploy` would (wasm modules included, wrangler.toml's
 * minify), without uploading; esbuild's metafile lands beside it as bundle-meta.json.
 */
export function bundle(name: string, entry?: string): string {
  const outdir = join(BUILD, name);
  rmSync(outdir, { recursive: true, force: true });
  wrangler(['deploy', '--dry-run', '--outdir', outdir, '--metafile', join(outdir, 'bundle-meta.json'), ...(entry ? [entry] : [])]);
  return outdir;
}

/** The modules of a bundle from `bundle()`: wrangler names the script after its entry (the one .js). */
export function bundleModules(outdir: string) {
  return [
    { type: 'ESModule' as const, path: join(outdir, readdirSync(outdir).find((f) => f.endsWith('.js'))!) },
    ...readdirSync(outdir)
      .filter((f) => f.endsWith('.wasm'))
      .map((f) => ({ type: 'CompiledWasm' as const, path: join(outdir, f) })),
  ];
}

/** Gatehouse's bindings for a benchmark: fresh D1, the session object, a limiter that never trips. */
export const GATEHOUSE_OPTIONS = {
  compatibilityDate: '2026-10-20',
  d1Databases: { DB: 'bench' },
  durableObjects: { USER_SESSIONS: { className: 'UserSessions', useSQLite: true }, HANDOFFS: { className: 'Handoff', useSQLite: true } },
  ratelimits: { CREDENTIAL_RATE_LIMIT: { namespace_id: '1', simple: { limit: 1_000_000, period: 60 as const } } },
  bindings: {
    ENVIRONMENT: 'test',
    PUBLIC_URL: 'https://gatehouse.bench',
    MAIL_PROVIDER: 'dev',
    AUTH_SECRET: 'YmVuY2htYXJrLW9ubHktc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg',
    KEY_ENCRYPTION_KEY: 'YmVuY2htYXJrLW9ubHkta2V5LWVuY3J5cHRpb24tayE',
  } as Record<string, string>,
};

/** Miniflare options for a bundle from `bundle()`, with Gatehouse's bindings or with none. */
export function workerOptions(outdir: string, opts: { gatehouse: boolean }) {
  // Miniflare 5 takes a new options shape; convertV4MiniflareOptions accepts the familiar one.
  return convertV4MiniflareOptions({
    modulesRoot: outdir,
    modules: bundleModules(outdir),
    ...(opts.gatehouse ? GATEHOUSE_OPTIONS : { compatibilityDate: GATEHOUSE_OPTIONS.compatibilityDate }),
  });
}

/**
 * Runs a bundled worker in Miniflare (workerd, no wrangler dev proxy, no logging); with Gatehouse's
 * bindings, its fresh in-memory D1 is migrated from migrations/ before this resolves.
 */
export async function startWorker(outdir: string, opts: { gatehouse: boolean }) {
  const mf = new Miniflare(workerOptions(outdir, opts));
  await mf.ready;
  if (opts.gatehouse) await applyMigrationsTo(await mf.getD1Database('DB'));
  const base = 'https://gatehouse.bench';
  return {
    mf,
    fetch: (path: string, init?: RequestInit) => mf.dispatchFetch(`${base}${path}`, init as never),
    db: () => mf.getD1Database('DB'),
  };
}

/** Applies migrations/ to a Miniflare D1 database (the same SQL production applies). */
export async function applyMigrationsTo(db: { prepare(sql: string): { run(): Promise<unknown> } }): Promise<void> {
  for (const file of readdirSync(join(ROOT, 'migrations'))
    .filter((f) => f.endsWith('.sql'))
    .sort()) {
    const sql = readFileSync(join(ROOT, 'migrations', file), 'utf8');
    for (const statement of sql
      .split('--> statement-breakpoint')
      .map((s) => s.trim())
      .filter(Boolean))
      await db.prepare(statement).run();
  }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

export const fmt = (n: number, digits = 1) => n.toFixed(digits);

export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};

/** A worker's fetch (Miniflare's Response type differs from the DOM's; only the common part is used). */
type Fetch = (path: string, init?: RequestInit) => Promise<unknown>;

/** A cookie jar over a worker's fetch, so a benchmark can act as a browser on the hosted pages. */
export class Jar {
  private readonly cookies = new Map<string, string>();
  constructor(private readonly fetcher: Fetch) {}
  get header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', this.header);
    const res = (await this.fetcher(path, { ...init, headers, redirect: 'manual' })) as Response;
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!;
      const at = pair.indexOf('=');
      if (/max-age=0/i.test(c) || at === pair.length - 1) this.cookies.delete(pair.slice(0, at));
      else this.cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return res;
  }
}

/** Signs a new verified user up through the API (reading the link from the dev mailbox) and in on `jar`. */
export async function signedInUser(
  jar: Jar,
  db: { prepare(sql: string): { bind(...v: unknown[]): { first<T>(): Promise<T | null> } } },
  email: string,
  password = 'benchmark passphrase 2026',
): Promise<void> {
  const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await jar.fetch('/auth/api/sign-up', json({ email, password }));
  const mail = await db.prepare('SELECT text FROM dev_mail WHERE "to" = ? ORDER BY id DESC').bind(email).first<{ text: string }>();
  await jar.fetch('/auth/api/verify-email', json({ token: /token=([A-Za-z0-9_-]{43})/.exec(mail!.text)![1] }));
  const res = await jar.fetch('/auth/api/sign-in', json({ email, password }));
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status}`);
}

/** The process ids of the workerd processes this process started (Miniflare runs each as a child). */
export function workerdChildren(): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (stat.includes('(workerd)') && state !== 'Z' && Number(ppid) === process.pid) pids.push(Number(pid));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** CPU time (ms) a process's live threads have run, from the scheduler's nanosecond counters (Linux). */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`))
    ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  return ns / 1e6;
}
