import type { Context } from 'hono';
import type { AppEnv } from '../deps';
import { router } from '../lib/router';
import { GatehouseError } from '../lib/errors';
import { requestMeta } from '../lib/request-meta';
import { enforceIpLimit } from '../lib/rate-limit';
import { deleteRegistration, readRegistration, registerClient, updateRegistration, type RequestBody } from './registration';

type C = Context<AppEnv>;

/**
 * Dynamic client registration under /auth (RFC 7591 and RFC 7592; docs/oidc.md). Errors are OAuth
 * JSON (RFC 7591 §3.2.2); the registration endpoints are protected resources whose tokens are
 * plain bearer tokens, so a 401 carries RFC 6750's Bearer challenge alone.
 */
export const registrationRoutes = router('oauth-resource');

const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
const bearerOf = (c: C) => /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(c.req.header('authorization') ?? '')?.[1];
const clientIdOf = (c: C) => c.req.param('client_id') ?? '';
const bodyOf = async (c: C): Promise<RequestBody> => ({ contentType: c.req.header('content-type'), bytes: await c.req.arrayBuffer() });

/**
 * Off (no REGISTRATION_TOKEN), these paths answer as a GET of an unknown path under /auth does
 * (404 not_found, problem+json), whatever the method. On,
 * each is limited per IP like the credential endpoints, and errors are OAuth JSON (RFC 7591
 * §3.2.2) with RFC 6750's Bearer challenge on a 401.
 */
const whenEnabled = (handle: (c: C) => Promise<Response>) => async (c: C) => {
  if (!c.var.deps.config.registration.initialToken) {
    c.set('channel', { name: 'problem' });
    throw new GatehouseError('not_found', `Nothing at ${new URL(c.req.url).pathname}.`);
  }
  await enforceIpLimit(c.var.deps.rateLimit, requestMeta(c).ip);
  return handle(c);
};

registrationRoutes.post(
  '/register',
  whenEnabled(async (c) =>
    c.json(await registerClient(c.var.deps, { bearer: bearerOf(c), body: await bodyOf(c), meta: requestMeta(c) }), 201, NO_STORE),
  ),
);

registrationRoutes.get(
  '/register/:client_id',
  whenEnabled(async (c) => c.json(await readRegistration(c.var.deps, { clientId: clientIdOf(c), bearer: bearerOf(c) }), 200, NO_STORE)),
);

registrationRoutes.put(
  '/register/:client_id',
  whenEnabled(async (c) =>
    c.json(
      await updateRegistration(c.var.deps, { clientId: clientIdOf(c), bearer: bearerOf(c), body: await bodyOf(c), meta: requestMeta(c) }),
      200,
      NO_STORE,
    ),
  ),
);

registrationRoutes.delete(
  '/register/:client_id',
  whenEnabled(async (c) => {
    await deleteRegistration(c.var.deps, { clientId: clientIdOf(c), bearer: bearerOf(c), meta: requestMeta(c) });
    return c.body(null, 204, NO_STORE);
  }),
);
