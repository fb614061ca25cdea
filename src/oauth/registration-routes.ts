import { Hono, type Context } from 'hono';
import type { AppEnv } from '../deps';
import { describeError, GatehouseError, oauthText } from '../lib/errors';
import { problemResponse, requestMeta } from '../lib/http';
import { enforceIpLimit } from '../lib/rate-limit';
import { deleteRegistration, readRegistration, registerClient, updateRegistration, type RequestBody } from './registration';

type C = Context<AppEnv>;

/** Dynamic client registration under /auth (RFC 7591 and RFC 7592; docs/oidc.md). */
export const registrationRoutes = new Hono<AppEnv>();

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const bearerOf = (c: C) => /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(c.req.header('authorization') ?? '')?.[1];
const clientIdOf = (c: C) => c.req.param('client_id') ?? '';
const bodyOf = async (c: C): Promise<RequestBody> => ({ contentType: c.req.header('content-type'), bytes: await c.req.arrayBuffer() });

/**
 * RFC 7591 §3.2.2 errors (RFC 6749 §5.2 JSON); a 401 carries RFC 6750 §3's Bearer challenge. Not
 * routes.tsx's oauthErrorResponse, whose bearer mode answers for a protected resource (userinfo,
 * and with DPoP a challenge for both schemes): the tokens here are plain bearer tokens.
 */
function registrationError(c: C, e: unknown): Response {
  const err = e instanceof GatehouseError ? e : new GatehouseError('server_error', 500, 'The server could not complete the request.');
  if (!(e instanceof GatehouseError) || err.status >= 500)
    console.error(JSON.stringify({ event: 'registration_failed', requestId: c.get('requestId'), code: err.code, error: describeError(e) }));
  const description = oauthText(err.message);
  const headers: Record<string, string> = { ...NO_STORE };
  if (err.extra.retryAfter) headers['retry-after'] = String(err.extra.retryAfter);
  if (err.status === 401) headers['www-authenticate'] = `Bearer realm="gatehouse", error="invalid_token", error_description="${description}"`;
  return c.json({ error: err.code, error_description: description }, err.status as 400, headers);
}

/**
 * Off (no REGISTRATION_TOKEN), these paths answer as a GET of an unknown path under /auth does
 * (404 not_found, problem+json), whatever the method. On,
 * each is limited per IP like the credential endpoints, and errors are OAuth JSON (RFC 7591
 * §3.2.2) with RFC 6750's Bearer challenge on a 401.
 */
const whenEnabled = (handle: (c: C) => Promise<Response>) => async (c: C) => {
  if (!c.var.deps.config.registration.initialToken)
    return problemResponse(c, new GatehouseError('not_found', 404, `Nothing at ${new URL(c.req.url).pathname}.`));
  try {
    await enforceIpLimit(c.var.deps.rateLimit, requestMeta(c).ip);
    return await handle(c);
  } catch (e) {
    return registrationError(c, e);
  }
};

registrationRoutes.post(
  '/register',
  whenEnabled(async (c) => c.json(await registerClient(c.var.deps, { bearer: bearerOf(c), body: await bodyOf(c), meta: requestMeta(c) }), 201, NO_STORE)),
);

registrationRoutes.get(
  '/register/:client_id',
  whenEnabled(async (c) => c.json(await readRegistration(c.var.deps, { clientId: clientIdOf(c), bearer: bearerOf(c) }), 200, NO_STORE)),
);

registrationRoutes.put(
  '/register/:client_id',
  whenEnabled(async (c) =>
    c.json(await updateRegistration(c.var.deps, { clientId: clientIdOf(c), bearer: bearerOf(c), body: await bodyOf(c), meta: requestMeta(c) }), 200, NO_STORE),
  ),
);

registrationRoutes.delete(
  '/register/:client_id',
  whenEnabled(async (c) => {
    await deleteRegistration(c.var.deps, { clientId: clientIdOf(c), bearer: bearerOf(c), meta: requestMeta(c) });
    return c.body(null, 204, NO_STORE);
  }),
);
