import { acrOf } from '../auth/acr';
import { shownEmail } from '../identity/email';
import type { SessionClaims } from '../sessions/session-token';
import { isMachineToken, type AccessTokenClaims } from '../tokens/access-token';

/** Who a proxied request is from, as verified by the gateway. */
export interface Identity {
  /** A browser session, an access token, or an API key. */
  via: 'session' | 'bearer' | 'api_key';
  /** `machine`: a client acting for itself (client_credentials) — no user, so no user headers. */
  kind: 'user' | 'machine';
  /** The user (or, for a machine, the client) the credential is for. */
  sub: string;
  sid: string | null;
  email: string | null;
  emailVerified: boolean | null;
  roles: string[];
  tier: string | null;
  amr: string[];
  acr: string | null;
  /** Seconds since epoch. */
  authTime: number | null;
  /** Bearer tokens and API keys: the scopes, the client (issued to, or owning the key); tokens: the grant and id. */
  scopes: string[] | null;
  clientId: string | null;
  grantId: string | null;
  jti: string | null;
  /** API keys only: the key's id (its public name). */
  keyId: string | null;
  /** When the credential stops being valid (seconds since epoch): bounds the assertion cache. */
  exp: number;
}

export const identityFromSession = (c: SessionClaims): Identity => ({
  via: 'session',
  kind: 'user',
  sub: c.sub,
  sid: c.sid,
  email: shownEmail(c.email),
  emailVerified: shownEmail(c.email) === null ? null : c.emailVerified,
  roles: c.roles,
  tier: c.tier,
  amr: c.amr,
  acr: acrOf(c.amr),
  authTime: c.authTime,
  scopes: null,
  clientId: null,
  grantId: null,
  jti: null,
  keyId: null,
  exp: c.exp,
});

const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** From a verified RFC 9068 access token (Gatehouse's own). Roles and tier are there only when its scope asked for them. */
export const identityFromAccessToken = (p: AccessTokenClaims): Identity => ({
  via: 'bearer',
  kind: isMachineToken(p) ? 'machine' : 'user',
  sub: p.sub,
  sid: typeof p.sid === 'string' ? p.sid : null,
  email: null,
  emailVerified: null,
  roles: strings(p.roles),
  tier: typeof p.tier === 'string' ? p.tier : null,
  amr: strings(p.amr),
  acr: typeof p.acr === 'string' ? p.acr : null,
  authTime: typeof p.auth_time === 'number' ? p.auth_time : null,
  scopes: typeof p.scope === 'string' ? p.scope.split(' ').filter(Boolean) : [],
  clientId: typeof p.client_id === 'string' ? p.client_id : null,
  grantId: typeof p.gid === 'string' ? p.gid : null,
  jti: typeof p.jti === 'string' ? p.jti : null,
  keyId: null,
  exp: p.exp,
});
