import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../deps';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { GatehouseError } from '../lib/errors';
import { assertLiveSession, resumeSession } from './sessions';

const setsSession = (c: Context) => c.res.headers.getSetCookie().some((h) => h.startsWith(`${COOKIES.session}=`));

/**
 * Puts the signed-in user's session claims (or null) on the context. A fresh token costs no I/O; a
 * stale one is refreshed and the cookie re-set; an unusable cookie is cleared and the caller is
 * treated as signed out, never answered with a 500.
 */
export const sessionMiddleware = createMiddleware<AppEnv>(async (c, next) => {
  const result = await resumeSession(c.var.deps, readCookie(c, COOKIES.session), new URL(c.req.url).host);
  c.set('session', result.status === 'valid' ? result.claims : null);
  await next();
  if (result.status === 'ended' && !setsSession(c)) clearCookie(c, COOKIES.session);
  if (result.status === 'valid' && result.refreshed && !setsSession(c)) setSessionCookie(c, result.refreshed);
});

/**
 * The JSON self-service APIs: a signed-in user is required (401), and state changes need the JSON
 * content type — a cross-site form cannot send it without a CORS preflight (415 otherwise).
 */
export const requireSignedIn = createMiddleware<AppEnv>(async (c, next) => {
  c.header('cache-control', 'no-store');
  if (!c.var.session) throw new GatehouseError('unauthenticated', 'Sign in to continue.');
  await assertLiveSession(c.var.deps, c.var.session);
  if (c.req.method !== 'GET' && c.req.method !== 'DELETE' && !c.req.header('content-type')?.startsWith('application/json'))
    throw new GatehouseError('unsupported_media_type', 'Send state changes with Content-Type: application/json.');
  await next();
});

export function setSessionCookie(c: Context, cookie: { value: string; maxAge: number }) {
  writeCookie(c, COOKIES.session, cookie.value, cookie.maxAge);
}

export function clearSessionCookie(c: Context) {
  clearCookie(c, COOKIES.session);
}
