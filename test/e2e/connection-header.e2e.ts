import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrationsTo, ASSETS_WORKER, bundle, bundleModules, GATEHOUSE_OPTIONS } from '../../bench/harness';
import { listenOnFreePort } from './harness';

/**
 * RFC 9110 §7.6.1: a proxy removes the headers a client names in `Connection`. Gatehouse does it
 * whenever the runtime lets it see `Connection` — workerd serving the worker on its own socket
 * does (this test: the real bundle in workerd, raw HTTP/1.1 over loopback); wrangler dev's local
 * proxy does not (hostile-origin.e2e.ts pins what happens there).
 */
let mf: Miniflare;
let origin: Server;
let port = 0;
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  origin = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'application/json');
    res.end('{}');
  });
  const originPort = await listenOnFreePort(origin);
  const outdir = bundle('e2e-connection');
  mf = new Miniflare(
    convertV4MiniflareOptions({
      workers: [
        {
          name: 'gatehouse',
          modulesRoot: outdir,
          modules: bundleModules(outdir),
          ...GATEHOUSE_OPTIONS,
          // No port in the host names: workerd picks its port as it binds (port 0), and the raw
          // request below sends the Host it likes.
          bindings: {
            ...GATEHOUSE_OPTIONS.bindings,
            PUBLIC_URL: 'http://localhost',
            ROUTES: JSON.stringify([
              { match: '/open/*', host: 'app.localhost', origin: `http://127.0.0.1:${originPort}`, policy: { access: 'public' } },
            ]),
          },
        },
        ASSETS_WORKER,
      ],
      port: 0,
      host: '127.0.0.1',
    } as never),
  );
  port = Number((await mf.ready).port);
  await applyMigrationsTo(await mf.getD1Database('DB'));
}, 120_000);

afterAll(async () => {
  await mf?.dispose();
  origin?.close();
});

const raw = (lines: string[]) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${lines.join('\r\n')}\r\n\r\n`));
    let out = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.on('data', (d) => {
      out += d;
      if (out.includes('\r\n\r\n{}')) socket.end();
    });
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });

describe('workerd on its own socket', () => {
  it('drops every header the client names in Connection, in any case and spelling, and the hop-by-hop ones', async () => {
    const res = await raw([
      'GET /open/x HTTP/1.1',
      'Host: app.localhost',
      'Connection: keep-alive, X-Secret-Hop, x_other.hop, X-Forwarded-Internal',
      'X-Secret-Hop: 1',
      'X-Other-Hop: 2',
      'X-Forwarded-Internal: 3',
      'X-Kept: 4',
      'Keep-Alive: timeout=5',
      'TE: trailers',
    ]);
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    const got = seen.at(-1)!;
    expect(got['x-secret-hop']).toBeUndefined();
    expect(got['x-other-hop']).toBeUndefined();
    expect(got['x-forwarded-internal']).toBeUndefined();
    expect(got['keep-alive']).toBeUndefined();
    expect(got.te).toBeUndefined();
    expect(got['x-kept']).toBe('4');
  });
});
