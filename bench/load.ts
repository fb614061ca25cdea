/** Load over loopback: autocannon in the benchmark's own process, the one load generator for every side. */
import { request as httpRequest } from 'node:http';
import autocannon from 'autocannon';
import { cpuSeconds } from './processes';

/** How hard and how long: `duration` seconds, or exactly `amount` requests (each answered before it returns). */
export type Load = { connections: number } & ({ duration: number } | { amount: number });

/** One kind of request, or (setupClient) a request list of its own per connection. */
export type LoadRequest = Pick<autocannon.Options, 'method' | 'headers' | 'body' | 'setupClient'> & { path: string };

export interface Measured {
  /** 2xx responses per second. */
  rps: number;
  requests: number;
  /** Latency percentiles, ms. */
  p50: number;
  p99: number;
  /** CPU time of the serving process per request (from /proc), µs; null without a pid. */
  cpuUs: number | null;
}

/**
 * Drives `target` with autocannon in this process (one load generator for every side) and reads the
 * serving process's CPU time around the run. Any non-2xx answer, connection error or timeout
 * fails the measurement.
 */
export async function drive(target: { url: string; pid?: number }, request: LoadRequest, load: Load, label: string): Promise<Measured> {
  const cpuBefore = target.pid ? cpuSeconds(target.pid) : 0;
  const start = performance.now();
  let last = start;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const run = autocannon({ ...request, url: `${target.url}${request.path}`, ...load, timeout: 10 }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
    // Timed to the last answer: autocannon itself ends a run only at its next one-second tick.
    run.on('response', () => (last = performance.now()));
  });
  const cpu = target.pid ? cpuSeconds(target.pid) - cpuBefore : null;
  if (result.non2xx || result.errors || result.timeouts)
    throw new Error(
      `${label}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts (status codes ${JSON.stringify(result.statusCodeStats)})`,
    );
  const requests = result['2xx'];
  return {
    rps: requests / ((last - start) / 1000),
    requests,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUs: cpu === null ? null : (cpu / requests) * 1e6,
  };
}

/** One request on a socket, with exactly these headers (Host included): checks outside the measured runs. */
export function send(
  url: string,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: o.method ?? 'GET', headers: o.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}
