/**
 * npm run bench:gateway — the gateway's CPU cost on the hot path: an authenticated proxied request
 * (session cookie verified in the isolate, headers stripped and injected, cached assertion) against
 * a plain pass-through worker. Each runs in a workerd process of its own (two Miniflare instances),
 * with its own echo origin behind a service binding, on its own socket, driven by autocannon over
 * loopback; the measure is each workerd process's CPU time (/proc) per request, alternating the
 * two for a few rounds. Requests per second are secondary: on a small machine they swing more than
 * the effect.
 *
 * Options: --requests N per run (default 20000), --connections C (default 16), --rounds R (default 3),
 * --socket port|direct (default port): Miniflare's `port` (through its entry worker, on both sides)
 * or each worker's own workerd socket.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../scripts/lib/wrangler';
import {
  benchArgs,
  bundle,
  COMPATIBILITY_DATE,
  fmt,
  GATEHOUSE_HOST_HEADERS,
  Jar,
  median,
  parseSocket,
  socketOf,
  signedInUser,
  startGatehouse,
  startMiniflare,
} from './harness';
import { drive, type Measured, send } from './load';
import { runBounded } from './processes';

const { args, command: COMMAND } = benchArgs('bench:gateway', { requests: 20000, connections: 16, rounds: 3, socket: 'port' });
const { requests: N, connections: C, rounds: ROUNDS } = args;
const SOCKET = parseSocket(args.socket);

const ECHO = { name: 'echo', modules: true, scriptPath: join(ROOT, 'demo/echo.js'), compatibilityDate: COMPATIBILITY_DATE };
const PASSTHROUGH = {
  name: 'passthrough',
  modules: true,
  compatibilityDate: COMPATIBILITY_DATE,
  serviceBindings: { ORIGIN_ECHO: 'echo' },
  script: `export default { fetch(request, env) { const url = new URL(request.url); return env.ORIGIN_ECHO.fetch(new Request('https://origin_echo.internal' + url.pathname + url.search, request)); } };`,
};
const PATH = '/bench/item?id=1';

// Bound: start-up, sign-in and checks, then 2 × ROUNDS runs (plus warm-ups) at no less than 250 requests/s.
await runBounded(180 + (2 * ROUNDS + 1) * (N / 250), async () => {
  const gateway = await startGatehouse(
    bundle('gatehouse'),
    {
      serviceBindings: { ORIGIN_ECHO: 'echo' },
      bindings: {
        ROUTES: JSON.stringify([{ match: '/bench/*', origin: 'service:ORIGIN_ECHO', policy: { access: 'authenticated' } }]),
        // The whole run on one fresh session token: the hot path verifies it in the isolate, no refresh.
        SESSION_TOKEN_TTL: '3600',
      },
    },
    [ECHO],
  );
  const passthrough = await startMiniflare([PASSTHROUGH, ECHO]);
  const sides = { gateway: socketOf(gateway, 'gatehouse', SOCKET), passthrough: socketOf(passthrough, 'passthrough', SOCKET) };

  // A signed-in user; both sides get the same request bytes (the pass-through forwards the cookie too).
  const jar = new Jar(gateway.fetch);
  await signedInUser(jar, await gateway.db(), 'bench-gateway@example.com');
  const request = { path: PATH, headers: { ...GATEHOUSE_HOST_HEADERS, cookie: jar.header, accept: 'application/json' } };

  // Check, on the very sockets, that the gateway authenticates and injects, and asks nothing of the
  // session object (no refreshed cookie); then the runs only count 2xx answers.
  const viaGateway = await send(sides.gateway.url, PATH, request);
  const echoed = JSON.parse(viaGateway.body) as { headers: Record<string, string> };
  if (viaGateway.status !== 200 || !echoed.headers['x-auth-user-id'] || !echoed.headers['x-auth-assertion'])
    throw new Error(`the gateway did not inject an identity: ${viaGateway.status} ${viaGateway.body.slice(0, 300)}`);
  if (viaGateway.headers['set-cookie']) throw new Error('the gateway refreshed the session cookie: the run would not be the hot path');
  if ((await send(sides.passthrough.url, PATH, request)).status !== 200) throw new Error('the pass-through worker failed');

  const run = (side: 'gateway' | 'passthrough', amount: number, label: string) =>
    drive(sides[side], request, { connections: C, amount }, label);
  await run('passthrough', Math.min(N, 2000), 'pass-through warm-up');
  await run('gateway', Math.min(N, 2000), 'gateway warm-up');
  const rounds: { g: Measured; p: Measured }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const p = await run('passthrough', N, 'pass-through');
    const g = await run('gateway', N, 'gateway');
    rounds.push({ g, p });
  }

  const diff = median(rounds.map((r) => r.g.cpuUs! - r.p.cpuUs!));
  const col = (s: string | number, w = 14) => String(s).padStart(w);
  console.log(`
Gateway hot path vs a plain pass-through worker: workerd CPU per request (/proc), two workerd processes, each with its own echo origin
${N} requests per run on ${SOCKET === 'port' ? "Miniflare's port" : "each worker's own socket"}, ${C} connections, autocannon over loopback, ${cpus().length} cores, Node ${process.version}

  round   CPU µs/request: gateway   pass-through   difference      req/s: gateway   pass-through   ratio
${rounds
  .map(
    (r, i) =>
      `  ${col(i + 1, 5)} ${col(fmt(r.g.cpuUs!, 0), 25)} ${col(fmt(r.p.cpuUs!, 0))} ${col(fmt(r.g.cpuUs! - r.p.cpuUs!, 0), 12)} ${col(fmt(r.g.rps), 24)} ${col(fmt(r.p.rps))} ${col(fmt(r.g.rps / r.p.rps, 2), 7)}x`,
  )
  .join('\n')}

  gateway CPU per request minus the pass-through's, median of ${ROUNDS}: ${fmt(diff, 0)} µs (goal ≤ 300 µs)

Reproduce: ${COMMAND}
`);
});
