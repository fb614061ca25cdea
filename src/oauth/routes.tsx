import type { Context } from 'hono';
import type { AppEnv } from '../deps';
import { loadAccount, signOut } from '../account/account-sessions';
import { GatehouseError } from '../lib/errors';
import { pushAuthorizationRequest } from './par';
import { requesterOf } from '../handoff/requester';
import { requestMeta } from '../lib/request-meta';
import { enforceIpLimit } from '../lib/rate-limit';
import { clearSessionCookie } from '../sessions/middleware';
import { shownEmail } from '../identity/email';
import { csrfProtection, csrfToken } from '../ui/csrf';
import { en } from '../ui/messages';
import { ContinuePage, MessagePage } from '../ui/components';
import { ConsentPage, LogoutConfirmPage } from './pages';
import { router } from '../lib/router';
import { sendAuthorizationResponse as send } from './response-page';
import {
  answerConsent,
  decideAuthorization,
  openAuthorizationRequest,
  type AuthorizationRequest,
  type AuthorizationStep,
} from './authorize';
import { consentApis, holdForConsent } from './consent';
import { reauthMarker, REAUTH_PARAM } from './reauth-marker';
import { authenticateClient } from './client-auth';
import { ENDPOINTS, METADATA_PATHS, metadataResponse } from './discovery';
import { issuerOf } from './issue';
import { parseLogoutRequest } from './logout';
import { introspect, revoke, userInfo } from './presented-tokens';
import { upstreamAccessToken } from './upstream-token';
import { startDeviceAuthorization } from './device';
import { exchangeToken } from './token';
import { dpopNonce, parseAuthorization, verifyDpopProof } from '../tokens/dpop';

type C = Context<AppEnv>;
type Params = Record<string, string>;

/** Discovery under /.well-known. */
export const discoveryRoutes = router('problem');
for (const path of METADATA_PATHS) discoveryRoutes.get(path, (c) => metadataResponse(c.var.deps));

// The OpenID Provider's endpoints under /auth (docs/oidc.md), one router per error channel
// (src/error-channels.tsx): the back-channel endpoints answer OAuth JSON, userinfo as a protected
// resource, the authorization endpoint to the client's redirect URI or as a page.

/** Token, PAR, device authorization, revocation and introspection: RFC 6749 §5.2 errors. */
export const oauthRoutes = router('oauth');
/** UserInfo: RFC 6750 and RFC 9449 challenges. */
export const userinfoRoutes = router('oauth-resource', { dpop: true });
/** The authorization endpoint. */
export const authorizeRoutes = router('authorize');
/** The consent page's answer: errors reach the client through the Continue page. */
export const consentRoutes = router('consent');
/** RP-initiated logout: pages. */
export const logoutRoutes = router('page');

/**
 * Reads the request's parameters (query for GET, form for POST); a repeated parameter is invalid
 * (RFC 6749 §3.1) — except `resource`, which RFC 8707 lets repeat (kept space-separated: a URI has
 * no spaces).
 */
async function readParams(c: C): Promise<Params> {
  const entries: [string, string][] = [];
  if (c.req.method === 'GET') {
    for (const [k, vs] of Object.entries(c.req.queries())) for (const v of vs) entries.push([k, v]);
  } else {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded')
      throw new GatehouseError('invalid_request', 'Send parameters as application/x-www-form-urlencoded.');
    // Decode the bytes ourselves: workerd warns when .text() is used on a form content type.
    const body = new TextDecoder().decode(await c.req.arrayBuffer());
    for (const [k, v] of new URLSearchParams(body)) entries.push([k, v]);
  }
  const params: Params = {};
  for (const [k, v] of entries) {
    if (k === 'resource' && k in params && !/\s/.test(v)) params[k] = `${params[k]} ${v}`;
    else if (k in params)
      throw new GatehouseError('invalid_request', /^[a-z_]{1,40}$/.test(k) ? `Parameter ${k} is repeated.` : 'A parameter is repeated.', {
        field: k,
      });
    else params[k] = v;
  }
  return params;
}

/** A redirect URI as a person can judge it: its host, or the scheme of a native app's URI. */
const destinationOf = (uri: string) => {
  const u = new URL(uri);
  return u.host || `${u.protocol}…`;
};

/** Verifies the DPoP header of a request to one of our endpoints, when there is one (RFC 9449 §4.3). */
const proofAt = (c: C, endpoint: string) =>
  c.req.header('dpop') === undefined
    ? Promise.resolve(null)
    : verifyDpopProof(c.var.deps, { header: c.req.header('dpop'), method: 'POST', url: `${issuerOf(c.var.deps)}${endpoint}` });

const cors = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST',
  'access-control-allow-headers': 'authorization, content-type, dpop',
  'access-control-expose-headers': 'WWW-Authenticate, DPoP-Nonce',
  'access-control-max-age': '86400',
};
for (const path of [ENDPOINTS.token, ENDPOINTS.revocation, ENDPOINTS.introspection, ENDPOINTS.pushedAuthorization])
  oauthRoutes.options(path.replace('/auth', ''), (c) => c.body(null, 204, cors));
userinfoRoutes.options(ENDPOINTS.userinfo.replace('/auth', ''), (c) => c.body(null, 204, cors));

// ── Authorization ────────────────────────────────────────────────────────────────────────────
async function authorize(c: C, params: Params): Promise<Response> {
  const { deps } = c.var;
  c.header('cache-control', 'no-store');
  const req = await openAuthorizationRequest(deps, params);
  const step = await decideAuthorization(deps, req, c.var.session, params, requestMeta(c));
  return respond(c, req, params, step, false);
}

/**
 * Renders where an authorization request goes next. `fromForm`: we are answering one of our own
 * form posts, so a client's redirect URI is reached through the Continue page (CSP form-action).
 */
async function respond(c: C, req: AuthorizationRequest, params: Params, step: AuthorizationStep, fromForm: boolean): Promise<Response> {
  const { deps } = c.var;
  if (step.kind === 'respond') return send(c, step.response, fromForm);
  if (step.kind === 'login') {
    const next = new URLSearchParams(params);
    next.delete(REAUTH_PARAM);
    const prompt = [...req.prompt].filter((p) => p !== 'login' && p !== 'select_account').join(' ');
    if (prompt) next.set('prompt', prompt);
    else next.delete('prompt');
    if (step.reauth)
      next.set(
        REAUTH_PARAM,
        await reauthMarker(deps, {
          staleSid: step.reauth.staleSid,
          clientId: req.client.clientId,
          params: Object.fromEntries(next),
          now: deps.now(),
        }),
      );
    const signIn = new URLSearchParams({ return_to: `${ENDPOINTS.authorization}?${next}` });
    if (req.loginHint) signIn.set('login_hint', req.loginHint);
    return c.redirect(`/auth/sign-in?${signIn}`, fromForm ? 303 : 302);
  }
  if (step.kind === 'profile') {
    const back = `${ENDPOINTS.authorization}?${new URLSearchParams(params)}`;
    return c.redirect(
      `/auth/account/profile?${new URLSearchParams({ return_to: back, client_id: req.client.clientId })}`,
      fromForm ? 303 : 302,
    );
  }
  if (step.kind === 'step_up') {
    // The way back keeps any re-authentication marker: the stepped-up session is a new one.
    const back = `${ENDPOINTS.authorization}?${new URLSearchParams(params)}`;
    return c.redirect(`/auth/second-factor?${new URLSearchParams({ return_to: back, acr: step.acr })}`, fromForm ? 303 : 302);
  }
  const { session } = step;
  const account = await loadAccount(deps, session);
  const requestId = await holdForConsent(deps, session, params);
  return c.html(
    <ConsentPage
      clientName={req.client.name}
      destination={destinationOf(req.redirectUri)}
      selfRegistered={req.client.selfRegistered}
      scope={req.scope}
      apis={await consentApis(deps, req)}
      requestId={requestId}
      csrf={c.var.csrfToken}
      email={shownEmail(account.user.email) ?? en.account.withoutEmail}
    />,
  );
}

// OIDC Core §3.1.2.1: GET and POST. A POSTed request comes from the client's page, so it carries
// no CSRF token of ours; it changes nothing until the person acts on one of our pages.
authorizeRoutes.get('/authorize', csrfToken, async (c) => authorize(c, await readParams(c)));
authorizeRoutes.post('/authorize', csrfToken, async (c) => authorize(c, await readParams(c)));

// The consent page's answer: only for the request held for it (authorize.ts answerConsent).
consentRoutes.post('/authorize/decision', csrfProtection, async (c) => {
  const { deps } = c.var;
  c.header('cache-control', 'no-store');
  const { decision, request } = await formFields(c);
  if (!c.var.session) return c.redirect('/auth/sign-in', 303);
  const { req, params, step } = await answerConsent(
    deps,
    c.var.session,
    { requestId: request, approve: decision === 'approve' },
    requestMeta(c),
  );
  return respond(c, req, params, step, true);
});

// ── Pushed authorization requests (RFC 9126) ─────────────────────────────────────────────────
oauthRoutes.post('/par', async (c) => {
  const { deps } = c.var;
  const params = await readParams(c);
  const client = await authenticateClient(deps, { authorization: c.req.header('authorization'), body: params }, [
    `${issuerOf(deps)}${ENDPOINTS.pushedAuthorization}`,
    `${issuerOf(deps)}${ENDPOINTS.token}`,
    issuerOf(deps),
  ]);
  const pushed = await pushAuthorizationRequest(deps, client, params, await proofAt(c, ENDPOINTS.pushedAuthorization));
  return c.json(pushed, 201, { 'cache-control': 'no-store', pragma: 'no-cache', 'access-control-allow-origin': '*' });
});
// RFC 9126 §2.3: a push is a POST; any other method is 405.
oauthRoutes.on(['GET', 'PUT', 'PATCH', 'DELETE'], '/par', (c) => {
  c.header('allow', 'POST, OPTIONS');
  throw new GatehouseError('method_not_allowed', 'Push authorization requests with POST.');
});

// ── Token ────────────────────────────────────────────────────────────────────────────────────
oauthRoutes.post('/token', async (c) => {
  const { deps } = c.var;
  const params = await readParams(c);
  const client = await authenticateClient(deps, { authorization: c.req.header('authorization'), body: params }, [
    `${issuerOf(deps)}${ENDPOINTS.token}`,
    issuerOf(deps),
  ]);
  const response = await exchangeToken(deps, client, params, await proofAt(c, ENDPOINTS.token));
  return c.json(response, 200, {
    'cache-control': 'no-store',
    pragma: 'no-cache',
    'access-control-allow-origin': '*',
    ...(deps.config.dpop.requireNonce ? { 'dpop-nonce': await dpopNonce(deps), 'access-control-expose-headers': 'DPoP-Nonce' } : {}),
  });
});

// ── Device authorization (RFC 8628 §3.1) ─────────────────────────────────────────────────────
oauthRoutes.post('/device_authorization', async (c) => {
  const { deps } = c.var;
  await enforceIpLimit(deps.rateLimit, requestMeta(c).ip);
  const params = await readParams(c);
  const client = await authenticateClient(deps, { authorization: c.req.header('authorization'), body: params }, [
    `${issuerOf(deps)}${ENDPOINTS.deviceAuthorization}`,
    `${issuerOf(deps)}${ENDPOINTS.token}`,
    issuerOf(deps),
  ]);
  return c.json(await startDeviceAuthorization(deps, client, params, requesterOf(c)), 200, {
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
});

// ── UserInfo ─────────────────────────────────────────────────────────────────────────────────
async function userinfo(c: C): Promise<Response> {
  const header = c.req.header('authorization');
  let presented = parseAuthorization(header);
  if (!presented && c.req.method === 'POST' && !header) {
    const token = (await readParams(c)).access_token; // RFC 6750 §2.2
    if (token) presented = { scheme: 'Bearer', token };
  }
  if (!presented) throw new GatehouseError('invalid_token', 'An access token is required.');
  const request = { proof: c.req.header('dpop'), method: c.req.method, url: `${issuerOf(c.var.deps)}${ENDPOINTS.userinfo}` };
  return c.json(await userInfo(c.var.deps, presented, request), 200, { 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
}
userinfoRoutes.get('/userinfo', userinfo);
userinfoRoutes.post('/userinfo', userinfo);

// ── An upstream's kept access token, for an app (?provider=ID) ───────────────────────────────
userinfoRoutes.options(ENDPOINTS.upstreamToken.replace('/auth', ''), (c) => c.body(null, 204, cors));
userinfoRoutes.get(ENDPOINTS.upstreamToken.replace('/auth', ''), async (c) => {
  const presented = parseAuthorization(c.req.header('authorization'));
  if (!presented) throw new GatehouseError('invalid_token', 'An access token is required.');
  const provider = c.req.query('provider');
  if (!provider) throw new GatehouseError('invalid_request', 'provider is required: the id of the upstream provider.');
  const url = `${issuerOf(c.var.deps)}${ENDPOINTS.upstreamToken}`;
  const token = await upstreamAccessToken(c.var.deps, presented, { proof: c.req.header('dpop'), method: 'GET', url }, provider);
  return c.json(token, 200, { 'cache-control': 'no-store', pragma: 'no-cache', 'access-control-allow-origin': '*' });
});

// ── Revocation and introspection ─────────────────────────────────────────────────────────────
async function backChannel(c: C, run: (params: Params, client: Awaited<ReturnType<typeof authenticateClient>>) => Promise<Response>) {
  const { deps } = c.var;
  const params = await readParams(c);
  const endpoint = new URL(c.req.url).pathname;
  const client = await authenticateClient(deps, { authorization: c.req.header('authorization'), body: params }, [
    `${issuerOf(deps)}${endpoint}`,
    `${issuerOf(deps)}${ENDPOINTS.token}`,
    issuerOf(deps),
  ]);
  if (!params.token) throw new GatehouseError('invalid_request', 'token is required.');
  return await run(params, client);
}

oauthRoutes.post('/revoke', (c) =>
  backChannel(c, async (params, client) => {
    await revoke(c.var.deps, client, params.token!);
    return c.body(null, 200, { 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
  }),
);

oauthRoutes.post('/introspect', (c) =>
  backChannel(c, async (params, client) => {
    return c.json(await introspect(c.var.deps, client, params.token!), 200, { 'cache-control': 'no-store' });
  }),
);

// ── RP-initiated logout ──────────────────────────────────────────────────────────────────────
async function logout(c: C, params: Params, confirmedByUser: boolean): Promise<Response> {
  const { deps } = c.var;
  const request = await parseLogoutRequest(deps, params, c.var.session);
  if (!request.confirmed && !confirmedByUser) return c.html(<LogoutConfirmPage params={params} csrf={c.var.csrfToken} />);
  // Only a session seen here is ended and its cookie cleared: a cross-site POST arrives without the
  // (SameSite=Lax) cookie, and must not sign the browser out of a session it never saw.
  if (c.var.session) {
    await signOut(deps, c.var.session, requestMeta(c));
    clearSessionCookie(c);
  }
  if (request.redirect) return confirmedByUser ? c.html(<ContinuePage href={request.redirect} />) : c.redirect(request.redirect, 302);
  return c.html(<MessagePage title="Signed out" body="You are signed out." link={{ href: '/auth/sign-in', label: 'Sign in again' }} />);
}

logoutRoutes.get('/logout', csrfToken, async (c) => logout(c, await readParams(c), false));
logoutRoutes.post('/logout', csrfToken, async (c) => logout(c, await readParams(c), false));
logoutRoutes.post('/logout/confirm', csrfProtection, async (c) => {
  const { csrf_token: _csrf, ...params } = await formFields(c);
  return logout(c, params, true);
});

/** The string fields of a form our own page posted (already parsed by the CSRF check). */
async function formFields(c: C): Promise<Params> {
  const body = await c.req.parseBody();
  return Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'));
}
