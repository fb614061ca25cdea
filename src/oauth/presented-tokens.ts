import type { Deps } from '../deps';
import { findUserView } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import {
  invalidToken,
  isAccessTokenLive,
  issuerOf,
  isMachineToken,
  parseOpaqueToken,
  tokenOwner,
  verifyAccessToken,
  type AccessTokenClaims,
} from '../tokens/access-token';
import { boundKey, checkSenderConstraint } from '../tokens/dpop';
import { userClaims } from './claims';
import type { Client } from './clients';
import { parseRefreshToken } from './token-formats';

export { invalidToken };

/**
 * UserInfo (OIDC Core §5.3): the claims the token's scope releases — for a token whose audience
 * is Gatehouse itself (not one issued for another resource), whose grant is still alive, presented
 * as its binding says (Bearer, or DPoP with a proof).
 */
export async function userInfo(
  deps: Deps,
  presented: { scheme: 'Bearer' | 'DPoP'; token: string },
  request: { proof: string | undefined; method: string; url: string },
): Promise<Record<string, unknown>> {
  const claims = await verifyAccessToken(deps, presented.token, { audience: [issuerOf(deps)] });
  // A DPoP-bound token only with a proof by its key, for this request (RFC 9449 §7).
  await checkSenderConstraint(deps, { ...presented, ...request, claims });
  const scope = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
  if (!scope.includes('openid') || isMachineToken(claims))
    throw new GatehouseError('insufficient_scope', 'The access token lacks the openid scope.');
  if (!(await isAccessTokenLive(deps, claims))) throw invalidToken('The access token has been revoked.');
  const user = await failClosed('the database', () => findUserView(deps.db, claims.sub));
  if (!user) throw invalidToken('The user no longer exists.');
  const requested = Array.isArray(claims.userinfo_claims) ? claims.userinfo_claims.filter((c): c is string => typeof c === 'string') : [];
  return userClaims(user, scope, requested);
}

/**
 * RFC 7662 §4: a client learns about a token only if it was issued to it, or the client is its
 * audience (a resource server registered with `serves`).
 */
const concerns = (claims: AccessTokenClaims, client: Client) => {
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  return claims.client_id === client.clientId || aud.some((a) => a !== undefined && client.serves.includes(a));
};

/**
 * Token introspection (RFC 7662) for an authenticated confidential client: a public client (which
 * proves nothing by authenticating) is refused, so it cannot probe other tokens.
 */
export async function introspect(deps: Deps, client: Client, token: string): Promise<Record<string, unknown>> {
  if (client.isPublic) throw new GatehouseError('invalid_client', 'Introspection is for authenticated (confidential) clients.');
  const refresh = parseRefreshToken(token);
  if (refresh) {
    const grant = await deps.sessions.inspectRefresh(refresh.userId, refresh.familyId, refresh.secret, deps.now());
    // A refresh token is only described to the client it belongs to.
    if (!grant || grant.clientId !== client.clientId) return { active: false };
    return {
      active: true,
      token_type: 'refresh_token',
      client_id: grant.clientId,
      sub: refresh.userId,
      scope: grant.scope.join(' '),
      exp: Math.floor(grant.expiresAt / 1000),
      iss: issuerOf(deps),
    };
  }
  let claims: AccessTokenClaims;
  try {
    claims = await verifyAccessToken(deps, token, { audience: 'any' });
  } catch (e) {
    if (e instanceof GatehouseError && e.code === 'invalid_token') return { active: false };
    throw e;
  }
  if (!concerns(claims, client) || !(await isAccessTokenLive(deps, claims))) return { active: false };
  return { active: true, token_type: boundKey(claims) ? 'DPoP' : 'Bearer', ...claims };
}

/**
 * Revocation (RFC 7009), only by the client the token was issued to. A refresh token ends its whole
 * family; an opaque access token ends at once; a signed access token is put on its owner's
 * revocation list (its user's, or for a machine token its client's), so userinfo, introspection and `fresh` routes refuse it at once (other
 * routes at its expiry, ≤ ACCESS_TOKEN_TTL). Unknown tokens: success.
 */
export async function revoke(deps: Deps, client: Client, token: string): Promise<void> {
  const refresh = parseRefreshToken(token);
  if (refresh) {
    const grant = await deps.sessions.inspectRefresh(refresh.userId, refresh.familyId, refresh.secret, deps.now());
    if (grant && grant.clientId === client.clientId) await deps.sessions.revokeRefreshFamily(refresh.userId, refresh.familyId);
    return;
  }
  const claims = await verifyAccessToken(deps, token, { audience: 'any' }).catch(() => null);
  if (!claims || claims.client_id !== client.clientId) return;
  const opaque = parseOpaqueToken(token);
  if (opaque) await deps.sessions.revokeOpaque(opaque.owner, opaque.secret);
  if (claims.jti) await deps.sessions.revokeAccessToken(tokenOwner(claims), claims.jti, claims.exp * 1000);
}
