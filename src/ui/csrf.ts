import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../deps';
import { csrfTokenFor, isValidCsrfToken, newCsrfNonce } from '../lib/csrf';
import { GatehouseError } from '../lib/errors';
import { COOKIES, readCookie, writeCookie } from '../lib/cookies';

const NONCE = /^[A-Za-z0-9_-]{43}$/;

/** Gives the page a CSRF token for its forms (setting the nonce cookie when missing); verifies nothing. */
export const csrfToken = createMiddleware<AppEnv>(async (c, next) => {
  let nonce = readCookie(c, COOKIES.csrf);
  if (!nonce || !NONCE.test(nonce)) {
    nonce = newCsrfNonce();
    writeCookie(c, COOKIES.csrf, nonce);
  }
  c.set('csrfToken', await csrfTokenFor(c.var.deps.keys.csrf, nonce));
  await next();
});

/**
 * Every form POST to a hosted page must carry a valid CSRF token and, when the browser sends
 * Origin, come from Gatehouse's own origin. Otherwise: 403. Pages also get a token (csrfToken).
 */
export const csrfProtection = createMiddleware<AppEnv>(async (c, next) => {
  const { deps } = c.var;
  if (c.req.method === 'POST') {
    const origin = c.req.header('origin');
    const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const sameOrigin = !origin || origin === deps.config.publicUrl.origin;
    if (!sameOrigin || !(await isValidCsrfToken(deps.keys.csrf, readCookie(c, COOKIES.csrf), body['csrf_token'])))
      throw new GatehouseError('csrf_failed', 'The form could not be verified (CSRF).');
  }
  return csrfToken(c, next);
});
