/**
 * npm run bench:oidc — token endpoint throughput, Gatehouse (its real bundle through Miniflare)
 * against panva's oidc-provider (Node, its own process) configured equivalently, in one run; and
 * the in-isolate verify cost of an access token, ES256 against RS256.
 *
 * Options: --seconds S per measurement (default 6), --concurrency C (default 4), --verifies N (default 300).
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { buildClient } from '../src/oauth/client-registration';
import { s256 } from '../src/lib/pkce';
import { ROOT } from '../scripts/lib/wrangler';
import { bundle, fmt, Jar, median, signedInUser, startWorker } from './harness';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    concurrency: { type: 'string', default: '4' },
    verifies: { type: 'string', default: '300' },
  },
});
const SECONDS = Number(values.seconds);
const C = Number(values.concurrency);
const N = Number(values.verifies);
const COMMAND = `npm run bench:oidc -- --seconds ${SECONDS} --concurrency ${C} --verifies ${N}`;
const SECRET = 'bench-client-secret-bench-client-secret';
const BASIC = `Basic ${btoa(`bench:${SECRET}`)}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded', authorization: BASIC };

type Post = (body: string) => Promise<{ status: number; json(): Promise<unknown> }>;

/** Runs `step` in C loops for SECONDS; each loop carries its own state (a refresh-token chain). */
async function rate<S>(states: S[], step: (s: S) => Promise<S>): Promise<number> {
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    states.map(async (s) => {
      let state = s;
      while (performance.now() < end) {
        state = await step(state);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

async function grantRates(post: Post, refreshTokens: string[], discovery: () => Promise<{ status: number }>) {
  // The floor of each harness: a discovery document (no storage, no signing).
  const floor = await rate(
    Array.from({ length: C }, () => null),
    async () => {
      if ((await discovery()).status !== 200) throw new Error('discovery failed');
      return null;
    },
  );
  const cc = await rate(
    Array.from({ length: C }, () => null),
    async () => {
      const res = await post('grant_type=client_credentials&scope=api');
      if (res.status !== 200) throw new Error(`client_credentials: ${res.status} ${JSON.stringify(await res.json())}`);
      return null;
    },
  );
  const refresh = await rate(refreshTokens, async (token) => {
    const res = await post(`grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}`);
    const body = (await res.json()) as { refresh_token?: string };
    if (res.status !== 200 || !body.refresh_token) throw new Error(`refresh_token: ${res.status} ${JSON.stringify(body)}`);
    return body.refresh_token;
  });
  return { cc, refresh, floor };
}

async function gatehouse() {
  const worker = await startWorker(bundle('gatehouse'), { gatehouse: true });
  try {
    const db = await worker.db();
    const { row } = await buildClient(
      {
        name: 'Bench',
        clientId: 'bench',
        clientSecret: SECRET,
        redirectUris: ['https://app.bench/callback'],
        firstParty: true,
        grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
        scopes: ['openid', 'profile', 'offline_access'],
      },
      Date.now(),
    );
    await db
      .prepare(
        'INSERT INTO oauth_clients (client_id, name, secret_hash, token_endpoint_auth_method, redirect_uris, post_logout_redirect_uris, grant_types, scopes, first_party, access_token_format, id_token_signed_response_alg, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)',
      )
      .bind(
        row.clientId,
        row.name,
        row.secretHash,
        row.tokenEndpointAuthMethod,
        row.redirectUris,
        row.postLogoutRedirectUris,
        row.grantTypes,
        row.scopes,
        'jwt',
        'RS256',
        row.createdAt,
      )
      .run();

    const jar = new Jar(worker.fetch);
    await signedInUser(jar, db, 'bench-oidc@example.com');
    const cookie = jar.header;

    const refreshTokens: string[] = [];
    for (let i = 0; i < C; i++) {
      const verifier = `bench-verifier-${i}-${'x'.repeat(40)}`;
      const q = new URLSearchParams({
        response_type: 'code',
        client_id: 'bench',
        redirect_uri: 'https://app.bench/callback',
        scope: 'openid offline_access',
        code_challenge: await s256(verifier),
        code_challenge_method: 'S256',
        state: 's',
      });
      const auth = await worker.fetch(`/auth/authorize?${q}`, { headers: { cookie }, redirect: 'manual' } as RequestInit);
      const code = new URL(auth.headers.get('location')!).searchParams.get('code')!;
      const res = await worker.fetch('/auth/token', {
        method: 'POST',
        headers: FORM,
        body: `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent('https://app.bench/callback')}&code_verifier=${verifier}`,
      });
      refreshTokens.push(((await res.json()) as { refresh_token: string }).refresh_token);
    }
    const post: Post = (body) => worker.fetch('/auth/token', { method: 'POST', headers: FORM, body });
    // Gatehouse has no "api" resource scope: client_credentials asks for its allowed "profile".
    const postCc: Post = (body) => post(body.replace('scope=api', 'scope=profile'));
    return await grantRates(
      (b) => (b.startsWith('grant_type=client_credentials') ? postCc(b) : post(b)),
      refreshTokens,
      async () => {
        const res = await worker.fetch('/.well-known/openid-configuration');
        await res.arrayBuffer();
        return res;
      },
    );
  } finally {
    await worker.mf.dispose();
  }
}

async function oidcProvider() {
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const child = spawn(`${ROOT}node_modules/.bin/tsx`, ['bench/oidc-provider-server.ts', String(port), String(C)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`oidc-provider exited ${code}`)));
      setTimeout(() => reject(new Error('oidc-provider did not start')), 30_000);
    });
    const { issuer, refreshTokens } = JSON.parse(line) as { issuer: string; refreshTokens: string[] };
    const post: Post = (body) => fetch(`${issuer}/token`, { method: 'POST', headers: FORM, body });
    return await grantRates(post, refreshTokens, async () => {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`);
      await res.arrayBuffer();
      return res;
    });
  } finally {
    child.kill('SIGTERM');
  }
}

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
    await worker.mf.dispose();
  }
}

const g = await gatehouse();
const p = await oidcProvider();
const v = await verifyCost();
console.log(`
Token endpoint throughput and verify cost, ${cpus().length} cores, Node ${process.version}

  discovery requests/s, the harness floor        Gatehouse ${fmt(g.floor)}   oidc-provider ${fmt(p.floor)}   ratio ${fmt(g.floor / p.floor, 2)}x
  client_credentials grants/s (${C} in flight, ${SECONDS} s)   Gatehouse ${fmt(g.cc)}   oidc-provider ${fmt(p.cc)}   ratio ${fmt(g.cc / p.cc, 2)}x
  refresh_token grants/s (${C} chains, ${SECONDS} s)          Gatehouse ${fmt(g.refresh)}   oidc-provider ${fmt(p.refresh)}   ratio ${fmt(g.refresh / p.refresh, 2)}x
  access token verify in the isolate (µs, ${N} per request)   ES256 ${fmt(v.ES256 * 1000)}   RS256 ${fmt(v.RS256 * 1000)}   ratio ${fmt(v.ES256 / v.RS256, 2)}x

Reproduce: ${COMMAND}
`);
