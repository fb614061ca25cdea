import { GatehouseError } from '../lib/errors';
import { containsApiKey } from '../oauth/api-keys';
import { normalisePath } from './path';
import { GatewayRefusal } from './refusal';

/** Paths that belong to Gatehouse on its own host, whatever their case: never proxied. */
const RESERVED = /^\/(auth|\.well-known|\.gatehouse)(\/|$)/i;
/** On an app host, only the host-session endpoints are Gatehouse's. */
const APP_RESERVED = /^\/\.gatehouse(\/|$)/i;

/** RFC 9110 §9's methods, CONNECT and TRACE aside: the only ones the gateway forwards. */
export const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** What the gateway does with a request before any route is looked at. */
export type Admission = { kind: 'proxy'; path: string } | { kind: 'app-endpoint'; path: string };

/**
 * The checks every request to the gateway passes before a route is matched: no API key in the URL,
 * one normalised path (or a 400 naming why not), Gatehouse's own paths never proxied, only RFC
 * 9110's methods, and no service worker from `/`.
 */
export function admit(request: {
  pathname: string;
  search: string;
  method: string;
  serviceWorker: boolean;
  onAuthHost: boolean;
}): Admission {
  // A key in a URL is in every log it passes through, the origin's included: refused, never forwarded.
  if (containsApiKey(safeDecode(`${request.pathname}${request.search}`)))
    throw new GatehouseError(
      'invalid_request',
      'A Gatehouse API key does not belong in a URL: send it in a header, and revoke this one (URLs are logged).',
    );
  const normalised = normalisePath(request.pathname);
  if (!normalised.ok) throw new GatehouseError('invalid_request', `Refused path: ${normalised.reason}.`);
  const { path } = normalised;
  if (!request.onAuthHost && APP_RESERVED.test(path)) return { kind: 'app-endpoint', path };
  if (request.onAuthHost && RESERVED.test(path)) throw new GatehouseError('not_found', `Nothing at ${path}.`);
  // Methods beyond RFC 9110's (WebDAV's PROPPATCH, a lower-case `patch`) match no route's method
  // list and would fall through to a catch-all: refused here, before any route is looked at.
  if (!METHODS.has(request.method))
    throw new GatewayRefusal('method_not_allowed', 'The gateway does not forward requests with this method.', {
      allow: [...METHODS].join(', '),
    });
  // A service worker controls every page under its script's directory: one served from `/` would
  // see Gatehouse's own pages on this host (sign-in, `/.gatehouse/session?code=`). Origins serve
  // theirs from a subdirectory; `Service-Worker-Allowed`, which would widen it, is dropped on the
  // way back (filterOriginResponse).
  if (request.serviceWorker && path.lastIndexOf('/') === 0)
    throw new GatehouseError('forbidden', 'A service worker script must be served from below a directory (e.g. /app/sw.js), not from /.');
  return { kind: 'proxy', path };
}

/** Percent-decoded text for a search (a key's characters may arrive escaped); as sent when it does not decode. */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
