/**
 * For origins behind Gatehouse: verify the `X-Auth-Assertion` header (Node ≥ 18, Workers, Deno, Bun).
 *
 *   import { createAssertionVerifier } from 'gatehouse/origin';
 *   const verify = createAssertionVerifier({ issuer: 'https://auth.example.com', audience: 'https://api.internal' });
 *   const identity = await verify(request.headers); // throws if missing, forged, expired or for another origin
 *
 * `audience` is the route's `origin` exactly as written in Gatehouse's ROUTES.
 */
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export const ASSERTION_TYPE = 'gatehouse-assertion+jwt';

export interface AssertedIdentity extends JWTPayload {
  sub: string;
  sid?: string;
  roles: string[];
  tier?: string;
  amr: string[];
  acr?: string;
  auth_time?: number;
  email?: string;
  email_verified?: boolean;
  client_id?: string;
}

export function createAssertionVerifier(opts: {
  issuer: string;
  audience: string;
  /** Defaults to `${issuer}/.well-known/jwks.json`, fetched and cached by jose. */
  jwks?: JWTVerifyGetKey;
  headerName?: string;
}) {
  const keys = opts.jwks ?? createRemoteJWKSet(new URL('/.well-known/jwks.json', opts.issuer));
  const header = opts.headerName ?? 'x-auth-assertion';
  return async (headers: Headers | string): Promise<AssertedIdentity> => {
    const token = typeof headers === 'string' ? headers : headers.get(header);
    if (!token) throw new Error(`missing ${header}`);
    const { payload } = await jwtVerify(token, keys, {
      issuer: opts.issuer,
      audience: opts.audience,
      typ: ASSERTION_TYPE,
      algorithms: ['ES256'],
      maxTokenAge: '75s',
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    return payload as AssertedIdentity;
  };
}
