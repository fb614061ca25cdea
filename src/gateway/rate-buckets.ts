import type { Identity } from './identity';
import type { Route } from './routes-config';

/** The count a route's rate limit is kept in: its `bucket`, or one of its own named by host, path and methods. */
export const rateBucketOf = (route: Route) =>
  `route:${route.rateLimit?.bucket ?? `${route.host ?? '*'}${route.match}${route.methods ? ` ${route.methods.join(',')}` : ''}`}`;

/**
 * Who a request is counted against: the API key, else the client an access token was issued to
 * (its users' requests count as the client's), else the signed-in user.
 */
export const callerOf = (who: Identity) =>
  who.keyId ? `key:${who.keyId}` : who.via === 'bearer' ? `client:${who.clientId ?? ''}` : `user:${who.sub}`;
