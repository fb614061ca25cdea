import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../deps';
import { GatehouseError } from '../lib/errors';
import { SESSION_COOKIE, sessionCookieAttributes } from './cookie';
import { assertLiveSession, resumeSession } from './sessions';

/**
 * Puts the signed-in user's session claims (or null) on the context. A fresh token costs no I/O; a
 * stale one is refreshed and the cookie re-set; an unusable cookie is cleared and the caller is
 * treated as signed out, never answered with a 500.
 */
export const sessionMiddleware = createMiddleware<AppEnv>(async (c, next) => {
  const result = await resumeSession(c.var.deps, getCookie(c, SESSION_COOKIE));
  c.set('session', result.status === 'valid' ? result.claims : null);
  await next();
  if (result.status === 'ended' && !c.res.headers.getSetCookie().some((h) => h.startsWith(`${SESSION_COOKIE}=`)))
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'Lax' });
  if (result.status === 'valid' && result.refreshed && !c.res.headers.getSetCookie().some((h) => h.startsWith(`${SESSION_COOKIE}=`)))
    setCookie(c, SESSION_COOKIE, result.refreshed.value, sessionCookieAttributes(result.refreshed.maxAge));
});

/**
 * The JSON self-service APIs: a signed-in user is required (401), and state changes need the JSON
 * content type — a cross-site form cannot send it without a CORS preflight (415 otherwise).
 */
export const requireSignedIn = createMiddleware<AppEnv>(async (c, next) => {
  c.header('cache-control', 'no-store');
  if (!c.var.session) throw new GatehouseError('unauthenticated', 401, 'Sign in to continue.');
  await assertLiveSession(c.var.deps, c.var.session);
  if (c.req.method !== 'GET' && c.req.method !== 'DELETE' && !c.req.header('content-type')?.startsWith('application/json'))
    throw new GatehouseError('unsupported_media_type', 415, 'Send state changes with Content-Type: application/json.');
  await next();
});

export function setSessionCookie(c: Parameters<typeof setCookie>[0], cookie: { value: string; maxAge: number }) {
  setCookie(c, SESSION_COOKIE, cookie.value, sessionCookieAttributes(cookie.maxAge));
}

export function clearSessionCookie(c: Parameters<typeof deleteCookie>[0]) {
  deleteCookie(c, SESSION_COOKIE, { path: '/', secure: true, httpOnly: true, sameSite: 'Lax' });
}

/** The pending sign-in between the first and second factor (src/auth/second-factor.ts). */
export function setPendingCookie(c: Parameters<typeof setCookie>[0], name: string, value: string, maxAge: number) {
  setCookie(c, name, value, { ...sessionCookieAttributes(maxAge), sameSite: 'Strict' });
}

export function clearCookie(c: Parameters<typeof deleteCookie>[0], name: string) {
  deleteCookie(c, name, { path: '/', secure: true, httpOnly: true });
}
