// The demo origin: answers every request with what it received — method, path, query and headers
// (names lower-cased) exactly as they arrived. Runs as a Worker (tests, through a service binding)
// and under Node (`npm run dev`, demo/echo-server.ts).
export function echo(request) {
  const url = new URL(request.url);
  const headers = {};
  for (const [name, value] of request.headers) headers[name.toLowerCase()] = value;
  const body = JSON.stringify({ method: request.method, path: url.pathname, query: url.search.replace(/^\?/, ''), headers }, null, 2);
  return new Response(body, { headers: { 'content-type': 'application/json' } });
}

export default { fetch: echo };
