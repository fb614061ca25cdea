import type { Deps } from '../deps';
import { failClosed, oauthError } from '../lib/errors';
import type { RefreshPolicy } from '../sessions/grants';
import { GRANT_TYPES, type Client, type GrantType } from './clients';
import { resourceProblem } from './client-registration';
import { scopesAt, type ApiResource } from './api-resources';
import { findResource } from './api-resource-cache';
import { enforceRateLimit } from '../limits/rate-limits';
import { issueAccessToken, loadUser, userTokenResponse, type TokenResponse } from './issue';
import { exchangeDeviceCode } from './device';
import { CODE_VERIFIER } from '../lib/pkce';
import { DEVICE_CODE_GRANT } from './grants-and-scopes';
import { parseCode, parseRefreshToken } from './token-formats';
import type { VerifiedProof } from '../tokens/dpop';

type Params = Record<string, string | undefined>;

const required = (params: Params, name: string) => {
  const v = params[name];
  if (!v) throw oauthError('invalid_request', `${name} is required.`);
  return v;
};

const refreshPolicy = (deps: Deps, client: Client): RefreshPolicy | null =>
  client.grantTypes.includes('refresh_token')
    ? {
        idleTtlMs: (client.refreshTokenIdleTtl ?? deps.config.tokens.refreshIdleTtl) * 1000,
        absoluteTtlMs: (client.refreshTokenAbsoluteTtl ?? deps.config.tokens.refreshAbsoluteTtl) * 1000,
      }
    : null;

/**
 * RFC 8707 §2.2: the one registered API the access token is for, or null for Gatehouse itself. The
 * client must be allowed it; a grant whose authorization named resources keeps to them (checked in
 * the user's object, before the code or refresh token is consumed). The API's token rate limit for
 * this client is counted here, before anything is consumed (for a public client, per user).
 */
export async function targetResource(
  deps: Deps,
  params: Params,
  client: Client,
  /** For a public client (which proves nothing by authenticating), the user its code or refresh token names. */
  userId: string | null,
): Promise<ApiResource | null> {
  const asked = params.resource;
  if (asked === undefined) return null;
  if (asked.includes(' ')) throw oauthError('invalid_target', 'Ask for one resource per access token.');
  if (resourceProblem(asked)) throw oauthError('invalid_target', 'resource must be an absolute URI without a fragment.');
  if (!client.resources.includes(asked)) throw oauthError('invalid_target', 'This client may not ask for that resource.');
  const resource = await failClosed('the database', () => findResource(deps.db, asked, deps.now()));
  if (!resource) throw oauthError('invalid_target', 'That resource is not a registered API.');
  if (resource.rateLimit)
    await enforceRateLimit(deps.limits, {
      bucket: `token:${resource.identifier}`,
      // A public client's count is kept per user too: anyone can send its client_id with made-up codes.
      subject: client.isPublic ? `client:${client.clientId}:user:${userId ?? ''}` : `client:${client.clientId}`,
      limit: resource.rateLimit,
      now: deps.now(),
    });
  return resource;
}

/**
 * The token endpoint (RFC 6749 §3.2) for an authenticated client. `proof`: the request's verified
 * DPoP proof (RFC 9449), to which the access token — and a public client's refresh token — is
 * bound; a client set to requireDpop gets nothing without one.
 */
export async function exchangeToken(
  deps: Deps,
  client: Client,
  params: Params,
  proof: VerifiedProof | null = null,
): Promise<TokenResponse> {
  const grantType = required(params, 'grant_type');
  if (!GRANT_TYPES.includes(grantType as GrantType))
    throw oauthError(
      'unsupported_grant_type',
      grantType === 'password' ? 'The password grant is not supported (RFC 9700 section 2.4).' : 'This grant type is not supported.',
    );
  if (!client.grantTypes.includes(grantType as GrantType))
    throw oauthError('unauthorized_client', `This client may not use the ${grantType} grant.`);
  if (client.requireDpop && !proof) throw oauthError('invalid_dpop_proof', "This client's tokens are DPoP-bound: send a DPoP proof.");
  const now = deps.now();
  const jkt = proof?.jkt ?? null;

  if (grantType === 'authorization_code') {
    const code = parseCode(required(params, 'code'));
    const redirectUri = required(params, 'redirect_uri');
    // Optional here: whether the code needs one is the code's business (a missing one for a code
    // issued with a challenge is invalid_grant, RFC 7636 §4.6).
    const codeVerifier = params.code_verifier ?? null;
    if (codeVerifier !== null && !CODE_VERIFIER.test(codeVerifier))
      throw oauthError('invalid_request', 'code_verifier is not a valid PKCE verifier (RFC 7636 section 4.1).');
    if (!code) throw oauthError('invalid_grant', 'The authorization code is not valid.');
    const resource = await targetResource(deps, params, client, code.userId);
    const result = await deps.sessions.redeemCode(code.userId, {
      resource: resource?.identifier ?? null,
      secret: code.secret,
      clientId: client.clientId,
      redirectUri,
      codeVerifier,
      now,
      refresh: refreshPolicy(deps, client),
      dpopJkt: jkt,
      bindRefresh: client.isPublic,
    });
    if (result.status === 'reused')
      throw oauthError('invalid_grant', 'The authorization code was already used; the tokens issued from it have been revoked.');
    if (result.status === 'invalid') throw oauthError('invalid_grant', `The authorization code is not valid: ${result.reason}.`);
    if (result.status === 'invalid_target') throw oauthError('invalid_target', 'That resource was not part of the authorization.');
    // The first tokens of a sign-in check that the account still exists.
    const user = await loadUser(deps, code.userId);
    return userTokenResponse(deps, {
      client,
      userId: code.userId,
      user,
      grant: result.grant,
      nonce: result.grant.nonce,
      now,
      grantId: result.grantId,
      gty: 'authorization_code',
      resource,
      jkt,
      ...(result.refresh ? { refresh: result.refresh } : {}),
    });
  }

  if (grantType === 'refresh_token') {
    const token = parseRefreshToken(required(params, 'refresh_token'));
    if (!token) throw oauthError('invalid_grant', 'The refresh token is not valid.');
    const scope = params.scope?.split(' ').filter(Boolean);
    const resource = await targetResource(deps, params, client, token.userId);
    const result = await deps.sessions.rotateRefresh(token.userId, {
      resource: resource?.identifier ?? null,
      familyId: token.familyId,
      secret: token.secret,
      clientId: client.clientId,
      now,
      dpopJkt: jkt,
      ...(scope?.length ? { scope } : {}),
    });
    if (result.status === 'reused')
      throw oauthError('invalid_grant', 'The refresh token was already used; every token of its family has been revoked.');
    if (result.status === 'invalid_scope') throw oauthError('invalid_scope', 'The requested scope exceeds the original grant.');
    if (result.status === 'invalid_target') throw oauthError('invalid_target', 'That resource was not part of the authorization.');
    if (result.status === 'invalid') throw oauthError('invalid_grant', `The refresh token is not valid: ${result.reason}.`);
    // A rotation reads the user's record only when the tokens carry some of it (roles, ID-token
    // claims): whatever ends an account must revoke its refresh families in the user's object.
    return userTokenResponse(deps, {
      client,
      userId: token.userId,
      user: null,
      grant: result.grant,
      nonce: null,
      now,
      grantId: token.familyId,
      gty: 'refresh_token',
      resource,
      jkt,
      refresh: { familyId: token.familyId, secret: result.secret },
    });
  }

  if (grantType === DEVICE_CODE_GRANT) return exchangeDeviceCode(deps, client, params.device_code, proof);

  // client_credentials: the client acts for itself.
  if (client.isPublic) throw oauthError('unauthorized_client', 'Public clients cannot use client_credentials.');
  const resource = await targetResource(deps, params, client, null);
  // For an API, the scopes of it the client was granted; for Gatehouse itself, the client's own
  // (never openid or offline_access: there is no user).
  const allowed = resource ? scopesAt(client, resource) : client.scopes.filter((s) => s !== 'openid' && s !== 'offline_access');
  const asked = [...new Set((params.scope ?? '').split(' ').filter(Boolean))];
  const scope = asked.length ? asked : allowed;
  if (scope.some((s) => !allowed.includes(s)))
    throw oauthError(
      'invalid_scope',
      resource ? 'The requested scope is not granted to this client for that API.' : 'The requested scope is not allowed for this client.',
    );
  const access = await issueAccessToken(deps, { client, subject: client.clientId, scope, now, gty: 'client_credentials', resource, jkt });
  return { access_token: access.token, token_type: jkt ? 'DPoP' : 'Bearer', expires_in: access.expiresIn, scope: scope.join(' ') };
}
