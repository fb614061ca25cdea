import { setsGatehouseCookie, stripGatehouseCookies } from '../lib/cookies';
import { containsApiKey, looksLikeApiKey } from '../oauth/api-keys';

/**
 * What the gateway removes from a request before it adds anything (DESIGN.md §3): every header
 * with the identity prefix in any case and in `_` / `.` spellings, the assertion header, the
 * route's `stripHeaders`, every header the client's `Connection` names (when the runtime shows us
 * `Connection` at all: docs/origin.md) and the hop-by-hop ones, client-supplied forwarding headers
 * (Gatehouse sets its own), method-override headers, every Gatehouse cookie, and every Gatehouse API
 * key (in `Authorization` or `X-API-Key`, however spelled): origins get the identity, not the credential.
 */
export interface HeaderPolicy {
  /** e.g. `X-Auth-`. */
  prefix: string;
  /** e.g. `X-Auth-Assertion` (removed even if the prefix were changed). */
  assertionHeader: string;
  /** Further header names the route never lets a client send. */
  strip: readonly string[];
  /** The route takes API keys in `X-API-Key`: that header is Gatehouse's, whatever it holds. */
  apiKeyHeader?: boolean;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1). `upgrade` is kept for WebSocket pass-through. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'proxy-authorization',
  'proxy-authenticate',
];
/** Set by Gatehouse from what it knows, never copied from the client. */
const FORWARDING = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'x-original-url',
  'x-rewrite-url',
];
/**
 * Ask frameworks (Express's method-override, Symfony, ASP.NET) to treat a POST as another method —
 * which the route was not matched for.
 */
const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];
/** A DPoP proof is for Gatehouse, which checked it: an origin holding one could replay it within its window. */
const FOR_GATEHOUSE = ['dpop'];

/** Header names compared the way lenient servers compare them: lower case, `_` and `.` as `-`. */
export const canonicalName = (name: string) => name.toLowerCase().replace(/[_.]/g, '-');

export function sanitizeRequestHeaders(incoming: Headers, policy: HeaderPolicy): Headers {
  const prefix = canonicalName(policy.prefix);
  const removed = new Set([
    canonicalName(policy.assertionHeader),
    ...policy.strip.map(canonicalName),
    ...HOP_BY_HOP,
    ...FORWARDING,
    ...METHOD_OVERRIDES,
    ...FOR_GATEHOUSE,
  ]);
  for (const token of (incoming.get('connection') ?? '').split(',')) {
    const t = canonicalName(token.trim());
    if (t && t !== 'upgrade') removed.add(t);
  }
  const out = new Headers();
  for (const [name, value] of incoming) {
    const n = canonicalName(name);
    if (n.startsWith(prefix) || removed.has(n)) continue;
    if (n === 'x-api-key' && (policy.apiKeyHeader || looksLikeApiKey(value))) continue;
    if (n === 'authorization' && /^\s*bearer\s+gk_/i.test(value)) continue;
    // A real key anywhere else (a second X-API-Key joined into this one, another header, a cookie).
    if (containsApiKey(value)) continue;
    if (n === 'cookie') {
      // However the field is framed (two fields arrive joined with ", "): Gatehouse's cookies never pass.
      const kept = stripGatehouseCookies(value);
      if (kept) out.append('cookie', kept);
      continue;
    }
    out.append(name, value);
  }
  return out;
}

/**
 * Response headers an origin may not send through us: `Clear-Site-Data` would wipe Gatehouse's
 * cookies on this host, `Service-Worker-Allowed` would let a worker script claim pages outside its
 * own directory (Gatehouse's included), `Set-Cookie2` is a cookie by another name.
 */
const DROPPED = ['set-cookie2', 'clear-site-data', 'service-worker-allowed'];

/**
 * An origin's response as the browser may see it: no `Set-Cookie` that names (or, nameless, would be
 * read as) a Gatehouse cookie — session fixation and login CSRF — and none of DROPPED. Everything
 * else passes untouched.
 */
export function filterOriginResponse(response: Response): Response {
  const setCookies = response.headers.getSetCookie();
  const hostile = setCookies.some(setsGatehouseCookie) || DROPPED.some((name) => response.headers.has(name));
  if (!hostile) return response;
  const headers = new Headers(response.headers);
  headers.delete('set-cookie');
  for (const name of DROPPED) headers.delete(name);
  for (const value of setCookies) if (!setsGatehouseCookie(value)) headers.append('set-cookie', value);
  if (response.status === 101) return new Response(null, { status: 101, webSocket: response.webSocket, headers });
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
