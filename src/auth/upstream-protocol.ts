import { importPKCS8, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { emailField } from '../identity/email';
import { decodeBase64urlText } from '../lib/crypto';
import { LruCache } from '../lib/lru';
import { GatehouseError } from '../lib/errors';
import { appleKeyOf, clientSecretOf, ENTRA_MULTI_TENANT, type UpstreamProvider } from './upstream-providers';

/**
 * Speaking to upstream identity providers, through oauth4webapi (a certified, dependency-free
 * OAuth 2 / OpenID Connect client on WebCrypto): discovery, the authorization URL, and the code
 * exchange with its checks — `state`, RFC 9207 `iss`, PKCE, `nonce`, the ID token's `iss`, `aud`,
 * `exp` and signature against the upstream's JWKS (refetched when it rotates) — plus each preset's
 * quirks. Nothing here decides who the person is locally (upstream-sign-in.ts does).
 */

/** What an upstream says of the person, once every check passed. */
export interface UpstreamIdentity {
  providerId: string;
  /** With `subject`, the identity's key: never the email. */
  issuer: string;
  subject: string;
  email: string | null;
  /** The upstream says it verified the address. */
  emailVerified: boolean;
  /** The upstream is trusted to verify this address (its domain, or a preset's authority over it), and did. */
  emailTrusted: boolean;
  name: string | null;
  picture: string | null;
  /** The upstream's tokens, for a provider set to keep them. */
  tokens: { access_token: string; refresh_token?: string; expires_at?: number; scope?: string } | null;
}

export interface UpstreamEnv {
  kek: string;
  fetch: typeof fetch;
  now: () => number;
}

/** Why an upstream sign-in did not complete, for the person (never the upstream's own text). */
export const upstreamFailed = (message: string) => new GatehouseError('upstream_failed', message);

const GITHUB = {
  issuer: 'https://github.com',
  authorization_endpoint: 'https://github.com/login/oauth/authorize',
  token_endpoint: 'https://github.com/login/oauth/access_token',
} satisfies oauth.AuthorizationServer;
export const GITHUB_API = 'https://api.github.com';
const APPLE_RELAY_DOMAIN = 'privaterelay.appleid.com';
/** The issuer of personal Microsoft accounts: what Entra's `consumers` authority names in its discovery document. */
const ENTRA_CONSUMERS_ISSUER = 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0';

/** Discovery documents per isolate, an hour; JWKS caches per issuer (oauth4webapi refetches on an unknown kid). */
const metadata = new LruCache<string, oauth.AuthorizationServer>(100);
const jwks = new Map<string, oauth.JWKSCacheInput>();
const METADATA_TTL_MS = 3_600_000;

/** How long one call to an upstream may take, and how much it may answer (its documents and tokens are a few KiB). */
export const UPSTREAM_TIMEOUT_MS = 10_000;
export const UPSTREAM_MAX_BYTES = 256 * 1024;

/**
 * Every call to an upstream: with a deadline, and an answer cut off past UPSTREAM_MAX_BYTES (a slow
 * or hostile upstream cannot hold a sign-in, or this isolate's memory). Both fail as an unreachable
 * upstream does (upstream_unavailable).
 */
async function upstreamFetch(env: UpstreamEnv, input: string | URL, init: RequestInit = {}): Promise<Response> {
  const res = await env.fetch(input, { ...init, signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
  const tooLarge = () => new TypeError(`the upstream's answer is larger than ${UPSTREAM_MAX_BYTES} bytes`);
  if (Number(res.headers.get('content-length') ?? 0) > UPSTREAM_MAX_BYTES) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (!res.body) return res;
  let seen = 0;
  const capped = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        seen += chunk.byteLength;
        if (seen > UPSTREAM_MAX_BYTES) out.error(tooLarge());
        else out.enqueue(chunk);
      },
    }),
  );
  return new Response(capped, { status: res.status, statusText: res.statusText, headers: res.headers });
}

function options(env: UpstreamEnv, url: string | null) {
  return {
    [oauth.customFetch]: (input: string, init: RequestInit) => upstreamFetch(env, input, init),
    // Plain http only ever reaches a loopback upstream (providerInput allows no other).
    ...(url?.startsWith('http:') ? { [oauth.allowInsecureRequests]: true } : {}),
  };
}

/** The upstream's authorization server metadata (discovered, cached an hour; GitHub's is fixed). */
export async function serverOf(env: UpstreamEnv, p: UpstreamProvider): Promise<oauth.AuthorizationServer> {
  if (p.kind === 'github') return GITHUB;
  const issuer = p.issuer!;
  const hit = metadata.get(issuer, env.now());
  if (hit) return hit;
  let as: oauth.AuthorizationServer;
  try {
    const response = await oauth.discoveryRequest(new URL(issuer), { ...options(env, issuer), algorithm: 'oidc' });
    if (p.kind === 'entra' && (ENTRA_MULTI_TENANT as readonly string[]).some((t) => issuer.includes(`/${t}/`))) {
      // A multi-tenant authority's document names `{tenantid}` in its issuer: each token says its tenant.
      // `consumers` names the one tenant of personal Microsoft accounts instead.
      if (!response.ok) throw new Error(`discovery answered ${response.status}`);
      as = (await response.json()) as oauth.AuthorizationServer;
      const consumers = issuer.includes('/consumers/') && as.issuer === ENTRA_CONSUMERS_ISSUER;
      if (!as.issuer?.includes('{tenantid}') && !consumers) throw new Error('not a multi-tenant Entra document');
    } else as = await oauth.processDiscoveryResponse(new URL(issuer), response);
  } catch {
    throw unavailable(p);
  }
  metadata.set(issuer, as, env.now() + METADATA_TTL_MS);
  return as;
}

/** How the client authenticates at the upstream's token endpoint (Apple: a client secret that is an ES256 JWT we sign). */
async function clientAuthOf(env: UpstreamEnv, p: UpstreamProvider): Promise<oauth.ClientAuth> {
  if (p.kind === 'apple') {
    const pem = await appleKeyOf(p, env.kek);
    const key = await importPKCS8(pem!, 'ES256');
    const iat = Math.floor(env.now() / 1000);
    const secret = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: p.apple!.keyId })
      .setIssuer(p.apple!.teamId)
      .setSubject(p.clientId)
      .setAudience('https://appleid.apple.com')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 300)
      .sign(key);
    return oauth.ClientSecretPost(secret);
  }
  return oauth.ClientSecretBasic((await clientSecretOf(p, env.kek))!);
}

/** The URL that sends the person to the upstream, with `state`, `nonce` (OpenID only) and a PKCE challenge. */
export async function authorizationUrl(
  env: UpstreamEnv,
  p: UpstreamProvider,
  r: { redirectUri: string; state: string; nonce: string | null; codeVerifier: string },
): Promise<URL> {
  const as = await serverOf(env, p);
  const url = new URL(as.authorization_endpoint!);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', p.clientId);
  url.searchParams.set('redirect_uri', r.redirectUri);
  url.searchParams.set('scope', p.scopes.join(' '));
  url.searchParams.set('state', r.state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(r.codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  if (r.nonce) url.searchParams.set('nonce', r.nonce);
  // Apple sends the code (and the name, once) by POST when name or email is asked for.
  if (p.kind === 'apple') url.searchParams.set('response_mode', 'form_post');
  // Google gives a refresh token only when asked for offline access (at the person's first consent).
  if (p.kind === 'google' && p.storeTokens) url.searchParams.set('access_type', 'offline');
  return url;
}

/**
 * Whether the preset is the authority for the address: Google for Gmail and for a Workspace's own
 * domain; Apple for the relay addresses it makes (Hide My Email: one per person and developer team,
 * whose mail only that person receives).
 */
function authoritative(p: UpstreamProvider, email: string, claims: Record<string, unknown>): boolean {
  const domain = email.slice(email.lastIndexOf('@') + 1);
  if (p.trustedEmailDomains.includes('*') || p.trustedEmailDomains.includes(domain)) return true;
  if (p.kind === 'google') return domain === 'gmail.com' || domain === 'googlemail.com' || claims.hd === domain;
  if (p.kind === 'apple') return domain === APPLE_RELAY_DOMAIN;
  return false;
}

/** An address as Gatehouse keeps them (trimmed, NFC, lower-case), or null for anything that is not one. */
function addressOf(v: unknown): string | null {
  const parsed = emailField.safeParse(v);
  return parsed.success ? parsed.data : null;
}

const text = (v: unknown, max = 500) => (typeof v === 'string' && v.length > 0 ? v.slice(0, max) : null);
const truthy = (v: unknown) => v === true || v === 'true';

/**
 * The code exchange for a callback (its query, or Apple's form post): every check of the issue's
 * list, then who the person is. Any failure — an error from the upstream, a state or nonce that
 * does not match, a token for another audience or issuer, a key the upstream never published —
 * is `upstream_failed` with a reason for the person; nothing is written.
 */
export async function completeAuthorization(
  env: UpstreamEnv,
  p: UpstreamProvider,
  r: { params: URLSearchParams; state: string; nonce: string | null; codeVerifier: string; redirectUri: string },
): Promise<UpstreamIdentity> {
  let as = await serverOf(env, p);
  // The ID token's algorithm is the upstream's (discovery); Apple's are RS256 (ES256 is only our client secret's).
  const client: oauth.Client = { client_id: p.clientId };
  const opts = options(env, p.issuer);
  try {
    // state and, when the upstream sends it, RFC 9207's iss.
    const callback = oauth.validateAuthResponse(as, client, r.params, r.state);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      await clientAuthOf(env, p),
      callback,
      r.redirectUri,
      r.codeVerifier,
      opts,
    );
    if (p.kind === 'github') return await githubIdentity(env, p, as, client, response);
    if (p.kind === 'entra' && as.issuer.includes('{tenantid}')) as = await entraTenant(p, as, response);
    const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: r.nonce ?? oauth.expectNoNonce,
      requireIdToken: true,
    });
    // The ID token's signature, against the upstream's published keys.
    const cache = jwks.get(as.issuer) ?? {};
    jwks.set(as.issuer, cache);
    await oauth.validateApplicationLevelSignature(as, response, { ...opts, [oauth.jwksCache]: cache });
    const claims = oauth.getValidatedIdTokenClaims(result)! as Record<string, unknown> & oauth.IDToken;
    let info: Record<string, unknown> = claims;
    if (!claims.email && p.kind === 'oidc' && as.userinfo_endpoint && p.scopes.includes('email')) {
      const userinfo = await oauth.userInfoRequest(as, client, result.access_token, opts);
      info = { ...(await oauth.processUserInfoResponse(as, client, claims.sub, userinfo)), ...claims };
    }
    const email = addressOf(info.email);
    // Entra: the email claim is whatever the tenant's user set, never verified; the identity is the object id.
    const emailVerified = p.kind !== 'entra' && email !== null && truthy(info.email_verified);
    const name = text(info.name, 200) ?? appleName(p, r.params);
    return {
      providerId: p.id,
      issuer: as.issuer,
      subject: p.kind === 'entra' ? (text(claims.oid, 64) ?? claims.sub) : claims.sub,
      email,
      emailVerified,
      emailTrusted: emailVerified && email !== null && authoritative(p, email, info),
      name,
      picture: text(info.picture, 2048),
      tokens: p.storeTokens ? tokensOf(result, env.now()) : null,
    };
  } catch (e) {
    if (e instanceof GatehouseError) throw e;
    throw failureOf(p, e);
  }
}

/** An upstream that could not be reached, or failed on its side (5xx), rather than one that said no. */
const unreachable = (e: unknown) =>
  e instanceof TypeError ||
  (e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError')) ||
  ((e instanceof oauth.ResponseBodyError || e instanceof oauth.WWWAuthenticateChallengeError) && e.status >= 500) ||
  (e instanceof oauth.OperationProcessingError && e.cause instanceof Response && e.cause.status >= 500);

/** Why the exchange failed, in words for the person (an upstream's own text is never echoed); logged for the operator. */
function failureOf(p: UpstreamProvider, e: unknown): GatehouseError {
  const reason = reasonOf(p, e);
  return unreachable(e) ? unavailable(p) : upstreamFailed(reason);
}

const unavailable = (p: UpstreamProvider) =>
  new GatehouseError('upstream_unavailable', `${p.displayName} could not be reached. Try again in a moment, or sign in another way.`);

function reasonOf(p: UpstreamProvider, e: unknown): string {
  // For the operator: which check failed (oauth4webapi's code and message name claims, never values of secrets).
  const code = e instanceof Error && 'code' in e ? String((e as { code?: unknown }).code) : 'unknown';
  console.error(
    JSON.stringify({ event: 'upstream_failed', provider: p.id, code, error: e instanceof Error ? e.message.slice(0, 200) : 'unknown' }),
  );
  // Apple says a person's Cancel with a code of its own.
  if (e instanceof oauth.AuthorizationResponseError)
    return e.error === 'access_denied' || e.error === 'user_cancelled_authorize'
      ? `You did not allow the sign-in at ${p.displayName}.`
      : `${p.displayName} could not sign you in (${/^[a-z_]{1,40}$/.test(e.error) ? e.error : 'error'}).`;
  return `The answer from ${p.displayName} could not be verified. Start again, or sign in another way.`;
}

/**
 * Entra's multi-tenant authorities: the ID token's `tid` names the tenant, and its issuer must be
 * exactly that tenant's (read off the token before it is checked, then checked against it). Only
 * the configured tenants, when any are.
 */
async function entraTenant(p: UpstreamProvider, as: oauth.AuthorizationServer, response: Response): Promise<oauth.AuthorizationServer> {
  const body = (await response.clone().json()) as { id_token?: unknown };
  let tid: unknown;
  try {
    tid = JSON.parse(decodeBase64urlText(String(body.id_token).split('.')[1] ?? '') ?? 'null').tid;
  } catch {
    throw upstreamFailed(`The answer from ${p.displayName} could not be verified. Start again, or sign in another way.`);
  }
  if (typeof tid !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(tid))
    throw upstreamFailed(`The answer from ${p.displayName} names no tenant.`);
  if (p.tenants.length && !p.tenants.includes(tid))
    throw upstreamFailed(`Accounts of this organisation cannot sign in with ${p.displayName} here.`);
  return { ...as, issuer: as.issuer.replace('{tenantid}', tid) };
}

/** Apple sends the name once, at the first authorization, as a `user` form field. */
function appleName(p: UpstreamProvider, params: URLSearchParams): string | null {
  if (p.kind !== 'apple') return null;
  try {
    const user = JSON.parse(params.get('user') ?? 'null') as { name?: { firstName?: unknown; lastName?: unknown } } | null;
    const name = [text(user?.name?.firstName, 100), text(user?.name?.lastName, 100)].filter(Boolean).join(' ');
    return name || null;
  } catch {
    return null;
  }
}

function tokensOf(r: oauth.TokenEndpointResponse, now: number): UpstreamIdentity['tokens'] {
  return {
    access_token: r.access_token,
    ...(r.refresh_token ? { refresh_token: r.refresh_token } : {}),
    ...(r.expires_in ? { expires_at: Math.floor(now / 1000) + r.expires_in } : {}),
    ...(r.scope ? { scope: r.scope } : {}),
  };
}

/** GitHub speaks OAuth 2 without OpenID: the account from its API, the address its verified primary one. */
async function githubIdentity(
  env: UpstreamEnv,
  p: UpstreamProvider,
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  response: Response,
): Promise<UpstreamIdentity> {
  const result = await oauth.processAuthorizationCodeResponse(as, client, response);
  const api = async (path: string) => {
    const res = await upstreamFetch(env, `${GITHUB_API}${path}`, {
      headers: {
        authorization: `Bearer ${result.access_token}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'Gatehouse',
      },
    });
    if (!res.ok) throw new Error(`GitHub answered ${res.status}`);
    return res.json();
  };
  const user = (await api('/user')) as { id?: unknown; name?: unknown; login?: unknown; avatar_url?: unknown };
  if (typeof user.id !== 'number' || !Number.isSafeInteger(user.id)) throw new Error('GitHub named no account');
  const emails = (await api('/user/emails')) as { email?: unknown; primary?: unknown; verified?: unknown }[];
  const primary = Array.isArray(emails)
    ? emails.find((e) => e.primary === true && e.verified === true && typeof e.email === 'string')
    : undefined;
  const email = addressOf(primary?.email);
  return {
    providerId: p.id,
    issuer: GITHUB.issuer,
    subject: String(user.id),
    email,
    emailVerified: email !== null,
    emailTrusted: email !== null && authoritative(p, email, {}),
    name: text(user.name, 200) ?? text(user.login, 100),
    picture: text(user.avatar_url, 2048),
    tokens: p.storeTokens ? tokensOf(result, env.now()) : null,
  };
}

/**
 * Fresh tokens for kept ones, by the upstream's refresh token (Gatehouse's client authenticates: the
 * upstream issued them to it). Null when the upstream refuses the refresh token (revoked, expired):
 * the person must sign in with the upstream again. An ID token in the answer is dropped unread —
 * who the person is was settled at sign-in, and Entra's multi-tenant document could not check it.
 */
export async function refreshTokens(
  env: UpstreamEnv,
  p: UpstreamProvider,
  refreshToken: string,
): Promise<NonNullable<UpstreamIdentity['tokens']> | null> {
  const as = await serverOf(env, p);
  const client: oauth.Client = { client_id: p.clientId };
  try {
    const response = await oauth.refreshTokenGrantRequest(as, client, await clientAuthOf(env, p), refreshToken, options(env, p.issuer));
    const body = response.ok ? ((await response.json()) as Record<string, unknown>) : null;
    if (body) delete body.id_token;
    const answer = body ? new Response(JSON.stringify(body), { status: response.status, headers: response.headers }) : response;
    const tokens = tokensOf(await oauth.processRefreshTokenResponse(as, client, answer), env.now())!;
    // An upstream that does not rotate refresh tokens sends none: the one kept stays good.
    return { ...tokens, refresh_token: tokens.refresh_token ?? refreshToken };
  } catch (e) {
    if (e instanceof oauth.ResponseBodyError && e.error === 'invalid_grant') return null;
    reasonOf(p, e); // logged for the operator
    throw new GatehouseError('upstream_unavailable', `${p.displayName} could not renew the tokens. Try again in a moment.`);
  }
}
