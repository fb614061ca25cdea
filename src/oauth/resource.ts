import type { JWTPayload } from 'jose';
import type { Deps } from '../deps';
import { findUserById, rolesOf, viewOf } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { TokenRejected, verifyToken } from '../tokens/jwt';
import { userClaims } from './claims';
import type { Client } from './clients';
import { issuerOf } from './issue';
import { parseOpaqueToken, parseRefreshToken } from './token-formats';

export const invalidToken = (message: string) => new GatehouseError('invalid_token', 401, message);

/**
 * The JWT behind an opaque access token, or the token itself. With `cache` (the gateway), the
 * exchange happens once per isolate and the JWT is reused until it expires — the phantom-token
 * pattern; a revoked opaque token then stops working there at its expiry (≤ ACCESS_TOKEN_TTL), and at
 * once at userinfo and introspection, which never cache.
 */
export async function exchangeOpaque(deps: Deps, token: string, cache?: Map<string, { jwt: string; exp: number }>): Promise<string> {
  const opaque = parseOpaqueToken(token);
  if (!opaque) return token;
  const now = deps.now();
  const hit = cache?.get(token);
  if (hit && hit.exp * 1000 > now) return hit.jwt;
  const jwt = await deps.sessions.resolveOpaque(opaque.owner, opaque.secret, now);
  if (!jwt) throw invalidToken('The access token is not valid.');
  if (cache) {
    if (cache.size > 10_000) cache.clear();
    const exp = JSON.parse(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).exp as number;
    cache.set(token, { jwt, exp });
  }
  return jwt;
}

/**
 * Verifies a bearer access token issued by Gatehouse: a JWT in the isolate (no I/O for a known key),
 * an opaque one after exchanging it for its JWT.
 */
export async function verifyAccessToken(deps: Deps, token: string, cache?: Map<string, { jwt: string; exp: number }>): Promise<JWTPayload> {
  const jwt = await exchangeOpaque(deps, token, cache);
  try {
    return await verifyToken(deps.signingKeys, jwt, { kind: 'access', issuer: issuerOf(deps), audience: issuerOf(deps), now: deps.now() });
  } catch (e) {
    if (e instanceof TokenRejected) throw invalidToken('The access token is not valid.');
    throw e;
  }
}

/** UserInfo (OIDC Core §5.3): the claims the token's scope releases. */
export async function userInfo(deps: Deps, token: string): Promise<Record<string, unknown>> {
  const claims = await verifyAccessToken(deps, token);
  const scope = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
  if (!scope.includes('openid')) throw new GatehouseError('insufficient_scope', 403, 'The access token lacks the openid scope.');
  const user = await failClosed('the database', () => findUserById(deps.db, claims.sub!));
  if (!user) throw invalidToken('The user no longer exists.');
  return userClaims(viewOf(user, await failClosed('the database', () => rolesOf(deps.db, user.id))), scope);
}

/** Token introspection (RFC 7662) for an authenticated confidential client. */
export async function introspect(deps: Deps, client: Client, token: string): Promise<Record<string, unknown>> {
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
  try {
    const claims = await verifyAccessToken(deps, token);
    return { active: true, token_type: 'access_token', ...claims };
  } catch (e) {
    if (e instanceof GatehouseError && e.code === 'invalid_token') return { active: false };
    throw e;
  }
}

/**
 * Revocation (RFC 7009). A refresh token ends its whole family, an opaque access token ends at
 * once (only the owning client may revoke either). JWT access tokens cannot be recalled and simply
 * expire (ACCESS_TOKEN_TTL). Unknown tokens: success.
 */
export async function revoke(deps: Deps, client: Client, token: string): Promise<void> {
  const opaque = parseOpaqueToken(token);
  if (opaque) {
    const claims = await verifyAccessToken(deps, token).catch(() => null);
    if (claims?.client_id === client.clientId) await deps.sessions.revokeOpaque(opaque.owner, opaque.secret);
    return;
  }
  const refresh = parseRefreshToken(token);
  if (!refresh) return;
  const grant = await deps.sessions.inspectRefresh(refresh.userId, refresh.familyId, refresh.secret, deps.now());
  if (grant && grant.clientId !== client.clientId) return;
  if (grant) await deps.sessions.revokeRefreshFamily(refresh.userId, refresh.familyId);
}
