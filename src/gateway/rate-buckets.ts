import type { Identity } from './identity';
import type { Route } from './routes-config';

/** The count a route's rate limit is kept in: its `bucket`, or one of its own named by host, path and methods. */
export const rateBucketOf = (route: Route) =>
  `route:${route.rateLimit?.bucket ?? `${route.host ?? '*'}${route.match}${route.methods ? ` ${route.methods.join(',')}` : ''}`}`;

/**
 * Who a request is counted against: an API key by its id; a client's own (machine) token by the
 * client; a user's token by the client and the user together (one user of an app cannot spend
 * another's budget); a browser session by its user.
 */
export function callerOf(who: Identity): string {
  if (who.keyId) return `key:${who.keyId}`;
  if (who.via === 'bearer') return who.kind === 'machine' ? `client:${who.clientId ?? ''}` : `client:${who.clientId ?? ''}:user:${who.sub}`;
  return `user:${who.sub}`;
}
