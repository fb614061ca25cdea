/**
 * npm run bench — password hashing cost and sign-in throughput, argon2id (what Gatehouse stores)
 * against PBKDF2-HMAC-SHA-256 at 100,000 iterations (the most production Workers allow), in one run,
 * on this machine, through Miniflare (workerd, no wrangler dev proxy, no logging).
 *
 * Options: --hashes N (default 30), --seconds S per sign-in run (default 8), --concurrency C (default 2).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { bundle, fmt, median, startWorker } from './harness';

const { values } = parseArgs({
  options: {
    hashes: { type: 'string', default: '30' },
    seconds: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '2' },
  },
});
const HASHES = Number(values.hashes);
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const COMMAND = `npm run bench -- --hashes ${HASHES} --seconds ${SECONDS} --concurrency ${CONCURRENCY}`;

async function timeRequests(
  fetch: (p: string) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>,
  path: string,
  n: number,
) {
  const times: number[] = [];
  for (let i = 0; i < n + 3; i++) {
    const t = performance.now();
    const res = await fetch(path);
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
    if (i >= 3) times.push(performance.now() - t); // 3 warm-ups
  }
  return times;
}

/** Per-hash cost: request time minus an empty request's, sequential, so it is the isolate's CPU time. */
async function hashCost() {
  const worker = await startWorker(bundle('hash', 'bench/workers/hash.ts'), { gatehouse: false });
  try {
    const noop = median(await timeRequests(worker.fetch, '/noop', HASHES));
    const argon2id = median(await timeRequests(worker.fetch, '/argon2id', HASHES)) - noop;
    const pbkdf2 = median(await timeRequests(worker.fetch, '/pbkdf2', HASHES)) - noop;
    return { noop, argon2id, pbkdf2 };
  } finally {
    await worker.stop();
  }
}

/** Sign-ins per second against the whole worker (D1, Durable Object, session token), C in flight. */
async function signInThroughput(name: string, entry?: string) {
  const worker = await startWorker(bundle(name, entry), { gatehouse: true });
  try {
    const email = `bench-${name}@example.com`;
    const password = 'benchmark passphrase 2026';
    const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if ((await worker.fetch('/auth/api/sign-up', json({ email, password }))).status !== 202) throw new Error('sign-up failed');
    const db = await worker.db();
    const mail = await db.prepare('SELECT text FROM dev_mail WHERE "to" = ? ORDER BY id DESC').bind(email).first<{ text: string }>();
    const token = /token=([A-Za-z0-9_-]{43})/.exec(mail!.text)![1];
    if ((await worker.fetch('/auth/api/verify-email', json({ token }))).status !== 200) throw new Error('verify failed');

    const signIn = async () => {
      const t = performance.now();
      const res = await worker.fetch('/auth/api/sign-in', json({ email, password }));
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`sign-in: ${res.status}`);
      return performance.now() - t;
    };
    for (let i = 0; i < 3; i++) await signIn();
    const latencies: number[] = [];
    const end = performance.now() + SECONDS * 1000;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) latencies.push(await signIn());
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    return { perSecond: latencies.length / elapsed, median: median(latencies), count: latencies.length };
  } finally {
    await worker.stop();
  }
}

const hash = await hashCost();
const argon = await signInThroughput('gatehouse');
const pbkdf2 = await signInThroughput('gatehouse-pbkdf2', 'bench/workers/gatehouse-pbkdf2.ts');

console.log(`
Password hashing and sign-in through Miniflare (workerd), Node ${process.version}, ${cpus().length} cores

  one hash (CPU ms, median of ${HASHES})   argon2id m=19456,t=2,p=1: ${fmt(hash.argon2id)}   PBKDF2-SHA256 100k: ${fmt(hash.pbkdf2)}   ratio ${fmt(hash.argon2id / hash.pbkdf2, 2)}x
  sign-ins per second (${CONCURRENCY} in flight, ${SECONDS} s)  argon2id: ${fmt(argon.perSecond)}   PBKDF2-100k: ${fmt(pbkdf2.perSecond)}   ratio ${fmt(argon.perSecond / pbkdf2.perSecond, 2)}x
  sign-in latency (median ms)              argon2id: ${fmt(argon.median)}   PBKDF2-100k: ${fmt(pbkdf2.median)}
  empty request (ms)                       ${fmt(hash.noop, 2)}

Reproduce: ${COMMAND}
`);
