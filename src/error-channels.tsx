import type { Context, Hono } from 'hono';
import { TrieRouter } from 'hono/router/trie-router';
import type { AppEnv } from './deps';
import { gatewayRedirect, GatewayRefusal } from './gateway/refusal';
import { describeError, GatehouseError, INTERNAL_DETAIL, isInternal, oauthText, problemBody } from './lib/errors';
import { channelOf, type Channel } from './lib/router';
import { RedirectableError } from './oauth/authorization-response';
import { sendAuthorizationResponse } from './oauth/response-page';
import { clearSessionCookie } from './sessions/middleware';
import { DPOP_ALGS, DpopError } from './tokens/dpop';
import { askForProof, renderErrorPage } from './ui/error-page';
import { requestIdOf } from './lib/request-meta';

// How each channel that src/lib/router.ts names renders an error, and the app's one error handler.

type C = Context<AppEnv>;
type Router = Hono<AppEnv>;

/**
 * The channel of a request no router's route matches: problem+json under Gatehouse's JSON prefixes;
 * everything else is the gateway's (which also answers the unknown paths under /auth: 404).
 */
function fallbackChannel(path: string): Channel {
  if (/^\/(auth\/api|auth\/dev|\.well-known)(\/|$)/.test(path)) return { name: 'problem' };
  return { name: 'gateway' };
}

type Mounts = readonly (readonly [prefix: string, router: Router])[];

/**
 * Mounts the routers (after the app's shared middleware) and makes renderError the app's error
 * handler. The channel is looked up only when an error is rendered — nothing is done per request
 * — from the route the request matches, so an error anywhere on the way (config, body limit,
 * session, the handler) is answered the way that route's callers expect. A handler may set
 * `c.var.channel` to answer otherwise (an app host's requests are the gateway's).
 */
export function mountRouters(app: Router, mounts: Mounts): void {
  const table = new TrieRouter<Channel>();
  for (const [prefix, r] of mounts) {
    const channel = channelOf(r);
    if (!channel) throw new Error(`A router mounted at ${prefix} declares no error channel (use router()).`);
    for (const route of r.routes) {
      // A sub-router's catch-all middleware would claim its siblings' paths: the fallback covers them.
      if (!route.path.endsWith('*')) table.add(route.method, `${prefix}${route.path === '/' ? '' : route.path}`, channel);
    }
    app.route(prefix, r);
  }
  const routeChannel = (c: C): Channel => {
    // The path as Hono routes it (percent-decoded: /auth/%74oken is /auth/token), HEAD as GET.
    const [matches] = table.match(c.req.method === 'HEAD' ? 'GET' : c.req.method, c.req.path);
    return matches[0]?.[0] ?? fallbackChannel(c.req.path);
  };
  app.onError((err, c) => renderError(err, c, c.var.channel ?? routeChannel(c)));
}

/** The app's one error handler: logs what is ours to fix, then renders for the request's channel. */
function renderError(err: Error, c: C, channel: Channel): Response | Promise<Response> {
  const e = err instanceof GatehouseError ? err : new GatehouseError('server_error', 'Something went wrong on our side.');
  if (!(err instanceof GatehouseError) || e.status >= 500) {
    const cause = err instanceof GatehouseError ? (err as { cause?: unknown }).cause : err;
    console.error(JSON.stringify({ event: 'request_failed', requestId: requestIdOf(c), code: e.code, error: describeError(cause) }));
  }
  switch (channel.name) {
    case 'oauth':
      return oauthJson(c, e);
    case 'oauth-resource':
      return resourceError(c, e, channel.dpop === true);
    case 'authorize':
    case 'consent':
      if (e instanceof RedirectableError) return sendAuthorizationResponse(c, e.response(c.var.deps), channel.name === 'consent');
      return renderErrorPage(c, e);
    case 'problem':
      return problemResponse(c, e);
    case 'admin':
      return adminProblem(c, e);
    case 'page':
      return pageError(c, e);
    case 'gateway':
      // A browser's page load that needs a session goes to sign in and comes back (per Accept).
      if (e instanceof GatewayRefusal && e.signInBack !== undefined && wantsHtml(c))
        return gatewayRedirect(c, { back: e.signInBack, status: 302 });
      return gatewayProblem(c, e);
  }
}

/** RFC 6749 §5.2 (and the extensions' codes); a 5xx never says more than that it was ours. */
function oauthJson(c: C, e: GatehouseError, extra: Record<string, string> = {}): Response {
  const headers: Record<string, string> = { 'cache-control': 'no-store', pragma: 'no-cache', 'access-control-allow-origin': '*', ...extra };
  if (e.extra.retryAfter) headers['retry-after'] = String(e.extra.retryAfter);
  if (e instanceof DpopError && e.nonce) {
    headers['dpop-nonce'] = e.nonce;
    headers['access-control-expose-headers'] = 'WWW-Authenticate, DPoP-Nonce';
  }
  if (e.code === 'invalid_client') headers['www-authenticate'] = 'Basic realm="gatehouse"';
  const body = isInternal(e)
    ? { error: 'server_error', error_description: INTERNAL_DETAIL }
    : { error: e.code, error_description: oauthText(e.message) };
  return c.json(body, e.status as 400, headers);
}

/**
 * A protected resource's error (RFC 6750 §3): a missing or bad token — or, RFC 9449 §7.1, a bad
 * DPoP proof — is a 401 challenge naming the error under the scheme it concerns; a token without
 * the scope is 403 `insufficient_scope`.
 */
function resourceError(c: C, e: GatehouseError, dpop: boolean): Response {
  const dpopError = e.code === 'invalid_dpop_proof' || e.code === 'use_dpop_nonce';
  if (e.status === 403) return oauthJson(c, e, { 'www-authenticate': 'Bearer realm="gatehouse", error="insufficient_scope"' });
  if (e.status !== 401 && !dpopError) return oauthJson(c, e);
  const code = dpopError ? e.code : 'invalid_token';
  const description = oauthText(e.message);
  const named = `, error="${code}", error_description="${description}"`;
  const challenges = [`Bearer realm="gatehouse"${dpopError ? '' : named}`];
  if (dpop) challenges.push(`DPoP algs="${DPOP_ALGS.join(' ')}"${dpopError ? named : ''}`);
  const headers: Record<string, string> = {
    'cache-control': 'no-store',
    'access-control-allow-origin': '*',
    'access-control-expose-headers': 'WWW-Authenticate, DPoP-Nonce',
    'www-authenticate': challenges.join(', '),
  };
  if (e instanceof DpopError && e.nonce) headers['dpop-nonce'] = e.nonce;
  return c.json({ error: code, error_description: description }, 401, headers);
}

/**
 * A hosted page's error. A form the route declared comes first, re-rendered with the message at
 * its field; then what the person can do about it — sign in (again), give a proof, set up an
 * authenticator app, step up — coming back to where they were; then a page saying what happened.
 */
function pageError(c: C, e: GatehouseError): Response | Promise<Response> {
  const wantsJson = c.req.header('accept')?.includes('application/json') === true;
  if (e.status >= 500) return wantsJson ? problemResponse(c, e) : renderErrorPage(c, e);
  const form = c.var.errorForm;
  if (form) {
    if (e.extra.retryAfter) c.header('retry-after', String(e.extra.retryAfter));
    return c.html(
      form({ csrf: c.var.csrfToken, error: e.message, ...(e.extra.field ? { field: e.extra.field } : {}) }) as string,
      e.status as 400,
    );
  }
  const back = c.var.returnAfterSignIn ?? (c.req.method === 'GET' ? pathOf(c) : '/auth/account');
  if (e.code === 'unauthenticated') {
    clearSessionCookie(c);
    return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: back })}`, 303);
  }
  if ((e.code === 'proof_required' || e.code === 'invalid_proof') && c.req.method === 'POST') return askForProof(c, e);
  if (e.code === 'recent_sign_in_required')
    return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: back, reason: 'recent' })}`, 303);
  // Recovery codes come with an authenticator app: its set-up page first.
  if (e.code === 'totp_required') return c.redirect('/auth/account/totp', 303);
  if (e.code === 'second_factor_required' && e.extra.acr && c.var.returnAfterSignIn)
    return c.redirect(`/auth/second-factor?${new URLSearchParams({ return_to: back, acr: e.extra.acr })}`, 303);
  // A script on a page (fetch with Accept: application/json) gets the problem document.
  if (wantsJson) return problemResponse(c, e);
  return renderErrorPage(c, e, c.var.errorPage);
}

/** RFC 9457 problem+json, with Retry-After where the error carries one. */
function problemResponse(c: C, e: GatehouseError): Response {
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json',
    'cache-control': 'no-store',
  };
  if (e.extra.retryAfter) headers['retry-after'] = String(e.extra.retryAfter);
  if (e.status === 401) headers['www-authenticate'] = 'Cookie realm="gatehouse"';
  // Through the context, so headers a route set before failing (a cookie change, Allow) go with it.
  return c.body(JSON.stringify(problemBody(e, requestIdOf(c))), e.status as 400, headers);
}

/** The admin API's problem+json: its 401s and 403s carry the Bearer challenge of a protected resource. */
function adminProblem(c: C, e: GatehouseError): Response {
  const res = problemResponse(c, e);
  if (e.status === 401)
    res.headers.set(
      'www-authenticate',
      `Bearer realm="gatehouse-admin", error="invalid_token", error_description="${oauthText(e.message)}"`,
    );
  else if (e.code === 'insufficient_scope')
    res.headers.set('www-authenticate', `Bearer realm="gatehouse-admin", error="insufficient_scope", scope="${e.extra.scope ?? ''}"`);
  return res;
}

/** The gateway's problem+json, with whatever challenge (WWW-Authenticate, DPoP-Nonce, Allow) the refusal carries. */
function gatewayProblem(c: C, e: GatehouseError): Response {
  const res = problemResponse(c, e);
  if (e instanceof GatewayRefusal) for (const [name, value] of Object.entries(e.headers)) res.headers.set(name, value);
  return res;
}

const wantsHtml = (c: C) => c.req.method === 'GET' && (c.req.header('accept') ?? '').includes('text/html');

const pathOf = (c: C) => {
  const url = new URL(c.req.url);
  return `${url.pathname}${url.search}`;
};
