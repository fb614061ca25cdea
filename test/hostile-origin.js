// A hostile (or compromised) origin for the Workers tests: it records what reached it, like the
// echo origin, and answers with every `Set-Cookie` the test asks for in `?sc=` (repeatable), plus
// `Clear-Site-Data` when `?clear=1`, and any other header in `?h=name:value` — the way an origin
// would try to plant or wipe Gatehouse's cookies, or widen what its scripts control.
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const headers = new Headers({ 'content-type': 'application/json' });
    for (const value of url.searchParams.getAll('sc')) headers.append('set-cookie', value);
    if (url.searchParams.has('clear')) headers.set('clear-site-data', '"cookies", "storage"');
    for (const h of url.searchParams.getAll('h')) headers.append(h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 1));
    if (request.headers.get('upgrade') === 'websocket') {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      return new Response(null, { status: 101, webSocket: client, headers });
    }
    const seen = {};
    for (const [name, value] of request.headers) seen[name.toLowerCase()] = value;
    return new Response(JSON.stringify({ path: url.pathname, headers: seen }), { headers });
  },
};
