import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../deps';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { GatehouseError } from '../lib/errors';
import type { SessionClaims } from './session-token';
import { assertLiveSession, resumeSession, type ResumedSession } from './session-lifecycle';

const setsSession = (c: Context) => c.res.headers.getSetCookie().some((h) => h.startsWith(`${COOKIES.session}=`));

/**
 * Puts the signed-in user's session claims (or null) on the context. A fresh token costs no I/O; a
 * stale one is refreshed and the cookie re-set; an unusable cookie is cleared and the caller is
 * treated as signed out, never answered with a 500.
 */
export const sessionMiddleware = createMiddleware<AppEnv>(async (c, next) => {
  const cookie = readCookie(c, COOKIES.session);
  // No cookie (every back-channel call): nothing to verify, no URL to read.
  const result: ResumedSession = cookie ? await resumeSession(c.var.deps, cookie, new URL(c.req.url).host) : { status: 'none' };
  c.set('session', result.status === 'valid' ? result.claims : null);
  await next();
  if (result.status === 'ended' && !setsSession(c)) clearCookie(c, COOKIES.session);
  if (result.status === 'valid' && result.refreshed && !setsSession(c)) setSessionCookie(c, result.refreshed);
});

/** The app's env after requireSession: the session is there, never null. */
export type SignedInEnv = AppEnv & { Variables: { session: SessionClaims } };

const signInToContinue = () => new GatehouseError('unauthenticated', 'Sign in to continue.');

/**
 * A signed-in user is required: without a session the request is refused as `unauthenticated`,
 * which its channel answers (a page: sign in and come back; the JSON API: 401). Handlers after it
 * read `c.var.session` as the session itself.
 */
export const requireSession = createMiddleware<SignedInEnv>(async (c, next) => {
  // Typed as present for the handlers after this; here it is still the session middleware's answer.
  if (!c.var.session) throw signInToContinue();
  await next();
});

/**
 * The JSON self-service APIs, on every method of a path: a signed-in user is required (401), and
 * state changes need the JSON content type — a cross-site form cannot send it without a CORS
 * preflight (415 otherwise). Each route under it names requireSession too, for its handler's type.
 */
export const requireSignedIn = createMiddleware<AppEnv>(async (c, next) => {
  c.header('cache-control', 'no-store');
  if (!c.var.session) throw signInToContinue();
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
