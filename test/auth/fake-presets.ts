import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import { randomToken, sha256 } from '../../src/lib/crypto';

/**
 * The presets' real hosts, faked for the Workers-runtime tests behind the fetch Gatehouse uses for
 * upstreams (deps.fetch): Google, Microsoft Entra, Apple and GitHub at their own URLs, with their
 * documents, token answers and quirks, so each preset runs as it does in production. The test plays
 * the person at the authorization endpoint (`authorize`), choosing what the upstream says of them.
 * One fake per host per isolate (google(), entra(), …): an upstream's signing key stays the same, as
 * Gatehouse's JWKS cache expects of it.
 */

/** What the upstream says of the person (claims, or GitHub's API objects); `idToken` overrides go over the ID token. */
export type Claims = Record<string, unknown>;
export interface Misbehaviour {
  idToken?: Claims;
}
/** A client registered at the upstream: its id, the one redirect URI it registered, and how it authenticates. */
export interface RegisteredClient {
  clientId: string;
  redirectUri: string;
  secret?: string;
  /** Apple: the team and key the client secret JWT must be signed for, and the key's public half. */
  apple?: { teamId: string; keyId: string; publicKey: CryptoKey };
}

interface Grant {
  client: RegisteredClient;
  person: Claims;
  nonce: string | null;
  challenge: string | null;
  misbehave: Misbehaviour;
  used: boolean;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const seconds = () => Math.floor(Date.now() / 1000);

/** What every fake shares: clients, authorization codes, a signing key, a log of calls. */
async function upstreamCore(jwkExtras: Partial<JWK> = { alg: 'RS256' }) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), use: 'sig', ...jwkExtras };
  jwk.kid = await calculateJwkThumbprint(jwk);
  const clients = new Map<string, RegisteredClient>();
  const grants = new Map<string, Grant>();
  const calls: { method: string; url: string; headers: Headers; form: URLSearchParams | null }[] = [];
  const sign = (claims: Claims) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid!, typ: 'JWT' }).sign(privateKey);

  return {
    jwks: { keys: [jwk] },
    clients,
    calls,
    /** The upstream's fetch: every call logged (with its form, for a POST), then answered by `route`. */
    serve(route: (request: Request, url: URL, form: URLSearchParams | null) => Promise<Response>): typeof fetch {
      return (async (input: RequestInfo | URL, init?: RequestInit) => {
        const request = new Request(input, init);
        const form = request.method === 'POST' ? new URLSearchParams(new TextDecoder().decode(await request.clone().arrayBuffer())) : null;
        calls.push({ method: request.method, url: request.url, headers: request.headers, form });
        return route(request, new URL(request.url), form);
      }) as typeof fetch;
    },
    /** The person allows the request at `href` (its endpoint checked by the caller): a code for it. */
    grant(href: string, person: Claims, misbehave: Misbehaviour = {}, pkce: 'required' | 'optional' | 'ignored' = 'required') {
      const q = new URL(href).searchParams;
      const client = clients.get(q.get('client_id') ?? '');
      if (!client) throw new Error(`the upstream knows no client ${q.get('client_id')}`);
      // Every one of them: the redirect URI must be the one registered (else an error page of theirs).
      if (q.get('redirect_uri') !== client.redirectUri) throw new Error(`redirect_uri_mismatch: ${q.get('redirect_uri')}`);
      if (q.get('response_type') !== 'code') throw new Error('unsupported response_type');
      const challenge = q.get('code_challenge');
      if (pkce === 'required' && (q.get('code_challenge_method') !== 'S256' || !challenge)) throw new Error('no PKCE');
      const code = randomToken(16);
      grants.set(code, {
        client,
        person,
        nonce: q.get('nonce'),
        challenge: pkce === 'ignored' ? null : challenge,
        misbehave,
        used: false,
      });
      const back = new URL(client.redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state')!);
      return { code, back, q };
    },
    /** The token endpoint's checks of a code: the client that got it, once, its redirect URI and PKCE verifier. */
    async redeem(form: URLSearchParams, clientId: string): Promise<Grant | string> {
      const g = grants.get(form.get('code') ?? '');
      if (form.get('grant_type') !== 'authorization_code') return 'unsupported_grant_type';
      if (!g || g.used || g.client.clientId !== clientId) return 'invalid_grant';
      g.used = true;
      if (form.get('redirect_uri') !== g.client.redirectUri) return 'invalid_grant';
      if (g.challenge && (await sha256(form.get('code_verifier') ?? '')) !== g.challenge) return 'invalid_grant';
      return g;
    },
    /** An ID token for a grant: the upstream's claims, the person's, then the test's overrides. */
    idToken(g: Grant, claims: Claims) {
      const now = seconds();
      return sign({
        aud: g.client.clientId,
        iat: now,
        exp: now + 3600,
        ...(g.nonce ? { nonce: g.nonce } : {}),
        ...claims,
        ...g.misbehave.idToken,
      });
    },
  };
}
type Core = Awaited<ReturnType<typeof upstreamCore>>;

/** The client's id and secret, by HTTP Basic (form-encoded first, RFC 6749 §2.3.1) or in the form. */
function clientCredentials(request: Request, form: URLSearchParams): { id: string; secret: string } {
  const basic = request.headers.get('authorization');
  if (basic?.startsWith('Basic ')) {
    const [id = '', secret = ''] = atob(basic.slice(6))
      .split(':')
      .map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
    return { id, secret };
  }
  return { id: form.get('client_id') ?? '', secret: form.get('client_secret') ?? '' };
}

/** A code redeemed by a client with a secret: the grant, or the OAuth error (RFC 6749 §5.2) as the upstream's JSON. */
async function secretGrant(core: Core, request: Request, form: URLSearchParams): Promise<Grant | Response> {
  const { id, secret } = clientCredentials(request, form);
  const client = core.clients.get(id);
  if (!client?.secret || client.secret !== secret) return json({ error: 'invalid_client' }, 401);
  const g = await core.redeem(form, id);
  return typeof g === 'string' ? json({ error: g }, 400) : g;
}

// ── Google ───────────────────────────────────────────────────────────────────────────────────

export const GOOGLE = {
  issuer: 'https://accounts.google.com',
  authorize: 'https://accounts.google.com/o/oauth2/v2/auth',
  token: 'https://oauth2.googleapis.com/token',
  userinfo: 'https://openidconnect.googleapis.com/v1/userinfo',
  jwks: 'https://www.googleapis.com/oauth2/v3/certs',
};

async function makeGoogle() {
  const core = await upstreamCore();
  const fetcher = core.serve(async (request, url, form) => {
    switch (url.origin + url.pathname) {
      case `${GOOGLE.issuer}/.well-known/openid-configuration`:
        return json({
          issuer: GOOGLE.issuer,
          authorization_endpoint: GOOGLE.authorize,
          token_endpoint: GOOGLE.token,
          userinfo_endpoint: GOOGLE.userinfo,
          jwks_uri: GOOGLE.jwks,
          response_types_supported: ['code', 'token', 'id_token', 'code token', 'code id_token', 'none'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          scopes_supported: ['openid', 'email', 'profile'],
          token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
          code_challenge_methods_supported: ['plain', 'S256'],
        });
      case GOOGLE.jwks:
        return json(core.jwks);
      case GOOGLE.token: {
        const g = await secretGrant(core, request, form!);
        if (g instanceof Response) return g;
        const id_token = await core.idToken(g, { iss: GOOGLE.issuer, azp: g.client.clientId, ...g.person });
        return json({
          access_token: `ya29.${randomToken(24)}`,
          expires_in: 3599,
          scope: 'openid email profile',
          token_type: 'Bearer',
          id_token,
        });
      }
    }
    return new Response('Not Found', { status: 404 });
  });
  return {
    ...core,
    fetch: fetcher,
    /** The person at Google's consent screen: the callback (path and query), with Google's extra parameters and RFC 9207 `iss`. */
    authorize(href: string, person: Claims, misbehave: Misbehaviour = {}): string {
      if (!href.startsWith(`${GOOGLE.authorize}?`)) throw new Error(`not Google's authorization endpoint: ${href}`);
      const { back, q } = core.grant(href, person, misbehave);
      back.searchParams.set('iss', GOOGLE.issuer);
      back.searchParams.set('scope', q.get('scope') ?? '');
      back.searchParams.set('authuser', '0');
      if (typeof person.hd === 'string') back.searchParams.set('hd', person.hd);
      back.searchParams.set('prompt', 'consent');
      return back.pathname + back.search;
    },
  };
}

// ── Microsoft Entra ID ───────────────────────────────────────────────────────────────────────

const ENTRA_HOST = 'https://login.microsoftonline.com';
/** The tenant of personal Microsoft accounts. */
export const MSA_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
export const entraIssuer = (tenant: string) => `${ENTRA_HOST}/${tenant}/v2.0`;
const ENTRA_PATH =
  /^\/(common|organizations|consumers|[0-9a-f-]{36})\/(v2\.0\/\.well-known\/openid-configuration|discovery\/v2\.0\/keys|oauth2\/v2\.0\/token)$/;

async function makeEntra() {
  // Entra's keys carry no `alg`, and name the templated issuer they sign for.
  const core = await upstreamCore({ x5t: 'fake', issuer: `${ENTRA_HOST}/{tenantid}/v2.0` } as Partial<JWK>);
  const fetcher = core.serve(async (request, url, form) => {
    const match = url.origin === ENTRA_HOST ? ENTRA_PATH.exec(url.pathname) : null;
    if (!match) return new Response('Not Found', { status: 404 });
    const [, authority, what] = match as unknown as [string, string, string];
    if (what.endsWith('openid-configuration'))
      return json({
        // The multi-tenant authorities name no tenant: `{tenantid}`; `consumers` names the personal accounts' one.
        issuer:
          authority === 'common' || authority === 'organizations'
            ? `${ENTRA_HOST}/{tenantid}/v2.0`
            : entraIssuer(authority === 'consumers' ? MSA_TENANT : authority),
        authorization_endpoint: `${ENTRA_HOST}/${authority}/oauth2/v2.0/authorize`,
        token_endpoint: `${ENTRA_HOST}/${authority}/oauth2/v2.0/token`,
        jwks_uri: `${ENTRA_HOST}/${authority}/discovery/v2.0/keys`,
        userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
        response_modes_supported: ['query', 'fragment', 'form_post'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        tenant_region_scope: null,
      });
    if (what.endsWith('keys')) return json(core.jwks);
    const g = await secretGrant(core, request, form!);
    if (g instanceof Response) return g;
    const tid = g.person.tid as string;
    const id_token = await core.idToken(g, { iss: entraIssuer(tid), ver: '2.0', rh: '0.fake', uti: randomToken(8), ...g.person });
    return json({ token_type: 'Bearer', scope: 'openid profile email', expires_in: 4371, access_token: randomToken(32), id_token });
  });
  return {
    ...core,
    fetch: fetcher,
    /** The person at Microsoft's sign-in page (`tid`, `oid`, `sub` and what else the token says). */
    authorize(href: string, person: Claims, misbehave: Misbehaviour = {}): string {
      if (!/^https:\/\/login\.microsoftonline\.com\/[^/]+\/oauth2\/v2\.0\/authorize\?/.test(href)) throw new Error(`not Entra: ${href}`);
      const { back } = core.grant(href, person, misbehave);
      return back.pathname + back.search;
    },
  };
}

// ── Apple ────────────────────────────────────────────────────────────────────────────────────

export const APPLE = {
  issuer: 'https://appleid.apple.com',
  authorize: 'https://appleid.apple.com/auth/authorize',
  token: 'https://appleid.apple.com/auth/token',
  jwks: 'https://appleid.apple.com/auth/keys',
};

/** Apple's rule for the client secret: an ES256 JWT for the team and key, to Apple, at most six months long. */
async function appleClientSecretError(client: RegisteredClient | undefined, secret: string): Promise<string | null> {
  if (!client?.apple) return 'no such client';
  try {
    const { protectedHeader, payload } = await jwtVerify(secret, client.apple.publicKey, {
      algorithms: ['ES256'],
      issuer: client.apple.teamId,
      subject: client.clientId,
      audience: APPLE.issuer,
      requiredClaims: ['iat', 'exp'],
    });
    if (protectedHeader.kid !== client.apple.keyId) return 'kid';
    if (payload.exp! - payload.iat! > 15_777_000) return 'too long';
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : 'invalid';
  }
}

async function makeApple() {
  const core = await upstreamCore();
  const refusedSecrets: string[] = [];
  const fetcher = core.serve(async (_request, url, form) => {
    switch (url.origin + url.pathname) {
      case `${APPLE.issuer}/.well-known/openid-configuration`:
        return json({
          issuer: APPLE.issuer,
          authorization_endpoint: APPLE.authorize,
          token_endpoint: APPLE.token,
          revocation_endpoint: 'https://appleid.apple.com/auth/revoke',
          jwks_uri: APPLE.jwks,
          response_types_supported: ['code'],
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          scopes_supported: ['openid', 'email', 'name'],
          token_endpoint_auth_methods_supported: ['client_secret_post'],
          claims_supported: [
            'aud',
            'email',
            'email_verified',
            'exp',
            'iat',
            'is_private_email',
            'iss',
            'nonce',
            'nonce_supported',
            'real_user_status',
            'sub',
            'transfer_sub',
          ],
        });
      case APPLE.jwks:
        return json(core.jwks);
      case APPLE.token: {
        // client_secret_post only; the secret is a JWT the client signs with its key.
        const id = form!.get('client_id') ?? '';
        const refused = await appleClientSecretError(core.clients.get(id), form!.get('client_secret') ?? '');
        if (refused) {
          refusedSecrets.push(refused);
          return json({ error: 'invalid_client' }, 400);
        }
        const g = await core.redeem(form!, id);
        if (typeof g === 'string') return json({ error: g }, 400);
        const id_token = await core.idToken(g, {
          iss: APPLE.issuer,
          auth_time: seconds(),
          nonce_supported: true,
          real_user_status: 2,
          ...g.person,
        });
        return json({ access_token: randomToken(24), token_type: 'Bearer', expires_in: 3600, refresh_token: randomToken(24), id_token });
      }
    }
    return new Response('Not Found', { status: 404 });
  });
  return {
    ...core,
    fetch: fetcher,
    /** Why Apple's token endpoint refused client secrets (for the tests' messages). */
    refusedSecrets,
    /**
     * The person at Apple's page: Apple answers by a form post from its own page (the callback's path
     * and form), with the name in `user` only at the person's first authorization for this client.
     */
    authorize(
      href: string,
      person: Claims,
      o: { user?: { name?: { firstName?: string; lastName?: string }; email?: string }; misbehave?: Misbehaviour } = {},
    ) {
      if (!href.startsWith(`${APPLE.authorize}?`)) throw new Error(`not Apple's authorization endpoint: ${href}`);
      const scopes = new URL(href).searchParams.get('scope')?.split(' ') ?? [];
      // Apple's rule: asking for the name or the address needs the form post.
      if ((scopes.includes('name') || scopes.includes('email')) && new URL(href).searchParams.get('response_mode') !== 'form_post')
        throw new Error('invalid_request: response_mode must be form_post when name or email scope is requested');
      // Apple ignores PKCE.
      const { back, code } = core.grant(href, person, o.misbehave, 'ignored');
      const form = new URLSearchParams({ state: back.searchParams.get('state')!, code });
      if (o.user) form.set('user', JSON.stringify(o.user));
      return { path: back.pathname, form };
    },
    /** The person presses Cancel at Apple: Apple's own error code, posted back like an answer. */
    cancel(href: string) {
      const q = new URL(href).searchParams;
      return {
        path: new URL(q.get('redirect_uri')!).pathname,
        form: new URLSearchParams({ error: 'user_cancelled_authorize', state: q.get('state')! }),
      };
    },
  };
}

// ── GitHub ───────────────────────────────────────────────────────────────────────────────────

export const GITHUB = {
  /** Not an OpenID Provider: the issuer Gatehouse names GitHub's identities with. */
  issuer: 'https://github.com',
  authorize: 'https://github.com/login/oauth/authorize',
  token: 'https://github.com/login/oauth/access_token',
  api: 'https://api.github.com',
};

/** A GitHub account as its API describes it, and the addresses /user/emails lists. */
export interface GitHubAccount {
  id: number;
  login: string;
  name?: string | null;
  avatar_url?: string;
  /** The public profile address (anything the person typed; never what Gatehouse uses). */
  email?: string | null;
  emails: { email: string; primary: boolean; verified: boolean; visibility?: string | null }[];
}

async function makeGitHub() {
  const core = await upstreamCore();
  const accounts = new Map<string, GitHubAccount>();
  const fetcher = core.serve(async (request, url, form) => {
    if (url.origin + url.pathname === GITHUB.token) {
      // GitHub answers an OAuth error with 200, and form-encoded unless JSON is asked for.
      const g = await secretGrant(core, request, form!);
      let body: Record<string, string>;
      if (g instanceof Response) body = g.status === 401 ? { error: 'incorrect_client_credentials' } : { error: 'bad_verification_code' };
      else {
        body = { access_token: `gho_${randomToken(27)}`, token_type: 'bearer', scope: 'read:user,user:email' };
        accounts.set(body.access_token!, g.person as unknown as GitHubAccount);
      }
      return request.headers.get('accept')?.includes('application/json')
        ? json(body)
        : new Response(new URLSearchParams(body).toString(), {
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          });
    }
    if (url.origin !== GITHUB.api) return new Response('Not Found', { status: 404 });
    if (!request.headers.get('user-agent'))
      return new Response('Request forbidden by administrative rules. Please make sure your request has a User-Agent header', {
        status: 403,
      });
    const account = accounts.get((request.headers.get('authorization') ?? '').replace(/^(Bearer|token) /, ''));
    if (!account) return json({ message: 'Bad credentials', status: '401' }, 401);
    const { emails, ...user } = account;
    if (url.pathname === '/user') return json({ type: 'User', email: null, ...user });
    if (url.pathname === '/user/emails') return json(emails.map((e) => ({ visibility: null, ...e })));
    return json({ message: 'Not Found' }, 404);
  });
  return {
    ...core,
    fetch: fetcher,
    /** The person at GitHub's authorize page: back with `code` and `state`, nothing else. */
    authorize(href: string, account: GitHubAccount): string {
      if (!href.startsWith(`${GITHUB.authorize}?`)) throw new Error(`not GitHub's authorization endpoint: ${href}`);
      const { back } = core.grant(href, account as unknown as Claims, {}, 'optional');
      return back.pathname + back.search;
    },
  };
}

const once = <T>(make: () => Promise<T>) => {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
};
export const google = once(makeGoogle);
export const entra = once(makeEntra);
export const apple = once(makeApple);
export const github = once(makeGitHub);
export type FakeGoogle = Awaited<ReturnType<typeof makeGoogle>>;
export type FakeEntra = Awaited<ReturnType<typeof makeEntra>>;
export type FakeApple = Awaited<ReturnType<typeof makeApple>>;
export type FakeGitHub = Awaited<ReturnType<typeof makeGitHub>>;

/** Apple's developer-portal key: the PKCS#8 PEM Gatehouse is given, and the public half Apple keeps. */
export async function appleKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { pem: await exportPKCS8(privateKey), publicKey };
}
