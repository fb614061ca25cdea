// The demo origin: answers every request with what it received — method, path, query, headers
// (names lower-cased) exactly as they arrived, the size of the body it read and its first 2 KiB as text. Runs as a Worker
// (tests, through a service binding) and under Node (`npm run dev`, demo/echo-server.ts).
// Test hooks: `?redirect=URL` answers 302 to it, `?delay=MS` waits first, `?bytes=N` streams N bytes,
// a WebSocket upgrade echoes messages back.
export async function echo(request) {
  const url = new URL(request.url);
  if (url.searchParams.has('delay')) await new Promise((r) => setTimeout(r, Number(url.searchParams.get('delay'))));
  if (url.searchParams.has('redirect')) return new Response(null, { status: 302, headers: { location: url.searchParams.get('redirect') } });
  if (url.searchParams.has('bytes')) {
    // A large download, produced chunk by chunk (never whole in memory).
    let left = Number(url.searchParams.get('bytes'));
    const chunk = new Uint8Array(64 * 1024).fill(42);
    const body = new ReadableStream({
      pull(controller) {
        if (left <= 0) return controller.close();
        const n = Math.min(left, chunk.byteLength);
        controller.enqueue(n === chunk.byteLength ? chunk : chunk.slice(0, n));
        left -= n;
      },
    });
    return new Response(body, { headers: { 'content-type': 'application/octet-stream' } });
  }
  if (request.headers.get('upgrade') === 'websocket' && typeof WebSocketPair !== 'undefined') {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (event) => server.send(`echo:${event.data}`));
    return new Response(null, { status: 101, webSocket: client });
  }
  let bodyBytes = 0;
  const head = [];
  if (request.body)
    for await (const chunk of request.body) {
      if (bodyBytes < 2048) head.push(chunk.slice(0, 2048 - bodyBytes));
      bodyBytes += chunk.byteLength;
    }
  const headers = {};
  for (const [name, value] of request.headers) headers[name.toLowerCase()] = value;
  // The first 2 KiB of the body as text, so a test (or a person) can see what was posted.
  const bodyText = new TextDecoder().decode(new Uint8Array(head.flatMap((c) => [...c])));
  const body = JSON.stringify(
    { method: request.method, path: url.pathname, query: url.search.replace(/^\?/, ''), headers, bodyBytes, bodyText },
    null,
    2,
  );
  return new Response(body, { headers: { 'content-type': 'application/json' } });
}

export default { fetch: echo };
