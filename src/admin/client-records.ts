import { eq, inArray } from 'drizzle-orm';
import * as z from 'zod';
import {
  apiKeys,
  apiResources,
  clientProviders,
  clientResources,
  oauthClients,
  type ClientResourceRow,
  type OAuthClientRow,
} from '../db/schema';
import type { Deps } from '../deps';
import { failClosed, GatehouseError } from '../lib/errors';
import { forgetApiKey } from '../gateway/api-key-auth';
import { ADMIN_RESOURCE, resourceFromRow, resourceGrantIssues } from '../oauth/api-resources';
import type { ClientInput } from '../oauth/client-registration';
import { GRANT_TYPES, KNOWN_SCOPES } from '../oauth/grants-and-scopes';
import { adminScopesIn, requireAdminPower } from './escalation';
import { notFound } from './config-writes';
import { millis, type Actor } from './operations';

/**
 * OAuth clients as the admin API reads and writes them: the answer's shape, the body's, how one
 * becomes clientInput (src/oauth/client-registration.ts, which holds every rule), and the checks
 * a change to a client's API grants must pass.
 */

const grant = z.object({
  resource: z.string().max(512).describe('A registered API (its identifier).'),
  scopes: z.array(z.string().max(100)).max(100).default([]).describe('Scopes of that API the client may be given.'),
});
export const grantView = grant.extend({ scopes: z.array(z.string()) });

const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
const ttl = z.number().int().nullable().describe('Seconds; null: the server default.');

/** The fields a client's body may set (create and PATCH), as the answer names them. */
const fields = {
  name: z.string().max(200).describe('Shown on the consent page.'),
  token_endpoint_auth_method: z.enum(AUTH_METHODS).describe('none: a public client (native, SPA) with PKCE and no secret.'),
  redirect_uris: z.array(z.string().max(2048)).max(20).describe('Exact redirect URIs: https (http only on loopback), no fragment.'),
  post_logout_redirect_uris: z.array(z.string().max(2048)).max(20),
  grant_types: z.array(z.enum(GRANT_TYPES as [string, ...string[]])).max(10),
  scopes: z.array(z.enum(KNOWN_SCOPES)).max(20).describe('The OpenID scopes it may ask for.'),
  first_party: z.boolean().describe('Skips the consent page.'),
  resources: z.array(grant).max(50).describe('Its API grants (replaces them all). Admin API scopes need a caller that holds them.'),
  serves: z.array(z.string().max(512)).max(50).describe('APIs this client is: it may introspect their tokens.'),
  jwks: z
    .object({ keys: z.array(z.record(z.string(), z.unknown())).max(10) })
    .nullable()
    .describe('Public keys, for private_key_jwt.'),
  id_token_signed_response_alg: z.enum(['RS256', 'ES256']),
  access_token_format: z.enum(['jwt', 'opaque']),
  access_token_ttl: ttl,
  refresh_token_idle_ttl: ttl,
  refresh_token_absolute_ttl: ttl,
  require_mfa: z.boolean(),
  require_pkce: z.boolean(),
  id_token_claims: z.boolean(),
  require_par: z.boolean().describe('Authorization requests must be pushed (RFC 9126).'),
  require_dpop: z.boolean().describe('Access tokens only DPoP-bound (RFC 9449).'),
};

export const clientPatchBody = z.object(fields).partial().strict().describe('Only the fields sent change; null resets a nullable one.');
type ClientBody = z.output<typeof clientPatchBody>;

export const clientCreateBody = z
  .object(fields)
  .partial()
  .extend({
    name: fields.name,
    client_id: z.string().max(64).optional().describe('Default: random.'),
    client_secret: z
      .string()
      .max(256)
      .optional()
      .describe(
        'Keep a secret the client already has (at least 32 characters, e.g. moving from another server). Default: a random 256-bit one, shown once.',
      ),
  })
  .strict();

/** clientInput's field names as the API names them, for naming a failing field. */
export const CLIENT_FIELD_NAMES: Record<string, string> = {
  clientId: 'client_id',
  clientSecret: 'client_secret',
  redirectUris: 'redirect_uris',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  public: 'token_endpoint_auth_method',
  authMethod: 'token_endpoint_auth_method',
  firstParty: 'first_party',
  grantTypes: 'grant_types',
  idTokenAlg: 'id_token_signed_response_alg',
  accessTokenFormat: 'access_token_format',
  accessTokenTtl: 'access_token_ttl',
  refreshTokenIdleTtl: 'refresh_token_idle_ttl',
  refreshTokenAbsoluteTtl: 'refresh_token_absolute_ttl',
  requireMfa: 'require_mfa',
  requirePkce: 'require_pkce',
  idTokenClaims: 'id_token_claims',
  requirePar: 'require_par',
  requireDpop: 'require_dpop',
};
const INPUT_NAMES = Object.fromEntries(Object.entries(CLIENT_FIELD_NAMES).map(([input, api]) => [api, input]));

/**
 * The clientInput a body asks for, over `base` (the stored client for a PATCH, nothing for a new
 * one): each field sent replaces the base's; null drops it (its default applies).
 */
export function clientInputOf(base: Partial<ClientInput>, body: ClientBody & { client_id?: string; client_secret?: string }): ClientInput {
  const input: Record<string, unknown> = { redirectUris: [], ...base };
  for (const [name, value] of Object.entries(body)) {
    if (value === undefined) continue;
    if (name === 'token_endpoint_auth_method') {
      input.public = value === 'none';
      input.authMethod = value;
    } else if (value === null) delete input[INPUT_NAMES[name] ?? name];
    else input[INPUT_NAMES[name] ?? name] = value;
  }
  return input as ClientInput;
}

export const clientView = z.object({
  client_id: z.string(),
  name: z.string(),
  token_endpoint_auth_method: z.enum(AUTH_METHODS),
  has_secret: z.boolean().describe('Whether a secret is set (never the secret).'),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  grant_types: z.array(z.string()),
  scopes: z.array(z.string()),
  first_party: z.boolean(),
  resources: z.array(grantView),
  serves: z.array(z.string()),
  providers: z.array(z.object({ provider_id: z.string(), share_tokens: z.boolean() })).describe('Sign-in buttons on its pages.'),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).nullable(),
  id_token_signed_response_alg: z.enum(['RS256', 'ES256']),
  access_token_format: z.enum(['jwt', 'opaque']),
  access_token_ttl: z.number().int().nullable(),
  refresh_token_idle_ttl: z.number().int().nullable(),
  refresh_token_absolute_ttl: z.number().int().nullable(),
  require_mfa: z.boolean(),
  require_pkce: z.boolean(),
  id_token_claims: z.boolean(),
  require_par: z.boolean(),
  require_dpop: z.boolean(),
  self_registered: z.boolean().describe('Registered itself (RFC 7591).'),
  created_at: millis,
});

const list = (json: string) => JSON.parse(json) as string[];

export function viewClient(
  row: OAuthClientRow,
  grants: readonly ClientResourceRow[],
  providers: { providerId: string; shareTokens: boolean }[],
) {
  return {
    client_id: row.clientId,
    name: row.name,
    token_endpoint_auth_method: row.tokenEndpointAuthMethod,
    has_secret: row.secretHash !== null,
    redirect_uris: list(row.redirectUris),
    post_logout_redirect_uris: list(row.postLogoutRedirectUris),
    grant_types: list(row.grantTypes),
    scopes: list(row.scopes),
    first_party: row.firstParty,
    resources: grants.map((g) => ({ resource: g.resource, scopes: list(g.scopes) })),
    serves: list(row.serves),
    providers: providers.map((p) => ({ provider_id: p.providerId, share_tokens: p.shareTokens })),
    jwks: row.jwks ? (JSON.parse(row.jwks) as { keys: Record<string, unknown>[] }) : null,
    id_token_signed_response_alg: row.idTokenSignedResponseAlg,
    access_token_format: row.accessTokenFormat,
    access_token_ttl: row.accessTokenTtl,
    refresh_token_idle_ttl: row.refreshTokenIdleTtl,
    refresh_token_absolute_ttl: row.refreshTokenAbsoluteTtl,
    require_mfa: row.requireMfa,
    require_pkce: row.requirePkce || row.tokenEndpointAuthMethod === 'none',
    id_token_claims: row.idTokenClaims,
    require_par: row.requirePar,
    require_dpop: row.requireDpop,
    self_registered: row.registrationTokenHash !== null,
    created_at: row.createdAt,
  };
}

/** The clients with these ids, each with its grants and providers, from D1 (never the isolate's cache). */
export async function readClients(deps: Deps, ids: readonly string[]) {
  if (ids.length === 0) return [];
  const [rows, grants, providers] = await failClosed('the database', () =>
    deps.db.batch([
      deps.db
        .select()
        .from(oauthClients)
        .where(inArray(oauthClients.clientId, [...ids])),
      deps.db
        .select()
        .from(clientResources)
        .where(inArray(clientResources.clientId, [...ids])),
      deps.db
        .select()
        .from(clientProviders)
        .where(inArray(clientProviders.clientId, [...ids])),
    ]),
  );
  return rows.map((row) => ({
    row,
    grants: grants.filter((g) => g.clientId === row.clientId),
    providers: providers.filter((p) => p.clientId === row.clientId),
  }));
}

/** One client, or 404. */
export async function readClient(deps: Deps, clientId: string) {
  const [found] = await readClients(deps, [clientId]);
  if (!found) throw notFound('client');
  return found;
}

/** Grants as rules read them: scopes as a list. */
export const grantsOf = (rows: readonly ClientResourceRow[]) => rows.map((g) => ({ resource: g.resource, scopes: list(g.scopes) }));

/**
 * Whether a change to a client's grants may be stored by this caller: first, the caller holding
 * every admin scope the client has `before` the change and would have after it; then every API it
 * grants registered (read from D1, not the cache) and every scope one the API defines, each named
 * by field (`fieldOf`); and the admin API never served. `grants`/`serves`: what the change
 * sets (absent: unchanged).
 */
export async function checkGrants(
  deps: Deps,
  actor: Actor,
  r: {
    before: readonly ClientResourceRow[];
    grants?: readonly { resource: string; scopes: readonly string[] }[];
    serves?: readonly string[];
    fieldOf?: (grant: number, scope: number | undefined) => string;
  },
): Promise<void> {
  const grants = r.grants ?? [];
  requireAdminPower(actor, [...adminScopesIn(grantsOf(r.before)), ...adminScopesIn(grants)], { field: 'resources' });
  const ids = [...new Set(grants.map((g) => g.resource))];
  const rows = ids.length
    ? await failClosed('the database', () => deps.db.select().from(apiResources).where(inArray(apiResources.identifier, ids)).all())
    : [];
  const registered = new Map(rows.map((row) => [row.identifier, resourceFromRow(row)]));
  const fieldOf = r.fieldOf ?? ((g, s) => (s === undefined ? `resources.${g}.resource` : `resources.${g}.scopes.${s}`));
  const errors = resourceGrantIssues(grants, (id) => registered.get(id)).map((i) => ({
    field: fieldOf(i.grant, i.scope),
    message: i.problem,
  }));
  if (errors.length)
    throw new GatehouseError('invalid_request', `${errors[0]!.field}: ${errors[0]!.message}`, { field: errors[0]!.field, errors });
  const served = (r.serves ?? []).indexOf(ADMIN_RESOURCE);
  if (served >= 0)
    throw new GatehouseError('forbidden', "serves: no client may introspect the admin API's tokens; Gatehouse serves it.", {
      field: `serves.${served}`,
    });
}

/** The ids of the API keys a client or a user owns, or that are for an API: their records in the isolate carry what a change may alter. */
export async function keyIdsOf(deps: Deps, where: { clientId: string } | { resource: string } | { userId: string }): Promise<string[]> {
  const rows = await failClosed('the database', () =>
    deps.db
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(
        'clientId' in where
          ? eq(apiKeys.clientId, where.clientId)
          : 'userId' in where
            ? eq(apiKeys.userId, where.userId)
            : eq(apiKeys.resource, where.resource),
      )
      .all(),
  );
  return rows.map((r) => r.id);
}

/** Drops this isolate's records of these keys: checked against D1 at once here (elsewhere within API_KEY_CACHE_TTL_MS). */
export const forgetKeys = (ids: readonly string[]) => {
  for (const id of ids) forgetApiKey(id);
};
