import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { accountApi } from './account/routes';
import { authApi } from './auth/routes';
import { ConfigError } from './config';
import { depsFor, type AppEnv, type Deps } from './deps';
import type { Env } from './config';
import { describeError, GatehouseError } from './lib/errors';
import { MAX_BODY_BYTES, problemResponse } from './lib/http';
import { devMailboxRoutes } from './mail/routes';
import { sessionMiddleware } from './sessions/middleware';
import { jwksRoutes } from './tokens/routes';
import { discoveryRoutes, oauthRoutes } from './oauth/routes';
import { registrationRoutes } from './oauth/registration-routes';
import { renderErrorPage } from './ui/error-page';
import { pages } from './ui/routes';
import { connectPages, gatewayHandler } from './gateway/routes';
import { handoffApi, handoffPages } from './handoff/routes';

/** Builds the worker's app. Tests pass their own deps factory to inject failures. */
export function createApp(makeDeps: (env: Env) => Promise<Deps> = depsFor) {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    c.set('requestId', c.req.header('cf-ray') ?? crypto.randomUUID());
    try {
      c.set('deps', await makeDeps(c.env));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.error(JSON.stringify({ event: 'config_invalid', issues: e.issues }));
      throw new GatehouseError('config_invalid', 500, e.message);
    }
    await next();
  });

  // Gatehouse's own pages and APIs live on PUBLIC_URL's host only; every other host is an app host
  // that the gateway fronts (docs/security.md, "Hosts").
  app.use(async (c, next) => {
    if (new URL(c.req.url).host !== c.var.deps.config.publicUrl.host) return gatewayHandler(c);
    await next();
  });

  // The JSON APIs take state changes from Gatehouse's own pages only (cookies are sent same-site;
  // JSON already needs a CORS preflight that is never granted — this is the second lock).
  app.use('/auth/api/*', async (c, next) => {
    const origin = c.req.header('origin');
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && origin !== undefined && origin !== c.var.deps.config.publicUrl.origin)
      throw new GatehouseError('csrf_failed', 403, 'This API takes requests from Gatehouse’s own pages only.');
    await next();
  });

  app.use(
    '/auth/*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'"],
        // The bundled passkey script (/auth/assets/passkeys.js) and its calls to /auth/api.
        scriptSrc: ["'self'"],
        connectSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
      xFrameOptions: 'DENY',
      // same-origin: tokens in our URLs never leave as a Referer, while our own form posts keep their Origin.
      referrerPolicy: 'same-origin',
      crossOriginResourcePolicy: 'same-origin',
      // A page that needs another policy (the form_post response) sets its own.
      overwrite: false,
    }),
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new GatehouseError('payload_too_large', 413, `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
      },
    }),
    sessionMiddleware,
  );

  app.route('/auth/api', authApi);
  app.route('/auth/api', accountApi);
  app.route('/auth/api', handoffApi);
  app.route('/auth/dev', devMailboxRoutes);
  app.route('/auth', handoffPages);
  app.route('/auth', connectPages);
  app.route('/auth', oauthRoutes);
  app.route('/auth', registrationRoutes);
  app.route('/auth', pages);
  app.route('/.well-known', jwksRoutes);
  app.route('/.well-known', discoveryRoutes);
  // Everything else goes through the gateway (DESIGN.md §1).
  app.all('*', gatewayHandler);

  app.notFound((c) => {
    throw new GatehouseError('not_found', 404, `Nothing at ${new URL(c.req.url).pathname}.`);
  });

  app.onError((err, c) => {
    const e =
      err instanceof GatehouseError ? err : new GatehouseError('server_error', 500, 'Something went wrong on our side.');
    if (!(err instanceof GatehouseError) || e.status >= 500) {
      const cause = err instanceof GatehouseError ? (err as { cause?: unknown }).cause : err;
      console.error(
        JSON.stringify({ event: 'request_failed', requestId: c.get('requestId'), code: e.code, error: describeError(cause) }),
      );
    }
    const path = new URL(c.req.url).pathname;
    const wantsJson = !path.startsWith('/auth/') || path.startsWith('/auth/api/') || path.startsWith('/auth/dev/');
    if (wantsJson || c.req.header('accept')?.includes('application/json')) return problemResponse(c, e);
    return renderErrorPage(c, e);
  });

  return app;
}
