/**
 * npm run bench:handoff — time from a phone's approval of a QR sign-in to the waiting computer being
 * signed in (its session cookie received), p50/p99, when the computer is told over the Handoff
 * object's WebSocket versus when it polls every 2 s (the pages' fallback), in one run, through
 * Miniflare (workerd; real D1 and Durable Objects).
 *
 * Options: --n N handoffs per mode (default 100).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { bundle, fmt, Jar, percentile, signedInUser, startWorker } from './harness';

const { values } = parseArgs({ options: { n: { type: 'string', default: '100' } } });
const N = Number(values.n);
const COMMAND = `npm run bench:handoff -- --n ${N}`;
const POLL_MS = 2000;

const worker = await startWorker(bundle('gatehouse'), { gatehouse: true });
try {
  const phone = new Jar(worker.fetch);
  await signedInUser(phone, await worker.db(), 'bench-handoff@example.com');
  const html = { headers: { accept: 'text/html' } };

  /** One QR sign-in; returns ms from sending the approval to the computer holding a session. */
  async function once(mode: 'push' | 'poll'): Promise<number> {
    const computer = new Jar(worker.fetch);
    const page = await (await computer.fetch('/auth/handoff/qr', html)).text();
    const link = new URL(/id="approve-link" href="([^"]+)"/.exec(page)![1]!.replace(/&amp;/g, '&'));
    const approvePage = await (await phone.fetch(`${link.pathname}${link.search}`, html)).text();
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(approvePage)![1]!;

    let approved: Promise<void>;
    if (mode === 'push') {
      const res = await computer.fetch('/auth/handoff/socket?kind=qr&role=wait', {
        headers: { upgrade: 'websocket', origin: 'https://gatehouse.bench' },
      });
      const ws = (res as unknown as { webSocket: WebSocket }).webSocket;
      (ws as unknown as { accept(): void }).accept();
      approved = new Promise((resolve) =>
        ws.addEventListener('message', (e) => {
          if ((JSON.parse(String(e.data)) as { state: string }).state === 'approved') resolve();
        }),
      );
    } else {
      approved = (async () => {
        // The page's polling loop, started at a random point of its 2 s cycle relative to the approval.
        await new Promise((r) => setTimeout(r, Math.random() * POLL_MS));
        for (;;) {
          const status = (await (await computer.fetch('/auth/api/handoff/status?kind=qr&role=wait')).json()) as { state: string };
          if (status.state === 'approved') return;
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
      })();
    }

    const t0 = performance.now();
    const decision = await phone.fetch('/auth/handoff/approve', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://gatehouse.bench' },
      body: new URLSearchParams({ csrf_token: csrf, h: link.searchParams.get('h')!, decision: 'approve' }).toString(),
    });
    if (decision.status !== 200) throw new Error(`approve: ${decision.status}`);
    await approved;
    const redeemed = await computer.fetch('/auth/api/handoff/redeem', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"kind":"qr"}',
    });
    if (redeemed.status !== 200 || !computer.header.includes('__Host-gatehouse_session=')) throw new Error(`redeem: ${redeemed.status}`);
    return performance.now() - t0;
  }

  for (let i = 0; i < 5; i++) await once('push'); // warm-up
  const push: number[] = [];
  for (let i = 0; i < N; i++) push.push(await once('push'));
  // Polling waits on timers, so its runs overlap (10 at a time) to keep the benchmark short.
  const poll: number[] = [];
  for (let i = 0; i < N; i += 10) poll.push(...(await Promise.all(Array.from({ length: Math.min(10, N - i) }, () => once('poll')))));

  const row = (xs: number[]) => `p50 ${fmt(percentile(xs, 0.5), 1)} ms   p99 ${fmt(percentile(xs, 0.99), 1)} ms`;
  console.log(`
Approval → waiting device signed in (QR sign-in), Miniflare (workerd), Node ${process.version}, ${cpus().length} cores, ${N} handoffs each

  WebSocket push (hibernating, from the Handoff object)   ${row(push)}
  polling every ${POLL_MS / 1000} s (the fallback)                    ${row(poll)}
  ratio of medians poll / push ${fmt(percentile(poll, 0.5) / percentile(push, 0.5), 1)}x

Reproduce: ${COMMAND}
`);
} finally {
  await worker.stop();
}
