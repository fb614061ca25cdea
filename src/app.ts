import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { every } from 'hono/combine';
import { secureHeaders } from 'hono/secure-headers';
import { accountApi } from './account/routes';
import { ADMIN_BASE } from './admin/catalogue';
import { dispatchAfterResponse } from './admin/webhook-dispatch';
import { adminDocs, adminRoutes } from './admin/routes';
import { authApi } from './auth/routes';
import { ConfigError } from './config';
import { depsFor, type AppEnv, type Deps } from './deps';
import type { Env } from './config';
import { deferTo } from './lib/defer';
import { GatehouseError } from './lib/errors';
import { ADMIN_MAX_BODY_BYTES, MAX_BODY_BYTES } from './lib/request-body';
import { mountRouters } from './error-channels';
import { devMailboxRoutes } from './mail/routes';
import { sessionMiddleware } from './sessions/middleware';
import { jwksRoutes } from './tokens/routes';
import { authorizeRoutes, consentRoutes, discoveryRoutes, logoutRoutes, oauthRoutes, userinfoRoutes } from './oauth/routes';
import { registrationRoutes } from './oauth/registration-routes';
import { ENDPOINTS } from './oauth/discovery';
import { pages } from './hosted-pages';
import { requestSession } from './request-session';
import { upstreamCallbacks } from './auth/upstream-routes';
import { connectPages, gatewayHandler } from './gateway/routes';
import { handoffApi, handoffPages } from './handoff/routes';

/**
 * Every router and where it is mounted. Each router declares its error channel (router() in
 * error-channels.tsx); the first whose route matches a request decides how its errors look.
 */
const MOUNTS = [
  ['/auth/admin/v1', adminRoutes],
  ['/auth', adminDocs],
  ['/auth/api', authApi],
  ['/auth/api', accountApi],
  ['/auth/api', handoffApi],
  ['/auth/dev', devMailboxRoutes],
  ['/auth', handoffPages],
  ['/auth', connectPages],
  ['/auth', oauthRoutes],
  ['/auth', userinfoRoutes],
  ['/auth', authorizeRoutes],
  ['/auth', consentRoutes],
  ['/auth', logoutRoutes],
  ['/auth', registrationRoutes],
  // Before the hosted pages: an upstream's answer comes from the upstream's page (Apple posts it),
  // with no CSRF token of ours — the request's binding cookie stands in.
  ['/auth', upstreamCallbacks],
  ['/auth', pages],
  ['/.well-known', jwksRoutes],
  ['/.well-known', discoveryRoutes],
] as const;

/**
 * The OAuth back channel: endpoints called by servers and scripts with client credentials or
 * tokens (RFC 6749 §3.2, RFC 7009, RFC 7662, RFC 9126, RFC 8628 §3.1, OIDC Core §5.3).
 */
const BACK_CHANNEL: ReadonlySet<string> = new Set([
  ENDPOINTS.token,
  ENDPOINTS.revocation,
  ENDPOINTS.introspection,
  ENDPOINTS.pushedAuthorization,
  ENDPOINTS.deviceAuthorization,
  ENDPOINTS.userinfo,
  ENDPOINTS.upstreamToken,
]);

/** The admin API: called by operators' systems with tokens (its reference page is a document). */
const isBackChannel = (path: string) => BACK_CHANNEL.has(path) || (path.startsWith(`${ADMIN_BASE}/`) && path !== `${ADMIN_BASE}/reference`);

/** Builds the worker's app. Tests pass their own deps factory to inject failures. */
export function createApp(makeDeps: (env: Env) => Promise<Deps> = depsFor) {
  const app = new Hono<AppEnv>();

  // Every request: its deps (config errors answered as config_invalid), then the host decides —
  // Gatehouse's own pages and APIs live on PUBLIC_URL's host only; every other host is an app host
  // that the gateway fronts (docs/security.md, "Hosts").
  app.use(async (c, next) => {
    const ray = c.req.header('cf-ray');
    if (ray) c.set('requestId', ray);
    try {
      c.set('deps', await makeDeps(c.env));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.error(JSON.stringify({ event: 'config_invalid', issues: e.issues }));
      throw new GatehouseError('config_invalid', e.message);
    }
    if (hostOf(c.req.url) !== c.var.deps.config.publicUrl.host) {
      c.set('channel', { name: 'gateway' });
      return gatewayHandler(c);
    }
    await next();
  });

  // Webhooks: after the answer to any of Gatehouse's own requests (an error too: a failed sign-in can
  // be an event), the outbox is fanned out into the queue — never on the gateway's path, and only
  // while an endpoint is enabled (admin/webhook-dispatch.ts).
  app.use('/auth/*', async (c, next) => {
    await next();
    deferTo(c, 'webhook_dispatch_failed')(dispatchAfterResponse(c.var.deps));
  });

  // One D1 session per request from here on (src/request-session.ts); the gateway above runs on the primary.
  app.use(requestSession);

  // The JSON APIs take state changes from Gatehouse's own pages only (cookies are sent same-site;
  // JSON already needs a CORS preflight that is never granted — this is the second lock).
  app.use('/auth/api/*', async (c, next) => {
    const origin = c.req.header('origin');
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && origin !== undefined && origin !== c.var.deps.config.publicUrl.origin)
      throw new GatehouseError('csrf_failed', 'This API takes requests from Gatehouse’s own pages only.');
    await next();
  });

  // Every body Gatehouse reads is bounded, whoever sends it.
  const limitTo = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw new GatehouseError('payload_too_large', `The request body is larger than ${maxSize} bytes.`);
      },
    });
  const [bodies, adminBodies] = [limitTo(MAX_BODY_BYTES), limitTo(ADMIN_MAX_BODY_BYTES)];
  app.use('/auth/*', (c, next) => (c.req.path.startsWith(`${ADMIN_BASE}/`) ? adminBodies : bodies)(c, next));
  // What browsers load — pages, the JSON API, redirects — gets the document security headers and the
  // session; the OAuth back channel (servers and scripts calling with client credentials or tokens)
  // has no session and renders nothing, and gets `nosniff` (its JSON is never a document).
  const pages = every(
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
    sessionMiddleware,
  );
  app.use('/auth/*', async (c, next) => {
    if (!isBackChannel(c.req.path)) return pages(c, next);
    c.set('session', null);
    c.header('x-content-type-options', 'nosniff');
    await next();
  });

  // The routers, and the one error handler: an error anywhere (config, body limit, session, a
  // handler) is answered in the channel of the route the request was for.
  mountRouters(app, MOUNTS);
  // Everything else goes through the gateway (DESIGN.md §1).
  app.all('*', gatewayHandler);

  app.notFound((c) => {
    throw new GatehouseError('not_found', `Nothing at ${new URL(c.req.url).pathname}.`);
  });

  return app;
}

/** The host of an absolute URL (a request's, which always is), without parsing all of it. */
function hostOf(url: string): string {
  const start = url.indexOf('//') + 2;
  const end = url.indexOf('/', start);
  return url.slice(start, end < 0 ? undefined : end).toLowerCase();
}
