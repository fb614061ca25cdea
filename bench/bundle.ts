/**
 * npm run bench:bundle — what the worker costs to ship and to start: the upload's gzip size as
 * wrangler reports it, broken down by the largest inputs, and a cold start — a fresh workerd
 * (Miniflare, no wrangler dev proxy, no logging) from launch to its first answer on
 * /.well-known/openid-configuration, its first request against later ones — for the Gatehouse
 * bundle, for a bare one-line worker, and for that worker with Gatehouse's bindings (what D1, the
 * Durable Objects and the static assets add to a start), alternating, in the same run. Then the first
 * common-password check in an isolate (the blocklist is read from the ASSETS binding, checked and
 * decoded then) against later ones.
 *
 * Options: --starts N fresh starts of each worker (default 7), --top N rows of inputs (default 15).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { breakdown, uploadSize } from './bundle-breakdown';
import { applyMigrationsTo, ASSETS_WORKER, bundle, fmt, GATEHOUSE_OPTIONS, median, workerOptions } from './harness';
import { childrenNamed, cpuMs } from './processes';

const { values } = parseArgs({ options: { starts: { type: 'string', default: '7' }, top: { type: 'string', default: '15' } } });
const STARTS = Number(values.starts);
const TOP = Number(values.top);
const COMMAND = `npm run bench:bundle -- --starts ${STARTS} --top ${TOP}`;
const STEADY = 50;
const BUDGET = 400 * 1000;
const BARE = `export default { fetch() { return new Response('ok'); } };`;
const DISCOVERY = 'https://gatehouse.bench/.well-known/openid-configuration';

const kib = (n: number) => fmt(n / 1024);
const outdir = bundle('gatehouse');

// Size.
const upload = uploadSize(outdir);
const parts = breakdown(outdir);
const width = Math.max(...parts.slice(0, TOP).map((p) => p.name.length));
const rows = parts.slice(0, TOP).map((p) => `  ${p.name.padEnd(width)}  ${kib(p.bytes).padStart(7)}  ${kib(p.gzip).padStart(7)}`);
const rest = parts.slice(TOP);
rows.push(
  `  ${`${rest.length} more`.padEnd(width)}  ${kib(rest.reduce((s, p) => s + p.bytes, 0)).padStart(7)}  ${kib(rest.reduce((s, p) => s + p.gzip, 0)).padStart(7)}`,
);

// Cold start.
interface Start {
  /** Launch of workerd to Miniflare's ready (the process up, every script loaded). */
  ready: number;
  /** Launch of workerd to its first response on discovery (process start, script load, first request). */
  firstResponse: number;
  /** The first request alone, once workerd is ready. */
  first: number;
  /** Median of the requests after it. */
  steady: number;
  /** CPU time of the workerd process from launch to the first response (its live threads, /proc). */
  cpu: number;
}

/** What runs: the Gatehouse bundle, or the bare worker with no bindings or with Gatehouse's (its Durable Objects stubbed). */
type Variant = 'gatehouse' | 'bare' | 'bindings';

function options(variant: Variant) {
  if (variant === 'gatehouse') return workerOptions(outdir, { gatehouse: true });
  if (variant === 'bare')
    return convertV4MiniflareOptions({ modules: true, script: BARE, compatibilityDate: GATEHOUSE_OPTIONS.compatibilityDate });
  return convertV4MiniflareOptions({
    workers: [
      {
        ...GATEHOUSE_OPTIONS,
        modules: true,
        script: `${BARE} export class UserSessions {} export class Handoff {} export class RateLimiter {}`,
      },
      ASSETS_WORKER,
    ],
  });
}

/** A fresh workerd for `variant`, once ready, and its process id. */
async function launch(variant: Variant): Promise<{ mf: Miniflare; pid: number }> {
  const running = new Set(childrenNamed('workerd'));
  const mf = new Miniflare(options(variant));
  await mf.ready;
  const pids = childrenNamed('workerd').filter((pid) => !running.has(pid));
  if (pids.length !== 1) throw new Error(`expected one new workerd process, found ${pids.length}`);
  return { mf, pid: pids[0]! };
}

async function coldStart(variant: Variant): Promise<Start> {
  const t0 = performance.now();
  const { mf, pid } = await launch(variant);
  try {
    const t1 = performance.now();
    const get = async () => {
      const res = await mf.dispatchFetch(DISCOVERY);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`discovery: ${res.status}`);
    };
    await get();
    const t2 = performance.now();
    const cpu = cpuMs(pid);
    const later: number[] = [];
    for (let i = 0; i < STEADY; i++) {
      const t = performance.now();
      await get();
      later.push(performance.now() - t);
    }
    return { ready: t1 - t0, firstResponse: t2 - t0, first: t2 - t1, steady: median(later), cpu };
  } finally {
    await mf.dispose();
  }
}

const runs: Record<Variant, Start[]> = { gatehouse: [], bare: [], bindings: [] };
for (let i = 0; i < STARTS; i++)
  for (const variant of ['bare', 'bindings', 'gatehouse'] as const) runs[variant].push(await coldStart(variant));

/**
 * The first common-password check in a fresh isolate (the blocklist is read and decoded on first use) against
 * later ones, in workerd's CPU time: sign-up API calls refused as too common, after one refused as too
 * short, so that the route's own first-call costs are paid before the first check is measured.
 */
async function firstPasswordCheck(): Promise<{ first: number; steady: number }> {
  const { mf, pid } = await launch('gatehouse');
  try {
    await applyMigrationsTo(await mf.getD1Database('DB'));
    const signUp = async (password: string) => {
      const res = await mf.dispatchFetch('https://gatehouse.bench/auth/api/sign-up', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'bench-bundle@example.com', password }),
      });
      const body = await res.text();
      if (res.status !== 400 || !body.includes('weak_password')) throw new Error(`sign-up: ${res.status} ${body}`);
    };
    await signUp('short');
    const c0 = cpuMs(pid);
    await signUp('password1');
    const c1 = cpuMs(pid);
    for (let i = 0; i < STEADY; i++) await signUp('Password1');
    return { first: c1 - c0, steady: (cpuMs(pid) - c1) / STEADY };
  } finally {
    await mf.dispose();
  }
}
const checks: { first: number; steady: number }[] = [];
for (let i = 0; i < STARTS; i++) checks.push(await firstPasswordCheck());
const checkFirst = median(checks.map((c) => c.first));
const checkSteady = median(checks.map((c) => c.steady));

const med = (variant: Variant, key: keyof Start) => median(runs[variant].map((s) => s[key]));
const line = (label: string, key: keyof Start, digits = 1) =>
  `  ${label.padEnd(46)}${(['gatehouse', 'bindings', 'bare'] as const).map((v) => fmt(med(v, key), digits).padStart(10)).join('')}` +
  `${`${fmt(med('gatehouse', key) / med('bare', key), 1)}×`.padStart(8)}`;
const firstOverLater = (v: Variant) => fmt(med(v, 'first') / med(v, 'steady'), 1);

console.log(`
Worker bundle (wrangler deploy --dry-run, as deployed), Node ${process.version}, ${cpus().length} cores

  upload ${kib(upload.bytes)} KiB, gzip ${kib(upload.gzip)} KiB (${upload.gzip} bytes; budget ${BUDGET} bytes: ${upload.gzip <= BUDGET ? 'within' : 'OVER'})

  ${'largest inputs'.padEnd(width)}  ${'KiB'.padStart(7)}  ${'gzip'.padStart(7)}   (gzip: each part's slices of the script alone)
${rows.join('\n')}

Cold start, median of ${STARTS} fresh workerd starts each (alternating)
  ${''.padEnd(46)}${'Gatehouse'.padStart(10)}${'bindings'.padStart(10)}${'bare'.padStart(10)}${'ratio'.padStart(8)}
${line('launch → ready (ms)', 'ready')}
${line('launch → first response on discovery (ms)', 'firstResponse')}
${line('  workerd CPU time until then (ms)', 'cpu')}
${line('first request once ready (ms)', 'first', 2)}
${line(`later requests, median of ${STEADY} (ms)`, 'steady', 2)}
  first request ÷ later: Gatehouse ${firstOverLater('gatehouse')}×, bindings ${firstOverLater('bindings')}×, bare ${firstOverLater('bare')}×
  (bindings: the bare worker with Gatehouse's D1, Durable Objects, rate limiter, assets and vars; ratio: Gatehouse ÷ bare)

First common-password check in an isolate (sign-up refused as too common), workerd CPU ms, median of ${STARTS}
  first ${fmt(checkFirst, 2)}, later ${fmt(checkSteady, 2)} (mean of ${STEADY}): the blocklist's read, digest, decode and first use ≈ ${fmt(checkFirst - checkSteady, 2)} ms

Reproduce: ${COMMAND}
`);
