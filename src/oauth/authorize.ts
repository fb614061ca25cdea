import { acrOf, stepUpTarget } from '../auth/acr';
import { secondFactorsOf } from '../auth/totp';
import { RECENT_SIGN_IN } from '../auth/recent-auth';
import type { Deps } from '../deps';
import { audit, type RequestMeta } from '../identity/audit';
import { failClosed, GatehouseError, type ErrorCode } from '../lib/errors';
import { S256_CHALLENGE } from '../lib/pkce';
import type { SessionClaims } from '../sessions/session-token';
import { verifyToken } from '../tokens/jwt';
import {
  authorizationResponse,
  formActionSource,
  RedirectableError,
  RESPONSE_MODES,
  type AuthorizationResponse,
  type ResponseMode,
  type ResponseTarget,
} from './authorization-response';
import { parseClaimsRequest, type ClaimsRequest } from './claims';
import { pushedParams, usePushedRequest } from './pushed-requests';
import { requestObjectParams } from './request-object';
import { resourceProblem } from './client-registration';
import { findClient, grantableScope, grantResources, type Client } from './clients';
import { appAccessBlocker } from '../auth/app-access';
import { consentAsked, consentCovers, recordConsent, storedConsent, takeHeldConsent } from './consent';
import { issuerOf } from './issue';
import { readReauthMarker, REAUTH_PARAM, signedInSince } from './reauth-marker';
import { matchRedirectUri } from './redirect-uri';
import { formatCode } from './token-formats';

type Params = Record<string, string | undefined>;

/** Codes live one minute (RFC 6749 §4.1.2 recommends at most ten). */
export const CODE_TTL_MS = 60_000;

export interface AuthorizationRequest {
  client: Client;
  redirectUri: string;
  /** Where and how responses go (redirect URI, state, response mode). */
  target: ResponseTarget;
  state: string | undefined;
  scope: string[];
  nonce: string | null;
  /** Null only for a confidential client allowed to rely on `nonce` (requirePkce off). */
  codeChallenge: string | null;
  prompt: Set<string>;
  maxAge: number | undefined;
  loginHint: string | undefined;
  idTokenHint: string | undefined;
  acrValues: string[];
  /** RFC 8707 resources the request names (none: see grantResources). */
  resources: string[];
  /** The `claims` request parameter (OIDC Core §5.5), or null. */
  claims: ClaimsRequest | null;
  /** RFC 9449 §10: the DPoP key the code is bound to, or null. */
  dpopJkt: string | null;
  /** Set when the request was pushed (RFC 9126): its record, used up when the code is issued. */
  pushedId: string | null;
}

/**
 * Step one (RFC 6749 §4.1.2.1): client_id and redirect_uri. Until both are valid nothing is sent to
 * the redirect URI: a failure here is a GatehouseError shown on an error page.
 */
export async function resolveClient(deps: Deps, params: Params): Promise<{ client: Client; redirectUri: string }> {
  if (!params.client_id) throw new GatehouseError('invalid_request', 'client_id is required.', { field: 'client_id' });
  const client = await failClosed('the database', () => findClient(deps.db, params.client_id!, deps.now()));
  if (!client) throw new GatehouseError('invalid_request', 'Unknown client_id.', { field: 'client_id' });
  const redirectUri = params.redirect_uri;
  if (!redirectUri) throw new GatehouseError('invalid_request', 'redirect_uri is required.', { field: 'redirect_uri' });
  // RFC 9700 §2.1: exact match; the loopback port exception only for native (public) clients.
  if (!matchRedirectUri(client.redirectUris, redirectUri, client.isPublic))
    throw new GatehouseError('invalid_request', 'redirect_uri is not registered for this client.', { field: 'redirect_uri' });
  return { client, redirectUri };
}

/** Step two: everything else; failures go back to the client. */
export function parseAuthorizationRequest(params: Params, client: Client, redirectUri: string): AuthorizationRequest {
  // The response mode first: every later error is sent the way the client asked for (if it can be).
  const requested = params.response_mode ?? 'query';
  const postable = requested !== 'form_post' || formActionSource(redirectUri) !== null;
  const mode = (RESPONSE_MODES as readonly string[]).includes(requested) && postable ? (requested as ResponseMode) : 'query';
  const target: ResponseTarget = { redirectUri, state: params.state, mode };
  const fail = (error: ErrorCode, description: string): never => {
    throw new RedirectableError(target, error, description);
  };
  if (params.response_type !== 'code')
    fail('unsupported_response_type', 'Only response_type=code is supported (no implicit or hybrid flows).');
  if (params.response_mode !== undefined && !(RESPONSE_MODES as readonly string[]).includes(params.response_mode))
    fail('invalid_request', 'response_mode must be query or form_post.');
  if (!postable) fail('invalid_request', 'response_mode=form_post needs an http or https redirect URI with a host name.');
  if (!client.grantTypes.includes('authorization_code'))
    fail('unauthorized_client', 'This client may not use the authorization code flow.');

  // OIDC Core §3.1.2.1: unknown scope values are ignored, and ones this client may not have are
  // dropped; the token response says what was granted.
  const asked = (params.scope ?? '').split(' ').filter(Boolean);
  if (asked.length === 0) fail('invalid_scope', 'scope is required.');
  // RFC 8707 §2: each resource an absolute URI without fragment, and one this client may ask for.
  const resources = (params.resource ?? '').split(' ').filter(Boolean);
  if (resources.length > 10) fail('invalid_target', 'Ask for at most 10 resources.');
  for (const r of resources) {
    if (resourceProblem(r)) fail('invalid_target', 'resource must be an absolute URI without a fragment.');
    if (!client.resources.includes(r)) fail('invalid_target', 'This client may not ask for that resource.');
  }
  // An API's own scopes count only for the APIs the grant will cover.
  const scope = grantableScope(asked, client, grantResources({ client, resources }));
  if (scope.length === 0) fail('invalid_scope', 'None of the requested scopes is allowed for this client.');

  // RFC 7636 + RFC 9700 §2.1.1: PKCE with S256 for every client; `plain` (the default when no
  // method is given) is refused. The one exception RFC 9700 allows: a confidential client set to
  // accept OpenID requests protected by `nonce` instead (requirePkce off; docs/oidc.md says the risk).
  let codeChallenge: string | null = null;
  if (params.code_challenge !== undefined || params.code_challenge_method !== undefined || client.requirePkce || client.isPublic) {
    if (!params.code_challenge) fail('invalid_request', 'code_challenge is required (PKCE).');
    if (params.code_challenge_method !== 'S256') fail('invalid_request', 'code_challenge_method must be S256.');
    if (!S256_CHALLENGE.test(params.code_challenge!)) fail('invalid_request', 'code_challenge is not a valid S256 challenge.');
    codeChallenge = params.code_challenge!;
  } else if (!params.nonce || !scope.includes('openid')) {
    fail('invalid_request', 'Without PKCE this client must send an OpenID request with a nonce.');
  }

  const prompt = new Set((params.prompt ?? '').split(' ').filter(Boolean));
  for (const p of prompt)
    if (!['none', 'login', 'consent', 'select_account'].includes(p))
      fail('invalid_request', 'prompt has a value this server does not know.');
  if (prompt.has('none') && prompt.size > 1) fail('invalid_request', 'prompt=none cannot be combined with other values.');

  let maxAge: number | undefined;
  if (params.max_age !== undefined) {
    if (!/^\d{1,9}$/.test(params.max_age)) fail('invalid_request', 'max_age must be a non-negative integer.');
    maxAge = Number(params.max_age);
  }
  if (params.nonce !== undefined && (params.nonce.length === 0 || params.nonce.length > 512)) fail('invalid_request', 'nonce is invalid.');
  if (params.state !== undefined && params.state.length > 2048) fail('invalid_request', 'state is too long.');
  let claims: ClaimsRequest | null = null;
  try {
    claims = parseClaimsRequest(params.claims);
  } catch (e) {
    fail('invalid_request', e instanceof Error ? e.message : 'claims is not valid.');
  }
  // RFC 9449 §10: the code is bound to this DPoP key (an RFC 7638 SHA-256 thumbprint).
  if (params.dpop_jkt !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(params.dpop_jkt))
    fail('invalid_request', 'dpop_jkt must be a base64url SHA-256 JWK thumbprint.');
  return {
    client,
    redirectUri,
    target,
    state: params.state,
    scope,
    nonce: params.nonce ?? null,
    codeChallenge,
    prompt,
    maxAge,
    loginHint: params.login_hint?.slice(0, 254),
    idTokenHint: params.id_token_hint,
    acrValues: (params.acr_values ?? '').split(' ').filter(Boolean).slice(0, 10),
    resources,
    claims,
    dpopJkt: params.dpop_jkt ?? null,
    pushedId: null,
  };
}

/**
 * Opens an authorization request as it arrived at /authorize: a pushed one (`request_uri`, RFC
 * 9126) or a signed request object (`request`, RFC 9101) stands for its parameters — the only ones
 * used; otherwise the query's. Then client and redirect URI (GatehouseError: an error page), then
 * the rest (RedirectableError: to the client). A client that must push is refused any other way.
 */
export async function openAuthorizationRequest(deps: Deps, query: Params): Promise<AuthorizationRequest> {
  let params = query;
  let pushedId: string | null = null;
  if (query.request !== undefined && query.request_uri !== undefined)
    throw new GatehouseError('invalid_request', 'Send request or request_uri, not both.');
  if (query.request_uri !== undefined) {
    const pushed = await pushedParams(deps, query.request_uri, query.client_id);
    params = { ...pushed.params, client_id: query.client_id! };
    pushedId = pushed.id;
  } else if (query.request !== undefined) {
    const client = query.client_id ? await failClosed('the database', () => findClient(deps.db, query.client_id!, deps.now())) : undefined;
    if (!client) throw new GatehouseError('invalid_request', 'Unknown client_id.', { field: 'client_id' });
    params = await requestObjectParams(deps, client, query.request);
  }
  const { client, redirectUri } = await resolveClient(deps, params);
  const req = { ...parseAuthorizationRequest(params, client, redirectUri), pushedId };
  if (client.requirePar && !pushedId)
    throw new RedirectableError(req.target, 'invalid_request', 'This client must push its authorization requests (PAR).');
  return req;
}

/** Where the authorization request goes next. */
export type AuthorizationStep =
  /** `reauth`: the request demands a fresh sign-in; `staleSid` is the session that does not count. */
  | { kind: 'login'; reauth: { staleSid: string | null } | null }
  /** Signed in, but the request (acr_values, or a client that requires MFA) needs a second factor. */
  | { kind: 'step_up'; acr: string }
  /** Signed in (`session`), but the user has yet to approve the client. */
  | { kind: 'consent'; session: SessionClaims }
  /** Profile attributes this app needs that the person has not given (progressive profiling): asked once, then back here. */
  | { kind: 'profile' }
  /** Done: a code or an error for the client. */
  | { kind: 'respond'; response: AuthorizationResponse };

/**
 * Decides what a valid authorization request needs: a (fresh) sign-in, consent, or — when neither —
 * a code at once. prompt=none never shows a page: it answers login_required or consent_required.
 */
export async function decideAuthorization(
  deps: Deps,
  req: AuthorizationRequest,
  session: SessionClaims | null,
  params: Params,
  meta: RequestMeta,
): Promise<AuthorizationStep> {
  const now = deps.now();
  const target = req.target;
  const marker = await readReauthMarker(deps, { clientId: req.client.clientId, params, now });
  const fresh = (s: SessionClaims) => marker !== null && signedInSince(marker, s);

  let needsLogin = !session;
  if (session && !fresh(session)) {
    // A marker — genuine or not, expired or not — means a fresh sign-in was demanded on the way in
    // (and prompt=login was taken off the request): only a sign-in since then counts.
    if (params[REAUTH_PARAM] !== undefined || req.prompt.has('login') || req.prompt.has('select_account')) needsLogin = true;
    if (req.maxAge !== undefined && now / 1000 - session.authTime > req.maxAge) needsLogin = true;
    // offline_access mints a refresh token that outlives this session (sign-out does not end it):
    // like approving a device, it takes a recent sign-in on this device — not a stale or stolen
    // cookie, nor one a handoff relayed.
    if (req.scope.includes('offline_access') && (session.relayed || now / 1000 - session.authTime > RECENT_SIGN_IN)) needsLogin = true;
  }
  if (session && req.idTokenHint) {
    const hinted = await verifyToken(deps.signingKeys, req.idTokenHint, {
      kind: 'id',
      issuer: issuerOf(deps),
      audience: req.client.clientId,
      now,
      allowExpired: true,
    }).catch(() => null);
    if (!hinted) throw new RedirectableError(target, 'invalid_request', 'id_token_hint is not a valid ID token from this issuer.');
    if (hinted.sub !== session.sub) needsLogin = true;
  }
  // OIDC Core §5.5.1: an ID token asked to have another `sub` is for someone else: they sign in.
  if (session && req.claims?.sub && req.claims.sub !== session.sub) needsLogin = true;
  if (needsLogin || !session) {
    if (req.prompt.has('none'))
      return {
        kind: 'respond',
        response: authorizationResponse(deps, target, { error: 'login_required', error_description: 'The user must sign in.' }),
      };
    const forced = session !== null || req.prompt.has('login') || req.maxAge !== undefined;
    return { kind: 'login', reauth: forced ? { staleSid: session?.sid ?? null } : null };
  }

  // A required consent purpose not accepted at its version in force (a new terms version since this
  // session signed in): no code until the person has seen it — which the next sign-in asks.
  // Progressive profiling: attributes the operator declares as needed by every app, or by this one,
  // that the person has not given are asked once before the app gets a code (docs/privacy.md, "Profile").
  // The same rule holds a device code back (auth/app-access.ts).
  const blocker = await appAccessBlocker(deps, session.sub, req.client.clientId);
  if (blocker === 'purposes') {
    if (req.prompt.has('none'))
      return {
        kind: 'respond',
        response: authorizationResponse(deps, target, {
          error: 'consent_required',
          error_description: 'The user must accept updated terms.',
        }),
      };
    return { kind: 'login', reauth: { staleSid: session.sid } };
  }

  if (blocker === 'profile') {
    if (req.prompt.has('none'))
      return {
        kind: 'respond',
        response: authorizationResponse(deps, target, {
          error: 'interaction_required',
          error_description: 'The user must complete their profile.',
        }),
      };
    return { kind: 'profile' };
  }

  // acr_values (OIDC Core §3.1.2.1, voluntary), an acr claim request (essential when it says so) and
  // a client's requireMfa (essential): step up when the session's acr is weaker (auth/acr.ts stepUpTarget).
  const demand = {
    wanted: [...req.acrValues, ...(req.claims?.acr?.values ?? [])],
    essential: req.client.requireMfa || req.claims?.acr?.essential === true,
  };
  const stepUp = await stepUpTarget(acrOf(session.amr), demand, () => secondFactorsOf(deps, session.sub));
  if (stepUp) {
    if (req.prompt.has('none'))
      return {
        kind: 'respond',
        response: authorizationResponse(deps, target, {
          error: 'interaction_required',
          error_description: 'A stronger sign-in is required.',
        }),
      };
    return { kind: 'step_up', acr: stepUp };
  }

  if (!req.client.firstParty) {
    const granted = await storedConsent(deps, session.sub, req.client.clientId);
    if (!consentCovers(granted, consentAsked(req)) || req.prompt.has('consent')) {
      if (req.prompt.has('none'))
        return {
          kind: 'respond',
          response: authorizationResponse(deps, target, {
            error: 'consent_required',
            error_description: 'The user must approve this client.',
          }),
        };
      return { kind: 'consent', session };
    }
  }
  return { kind: 'respond', response: await issueCode(deps, req, session, meta) };
}

/**
 * Stores a code in the user's Durable Object and returns the redirect carrying it; the grant
 * carries the session's amr and acr into the tokens. Audited with any requested `acr_values`.
 */
export async function issueCode(
  deps: Deps,
  req: AuthorizationRequest,
  session: SessionClaims,
  meta: RequestMeta,
): Promise<AuthorizationResponse> {
  // A pushed request yields one code (RFC 9126 §4): of two tabs finishing it, one wins.
  if (req.pushedId && !(await usePushedRequest(deps, req.pushedId)))
    return authorizationResponse(deps, req.target, {
      error: 'invalid_request',
      error_description: 'This pushed request was already used.',
    });
  const secret = await deps.sessions.issueCode(session.sub, {
    clientId: req.client.clientId,
    redirectUri: req.redirectUri,
    codeChallenge: req.codeChallenge,
    scope: req.scope,
    nonce: req.nonce,
    sid: session.sid,
    authTime: session.authTime,
    amr: session.amr,
    acr: acrOf(session.amr),
    resources: grantResources(req),
    claims: req.claims ? { userinfo: req.claims.userinfo, idToken: req.claims.idToken } : null,
    dpopJkt: req.dpopJkt,
    now: deps.now(),
    ttlMs: CODE_TTL_MS,
  });
  // The user's object makes no code for a blocked account: the client hears a denial.
  if (secret === null)
    return authorizationResponse(deps, req.target, { error: 'access_denied', error_description: 'This account is blocked.' });
  await failClosed('the database', () =>
    audit(deps.db, {
      type: 'authorization_granted',
      userId: session.sub,
      meta,
      detail: {
        clientId: req.client.clientId,
        scope: req.scope,
        sid: session.sid,
        ...(req.acrValues.length ? { acrValues: req.acrValues } : {}),
        ...(req.resources.length ? { resources: req.resources } : {}),
      },
      at: deps.now(),
    }),
  );
  return authorizationResponse(deps, req.target, { code: formatCode(session.sub, secret) });
}

/**
 * A consent decision. It answers the authorization request held for it (consent.ts), and counts
 * only while that request, decided again now, still needs exactly that decision — so posting the
 * form directly skips nothing (requireMfa, max_age, prompt=login, acr_values, id_token_hint).
 * Otherwise the request goes where it must now: sign-in, step-up, or straight to the client.
 */
export async function answerConsent(
  deps: Deps,
  session: SessionClaims,
  a: { requestId: string | undefined; approve: boolean },
  meta: RequestMeta,
): Promise<{ req: AuthorizationRequest; params: Record<string, string>; step: AuthorizationStep }> {
  const params = await takeHeldConsent(deps, session, a.requestId);
  const req = await openAuthorizationRequest(deps, params);
  // Denying is always honoured (it only tells the client no).
  if (!a.approve)
    return {
      req,
      params,
      step: {
        kind: 'respond',
        response: authorizationResponse(deps, req.target, { error: 'access_denied', error_description: 'The user denied the request.' }),
      },
    };
  const step = await decideAuthorization(deps, req, session, params, meta);
  if (step.kind !== 'consent') return { req, params, step };
  await recordConsent(deps, session.sub, req.client.clientId, consentAsked(req), meta);
  return { req, params, step: { kind: 'respond', response: await issueCode(deps, req, session, meta) } };
}
