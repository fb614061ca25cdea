import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { randomToken, sha256 } from '../../src/lib/crypto';

/**
 * An upstream OpenID Provider for the Workers-runtime tests, behind the fetch Gatehouse uses for
 * upstreams (deps.fetch): discovery, JWKS, token and userinfo endpoints, ID tokens signed with its
 * own key. The test plays the person at its authorization endpoint (`authorize`), choosing what the
 * upstream says of them — and, for the attacks, how it misbehaves. (The end-to-end suite runs
 * panva's oidc-provider instead.)
 */
export interface Person {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  picture?: string;
  [claim: string]: unknown;
}

export interface Misbehaviour {
  /** Claims to put in (or over) the ID token: another `aud`, `iss`, `nonce`, an old `exp`… */
  idToken?: Record<string, unknown>;
  /** Sign with a key the upstream never published. */
  unpublishedKey?: boolean;
  /** Leave the email out of the ID token (it is at userinfo). */
  emailOnlyAtUserinfo?: boolean;
  /** Answer the token endpoint with this status instead. */
  tokenStatus?: number;
}

interface Grant {
  person: Person;
  clientId: string;
  redirectUri: string;
  nonce: string | null;
  challenge: string;
  misbehave: Misbehaviour;
  used: boolean;
}

export async function fakeUpstream(opts: { issuer?: string; clientId: string; clientSecret: string; sendIss?: boolean }) {
  const issuer =
    opts.issuer ??
    `https://idp-${randomToken(6)
      .toLowerCase()
      .replace(/[^a-z0-9]/g, 'x')}.example`;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const stranger = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), alg: 'RS256', use: 'sig' };
  jwk.kid = await calculateJwkThumbprint(jwk);
  const grants = new Map<string, Grant>();
  const tokens = new Map<string, Person>();
  /** Refresh tokens it issued (with the grant they continue); revoked ones are removed. */
  const refreshTokens = new Map<string, Grant>();
  const calls: string[] = [];
  let down = false;

  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  async function idToken(g: Grant): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const { email, ...rest } = g.person;
    const claims: Record<string, unknown> = {
      ...rest,
      ...(g.misbehave.emailOnlyAtUserinfo ? {} : { email }),
      ...(g.nonce ? { nonce: g.nonce } : {}),
    };
    for (const [k, v] of Object.entries(g.misbehave.idToken ?? {})) claims[k] = v;
    const key = g.misbehave.unpublishedKey ? stranger.privateKey : privateKey;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: g.misbehave.unpublishedKey ? 'never-published' : jwk.kid! })
      .setIssuer((claims.iss as string | undefined) ?? issuer)
      .setAudience((claims.aud as string | undefined) ?? g.clientId)
      .setIssuedAt(now)
      .setExpirationTime((claims.exp as number | undefined) ?? now + 300)
      .sign(key);
  }

  const fetcher = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    calls.push(`${request.method} ${url.pathname}`);
    if (down) throw new TypeError('fetch failed: connection refused');
    if (url.origin !== issuer) return new Response('not this upstream', { status: 404 });
    switch (url.pathname) {
      case '/.well-known/openid-configuration':
        return json({
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          userinfo_endpoint: `${issuer}/userinfo`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          code_challenge_methods_supported: ['S256'],
          ...(opts.sendIss ? { authorization_response_iss_parameter_supported: true } : {}),
        });
      case '/jwks':
        return json({ keys: [jwk] });
      case '/token': {
        const form = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
        // RFC 6749 §2.3.1: the credentials are form-encoded before base64.
        const [id, secret] = atob((request.headers.get('authorization') ?? '').replace(/^Basic /, ''))
          .split(':')
          .map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
        if (id !== opts.clientId || secret !== opts.clientSecret) return json({ error: 'invalid_client' }, 401);
        if (form.get('grant_type') === 'refresh_token') {
          const g = refreshTokens.get(form.get('refresh_token') ?? '');
          if (!g) return json({ error: 'invalid_grant' }, 400);
          const access = randomToken(24);
          tokens.set(access, g.person);
          // Not rotated; an ID token comes along, as Google's and Entra's do.
          return json({ access_token: access, token_type: 'Bearer', expires_in: 300, id_token: await idToken(g) });
        }
        const g = grants.get(form.get('code') ?? '');
        if (!g || g.used) return json({ error: 'invalid_grant' }, 400);
        g.used = true;
        if (g.misbehave.tokenStatus) return json({ error: 'server_error' }, g.misbehave.tokenStatus);
        if (form.get('redirect_uri') !== g.redirectUri) return json({ error: 'invalid_grant', error_description: 'redirect_uri' }, 400);
        if ((await sha256(form.get('code_verifier') ?? '')) !== g.challenge)
          return json({ error: 'invalid_grant', error_description: 'pkce' }, 400);
        const access = randomToken(24);
        tokens.set(access, g.person);
        const refresh = randomToken(24);
        refreshTokens.set(refresh, g);
        return json({
          access_token: access,
          token_type: 'Bearer',
          expires_in: 300,
          refresh_token: refresh,
          scope: 'openid email profile',
          id_token: await idToken(g),
        });
      }
      case '/userinfo': {
        const person = tokens.get((request.headers.get('authorization') ?? '').replace(/^Bearer /, ''));
        return person ? json(person) : json({ error: 'invalid_token' }, 401);
      }
    }
    return new Response('not found', { status: 404 });
  };

  return {
    issuer,
    fetch: fetcher as typeof fetch,
    calls,
    /** Whose an access token it issued is (undefined: not one of its own). */
    holderOf(accessToken: string): Person | undefined {
      return tokens.get(accessToken);
    },
    /** Revokes every refresh token it issued (the person removed the app, say). */
    revokeRefreshTokens() {
      refreshTokens.clear();
    },
    /** Takes the upstream offline (every call fails as a refused connection does). */
    setDown(value: boolean) {
      down = value;
    },
    /**
     * The person at the authorization endpoint: `href` is where Gatehouse sent them. Answers the
     * callback URL (path and query) Gatehouse gets back — the code and state, and iss when sent.
     */
    authorize(href: string, person: Person, misbehave: Misbehaviour = {}): string {
      const url = new URL(href);
      if (url.origin + url.pathname !== `${issuer}/authorize`) throw new Error(`not this upstream: ${href}`);
      const q = url.searchParams;
      if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) throw new Error('no PKCE');
      const code = randomToken(16);
      grants.set(code, {
        person,
        clientId: q.get('client_id')!,
        redirectUri: q.get('redirect_uri')!,
        nonce: q.get('nonce'),
        challenge: q.get('code_challenge')!,
        misbehave,
        used: false,
      });
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state')!);
      if (opts.sendIss) back.searchParams.set('iss', issuer);
      return `${back.pathname}${back.search}`;
    },
    /** The callback an upstream sends when the person refused (or it failed). */
    deny(href: string, error = 'access_denied'): string {
      const q = new URL(href).searchParams;
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('error', error);
      back.searchParams.set('state', q.get('state')!);
      if (opts.sendIss) back.searchParams.set('iss', issuer);
      return `${back.pathname}${back.search}`;
    },
  };
}

export type FakeUpstream = Awaited<ReturnType<typeof fakeUpstream>>;
