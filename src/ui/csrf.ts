import { getCookie, setCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../deps';
import { csrfTokenFor, isValidCsrfToken, newCsrfNonce } from '../lib/csrf';
import { GatehouseError } from '../lib/errors';
import { CSRF_COOKIE } from '../sessions/cookie';

/**
 * Every hosted page gets a CSRF token for its forms; every form POST must carry a valid one and,
 * when the browser sends Origin, come from Gatehouse's own origin. Otherwise: 403.
 */
export const csrfProtection = createMiddleware<AppEnv>(async (c, next) => {
  const { deps } = c.var;
  let nonce = getCookie(c, CSRF_COOKIE);
  if (c.req.method === 'POST') {
    const origin = c.req.header('origin');
    const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const sameOrigin = !origin || origin === deps.config.publicUrl.origin;
    if (!sameOrigin || !(await isValidCsrfToken(deps.keys.csrf, nonce, body['csrf_token'])))
      throw new GatehouseError('csrf_failed', 403, 'The form could not be verified (CSRF).');
  }
  if (!nonce || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
    nonce = newCsrfNonce();
    setCookie(c, CSRF_COOKIE, nonce, { path: '/', secure: true, httpOnly: true, sameSite: 'Lax' });
  }
  c.set('csrfToken', await csrfTokenFor(deps.keys.csrf, nonce));
  await next();
});
