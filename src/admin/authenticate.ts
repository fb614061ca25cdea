import { and, eq } from 'drizzle-orm';
import { clientResources } from '../db/schema';
import type { Deps } from '../deps';
import { findUserById, rolesOf } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { invalidToken, isAccessTokenLive, isMachineToken, verifyAccessToken } from '../tokens/access-token';
import { checkSenderConstraint, parseAuthorization } from '../tokens/dpop';
import { ADMIN_AUDIENCE, type Actor, type AdminScope } from './operations';

/** The role a user needs for their token to act on the admin API (as well as the scopes). */
export const ADMIN_ROLE = 'admin';

/**
 * Who calls the admin API, from their access token — every call, before anything else runs:
 * - a token for the admin API's audience (`urn:gatehouse:admin`: a token for another API is no
 *   key here), Bearer or, when bound, DPoP with a proof for this request;
 * - still live: a revoked token or grant is refused at once (never the isolate's word alone);
 * - its client still granted the admin API, read now from D1: a client deleted, or its admin scopes
 *   narrowed, through the admin API loses them with the tokens it already holds at its next call;
 * - with the operation's scope;
 * - a user's token only while the user exists, is not blocked and has the `admin` role — read now,
 *   so taking the role away ends their access with their next call.
 * A machine client (client_credentials) acts as itself. What the caller may do is read from the
 * primary even where the call's own reads may come from a replica (docs/operations.md, "Read replication").
 */
export async function authenticateAdmin(
  deps: Deps,
  request: { authorization: string | undefined; dpop: string | undefined; method: string; url: string },
  scope: AdminScope,
): Promise<Actor> {
  const presented = parseAuthorization(request.authorization);
  if (!presented) throw invalidToken('An access token for the admin API is required (Authorization: Bearer).');
  const claims = await verifyAccessToken(deps, presented.token, { audience: [ADMIN_AUDIENCE] });
  await checkSenderConstraint(deps, { ...presented, claims, proof: request.dpop, method: request.method, url: request.url });
  if (!(await failClosed('the session store', () => isAccessTokenLive(deps, claims))))
    throw invalidToken('The access token has been revoked.');
  const clientId = String(claims.client_id ?? '');
  const scopes = await stillGranted(deps, clientId, typeof claims.scope === 'string' ? claims.scope.split(' ') : []);
  if (!scopes.includes(scope))
    throw new GatehouseError('insufficient_scope', `This needs the ${scope} scope; the token has ${scopes.join(' ') || 'none'}.`, {
      scope,
    });
  if (isMachineToken(claims)) return { kind: 'client', id: clientId, clientId, scopes };
  const [user, roles] = await failClosed('the database', () =>
    Promise.all([findUserById(deps.primary, claims.sub), rolesOf(deps.primary, claims.sub)]),
  );
  if (!user || user.blockedAt !== null) throw invalidToken('The token’s user can no longer use the admin API.');
  if (!roles.includes(ADMIN_ROLE))
    throw new GatehouseError('forbidden', `A user’s token acts on the admin API only for a user with the ${ADMIN_ROLE} role.`);
  return { kind: 'user', id: claims.sub, clientId, scopes };
}

/** The token's scopes its client is still granted at the admin API; none (401) if it is gone or has lost the API. */
async function stillGranted(deps: Deps, clientId: string, scopes: readonly string[]): Promise<string[]> {
  const grant = await failClosed('the database', () =>
    deps.primary
      .select({ scopes: clientResources.scopes })
      .from(clientResources)
      .where(and(eq(clientResources.clientId, clientId), eq(clientResources.resource, ADMIN_AUDIENCE)))
      .get(),
  );
  if (!grant) throw invalidToken('The token’s client no longer has the admin API.');
  const granted = JSON.parse(grant.scopes) as string[];
  return scopes.filter((s) => granted.includes(s));
}
