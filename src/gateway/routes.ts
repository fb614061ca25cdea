import type { Context } from 'hono';
import { safeReturnTo } from '../auth/urls';
import type { AppEnv } from '../deps';
import { clearCookie, COOKIES, readCookie, serializeCookie, writeCookie } from '../lib/cookies';
import { GatehouseError } from '../lib/errors';
import { requestMeta } from '../lib/request-meta';
import { resumeSession, type ResumedSession } from '../sessions/session-lifecycle';
import { issuerOf } from '../tokens/access-token';
import { APP_PATH, finishHandshake, issueHandshake } from './app-session';
import { assertionFor } from './assertion';
import { authenticate, type SessionCookieChange } from './authenticate';
import { filterOriginResponse, sanitizeRequestHeaders } from './headers';
import { findHeldRequest, holdRequest, replayHeldRequest, takeResumeParam, withResume } from './held-requests';
import type { Identity } from './identity';
import { injectIdentity } from './inject';
import { admit } from './admission';
import { decide, type Decision } from './policy';
import { forward } from './proxy';
import { gatewayRedirect, GatewayRefusal } from './refusal';
import { findRoute } from './route-table';
import { DPOP_ALGS } from '../tokens/dpop';
import type { Route } from './routes-config';
import { router } from '../lib/router';
import { deferTo } from '../lib/defer';
import { enforceRateLimit } from '../limits/rate-limits';
import { callerOf, rateBucketOf } from './rate-buckets';

type C = Context<AppEnv>;

/** A browser navigation or form submission (not fetch/XHR from a script), of any method. */
const isNavigation = (c: C) => c.req.header('sec-fetch-mode') === 'navigate' || (c.req.header('accept') ?? '').includes('text/html');

/** Sent by a page of this very origin: `Origin` (which browsers send on every non-GET) and Fetch Metadata agree. */
function fromThisOrigin(c: C): boolean {
  const site = c.req.header('sec-fetch-site');
  return c.req.header('origin') === new URL(c.req.url).origin && (site === undefined || site === 'same-origin');
}

/** RFC 6750 §3.1 error codes, plus RFC 9470's for a sign-in that is too old or too weak. */
const BEARER_ERRORS: Record<string, string> = {
  unauthenticated: 'invalid_token',
  invalid_token: 'invalid_token',
  invalid_request: 'invalid_request',
  insufficient_scope: 'insufficient_scope',
  reauthenticate: 'insufficient_user_authentication',
};

/**
 * A 401 or 403 with the route's challenge. No credential: the bare challenges (RFC 6750 §3.1, RFC
 * 9449 §7.1); a presented token gets the error code under the scheme it concerns, when one applies
 * (a missing role has none). A browser without a token may be sent to sign in instead (`signInBack`).
 */
function challenge(
  status: 401 | 403,
  error: string,
  reason: string,
  bearer: boolean,
  extra: { nonce?: string; signInBack?: string } = {},
): GatewayRefusal {
  const dpopError = error === 'invalid_dpop_proof' || error === 'use_dpop_nonce';
  const code = bearer && !dpopError ? BEARER_ERRORS[error] : undefined;
  const dpop = status === 401 ? `, DPoP algs="${DPOP_ALGS.join(' ')}"${dpopError ? `, error="${error}"` : ''}` : '';
  const headers: Record<string, string> = { 'www-authenticate': `Bearer realm="gatehouse"${code ? `, error="${code}"` : ''}${dpop}` };
  if (extra.nonce) headers['dpop-nonce'] = extra.nonce;
  return new GatewayRefusal(status === 401 ? 'unauthenticated' : 'forbidden', reason, headers, bearer ? undefined : extra.signInBack);
}

/** Adds a cookie to a response we are about to return (the origin's own headers are kept). */
function withSetCookie(response: Response, setCookie: string): Response {
  if (response.status === 101) return response;
  const out = new Response(response.body, response);
  out.headers.append('set-cookie', setCookie);
  return out;
}

const sessionCookie = (change: Exclude<SessionCookieChange, null>) =>
  serializeCookie(COOKIES.session, change === 'clear' ? '' : change.value, change === 'clear' ? 0 : change.maxAge);

const withSession = (response: Response, change: SessionCookieChange) =>
  change === null ? response : withSetCookie(response, sessionCookie(change));

/** The session cookie change goes out with whatever Gatehouse answers itself (a refusal, a redirect). */
const keepSessionChange = (c: C, change: SessionCookieChange) => {
  if (change !== null) c.header('set-cookie', sessionCookie(change), { append: true });
};

/**
 * Everything that is not Gatehouse's own: match a route on the normalised path (and host and
 * method), authenticate (bearer token or this host's session cookie — verified in the isolate),
 * apply the route's policy, strip whatever a client could use to impersonate someone, inject the
 * verified identity and a signed assertion, forward, and keep the origin's answer from touching
 * Gatehouse's cookies (DESIGN.md §1, §3).
 */
export async function gatewayHandler(c: C): Promise<Response> {
  const { deps } = c.var;
  const url = new URL(c.req.url);
  const host = url.host;
  const onAuthHost = host === deps.config.publicUrl.host;
  const admitted = admit({
    pathname: url.pathname,
    search: url.search,
    method: c.req.method,
    serviceWorker: c.req.header('service-worker') !== undefined,
    onAuthHost,
  });
  if (admitted.kind === 'app-endpoint') return appEndpoint(c, admitted.path);
  const { path } = admitted;
  // The resume marker is Gatehouse's: taken off before matching, never seen by the origin.
  const { id: resumeId, rest: search } = takeResumeParam(url.search);
  const here = `${path}${search}`;

  const authorization = c.req.header('authorization');
  const session: ResumedSession = authorization ? { status: 'none' } : await resumeSession(deps, readCookie(c, COOKIES.session), host);
  // Back from step-up: the held request's method picks the route, and that route's policy decides.
  const held =
    resumeId !== null && c.req.method === 'GET' && session.status === 'valid'
      ? await findHeldRequest(deps, { via: 'session', sub: session.claims.sub } as Identity, resumeId)
      : null;
  const method = held?.method ?? c.req.method;
  const route = findRoute(deps.config.gateway.routes, { method, host, path });
  if (!route) {
    if (onAuthHost && path === '/') return c.redirect('/auth/account', 302);
    throw new GatehouseError('not_found', `No route for ${path}.`);
  }

  const auth = await authenticate(
    deps,
    {
      authorization,
      apiKey: c.req.header('x-api-key'),
      dpop: c.req.header('dpop'),
      method: c.req.method,
      url: c.req.url,
      session,
      ip: requestMeta(c).ip,
      defer: deferTo(c, 'api_key_last_used_failed'),
    },
    route,
  );
  if (auth.status === 'rejected') throw challenge(401, auth.error, auth.reason, true, auth.nonce ? { nonce: auth.nonce } : {});
  const { who } = auth;
  const now = deps.now();
  const decision = decide(route.policy, who, Math.floor(now / 1000));
  if (!decision.allow) {
    keepSessionChange(c, auth.cookie);
    return refuse(c, { decision, who, bearer: auth.bearer, route, here, resume: held ? resumeId : null });
  }

  // Per caller, once the policy let the request through (a refused one costs nothing).
  if (route.rateLimit && who)
    await enforceRateLimit(deps.limits, { bucket: rateBucketOf(route), subject: callerOf(who), limit: route.rateLimit, now });

  const headers = sanitizeRequestHeaders(c.req.raw.headers, {
    prefix: deps.config.gateway.prefix,
    assertionHeader: `${deps.config.gateway.prefix}Assertion`,
    strip: route.stripHeaders,
    apiKeyHeader: route.policy.apiKeys?.includes('x-api-key') ?? false,
  });
  headers.set('x-forwarded-for', c.req.header('cf-connecting-ip') ?? '');
  headers.set('x-forwarded-proto', url.protocol.slice(0, -1));
  headers.set('x-forwarded-host', host);
  if (who) {
    const exposeEmail = route.policy.expose.includes('email');
    const assertion = await assertionFor(deps.signingKeys, { who, audience: route.origin, issuer: issuerOf(deps), exposeEmail, now });
    injectIdentity(headers, who, deps.config.gateway.prefix, assertion, exposeEmail);
  }

  const target = targetOf(c, route, here);
  let request: { method: string; body: ReadableStream | ArrayBuffer | null } = { method: c.req.method, body: c.req.raw.body };
  if (resumeId !== null && c.req.method === 'GET') {
    const taken = await replayHeldRequest(deps, { held, who, id: resumeId }, { url: here, host, route }, requestMeta(c)).catch(
      (e: unknown) => {
        keepSessionChange(c, auth.cookie);
        throw e;
      },
    );
    headers.delete('content-length');
    if (taken.contentType) headers.set('content-type', taken.contentType);
    else headers.delete('content-type');
    request = { method: taken.method, body: taken.body };
  }
  const response = filterOriginResponse(await forward(target, request, headers));
  return withSession(response, auth.cookie);
}

/**
 * A request the policy refused. A browser that is signed in but not strongly or recently enough
 * steps up and comes back (a non-GET request is held and replayed once); a signed-out browser
 * signs in; everything else gets a 401/403 challenge. On an app host both go through the host
 * handshake, so the browser comes back with a session for this host.
 */
async function refuse(
  c: C,
  r: {
    decision: Exclude<Decision, { allow: true }>;
    who: Identity | null;
    bearer: boolean;
    route: Route;
    here: string;
    resume: string | null;
  },
): Promise<Response> {
  const { deps } = c.var;
  const { decision, who } = r;
  if (decision.error === 'reauthenticate' && who?.via === 'session' && isNavigation(c)) {
    let back = r.here;
    if (r.resume) back = withResume(r.here, r.resume);
    else if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const host = new URL(c.req.url).host;
      const held = await holdRequest(deps, {
        request: c.req.raw,
        sameOrigin: fromThisOrigin(c),
        who,
        route: r.route,
        host,
        url: r.here,
        meta: requestMeta(c),
      });
      back = withResume(r.here, held);
    }
    const via: { path: string; query?: Record<string, string> } =
      decision.stepUp === 'sign_in'
        ? { path: '/auth/sign-in' }
        : { path: '/auth/second-factor', query: decision.acr ? { acr: decision.acr } : {} };
    return gatewayRedirect(c, { back, via, status: 303 });
  }
  throw challenge(decision.status, decision.error, decision.reason, r.bearer, decision.status === 401 ? { signInBack: r.here } : {});
}

/** `/.gatehouse/*` on an app host: the end of the host handshake, and signing out. */
async function appEndpoint(c: C, path: string): Promise<Response> {
  const { deps } = c.var;
  const url = new URL(c.req.url);
  c.header('cache-control', 'no-store');
  if (path === `${APP_PATH}/session` && c.req.method === 'GET') {
    let done: Awaited<ReturnType<typeof finishHandshake>>;
    try {
      done = await finishHandshake(deps, {
        code: c.req.query('code'),
        state: readCookie(c, COOKIES.connect),
        host: url.host,
        meta: requestMeta(c),
      });
    } catch (e) {
      // A failed handshake is over: its state cookie goes with the error.
      clearCookie(c, COOKIES.connect);
      throw e;
    }
    clearCookie(c, COOKIES.connect);
    writeCookie(c, COOKIES.session, done.cookie.value, done.cookie.maxAge);
    return c.redirect(done.returnTo, 303);
  }
  if (path === `${APP_PATH}/sign-out` && c.req.method === 'POST') {
    const origin = c.req.header('origin');
    if (origin !== undefined && origin !== url.origin) throw new GatehouseError('csrf_failed', 'Sign out from this site’s own pages.');
    const session = await resumeSession(deps, readCookie(c, COOKIES.session), url.host);
    if (session.status === 'valid') await deps.sessions.signOutFrom(session.claims.sub, session.claims.sid, deps.now());
    clearCookie(c, COOKIES.session);
    return c.redirect(`${deps.config.publicUrl.origin}/auth/sign-in`, 303);
  }
  throw new GatehouseError('not_found', `Nothing at ${path}.`);
}

function targetOf(c: C, route: Route, pathAndQuery: string): { fetcher: Fetcher | null; url: URL; timeoutMs: number } {
  if (route.origin.startsWith('service:')) {
    const name = route.origin.slice('service:'.length);
    const fetcher = (c.env as unknown as Record<string, Fetcher | undefined>)[name];
    if (!fetcher) throw new GatehouseError('config_invalid', `ROUTES names service:${name}, but no such binding exists.`);
    return { fetcher, url: new URL(pathAndQuery, `https://${name.toLowerCase()}.internal`), timeoutMs: route.timeoutMs };
  }
  return { fetcher: null, url: new URL(pathAndQuery, route.origin), timeoutMs: route.timeoutMs };
}

/** `/auth/connect` on Gatehouse's host: the middle of the host handshake (app-session.ts). */
export const connectPages = router('page');
connectPages.get('/connect', async (c) => {
  c.header('cache-control', 'no-store');
  if (!c.var.session) {
    const url = new URL(c.req.url);
    return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: safeReturnTo(`${url.pathname}${url.search}`) })}`, 302);
  }
  const location = await issueHandshake(c.var.deps, c.var.session, {
    host: c.req.query('host'),
    state: c.req.query('state'),
    returnTo: c.req.query('return_to'),
  });
  return c.redirect(location, 302);
});
