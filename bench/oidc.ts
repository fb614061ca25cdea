/**
 * npm run bench:oidc — the token endpoint, Gatehouse (its real bundle in workerd, on workerd's own
 * socket through Miniflare) against panva's oidc-provider (Node, its own process) configured
 * equivalently; discovery and JWKS against a bare worker in the same workerd; all driven by one
 * load generator (autocannon, in this process) over loopback with the same connections, duration,
 * client authentication and bodies. Also the in-isolate verify cost of an access token, ES256
 * against RS256.
 *
 * Options: --seconds S per measurement (default 10), --connections C (default 16), --verifies N (default 300),
 * --socket direct|port (default direct): each worker's own workerd socket (unsafeDirectSockets, as
 * `workerd serve` with a socket on the service), or Miniflare's `port`, whose requests pass through
 * Miniflare's entry worker (a router isolate in the same workerd) — a cost on Gatehouse's side only,
 * which the run measures on a bare worker. --id-token-alg RS256|ES256 (default RS256): the ID tokens
 * both sides sign on a refresh.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import type autocannon from 'autocannon';
import { apiResources, clientResources, oauthClients } from '../src/db/schema';
import { buildResource } from '../src/oauth/api-resources';
import { buildClient } from '../src/oauth/client-registration';
import { insertSql } from '../scripts/lib/sql';
import { s256 } from '../src/lib/pkce';
import { ROOT } from '../scripts/lib/wrangler';
import {
  benchArgs,
  bundle,
  COMPATIBILITY_DATE,
  fmt,
  GATEHOUSE_HOST_HEADERS,
  type Instance,
  Jar,
  median,
  parseSocket,
  PUBLIC_URL,
  signedInUser,
  socketOf,
  startGatehouse,
  startWorker,
} from './harness';
import { drive, type Measured, send } from './load';
import { pinTo, track, runBounded } from './processes';

const { args, command: COMMAND } = benchArgs('bench:oidc', {
  seconds: 10,
  connections: 16,
  verifies: 300,
  socket: 'direct',
  'id-token-alg': 'RS256',
});
const { seconds: SECONDS, connections: C, verifies: N } = args;
const SOCKET = parseSocket(args.socket);
const ID_TOKEN_ALG = args['id-token-alg'];
if (ID_TOKEN_ALG !== 'RS256' && ID_TOKEN_ALG !== 'ES256') throw new Error('--id-token-alg must be RS256 or ES256');
const SECRET = 'bench-client-secret-bench-client-secret';
const FORM = { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa(`bench:${SECRET}`)}` };
const REDIRECT_URI = 'https://app.bench/callback';

/** The API both sides issue client_credentials tokens for, and its one scope. */
const API = 'https://api.bench';

/** The client_credentials request both sides get (client_secret_basic, an ES256 JWT access token for the API). */
const CLIENT_CREDENTIALS = `grant_type=client_credentials&scope=api&resource=${encodeURIComponent(API)}`;

/**
 * Gatehouse's confidential client, registered as the CLIs do: ES256 JWT access tokens, ID tokens
 * signed with ID_TOKEN_ALG (like oidc-provider's), the API registered and granted with its scope.
 */
async function gatehouseClient(gatehouse: Instance): Promise<void> {
  const now = Date.now();
  const built = await buildClient(
    {
      name: 'Bench',
      clientId: 'bench',
      clientSecret: SECRET,
      redirectUris: [REDIRECT_URI],
      firstParty: true,
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      scopes: ['openid', 'profile', 'offline_access'],
      idTokenAlg: ID_TOKEN_ALG as 'RS256' | 'ES256',
      resources: [{ resource: API, scopes: ['api'] }],
    },
    now,
  );
  const db = await gatehouse.db();
  for (const statement of [
    insertSql(apiResources, buildResource({ identifier: API, name: 'Bench API', scopes: [{ name: 'api', description: null }] }, now)),
    insertSql(oauthClients, built.row),
    ...built.grants.map((g) => insertSql(clientResources, g)),
  ])
    await db.prepare(statement).run();
}

/** One refresh token per user, each through the real code + PKCE flow (`openid offline_access`). */
async function gatehouseRefreshTokens(gatehouse: Instance, count: number): Promise<string[]> {
  const db = await gatehouse.db();
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const jar = new Jar(gatehouse.fetch);
    await signedInUser(jar, db, `bench-oidc-${i}@example.com`);
    const verifier = `bench-verifier-${i}-${'x'.repeat(40)}`;
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: 'bench',
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access',
      code_challenge: await s256(verifier),
      code_challenge_method: 'S256',
      state: 's',
    });
    const auth = await jar.fetch(`/auth/authorize?${q}`);
    const code = new URL(auth.headers.get('location')!).searchParams.get('code')!;
    const res = await gatehouse.fetch('/auth/token', {
      method: 'POST',
      headers: FORM,
      body: `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_verifier=${verifier}`,
    });
    tokens.push(((await res.json()) as { refresh_token: string }).refresh_token);
  }
  return tokens;
}

/** oidc-provider in its own Node process on a loopback port, with `count` refresh tokens minted. */
async function startOidcProvider(count: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/oidc-provider-server.ts', String(count), ID_TOKEN_ALG], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = track(child.pid!, async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d)); // its start-up warnings; shown if it fails
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`oidc-provider exited ${code}:\n${stderr}`)));
    setTimeout(() => reject(new Error(`oidc-provider did not start:\n${stderr}`)), 30_000).unref();
  });
  const { issuer, refreshTokens } = JSON.parse(line) as { issuer: string; refreshTokens: string[] };
  return { url: issuer, pid: child.pid!, refreshTokens, stop };
}

/** A side of the token-endpoint comparison: a socket, the process behind it, its token path. */
interface TokenServer {
  url: string;
  pid: number;
  /** Request headers beyond the client's (Gatehouse: the Host it serves). */
  headers: Record<string, string>;
  tokenPath: string;
  refreshTokens: string[];
}

/** Problems with a refresh response, or null: a rotation answers 200 with a new refresh token and an ID token. */
function refreshProblem(status: number, body: string, previous: string): string | null {
  let json: { refresh_token?: string; id_token?: string; access_token?: string } = {};
  try {
    json = JSON.parse(body);
  } catch {}
  if (status !== 200) return `status ${status}: ${body.slice(0, 200)}`;
  if (!json.refresh_token || json.refresh_token === previous) return 'no new refresh token';
  if (!json.id_token || !json.access_token) return 'no ID token or access token';
  return null;
}

/**
 * Each connection keeps its own rotating chain: connection i starts from pool[i] and sends the
 * refresh token from its previous answer. (autocannon's per-connection `context` would not carry
 * it: the context is reset each time a one-request list starts over, i.e. on every request.)
 */
function refreshChains(side: TokenServer, problems: string[]): Pick<autocannon.Options, 'setupClient'> {
  if (side.refreshTokens.length < C) throw new Error('fewer refresh tokens than connections');
  let next = 0;
  return {
    setupClient(client) {
      const slot = next++ % C; // each run (warm-up, measured) sets up C connections afresh
      client.setRequests([
        {
          method: 'POST',
          path: side.tokenPath,
          headers: { ...side.headers, ...FORM },
          setupRequest: (req) => ({
            ...req,
            body: `grant_type=refresh_token&refresh_token=${encodeURIComponent(side.refreshTokens[slot]!)}`,
          }),
          onResponse: (status, body) => {
            const sent = side.refreshTokens[slot]!;
            const problem = refreshProblem(status, body, sent);
            if (problem) problems.push(problem);
            else side.refreshTokens[slot] = (JSON.parse(body) as { refresh_token: string }).refresh_token;
          },
        },
      ]);
    },
  };
}

/** Warm-up (a fixed count, so every chain stays whole), then SECONDS of load. */
async function measure(target: { url: string; pid: number }, request: Parameters<typeof drive>[1], label: string): Promise<Measured> {
  await drive(target, request, { connections: C, amount: 20 * C }, `${label} (warm-up)`);
  return drive(target, request, { connections: C, duration: SECONDS }, label);
}

async function clientCredentials(side: TokenServer): Promise<Measured> {
  const request = { method: 'POST' as const, path: side.tokenPath, headers: { ...side.headers, ...FORM }, body: CLIENT_CREDENTIALS };
  const check = await send(side.url, side.tokenPath, request);
  const token = (JSON.parse(check.body) as { access_token?: string }).access_token;
  const header = token ? (JSON.parse(atob(token.split('.')[0]!)) as { alg?: string; typ?: string }) : {};
  if (check.status !== 200 || header.alg !== 'ES256' || header.typ !== 'at+jwt')
    throw new Error(`client_credentials at ${side.url}: ${check.status} ${check.body.slice(0, 200)}`);
  return measure(side, request, `client_credentials at ${side.url}`);
}

async function refreshGrants(side: TokenServer): Promise<Measured> {
  const problems: string[] = [];
  const request = { path: side.tokenPath, ...refreshChains(side, problems) };
  const label = `refresh_token at ${side.url}`;
  const result = await measure(side, request, label);
  if (problems.length) throw new Error(`${label}: ${problems.length} bad answers, e.g. ${problems[0]}`);
  return result;
}

/**
 * A worker that answers with Gatehouse's own discovery and JWKS documents (read once through a
 * service binding, then serialised per request like any JSON response), with the same cache headers.
 */
const BARE_WORKER = {
  name: 'bare',
  routes: ['bare.bench/*'],
  compatibilityDate: COMPATIBILITY_DATE,
  modules: true,
  serviceBindings: { GATEHOUSE: 'gatehouse' },
  script: `const docs = {};
export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    docs[path] ??= await env.GATEHOUSE.fetch('${PUBLIC_URL}' + path).then(async (r) => ({ json: await r.json(), cache: r.headers.get('cache-control') }));
    return Response.json(docs[path].json, { headers: { 'cache-control': docs[path].cache, 'access-control-allow-origin': '*' } });
  },
};`,
};

async function verifyCost() {
  const worker = await startWorker(bundle('verify', 'bench/workers/verify.ts'), { gatehouse: true });
  try {
    const time = async (alg: string, n: number) => {
      const times: number[] = [];
      for (let i = 0; i < 15; i++) {
        const t = performance.now();
        await (await worker.fetch(`/?alg=${alg}&n=${n}`)).text();
        if (i >= 3) times.push(performance.now() - t);
      }
      return median(times);
    };
    const result: Record<string, number> = {};
    for (const alg of ['ES256', 'RS256']) result[alg] = ((await time(alg, N)) - (await time(alg, 0))) / N;
    return result as { ES256: number; RS256: number };
  } finally {
    await worker.stop();
  }
}

// Bound: start-up and setup, ten measured runs with their warm-ups, the verify benchmark.
await runBounded(240 + 10 * (SECONDS + 10), async () => {
  const gatehouse = await startGatehouse(bundle('gatehouse'), {}, [BARE_WORKER]);
  // The load generator (this process) on one core, each server under test on the other.
  const pinned = cpus().length >= 2;
  if (pinned) {
    pinTo(process.pid, 0);
    pinTo(gatehouse.pid, 1);
  }
  await gatehouseClient(gatehouse);
  const on = (worker: string) => socketOf(gatehouse, worker, SOCKET);
  const gh: TokenServer = {
    ...on('gatehouse'),
    headers: GATEHOUSE_HOST_HEADERS,
    tokenPath: '/auth/token',
    refreshTokens: await gatehouseRefreshTokens(gatehouse, C),
  };
  const peer = await startOidcProvider(C);
  if (pinned) pinTo(peer.pid, 1);
  const op: TokenServer = { ...peer, headers: {}, tokenPath: '/token' };

  const bareHeaders = { ...GATEHOUSE_HOST_HEADERS, host: 'bare.bench' };
  const documents = [];
  for (const [name, path] of [
    ['discovery', '/.well-known/openid-configuration'],
    ['JWKS', '/.well-known/jwks.json'],
  ] as const) {
    const g = await measure(on('gatehouse'), { path, headers: GATEHOUSE_HOST_HEADERS }, `${name} at Gatehouse`);
    const b = await measure(on('bare'), { path, headers: bareHeaders }, `${name} at the bare worker`);
    documents.push({ name, g, b });
  }
  // What Miniflare's entry worker adds per request: the bare worker's discovery on both sockets.
  const discovery = { path: '/.well-known/openid-configuration', headers: bareHeaders };
  const router = {
    port: await measure(gatehouse, discovery, 'the bare worker on the port'),
    direct: await measure(socketOf(gatehouse, 'bare', 'direct'), discovery, 'the bare worker on its own socket'),
  };
  const cc = { g: await clientCredentials(gh), p: await clientCredentials(op) };
  const refresh = { g: await refreshGrants(gh), p: await refreshGrants(op) };
  await peer.stop();
  await gatehouse.stop();
  const v = await verifyCost();

  const us = (m: Measured) => fmt(m.cpuUs!, 0);
  const row = (label: string, a: Measured, b: Measured, goal: string) =>
    `  ${label.padEnd(44)} ${fmt(a.rps).padStart(8)} ${fmt(b.rps).padStart(8)}   ${fmt(a.rps / b.rps, 2)}x (goal ${goal})   CPU µs/request ${us(a)} vs ${us(b)}   p99 ms ${a.p99} vs ${b.p99}`;
  console.log(`
Token endpoint and discovery on workerd's own socket (${SOCKET === 'port' ? "Miniflare's port, through its entry worker" : "each worker's own socket"}), autocannon over loopback (${C} connections, ${SECONDS} s each), ${cpus().length} cores${pinned ? ' (autocannon on CPU 0, the server under test on CPU 1)' : ''}, Node ${process.version}

  requests/s                                   Gatehouse     bare   ratio
${documents.map((d) => row(d.name, d.g, d.b, '≥ 0.9x')).join('\n')}
                                               Gatehouse oidc-provider
${row('client_credentials grants/s', cc.g, cc.p, '≥ 1.0x')}
${row(`refresh_token grants/s (rotation, ${ID_TOKEN_ALG} ID token)`, refresh.g, refresh.p, '≥ 0.7x')}

  Miniflare's entry worker: the bare worker's discovery costs ${us(router.port)} µs CPU/request on the port, ${us(router.direct)} µs on its own socket (${fmt(router.port.rps)} vs ${fmt(router.direct.rps)} requests/s)

  access token verify in the isolate (µs, ${N} per request)   ES256 ${fmt(v.ES256 * 1000)}   RS256 ${fmt(v.RS256 * 1000)}   ratio ${fmt(v.ES256 / v.RS256, 2)}x

CPU µs/request: the serving process's own CPU time (/proc) over the measured run, per 2xx answer.
Reproduce: ${COMMAND}
`);
});
