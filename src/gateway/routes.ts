import { getCookie } from 'hono/cookie';
import { serialize } from 'hono/utils/cookie';
import type { Context } from 'hono';
import type { AppEnv } from '../deps';
import { GatehouseError } from '../lib/errors';
import { problemResponse } from '../lib/http';
import { issuerOf } from '../oauth/issue';
import { verifyAccessToken } from '../oauth/resource';
import { CSRF_COOKIE, SESSION_COOKIE, sessionCookieAttributes } from '../sessions/cookie';
import { resumeSession } from '../sessions/sessions';
import { HELD_BODY_LIMIT, HELD_TTL_MS } from '../sessions/held-requests';
import { audit } from '../identity/audit';
import { requestMeta } from '../lib/http';
import { assertionFor } from './assertion';
import { sanitizeRequestHeaders } from './headers';
import { identityFromAccessToken, identityFromSession, type Identity } from './identity';
import { injectIdentity } from './inject';
import { matchesPattern, normalisePath } from './path';
import { decide } from './policy';
import { forward } from './proxy';
import type { Route } from './routes-config';

type C = Context<AppEnv>;

/** Opaque access token → its JWT, per isolate, until the JWT expires (the phantom-token pattern). */
const phantomCache = new Map<string, { jwt: string; exp: number }>();

/** Paths that belong to Gatehouse itself, whatever their case: never proxied. */
const RESERVED = /^\/(auth|\.well-known)(\/|$)/i;

const wantsHtml = (c: C) => c.req.method === 'GET' && (c.req.header('accept') ?? '').includes('text/html');
/** A browser navigation or form submission (not fetch/XHR from a script), of any method. */
const isNavigation = (c: C) =>
  c.req.header('sec-fetch-mode') === 'navigate' || (c.req.header('accept') ?? '').includes('text/html');

/** The query parameter that brings a browser back to replay its held request after step-up. */
export const RESUME_PARAM = 'gh_resume';

/** RFC 6750 §3.1 error codes, plus RFC 9470's for a sign-in that is too old or too weak. */
const BEARER_ERRORS: Record<string, string> = {
  unauthenticated: 'invalid_token',
  invalid_token: 'invalid_token',
  invalid_request: 'invalid_request',
  insufficient_scope: 'insufficient_scope',
  reauthenticate: 'insufficient_user_authentication',
};

function challenge(c: C, status: 401 | 403, error: string, reason: string, bearer: boolean): Response {
  const e = new GatehouseError(status === 401 ? 'unauthenticated' : 'forbidden', status, reason);
  const res = problemResponse(c, e);
  // No credential: the bare challenge (RFC 6750 §3.1); a presented token gets the error code, when
  // one applies (a missing role has none).
  const code = bearer ? BEARER_ERRORS[error] : undefined;
  res.headers.set('www-authenticate', `Bearer realm="gatehouse"${code ? `, error="${code}"` : ''}`);
  return res;
}

/**
 * Everything that is not Gatehouse's own: match a route on the normalised path, authenticate
 * (bearer token or session cookie — verified in the isolate), apply the route's policy, strip
 * whatever a client could use to impersonate someone, inject the verified identity and a signed
 * assertion, and forward (DESIGN.md §1).
 */
export async function gatewayHandler(c: C): Promise<Response> {
  const { deps } = c.var;
  const url = new URL(c.req.url);
  const normalised = normalisePath(url.pathname);
  if (!normalised.ok) return problemResponse(c, new GatehouseError('invalid_request', 400, `Refused path: ${normalised.reason}.`));
  const path = normalised.path;
  // The resume marker is Gatehouse's: taken off before matching, never seen by the origin.
  const resumeId = url.searchParams.get(RESUME_PARAM);
  if (resumeId !== null) url.searchParams.delete(RESUME_PARAM);
  if (RESERVED.test(path)) return problemResponse(c, new GatehouseError('not_found', 404, `Nothing at ${path}.`));
  const route = deps.config.gateway.routes.find(
    (r) => matchesPattern(path, r.match) && (!r.methods || r.methods.includes(c.req.method as never)) && (!r.host || r.host === url.host),
  );
  if (!route) {
    if (path === '/') return c.redirect('/auth/account', 302);
    return problemResponse(c, new GatehouseError('not_found', 404, `No route for ${path}.`));
  }

  const now = deps.now();
  let who: Identity | null = null;
  let cookie: { value: string; maxAge: number } | 'clear' | null = null;
  const authorization = c.req.header('authorization');
  const bearer = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization ?? '')?.[1];
  if (authorization && !bearer) return challenge(c, 401, 'invalid_request', 'The Authorization header is not a bearer token.', true);
  if (bearer) {
    try {
      who = identityFromAccessToken(await verifyAccessToken(deps, bearer, phantomCache));
    } catch (e) {
      if (e instanceof GatehouseError && e.code === 'invalid_token') return challenge(c, 401, 'invalid_token', e.message, true);
      throw e;
    }
  } else {
    const session = await resumeSession(deps, getCookie(c, SESSION_COOKIE));
    if (session.status === 'valid') {
      who = identityFromSession(session.claims);
      if (session.refreshed) cookie = session.refreshed;
    } else if (session.status === 'ended') cookie = 'clear';
  }

  // A `fresh` route asks the session's Durable Object on every request: revocation is immediate.
  if (route.policy.fresh && who?.sid && !(await deps.sessions.get(who.sub, who.sid, now))) {
    if (who.via === 'session') cookie = 'clear';
    who = null;
  }

  const decision = decide(route.policy, who, Math.floor(now / 1000));
  if (!decision.allow) {
    // Signed in, but not strongly or recently enough: a browser steps up and comes back. A form
    // post is held (≤ 1 MiB, 5 minutes) and replayed once on the way back.
    if (decision.error === 'reauthenticate' && who?.via === 'session' && isNavigation(c)) {
      // Still not enough on the way back (e.g. a passkey was needed): keep the held request's marker.
      const back = resumeId !== null && c.req.method === 'GET' ? withResume(`${path}${url.search}`, resumeId) : `${path}${url.search}`;
      return withCookie(await stepUpRedirect(c, decision, who, back, now), cookie);
    }
    const respond = () => {
      if (decision.status === 401 && wantsHtml(c) && !bearer) {
        const returnTo = `${path}${url.search}`;
        const to = new URLSearchParams({ return_to: returnTo });
        return c.redirect(`/auth/sign-in?${to}`, 302);
      }
      return challenge(c, decision.status, decision.error, decision.reason, Boolean(bearer));
    };
    return withCookie(respond(), cookie);
  }

  const headers = sanitizeRequestHeaders(c.req.raw.headers, {
    prefix: deps.config.gateway.prefix,
    assertionHeader: `${deps.config.gateway.prefix}Assertion`,
    ownCookies: [SESSION_COOKIE, CSRF_COOKIE],
  });
  headers.set('x-forwarded-for', c.req.header('cf-connecting-ip') ?? '');
  headers.set('x-forwarded-proto', url.protocol.slice(0, -1));
  headers.set('x-forwarded-host', url.host);
  if (who) {
    const exposeEmail = route.policy.expose.includes('email');
    const assertion = await assertionFor(deps.signingKeys, { who, audience: route.origin, issuer: issuerOf(deps), exposeEmail, now });
    injectIdentity(headers, who, deps.config.gateway.prefix, assertion, exposeEmail);
  }

  const target = targetOf(c, route, `${path}${url.search}`);
  if (resumeId !== null && c.req.method === 'GET') {
    // Back from step-up: replay the held request, once, for the same user and URL.
    const held = who?.via === 'session' && /^[A-Za-z0-9_-]{22}$/.test(resumeId) ? await deps.sessions.takeHeldRequest(who.sub, resumeId, now) : null;
    if (!held || held.url !== `${path}${url.search}`)
      return withCookie(
        problemResponse(c, new GatehouseError('request_not_held', 409, 'This held request was already replayed, has expired (requests are held for 5 minutes) or belongs to another page.')),
        cookie,
      );
    headers.delete('content-length');
    if (held.contentType) headers.set('content-type', held.contentType);
    else headers.delete('content-type');
    await audit(deps.db, { type: 'request_replayed', userId: who!.sub, meta: requestMeta(c), detail: { method: held.method, url: held.url, from: held.sid, sid: who!.sid }, at: now }).catch(() => undefined);
    return withCookie(await forward(target, { method: held.method, body: held.body }, headers), cookie);
  }
  const response = await forward(target, { method: c.req.method, body: c.req.raw.body }, headers);
  return withCookie(response, cookie);
}

/** Where a browser goes to step up; a non-GET request is held first and its id added to the way back. */
async function stepUpRedirect(
  c: C,
  decision: { stepUp: 'second_factor' | 'sign_in'; acr: string | null },
  who: Identity,
  back: string,
  now: number,
): Promise<Response> {
  const { deps } = c.var;
  let returnTo = back;
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
    const body = await readLimited(c.req.raw, HELD_BODY_LIMIT);
    if (!body) return problemResponse(c, new GatehouseError('payload_too_large', 413, `A request held during step-up may be at most ${HELD_BODY_LIMIT} bytes.`));
    const id = await deps.sessions.holdRequest(who.sub, {
      method: c.req.method,
      url: back,
      contentType: c.req.header('content-type') ?? null,
      body,
      sid: who.sid!,
      expiresAt: now + HELD_TTL_MS,
    });
    await audit(deps.db, { type: 'request_held', userId: who.sub, meta: requestMeta(c), detail: { method: c.req.method, url: back, sid: who.sid }, at: now }).catch(() => undefined);
    returnTo = withResume(back, id);
  }
  const query = new URLSearchParams({ return_to: returnTo });
  if (decision.stepUp === 'sign_in') return c.redirect(`/auth/sign-in?${query}`, 303);
  if (decision.acr) query.set('acr', decision.acr);
  return c.redirect(`/auth/second-factor?${query}`, 303);
}

const withResume = (pathAndQuery: string, id: string) =>
  `${pathAndQuery}${pathAndQuery.includes('?') ? '&' : '?'}${RESUME_PARAM}=${encodeURIComponent(id)}`;

/** The whole body if it is at most `limit` bytes, else null (stops reading at the limit). */
async function readLimited(request: Request, limit: number): Promise<ArrayBuffer | null> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > limit || !request.body) return declared > limit ? null : new ArrayBuffer(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out.buffer;
}

function targetOf(c: C, route: Route, pathAndQuery: string): { fetcher: Fetcher | null; url: URL; timeoutMs: number } {
  if (route.origin.startsWith('service:')) {
    const name = route.origin.slice('service:'.length);
    const fetcher = (c.env as unknown as Record<string, Fetcher | undefined>)[name];
    if (!fetcher) throw new GatehouseError('config_invalid', 500, `ROUTES names service:${name}, but no such binding exists.`);
    return { fetcher, url: new URL(pathAndQuery, `https://${name.toLowerCase()}.internal`), timeoutMs: route.timeoutMs };
  }
  return { fetcher: null, url: new URL(pathAndQuery, route.origin), timeoutMs: route.timeoutMs };
}

/** Adds the session cookie change to a response (the origin's own headers are kept as they are). */
function withCookie(response: Response, cookie: { value: string; maxAge: number } | 'clear' | null): Response {
  if (!cookie || response.status === 101) return response;
  const out = new Response(response.body, response);
  const value = cookie === 'clear' ? '' : cookie.value;
  out.headers.append('set-cookie', serialize(SESSION_COOKIE, value, sessionCookieAttributes(cookie === 'clear' ? 0 : cookie.maxAge)));
  return out;
}
