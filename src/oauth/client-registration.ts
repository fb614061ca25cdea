import { importJWK, type JWK } from 'jose';
import * as z from 'zod';
import type { ClientResourceRow, OAuthClientRow } from '../db/schema';
import { randomToken, sha256 } from '../lib/crypto';
import { displayText } from '../lib/display-text';
import { GRANT_TYPES, KNOWN_SCOPES } from './grants-and-scopes';
import { redirectUriProblem } from './redirect-uri';

const uri = z.string().superRefine((v, ctx) => {
  const problem = redirectUriProblem(v);
  // The message quotes the URI for the operator; `params.problem` does not, for callers that must not echo input.
  if (problem) ctx.addIssue({ code: 'custom', message: `${v} ${problem}`, params: { problem } });
});

/** Members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** What is kept of a client's key: the public members a verifier reads. */
const PUBLIC_MEMBERS = ['kty', 'kid', 'use', 'key_ops', 'alg', 'crv', 'x', 'y', 'n', 'e'];
/** The algorithm a key without `alg` is checked for: the ones client assertions and request objects may use. */
const DEFAULT_ALG: Record<string, string> = { RSA: 'RS256', 'EC:P-256': 'ES256', 'OKP:Ed25519': 'EdDSA' };

/**
 * A client's public signing key. A key with private members is refused, not trimmed: it has left
 * its owner, and the owner should know. Checked by importing it (a point off the curve fails).
 */
const publicJwk = z
  .record(z.string(), z.unknown())
  .superRefine(async (k, ctx) => {
    const secret = SECRET_MEMBERS.filter((m) => m in k);
    for (const m of secret) ctx.addIssue({ code: 'custom', path: [m], message: 'is a private key member: register only the public key' });
    if (secret.length) return;
    if (k.kty !== 'RSA' && k.kty !== 'EC' && k.kty !== 'OKP')
      return void ctx.addIssue({ code: 'custom', path: ['kty'], message: 'must be RSA, EC or OKP (a public signing key)' });
    const alg = typeof k.alg === 'string' ? k.alg : DEFAULT_ALG[k.kty === 'RSA' ? 'RSA' : `${k.kty}:${String(k.crv)}`];
    try {
      if (!alg) throw new Error('no algorithm');
      await importJWK(k as JWK, alg);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not a usable public key' });
    }
  })
  .transform((k) => Object.fromEntries(PUBLIC_MEMBERS.filter((m) => m in k).map((m) => [m, k[m]])));

/** RFC 8707 §2: a resource is an absolute URI with no fragment (an https URL or a URN). */
export const resourceIdentifier = z
  .string()
  .max(512)
  .superRefine((v, ctx) => {
    const problem = resourceProblem(v);
    // As for redirect URIs: `params.problem` without the value, for callers that must not echo input.
    if (problem) ctx.addIssue({ code: 'custom', message: `${v} ${problem}`, params: { problem } });
  });

export function resourceProblem(v: string): string | undefined {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'is not an absolute URI';
  }
  if (v.includes('#')) return 'must not contain a fragment';
  if (
    url.protocol !== 'https:' &&
    url.protocol !== 'urn:' &&
    !(url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname))
  )
    return 'must be an https URL or a URN';
  return undefined;
}

/** What an operator (or, later, the admin API) asks for when registering a client. */
export const clientInput = z
  .object({
    // Shown on the consent page.
    name: displayText('name', 100),
    clientId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{3,64}$/, 'client_id must be 3–64 of A-Z a-z 0-9 _ -')
      // A client_id shaped like a user id could be mistaken for one: never allowed.
      .refine(
        (v) => !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
        'client_id must not look like a user id (a UUID)',
      )
      .optional(),
    clientSecret: z.string().min(32, 'client_secret must be at least 32 characters').max(256).optional(),
    redirectUris: z.array(uri),
    postLogoutRedirectUris: z.array(uri).default([]),
    public: z.boolean().default(false),
    firstParty: z.boolean().default(false),
    grantTypes: z.array(z.enum(GRANT_TYPES as [string, ...string[]])).default(['authorization_code', 'refresh_token']),
    scopes: z.array(z.enum(KNOWN_SCOPES)).default(['openid', 'profile', 'email']),
    authMethod: z
      .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'], {
        error: 'must be client_secret_basic, client_secret_post, private_key_jwt or none',
      })
      .optional(),
    jwks: z.object({ keys: z.array(publicJwk).min(1).max(10) }).optional(),
    // Never `none`: an unsigned ID token proves nothing (RFC 8725 §3.1).
    idTokenAlg: z.enum(['RS256', 'ES256'], { error: 'must be RS256 or ES256' }).default('RS256'),
    accessTokenFormat: z.enum(['jwt', 'opaque']).default('jwt'),
    /** Seconds; server defaults when absent. */
    accessTokenTtl: z.number().int().min(30).max(86400).optional(),
    refreshTokenIdleTtl: z.number().int().min(60).optional(),
    refreshTokenAbsoluteTtl: z.number().int().min(60).optional(),
    /** Every sign-in for this client must use a second factor (docs/authentication.md). */
    requireMfa: z.boolean().default(false),
    /**
     * Registered APIs (RFC 8707 resources) the client may ask access tokens for, each with the scopes
     * of it the client may be given (none: tokens for that API carry only OpenID scopes).
     */
    resources: z
      .array(
        z.union([
          resourceIdentifier.transform((resource) => ({ resource, scopes: [] as string[] })),
          z.object({ resource: resourceIdentifier, scopes: z.array(z.string().min(1).max(100)).max(100).default([]) }).strict(),
        ]),
      )
      .max(50)
      .default([])
      .refine((rs) => new Set(rs.map((r) => r.resource)).size === rs.length, 'names a resource twice'),
    /** Resources this client is — an API's own credentials — whose tokens it may introspect. */
    serves: z.array(resourceIdentifier).max(50).default([]),
    /** Off: OpenID requests of this confidential client may use `nonce` instead of PKCE (RFC 9700 §2.1.1; docs/oidc.md). */
    requirePkce: z.boolean().default(true),
    /** Put scope-released claims in the ID token too (OIDC Core §5.4 has them at userinfo). */
    idTokenClaims: z.boolean().default(false),
    /** Authorization requests must be pushed first (RFC 9126). */
    requirePar: z.boolean().default(false),
    /** Access tokens must be DPoP-bound (RFC 9449 `dpop_bound_access_tokens`). */
    requireDpop: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0)
      ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'at least one redirect URI is required' });
    if (c.public && c.grantTypes.includes('client_credentials'))
      ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'a public client cannot use client_credentials' });
    if (c.public && c.authMethod && c.authMethod !== 'none')
      ctx.addIssue({ code: 'custom', path: ['authMethod'], message: 'a public client authenticates with none' });
    if (c.authMethod === 'private_key_jwt' && !c.jwks)
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: "private_key_jwt needs the client's public keys (jwks)" });
    if (c.public && c.clientSecret) ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'a public client has no secret' });
    if (c.public && !c.requirePkce) ctx.addIssue({ code: 'custom', path: ['requirePkce'], message: 'a public client always uses PKCE' });
    if (c.refreshTokenIdleTtl && c.refreshTokenAbsoluteTtl && c.refreshTokenIdleTtl > c.refreshTokenAbsoluteTtl)
      ctx.addIssue({ code: 'custom', path: ['refreshTokenIdleTtl'], message: 'must not exceed the absolute lifetime' });
  });

export type ClientInput = z.input<typeof clientInput>;

/** A new client secret: 256 random bits, shown once; only its SHA-256 is stored (fast is enough at that entropy). */
export async function issueClientSecret(): Promise<{ secret: string; hash: string }> {
  const secret = randomToken(32);
  return { secret, hash: await sha256(secret) };
}

/**
 * Builds the row for a new client. A confidential client gets a 256-bit secret (or the one given),
 * returned once here and stored only as its SHA-256.
 */
export async function buildClient(
  input: ClientInput,
  now: number,
): Promise<{ row: OAuthClientRow; grants: ClientResourceRow[]; clientSecret: string | null }> {
  const c = await clientInput.parseAsync(input);
  const authMethod = c.public ? 'none' : (c.authMethod ?? 'client_secret_basic');
  const clientSecret =
    authMethod === 'client_secret_basic' || authMethod === 'client_secret_post'
      ? (c.clientSecret ?? (await issueClientSecret()).secret)
      : null;
  const clientId = c.clientId ?? randomToken(16);
  return {
    clientSecret,
    grants: c.resources.map((r) => ({ clientId, resource: r.resource, scopes: JSON.stringify([...new Set(r.scopes)]) })),
    row: {
      clientId,
      name: c.name,
      secretHash: clientSecret ? await sha256(clientSecret) : null,
      tokenEndpointAuthMethod: authMethod,
      redirectUris: JSON.stringify(c.redirectUris),
      postLogoutRedirectUris: JSON.stringify(c.postLogoutRedirectUris),
      grantTypes: JSON.stringify(c.grantTypes),
      scopes: JSON.stringify(c.scopes),
      firstParty: c.firstParty,
      accessTokenFormat: c.accessTokenFormat,
      idTokenSignedResponseAlg: c.idTokenAlg,
      jwks: c.jwks ? JSON.stringify(c.jwks) : null,
      accessTokenTtl: c.accessTokenTtl ?? null,
      refreshTokenIdleTtl: c.refreshTokenIdleTtl ?? null,
      refreshTokenAbsoluteTtl: c.refreshTokenAbsoluteTtl ?? null,
      requireMfa: c.requireMfa,
      // The legacy column (schema.ts): the APIs are the grants.
      resources: '[]',
      serves: JSON.stringify(c.serves),
      requirePkce: c.requirePkce,
      idTokenClaims: c.idTokenClaims,
      requirePar: c.requirePar,
      requireDpop: c.requireDpop,
      registrationTokenHash: null,
      logoUri: null,
      brandColor: null,
      createdAt: now,
    },
  };
}

/**
 * A client's new row after a change: what the change built, keeping what it does not decide (the
 * id, when it was made, its branding and registration token) and its secret while its method uses
 * one. Moving to a secret method issues one, returned to be shown once.
 */
export function changedClient(
  current: OAuthClientRow,
  built: { row: OAuthClientRow; clientSecret: string | null },
): { row: OAuthClientRow; clientSecret: string | null } {
  const keep = built.row.secretHash !== null && current.secretHash !== null;
  return {
    clientSecret: keep ? null : built.clientSecret,
    row: {
      ...built.row,
      clientId: current.clientId,
      secretHash: keep ? current.secretHash : built.row.secretHash,
      registrationTokenHash: current.registrationTokenHash,
      logoUri: current.logoUri,
      brandColor: current.brandColor,
      createdAt: current.createdAt,
    },
  };
}

/** A stored client as clientInput takes it: what a partial change (the admin API's PATCH) starts from. */
export function clientInputFromRow(row: OAuthClientRow, grants: readonly ClientResourceRow[]): ClientInput {
  const list = (json: string) => JSON.parse(json) as string[];
  return {
    clientId: row.clientId,
    name: row.name,
    redirectUris: list(row.redirectUris),
    postLogoutRedirectUris: list(row.postLogoutRedirectUris),
    public: row.tokenEndpointAuthMethod === 'none',
    firstParty: row.firstParty,
    grantTypes: list(row.grantTypes),
    scopes: list(row.scopes) as ClientInput['scopes'],
    authMethod: row.tokenEndpointAuthMethod,
    ...(row.jwks ? { jwks: JSON.parse(row.jwks) as ClientInput['jwks'] } : {}),
    idTokenAlg: row.idTokenSignedResponseAlg,
    accessTokenFormat: row.accessTokenFormat,
    ...(row.accessTokenTtl !== null ? { accessTokenTtl: row.accessTokenTtl } : {}),
    ...(row.refreshTokenIdleTtl !== null ? { refreshTokenIdleTtl: row.refreshTokenIdleTtl } : {}),
    ...(row.refreshTokenAbsoluteTtl !== null ? { refreshTokenAbsoluteTtl: row.refreshTokenAbsoluteTtl } : {}),
    requireMfa: row.requireMfa,
    resources: grants.map((g) => ({ resource: g.resource, scopes: list(g.scopes) })),
    serves: list(row.serves),
    requirePkce: row.requirePkce,
    idTokenClaims: row.idTokenClaims,
    requirePar: row.requirePar,
    requireDpop: row.requireDpop,
  };
}

/** The public description of a client (never the secret hash), with its API grants. */
export function describeClient(row: OAuthClientRow, grants: readonly ClientResourceRow[] = []) {
  return {
    client_id: row.clientId,
    client_name: row.name,
    token_endpoint_auth_method: row.tokenEndpointAuthMethod,
    redirect_uris: JSON.parse(row.redirectUris) as string[],
    post_logout_redirect_uris: JSON.parse(row.postLogoutRedirectUris) as string[],
    grant_types: JSON.parse(row.grantTypes) as string[],
    // RFC 7591 §2.1: `code` goes with authorization_code, and it is the only response type.
    response_types: (JSON.parse(row.grantTypes) as string[]).includes('authorization_code') ? ['code'] : [],
    scope: (JSON.parse(row.scopes) as string[]).join(' '),
    first_party: Boolean(row.firstParty),
    id_token_signed_response_alg: row.idTokenSignedResponseAlg,
    access_token_format: row.accessTokenFormat,
    require_mfa: Boolean(row.requireMfa),
    resources: grants.map((g) => g.resource),
    ...(grants.some((g) => g.scopes !== '[]')
      ? { resource_scopes: Object.fromEntries(grants.map((g) => [g.resource, JSON.parse(g.scopes) as string[]])) }
      : {}),
    serves: JSON.parse(row.serves ?? '[]') as string[],
    require_pkce: row.requirePkce !== false,
    id_token_claims: Boolean(row.idTokenClaims),
    require_pushed_authorization_requests: Boolean(row.requirePar),
    dpop_bound_access_tokens: Boolean(row.requireDpop),
    ...(row.jwks ? { jwks: JSON.parse(row.jwks) as { keys: Record<string, unknown>[] } } : {}),
    ...(row.accessTokenTtl ? { access_token_ttl: row.accessTokenTtl } : {}),
    ...(row.refreshTokenIdleTtl ? { refresh_token_idle_ttl: row.refreshTokenIdleTtl } : {}),
    ...(row.refreshTokenAbsoluteTtl ? { refresh_token_absolute_ttl: row.refreshTokenAbsoluteTtl } : {}),
  };
}
