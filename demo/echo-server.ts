import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error — plain JS module shared with the Worker build (no type declarations).
import { echo } from './echo.js';

/**
 * The demo echo origin under Node, for `npm run dev` (the tests run the same code as a Worker).
 * Port 0 lets the system pick one as it binds: read it from `server.address()`.
 */
export function startEchoServer(port: number): Promise<Server> {
  const server = createServer(async (req, res) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else if (value !== undefined) headers.set(name, value);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length && req.method !== 'GET' && req.method !== 'HEAD' ? Buffer.concat(chunks) : null;
    const { port: bound } = server.address() as AddressInfo;
    const response: Response = await echo(new Request(`http://127.0.0.1:${bound}${req.url}`, { method: req.method, headers, body }));
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}
