import type { Deps } from '../deps';
import type { UserView } from '../identity/users';
import type { Grant } from '../sessions/grants';
import { signToken } from '../tokens/jwt';
import { userClaims } from './claims';
import type { Client } from './clients';
import { formatOpaqueToken, formatRefreshToken } from './token-formats';

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  id_token?: string;
  refresh_token?: string;
}

/** The issuer identifier: Gatehouse's public origin (no trailing slash), from config only. */
export const issuerOf = (deps: Deps) => deps.config.publicUrl.origin;

/**
 * An RFC 9068 access token (or, for a client set to `opaque`, a reference to one). `aud` is Gatehouse itself (its userinfo endpoint and the routes the
 * gateway fronts); `roles` and `tier` ride along for the gateway's policy checks.
 */
export async function issueAccessToken(
  deps: Deps,
  a: { client: Client; subject: string; scope: string[]; now: number; user?: UserView; grant?: Grant; grantId?: string },
) {
  const ttl = a.client.accessTokenTtl ?? deps.config.tokens.accessTtl;
  const claims: Record<string, unknown> = { sub: a.subject, client_id: a.client.clientId, scope: a.scope.join(' ') };
  if (a.grant) Object.assign(claims, { auth_time: a.grant.authTime, amr: a.grant.amr, sid: a.grant.sid, ...(a.grant.acr ? { acr: a.grant.acr } : {}) });
  if (a.user) Object.assign(claims, { roles: a.user.roles, tier: a.user.tier });
  const signed = await signToken(deps.signingKeys, {
    kind: 'access',
    claims,
    issuer: issuerOf(deps),
    audience: issuerOf(deps),
    ttl,
    now: a.now,
  });
  if (a.client.accessTokenFormat === 'jwt') return { token: signed.token, expiresIn: ttl };
  // Phantom token: the client sees an opaque reference; the JWT stays with Gatehouse, which trades
  // it back at userinfo, introspection and (the gateway) on the way to an origin.
  const owner = a.user ? a.user.id : `client:${a.client.clientId}`;
  const secret = await deps.sessions.storeOpaque(owner, signed.token, signed.exp * 1000, a.grantId ?? null);
  return { token: formatOpaqueToken(owner, secret), expiresIn: ttl };
}

/** An OIDC ID token for `client`, signed with the client's chosen algorithm. */
export async function issueIdToken(
  deps: Deps,
  i: { client: Client; user: UserView; grant: Grant; nonce: string | null; now: number },
): Promise<string> {
  const claims: Record<string, unknown> = {
    ...userClaims(i.user, i.grant.scope),
    auth_time: i.grant.authTime,
    amr: i.grant.amr,
    sid: i.grant.sid,
    ...(i.grant.acr ? { acr: i.grant.acr } : {}),
    ...(i.nonce ? { nonce: i.nonce } : {}),
  };
  const { token } = await signToken(deps.signingKeys, {
    kind: 'id',
    alg: i.client.idTokenAlg,
    claims,
    issuer: issuerOf(deps),
    audience: i.client.clientId,
    ttl: deps.config.tokens.idTtl,
    now: i.now,
  });
  return token;
}

/** The token response for a user grant (code or refresh). */
export async function userTokenResponse(
  deps: Deps,
  r: {
    client: Client;
    user: UserView;
    grant: Grant;
    nonce: string | null;
    now: number;
    /** The refresh family, or the code's hash: revoking it takes opaque access tokens along. */
    grantId: string;
    refresh?: { familyId: string; secret: string };
  },
): Promise<TokenResponse> {
  const access = await issueAccessToken(deps, {
    client: r.client,
    subject: r.user.id,
    scope: r.grant.scope,
    now: r.now,
    user: r.user,
    grant: r.grant,
    grantId: r.grantId,
  });
  const response: TokenResponse = {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    scope: r.grant.scope.join(' '),
  };
  if (r.grant.scope.includes('openid')) response.id_token = await issueIdToken(deps, r);
  if (r.refresh) response.refresh_token = formatRefreshToken(r.user.id, r.refresh.familyId, r.refresh.secret);
  return response;
}
