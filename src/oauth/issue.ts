import type { Deps } from '../deps';
import { findUserView, type UserView } from '../identity/users';
import { failClosed, oauthError } from '../lib/errors';
import type { Grant } from '../sessions/grants';
import { formatOpaqueToken, issuerOf } from '../tokens/access-token';
import { signToken } from '../tokens/jwt';
import { scopesAt, type ApiResource } from './api-resources';
import { releaseClaims, scopeClaimNames } from './claims';
import type { Client } from './clients';
import { KNOWN_SCOPES } from './grants-and-scopes';
import { formatRefreshToken } from './token-formats';

export { issuerOf };

/** What the `gty` claim says of how an access token was obtained. */
export type TokenGrantType = 'authorization_code' | 'refresh_token' | 'client_credentials' | 'device_code';

export interface TokenResponse {
  access_token: string;
  /** `DPoP` for a token bound to the request's proof key (RFC 9449 §5). */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  id_token?: string;
  refresh_token?: string;
}

/**
 * The scopes an access token for `resource` carries of a user grant's: the OpenID ones, and of the
 * APIs' own scopes only that API's — a token for one API never carries another's.
 */
export function tokenScope(scope: readonly string[], client: Client, resource: ApiResource | null): string[] {
  const own = resource ? scopesAt(client, resource) : [];
  return scope.filter((s) => (KNOWN_SCOPES as readonly string[]).includes(s) || own.includes(s));
}

/** A client's opaque machine tokens are spread over this many objects, so none carries all its traffic. */
export const MACHINE_TOKEN_SHARDS = 16;

/**
 * An RFC 9068 access token (or, when the client or the API is set to `opaque`, a reference to one)
 * for exactly one audience: the RFC 8707 `resource` asked for, or else Gatehouse itself (userinfo)
 * — a token for one API is not a key to another. It lives the shorter of the client's and the API's
 * lifetimes (the server default when neither sets one). It names its grant (`gid`, so revoking the
 * grant revokes it wherever liveness is checked) and how it was obtained (`gty`). `roles` and
 * `tier` ride along only when the scope asks for them (`roles`).
 */
export async function issueAccessToken(
  deps: Deps,
  a: {
    client: Client;
    subject: string;
    scope: string[];
    now: number;
    gty: TokenGrantType;
    resource: ApiResource | null;
    /** The user's record (roles and tier with the `roles` scope); null or absent when not read. */
    user?: UserView | null;
    grant?: Grant;
    grantId?: string;
    /** RFC 9449: the DPoP key the token is bound to (`cnf.jkt`), or null for a bearer token. */
    jkt?: string | null;
  },
) {
  const ttls = [a.client.accessTokenTtl, a.resource?.accessTokenTtl].filter((t): t is number => typeof t === 'number');
  const ttl = ttls.length ? Math.min(...ttls) : deps.config.tokens.accessTtl;
  const claims: Record<string, unknown> = { sub: a.subject, client_id: a.client.clientId, scope: a.scope.join(' '), gty: a.gty };
  if (a.grantId) claims.gid = a.grantId;
  if (a.jkt) claims.cnf = { jkt: a.jkt };
  if (a.grant)
    Object.assign(claims, {
      auth_time: a.grant.authTime,
      amr: a.grant.amr,
      sid: a.grant.sid,
      ...(a.grant.acr ? { acr: a.grant.acr } : {}),
    });
  // A user's roles and tier (a client acting for itself has none).
  if (a.grant && a.scope.includes('roles')) {
    if (!a.user) throw new Error('the roles scope needs the user record');
    Object.assign(claims, { roles: a.user.roles, tier: a.user.tier });
  }
  // Claims the `claims` request asked for at userinfo: userinfo reads them off the token.
  if (a.grant?.claims?.userinfo.length) claims.userinfo_claims = a.grant.claims.userinfo;
  const signed = await signToken(deps.signingKeys, {
    kind: 'access',
    claims,
    issuer: issuerOf(deps),
    audience: a.resource?.identifier ?? issuerOf(deps),
    ttl,
    now: a.now,
  });
  if (a.client.accessTokenFormat === 'jwt' && a.resource?.accessTokenFormat !== 'opaque') return { token: signed.token, expiresIn: ttl };
  // Phantom token: the client sees an opaque reference; the JWT stays with Gatehouse, which trades
  // it back at userinfo, introspection and (the gateway) on the way to an origin. A user's live in
  // the user's object; a machine's in one of its client's shards, picked at random.
  const shard = crypto.getRandomValues(new Uint8Array(1))[0]! % MACHINE_TOKEN_SHARDS;
  const owner = a.grant ? a.subject : `client:${a.client.clientId}:${shard}`;
  const secret = await deps.sessions.storeOpaque(owner, signed.token, signed.exp * 1000, a.grantId ?? null);
  if (secret === null) throw oauthError('invalid_grant', 'The account is blocked.');
  return { token: formatOpaqueToken(owner, secret), expiresIn: ttl };
}

/**
 * An OIDC ID token for `client`, signed with the client's chosen algorithm. An access token is
 * always issued alongside, so the claims the scopes release are at userinfo (OIDC Core §5.4) and in
 * the ID token only for a client set to want them there; claims the `claims` request names for the
 * ID token are always in it.
 */
export async function issueIdToken(
  deps: Deps,
  i: { client: Client; userId: string; user: UserView | null; grant: Grant; nonce: string | null; now: number },
): Promise<string> {
  const names = idTokenClaimNames(i.client, i.grant);
  if (names.length && !i.user) throw new Error('the ID token needs the user record');
  const claims: Record<string, unknown> = {
    ...(i.user ? releaseClaims(i.user, names) : { sub: i.userId }),
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

/** The claims of the user's record an ID token for this grant carries (OIDC Core §5.4, §5.5). */
const idTokenClaimNames = (client: Client, grant: Grant) => [
  ...(client.idTokenClaims ? scopeClaimNames(grant.scope) : []),
  ...(grant.claims?.idToken ?? []),
];

/**
 * Whether the tokens of a grant carry anything of the user's record beyond its id: roles and tier
 * (the `roles` scope), or claims in the ID token. Most refreshes need none of it, and then read no D1.
 */
export const needsUserRecord = (client: Client, grant: Grant) =>
  grant.scope.includes('roles') || (grant.scope.includes('openid') && idTokenClaimNames(client, grant).length > 0);

/** The user's record and roles (one D1 round trip); invalid_grant when the user is gone. */
export async function loadUser(deps: Deps, userId: string): Promise<UserView> {
  const user = await failClosed('the database', () => findUserView(deps.db, userId));
  if (!user) throw oauthError('invalid_grant', 'The user no longer exists.');
  return user;
}

/**
 * The token response for a user grant (code, refresh, device). `user`: the record when the caller
 * has read it; null to read it here only if the tokens need it (needsUserRecord).
 */
export async function userTokenResponse(
  deps: Deps,
  r: {
    client: Client;
    userId: string;
    user: UserView | null;
    grant: Grant;
    nonce: string | null;
    now: number;
    /** The grant (refresh family or code) the tokens belong to: revoking it takes them along. */
    grantId: string;
    gty: TokenGrantType;
    /** RFC 8707: the access token's audience, or null for Gatehouse itself. */
    resource: ApiResource | null;
    refresh?: { familyId: string; secret: string };
    /** The DPoP key the access token is bound to, or null. */
    jkt: string | null;
  },
): Promise<TokenResponse> {
  const user = r.user ?? (needsUserRecord(r.client, r.grant) ? await loadUser(deps, r.userId) : null);
  const scope = tokenScope(r.grant.scope, r.client, r.resource);
  const access = await issueAccessToken(deps, {
    client: r.client,
    subject: r.userId,
    scope,
    now: r.now,
    gty: r.gty,
    resource: r.resource,
    user,
    grant: r.grant,
    grantId: r.grantId,
    jkt: r.jkt,
  });
  const response: TokenResponse = {
    access_token: access.token,
    token_type: r.jkt ? 'DPoP' : 'Bearer',
    expires_in: access.expiresIn,
    scope: scope.join(' '),
  };
  if (r.grant.scope.includes('openid')) response.id_token = await issueIdToken(deps, { ...r, user });
  if (r.refresh) response.refresh_token = formatRefreshToken(r.userId, r.refresh.familyId, r.refresh.secret);
  return response;
}
