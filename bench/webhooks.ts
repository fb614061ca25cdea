/**
 * npm run bench:webhooks — webhook delivery on `wrangler dev` (its local queue, as production
 * runs producer and consumer) to a receiver on loopback that verifies every delivery with the
 * standardwebhooks library: the time from a sign-in (the change) to the receiver holding its
 * user.signed_in event, p50/p99, and deliveries per second; and, in the same run, the sign-in's own
 * latency with no endpoint and with one (the fan-out must stay off the sign-in's path).
 *
 * Options: --n N sign-ins per phase (default 200), --concurrency C (default 4).
 */
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { clientsCli, listenOnFreePort, signUpVerified, startGatehouse, uniqueIp } from '../test/e2e/harness';
import { fmt, percentile } from './harness';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '4' } } });
const N = Number(values.n);
const C = Number(values.concurrency);
const COMMAND = `npm run bench:webhooks -- --n ${N} --concurrency ${C}`;
const PASSWORD = 'correct horse battery staple 42';

let secret = '';
const arrived = new Map<string, number>();
let rejected = 0;
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const at = performance.now();
    try {
      const event = new Webhook(secret).verify(body, req.headers as Record<string, string>) as { data: { session_id: string } };
      if (!arrived.has(event.data.session_id)) arrived.set(event.data.session_id, at);
      res.statusCode = 204;
    } catch {
      rejected++;
      res.statusCode = 401;
    }
    res.end();
  });
});
const receiverUrl = `http://127.0.0.1:${await listenOnFreePort(receiver)}/hook`;

const gatehouse = await startGatehouse();
try {
  const robot = clientsCli([
    'create',
    '--name',
    'Bench robot',
    '--grant',
    'client_credentials',
    '--resource',
    'urn:gatehouse:admin=admin:webhooks:write,admin:users:read',
    '--persist-to',
    gatehouse.persistTo,
  ]);
  if (robot.code !== 0) throw new Error(robot.stderr);
  const { client_id, client_secret } = JSON.parse(robot.stdout) as { client_id: string; client_secret: string };
  const tokenRes = await fetch(`${gatehouse.base}/auth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${client_id}:${client_secret}`)}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: 'urn:gatehouse:admin' }),
  });
  const { access_token } = (await tokenRes.json()) as { access_token: string };
  const email = 'bench-webhooks@example.com';
  await signUpVerified(gatehouse.base, email, PASSWORD);

  /** N sign-ins, C at a time; each one's start and answer time, and its session id. */
  async function signIns(): Promise<{ sid: string; start: number; ms: number }[]> {
    const done: { sid: string; start: number; ms: number }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: C }, async () => {
        while (next < N) {
          next++;
          const start = performance.now();
          const res = await fetch(`${gatehouse.base}/auth/api/sign-in`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'cf-connecting-ip': uniqueIp() },
            body: JSON.stringify({ email, password: PASSWORD }),
          });
          const body = (await res.json()) as { session: { sid: string } };
          if (res.status !== 200) throw new Error(`sign-in: ${res.status} ${JSON.stringify(body)}`);
          done.push({ sid: body.session.sid, start, ms: performance.now() - start });
        }
      }),
    );
    return done;
  }

  await signIns(); // warm-up
  const without = await signIns();

  const created = await fetch(`${gatehouse.base}/auth/admin/v1/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiverUrl, event_types: ['user.signed_in'] }),
  });
  secret = ((await created.json()) as { secret: string }).secret;
  if (created.status !== 201) throw new Error(`endpoint: ${created.status}`);

  const t0 = performance.now();
  const withHook = await signIns();
  const deadline = Date.now() + 120_000;
  while (withHook.some((s) => !arrived.has(s.sid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const missing = withHook.filter((s) => !arrived.has(s.sid)).length;
  const lastArrival = Math.max(...withHook.map((s) => arrived.get(s.sid) ?? 0));
  const toReceiver = withHook.filter((s) => arrived.has(s.sid)).map((s) => arrived.get(s.sid)! - s.start);

  const row = (what: string, xs: number[]) => `| ${what} | ${fmt(percentile(xs, 0.5))} | ${fmt(percentile(xs, 0.99))} |`;
  console.log(`\n${COMMAND}\n${cpus().length} × ${cpus()[0]?.model.trim()}, wrangler dev (local queue), receiver on loopback\n`);
  console.log('| ms | p50 | p99 |\n|---|---|---|');
  console.log(
    row(
      'sign-in answer, no endpoint',
      without.map((s) => s.ms),
    ),
  );
  console.log(
    row(
      'sign-in answer, one endpoint',
      withHook.map((s) => s.ms),
    ),
  );
  console.log(row('sign-in sent → receiver verified the event', toReceiver));
  console.log(
    `\n${N} events delivered in ${fmt((lastArrival - t0) / 1000, 2)} s from the first sign-in: ${fmt((N * 1000) / (lastArrival - t0))} events/s; missing ${missing}, rejected by the receiver ${rejected}`,
  );
} finally {
  await gatehouse.stop();
  receiver.close();
}
