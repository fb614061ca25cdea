import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { convertV4MiniflareOptions, Miniflare, type V4WorkerOptions, type V4WorkerOptionsShape } from 'miniflare';
import { ASSETS_DIRECTORY } from '../src/auth/common-passwords';
import { ROOT, wrangler } from '../scripts/lib/wrangler';
import { childrenNamed, track } from './processes';

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

export const COMPATIBILITY_DATE = '2026-10-20';
export const PUBLIC_URL = 'https://gatehouse.bench';

/**
 * Gatehouse's static assets (wrangler.toml `[assets]`: the common-password list) in a worker of
 * their own, served by Miniflare's own asset router and asset worker. Gatehouse reaches them only
 * through its ASSETS binding: as with `run_worker_first` in production, no request to Gatehouse
 * passes through the local asset router (which would add its isolates' CPU to every measured request).
 */
export const ASSETS_WORKER: WorkerOptions = {
  name: 'gatehouse-assets',
  modules: true,
  script: `export default { fetch() { return new Response(null, { status: 404 }); } };`,
  compatibilityDate: COMPATIBILITY_DATE,
  assets: { directory: join(ROOT, ASSETS_DIRECTORY) },
};

/** Gatehouse's bindings for a benchmark: fresh D1, the session object, a limiter that never trips, its assets. */
export const GATEHOUSE_OPTIONS = {
  compatibilityDate: COMPATIBILITY_DATE,
  serviceBindings: { ASSETS: ASSETS_WORKER.name! } as Record<string, string>,
  d1Databases: { DB: 'bench' },
  durableObjects: {
    USER_SESSIONS: { className: 'UserSessions', useSQLite: true },
    HANDOFFS: { className: 'Handoff', useSQLite: true },
    RATE_LIMITER: { className: 'RateLimiter', useSQLite: true },
  },
  ratelimits: { CREDENTIAL_RATE_LIMIT: { namespace_id: '1', simple: { limit: 1_000_000, period: 60 as const } } },
  // The webhook deliveries' queue (no consumer here: the benchmarks make no endpoint).
  queueProducers: { WEBHOOKS: { queueName: 'gatehouse-webhooks' } },
  bindings: {
    ENVIRONMENT: 'test',
    PUBLIC_URL,
    MAIL_PROVIDER: 'dev',
    AUTH_SECRET: 'YmVuY2htYXJrLW9ubHktc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg',
    KEY_ENCRYPTION_KEY: 'YmVuY2htYXJrLW9ubHkta2V5LWVuY3J5cHRpb24tayE',
  } as Record<string, string>,
};

/**
 * What a TLS-terminating front end sends along: Miniflare's entry worker rebuilds the request URL
 * (https://gatehouse.bench/…) from them, so a request on the socket reaches Gatehouse's own host.
 */
export const GATEHOUSE_HOST_HEADERS = { host: new URL(PUBLIC_URL).host, 'x-forwarded-proto': 'https' };

// ── Miniflare on its own socket ────────────────────────────────────────────────────────────────

export type WorkerOptions = V4WorkerOptions;
/** A worker's options other than its code (bindings, routes, …). */
export type WorkerSettings = Partial<V4WorkerOptionsShape>;

export interface Instance {
  mf: Miniflare;
  /**
   * workerd's own socket (Miniflare's `port`), e.g. http://127.0.0.1:40125, no trailing slash.
   * Requests on it pass through Miniflare's entry worker (a router isolate) first.
   */
  url: string;
  /** Each worker's own workerd socket by name (unsafeDirectSockets): straight to the worker, no router. */
  direct: Record<string, string>;
  /** workerd's process id, for its CPU time. */
  pid: number;
  /** Setup requests (not measured) through Miniflare's dispatchFetch, as PUBLIC_URL. */
  fetch: (path: string, init?: RequestInit) => Promise<Response>;
  /** The first worker's D1 database `DB`. */
  db: () => ReturnType<Miniflare['getD1Database']>;
  stop: () => Promise<void>;
}

/**
 * Starts workers in one workerd through Miniflare, listening on 127.0.0.1 on a port of its own,
 * with request logging off. The first worker gets every request no other worker's `routes` match.
 * Start one at a time: workerd's pid is the child process that appeared meanwhile.
 */
export async function startMiniflare(workers: WorkerOptions[], opts: { persistTo?: string } = {}): Promise<Instance> {
  const before = new Set(childrenNamed('workerd'));
  // Miniflare 5 takes a new options shape; convertV4MiniflareOptions accepts the familiar one
  // (host and port are passed through as they are).
  const withSockets = workers.map((w) => ({ unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }], ...w }));
  const mf = new Miniflare({
    ...convertV4MiniflareOptions({ host: '127.0.0.1', port: 0, logRequests: false, workers: withSockets }),
    // Miniflare 5: D1 and Durable Objects in files under this directory (a benchmark that seeds them directly).
    ...(opts.persistTo ? { resourcePersistencePath: opts.persistTo } : {}),
  } as never);
  let url: string;
  let pid: number;
  const direct: Record<string, string> = {};
  try {
    url = (await mf.ready).origin;
    for (const { name } of workers) if (name) direct[name] = (await mf.unsafeGetDirectURL(name)).origin;
    const pids = childrenNamed('workerd').filter((p) => !before.has(p));
    if (pids.length !== 1) throw new Error(`expected one new workerd process, found ${pids.length}`);
    pid = pids[0]!;
  } catch (e) {
    await mf.dispose();
    throw e;
  }

  return {
    mf,
    url,
    direct,
    pid,
    fetch: (path, init) => mf.dispatchFetch(`${PUBLIC_URL}${path}`, init as never) as unknown as Promise<Response>,
    db: () => mf.getD1Database('DB', workers[0]!.name),
    stop: track(pid, () => mf.dispose()),
  };
}

/** Miniflare options for a bundle from `bundle()`, with Gatehouse's bindings (and its assets' worker) or with none. */
export function workerOptions(outdir: string, opts: { gatehouse: boolean }) {
  // Miniflare 5 takes a new options shape; convertV4MiniflareOptions accepts the familiar one.
  const worker = { modulesRoot: outdir, modules: bundleModules(outdir) };
  return opts.gatehouse
    ? convertV4MiniflareOptions({ workers: [{ name: 'gatehouse', ...worker, ...GATEHOUSE_OPTIONS }, ASSETS_WORKER] })
    : convertV4MiniflareOptions({ ...worker, compatibilityDate: GATEHOUSE_OPTIONS.compatibilityDate });
}

/** Where load goes: Miniflare's `port` (through its entry worker) or a worker's own workerd socket. */
export type Socket = 'port' | 'direct';
export function parseSocket(value: string): Socket {
  if (value !== 'port' && value !== 'direct') throw new Error(`--socket is port or direct, not ${value}`);
  return value;
}

/** The socket to load `worker` through, and the workerd process behind it. */
export const socketOf = (instance: Instance, worker: string, socket: Socket) => ({
  url: socket === 'port' ? instance.url : instance.direct[worker]!,
  pid: instance.pid,
});

/** Gatehouse's bundle as a Miniflare worker named `gatehouse`, with `extra` bindings on top of the benchmark's. */
export function gatehouseWorker(outdir: string, extra: WorkerSettings = {}): WorkerOptions {
  return {
    name: 'gatehouse',
    modulesRoot: outdir,
    modules: bundleModules(outdir),
    ...GATEHOUSE_OPTIONS,
    ...extra,
    bindings: { ...GATEHOUSE_OPTIONS.bindings, ...extra.bindings },
    serviceBindings: { ...GATEHOUSE_OPTIONS.serviceBindings, ...(extra.serviceBindings as Record<string, string> | undefined) },
  };
}

/** Gatehouse (first), its assets' worker and `others` in one workerd, D1 migrated. */
export async function startGatehouse(outdir: string, extra?: WorkerSettings, others: WorkerOptions[] = []): Promise<Instance> {
  const instance = await startMiniflare([gatehouseWorker(outdir, extra), ASSETS_WORKER, ...others]);
  try {
    await applyMigrationsTo(await instance.db());
  } catch (e) {
    await instance.stop();
    throw e;
  }
  return instance;
}

/** A bundle on its own (Gatehouse's bindings with `gatehouse`), for benchmarks driven through dispatchFetch. */
export function startWorker(outdir: string, opts: { gatehouse: boolean }): Promise<Instance> {
  return opts.gatehouse
    ? startGatehouse(outdir)
    : startMiniflare([{ name: 'worker', modulesRoot: outdir, modules: bundleModules(outdir), compatibilityDate: COMPATIBILITY_DATE }]);
}

/**
 * A benchmark's `--name value` options, numbers where the default is one, and the command that
 * reproduces the run.
 */
export function benchArgs<const D extends Record<string, string | number>>(script: string, defaults: D) {
  const names = Object.keys(defaults);
  const { values } = parseArgs({ options: Object.fromEntries(names.map((k) => [k, { type: 'string', default: String(defaults[k]) }])) });
  const raw = values as unknown as Record<string, string>;
  const args = Object.fromEntries(names.map((k) => [k, typeof defaults[k] === 'number' ? Number(raw[k]) : raw[k]]));
  return {
    args: args as { [K in keyof D]: D[K] extends number ? number : string },
    command: `npm run ${script} -- ${names.map((k) => `--${k} ${raw[k]}`).join(' ')}`,
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
