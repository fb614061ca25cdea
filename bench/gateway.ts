/**
 * npm run bench:gateway — the gateway's cost on the hot path: an authenticated proxied request
 * (session cookie verified in the isolate, headers stripped and injected, cached assertion) against
 * a plain pass-through worker, both forwarding to the same echo origin through a service binding,
 * in one Miniflare (workerd) instance, in the same run.
 *
 * Options: --seconds S per run (default 8), --concurrency C (default 8), --sequential N (default 300).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { ROOT } from '../scripts/lib/wrangler';
import { applyMigrationsTo, bundle, bundleModules, fmt, GATEHOUSE_OPTIONS, Jar, signedInUser } from './harness';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '8' },
    sequential: { type: 'string', default: '300' },
  },
});
const SECONDS = Number(values.seconds);
const C = Number(values.concurrency);
const SEQ = Number(values.sequential);
const COMMAND = `npm run bench:gateway -- --seconds ${SECONDS} --concurrency ${C} --sequential ${SEQ}`;

const PASSTHROUGH = `export default { fetch(request, env) { const url = new URL(request.url); return env.ORIGIN_ECHO.fetch(new Request('https://origin_echo.internal' + url.pathname + url.search, request)); } };`;

const outdir = bundle('gatehouse');
const mf = new Miniflare(
  convertV4MiniflareOptions({
    workers: [
      {
        name: 'gatehouse',
        modulesRoot: outdir,
        modules: bundleModules(outdir),
        ...GATEHOUSE_OPTIONS,
        serviceBindings: { ORIGIN_ECHO: 'echo' },
        bindings: {
          ...GATEHOUSE_OPTIONS.bindings,
          ROUTES: JSON.stringify([{ match: '/bench/*', origin: 'service:ORIGIN_ECHO', policy: { access: 'authenticated' } }]),
        },
      },
      {
        name: 'passthrough',
        modules: true,
        script: PASSTHROUGH,
        compatibilityDate: '2026-10-20',
        serviceBindings: { ORIGIN_ECHO: 'echo' },
      },
      { name: 'echo', modules: true, scriptPath: join(ROOT, 'demo/echo.js'), compatibilityDate: '2026-10-20' },
    ],
  } as never),
);
await mf.ready;

try {
  const db = await mf.getD1Database('DB', 'gatehouse');
  await applyMigrationsTo(db);
  const gatehouse = await mf.getWorker('gatehouse');
  const passthrough = await mf.getWorker('passthrough');

  // A signed-in user: the session token in the cookie is verified in the isolate with no I/O.
  const jar = new Jar((path, init) => gatehouse.fetch(`https://gatehouse.bench${path}`, init as never));
  await signedInUser(jar, db, 'bench-gateway@example.com');
  const cookie = jar.header;

  // Check once that the gateway really authenticates and injects; then both loops only drain bodies
  // (the gateway's echo is larger — it lists the injected headers — and parsing it would bias the
  // load generator, not the workers).
  const check = (await (await gatehouse.fetch('https://gatehouse.bench/bench/item', { headers: { cookie } })).json()) as {
    headers: Record<string, string>;
  };
  if (!check.headers['x-auth-user-id'] || !check.headers['x-auth-assertion']) throw new Error('the gateway did not inject an identity');
  const viaGateway = async () => {
    const res = await gatehouse.fetch('https://gatehouse.bench/bench/item?id=1', { headers: { cookie, accept: 'application/json' } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`gateway: ${res.status}`);
  };
  const viaPassthrough = async () => {
    const res = await passthrough.fetch('https://passthrough.bench/bench/item?id=1', { headers: { cookie, accept: 'application/json' } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`passthrough: ${res.status}`);
  };

  async function load(run: () => Promise<void>) {
    for (let i = 0; i < 50; i++) await run(); // warm-up
    const latencies: number[] = [];
    const end = performance.now() + SECONDS * 1000;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: C }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          await run();
          latencies.push(performance.now() - t);
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const seq: number[] = [];
    for (let i = 0; i < SEQ; i++) {
      const t = performance.now();
      await run();
      seq.push(performance.now() - t);
    }
    seq.sort((a, b) => a - b);
    return {
      rps: latencies.length / elapsed,
      p50: latencies[Math.floor(latencies.length * 0.5)]!,
      p99: latencies[Math.floor(latencies.length * 0.99)]!,
      seqMedian: seq[Math.floor(seq.length / 2)]!,
    };
  }

  // Interleave to share whatever else the machine is doing.
  const p1 = await load(viaPassthrough);
  const g1 = await load(viaGateway);
  const p2 = await load(viaPassthrough);
  const g2 = await load(viaGateway);
  const best = (a: typeof p1, b: typeof p1) => (a.rps >= b.rps ? a : b);
  const p = best(p1, p2);
  const g = best(g1, g2);
  console.log(`
Gateway hot path vs a plain pass-through worker (same echo origin, service binding), ${cpus().length} cores, Node ${process.version}

  requests/s (${C} in flight, ${SECONDS} s, best of 2)   gateway ${fmt(g.rps)}   pass-through ${fmt(p.rps)}   ratio ${fmt(g.rps / p.rps, 2)}x
  latency p50 / p99 (ms)                          gateway ${fmt(g.p50, 2)} / ${fmt(g.p99, 2)}   pass-through ${fmt(p.p50, 2)} / ${fmt(p.p99, 2)}
  one request at a time, median (ms)              gateway ${fmt(g.seqMedian, 3)}   pass-through ${fmt(p.seqMedian, 3)}   added ${fmt((g.seqMedian - p.seqMedian) * 1000, 0)} µs

Reproduce: ${COMMAND}
`);
} finally {
  await mf.dispose();
}
