import { createMiddleware } from 'hono/factory';
import { ADMIN_BASE } from './admin/catalogue';
import { BOOKMARK_HEADER, BOOKMARK_TTL, openBookmark, sealBookmark, sessionStart } from './db/replication';
import type { AppEnv } from './deps';
import { COOKIES, readCookie, writeCookie } from './lib/cookies';

/**
 * Reads that may be slightly stale (GET and HEAD only): the admin API's lists, searches and
 * records, the account page and the account API's reads. Who is calling and what they may do is
 * still read from the primary (deps.primary); everything else starts on the primary.
 */
const MAY_BE_STALE: readonly RegExp[] = [new RegExp(`^${ADMIN_BASE}/`), /^\/auth\/account$/, /^\/auth\/api\/(?:me|sessions)$/];

const readOnly = (method: string) => method === 'GET' || method === 'HEAD';

/**
 * One D1 session per request on Gatehouse's own host (docs/operations.md, "Read replication"),
 * opened here so no route can forget it. After a state change or a write, the session's bookmark goes back to the
 * caller — the admin API's callers in the `x-d1-bookmark` header, browsers in a cookie — and,
 * brought back, keeps their next reads at least that fresh. Work after the answer (the webhook
 * outbox) runs on the isolate's own deps again, not in the person's session.
 */
export const requestSession = createMiddleware<AppEnv>(async (c, next) => {
  const deps = c.var.deps;
  if (!deps.openSession) return next();
  const { method, path } = c.req;
  const api = path.startsWith(`${ADMIN_BASE}/`);
  const presented = api ? c.req.header(BOOKMARK_HEADER) : readCookie(c, COOKIES.bookmark);
  const mayBeStale = readOnly(method) && MAY_BE_STALE.some((p) => p.test(path));
  const bookmark = mayBeStale ? await openBookmark(deps.config.keyEncryptionKey, presented) : null;
  const start = sessionStart(mayBeStale, presented !== undefined, bookmark);
  const session = deps.openSession(start);
  c.set('deps', { ...deps, db: session.db, d1: session.d1, primary: start === 'first-primary' ? session.db : deps.primary });
  try {
    await next();
  } finally {
    c.set('deps', deps);
  }
  // Every state change that reached D1 gets one, whether it wrote or not: its presence must not
  // tell a sign-in, sign-up or reset for a known address from one for an unknown address.
  const latest = session.wrote() || !readOnly(method) ? session.bookmark() : null;
  if (!latest) return;
  const sealed = await sealBookmark(deps.config.keyEncryptionKey, latest);
  if (api) c.header(BOOKMARK_HEADER, sealed);
  else writeCookie(c, COOKIES.bookmark, sealed, BOOKMARK_TTL);
});
