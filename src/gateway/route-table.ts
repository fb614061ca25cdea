import { matchesPattern } from './path';
import type { Route } from './routes-config';

/** The first route whose pattern, method and host fit (routes are tried in order). */
export function findRoute(routes: readonly Route[], r: { method: string; host: string; path: string }): Route | undefined {
  return routes.find(
    (route) =>
      matchesPattern(r.path, route.match) &&
      (!route.methods || route.methods.includes(r.method as never)) &&
      (!route.host || route.host === r.host),
  );
}

const keys = new WeakMap<Route, string>();

/**
 * A route's identity for things that must be replayed only under the route that allowed them (held
 * requests): the whole route as configured — a changed policy is another route.
 */
export function routeKey(route: Route): string {
  let key = keys.get(route);
  if (key === undefined) {
    key = JSON.stringify(route);
    keys.set(route, key);
  }
  return key;
}
