import { eq } from 'drizzle-orm';
import type { JSONWebKeySet } from 'jose';
import type { Database } from '../db/client';
import { oauthClients, type OAuthClientRow } from '../db/schema';

import type { GrantType } from './grants-and-scopes';

export { GRANT_TYPES, KNOWN_SCOPES, type GrantType } from './grants-and-scopes';
export type AuthMethod = OAuthClientRow['tokenEndpointAuthMethod'];

export interface Client {
  clientId: string;
  name: string;
  isPublic: boolean;
  secretHash: string | null;
  authMethod: AuthMethod;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: GrantType[];
  scopes: string[];
  firstParty: boolean;
  accessTokenFormat: 'jwt' | 'opaque';
  idTokenAlg: 'RS256' | 'ES256';
  jwks: JSONWebKeySet | null;
  /** Seconds; null for the server default. */
  accessTokenTtl: number | null;
  refreshTokenIdleTtl: number | null;
  refreshTokenAbsoluteTtl: number | null;
  /** Sign-ins for this client need a second factor. */
  requireMfa: boolean;
  /** RFC 8707 resources it may ask access tokens for. */
  resources: string[];
  /** Resources it is (an API's own credentials): it may introspect their tokens. */
  serves: string[];
  /** PKCE required (always, for public clients); off: OpenID requests may use `nonce` instead. */
  requirePkce: boolean;
  /** Scope-released claims go in the ID token as well as at userinfo. */
  idTokenClaims: boolean;
  /** Authorization requests must be pushed (RFC 9126). */
  requirePar: boolean;
  /** Access tokens only DPoP-bound (RFC 9449 §5.2). Public clients' refresh tokens are bound whenever a proof is given. */
  requireDpop: boolean;
  /** Registered itself through RFC 7591, not by an operator: the consent page says so. */
  selfRegistered: boolean;
}

const list = (json: string) => JSON.parse(json) as string[];

export function clientFromRow(r: OAuthClientRow): Client {
  return {
    clientId: r.clientId,
    name: r.name,
    isPublic: r.tokenEndpointAuthMethod === 'none',
    secretHash: r.secretHash,
    authMethod: r.tokenEndpointAuthMethod,
    redirectUris: list(r.redirectUris),
    postLogoutRedirectUris: list(r.postLogoutRedirectUris),
    grantTypes: list(r.grantTypes) as GrantType[],
    scopes: list(r.scopes),
    firstParty: r.firstParty,
    accessTokenFormat: r.accessTokenFormat,
    idTokenAlg: r.idTokenSignedResponseAlg,
    jwks: r.jwks ? (JSON.parse(r.jwks) as JSONWebKeySet) : null,
    accessTokenTtl: r.accessTokenTtl,
    refreshTokenIdleTtl: r.refreshTokenIdleTtl,
    refreshTokenAbsoluteTtl: r.refreshTokenAbsoluteTtl,
    requireMfa: r.requireMfa,
    resources: list(r.resources),
    serves: list(r.serves),
    requirePkce: r.requirePkce || r.tokenEndpointAuthMethod === 'none',
    idTokenClaims: r.idTokenClaims,
    requirePar: r.requirePar,
    requireDpop: r.requireDpop,
    selfRegistered: r.registrationTokenHash !== null,
  };
}

const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * How long an isolate keeps a client record it read (docs/oidc.md "Client records in the isolate"):
 * the token endpoint then authenticates a known client without a D1 read. A change made through
 * Gatehouse (dynamic registration's update and delete) takes effect at once on the isolate that
 * made it; on other isolates, and for changes made in D1 directly (the clients CLI), within this.
 */
export const CLIENT_CACHE_TTL_MS = 30_000;
/** At most this many records per isolate; the least recently used goes first. */
const CLIENT_CACHE_MAX = 2_000;
const cached = new Map<string, { client: Client; until: number }>();

/**
 * The client with this id, from the isolate's cache while fresh, else from D1. Unknown ids are not
 * cached (a caller spraying ids cannot push known clients out). The record is frozen: shared
 * between requests, nobody may change it.
 */
export async function findClient(db: Database, clientId: string, now = Date.now()): Promise<Client | undefined> {
  if (!CLIENT_ID.test(clientId)) return undefined;
  const hit = cached.get(clientId);
  if (hit && hit.until > now) {
    cached.delete(clientId);
    cached.set(clientId, hit);
    return hit.client;
  }
  const row = await db.select().from(oauthClients).where(eq(oauthClients.clientId, clientId)).get();
  if (!row) {
    cached.delete(clientId);
    return undefined;
  }
  const client = deepFreeze(clientFromRow(row));
  cached.delete(clientId);
  cached.set(clientId, { client, until: now + CLIENT_CACHE_TTL_MS });
  if (cached.size > CLIENT_CACHE_MAX) cached.delete(cached.keys().next().value!);
  return client;
}

/** Drops a client's cached record: after Gatehouse itself changed or deleted it. */
export function forgetClient(clientId: string): void {
  cached.delete(clientId);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The resources a grant may be exchanged for (RFC 8707): those the request named — shown on the
 * consent page — or, asking for none, every one a first-party client may have (it needs no
 * consent). A third-party client that named none gets tokens for Gatehouse alone: an API is never
 * reached on a consent that did not name it.
 */
export const grantResources = (r: { client: Client; resources: string[] }) =>
  r.resources.length || !r.client.firstParty ? r.resources : r.client.resources;
