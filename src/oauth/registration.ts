import { and, eq } from 'drizzle-orm';
import * as z from 'zod';
import { ZodError } from 'zod';
import { oauthClients, type OAuthClientRow } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type AuditEvent, type RequestMeta } from '../identity/audit';
import { randomToken, sha256, timingSafeEqualString } from '../lib/crypto';
import { failClosed, GatehouseError, oauthError } from '../lib/errors';
import { buildClient, changedClient, describeClient, type ClientInput } from './client-registration';
import { removeClient, replaceClient } from './client-writes';
import { ENDPOINTS } from './discovery';
import { issuerOf } from './issue';
import { KNOWN_SCOPES } from './grants-and-scopes';

/**
 * Dynamic client registration (RFC 7591) and its management protocol (RFC 7592). A registered
 * client is what a stranger may make of itself: never first-party (consent is always asked), no
 * APIs (`resources`, `serves`), no device grant, PKCE unless REGISTRATION_PKCE_OPTIONAL — those are
 * an operator's to grant. Its registration access token is stored only as SHA-256.
 */

export interface RequestBody {
  contentType: string | undefined;
  bytes: ArrayBuffer;
}

const invalidMetadata = (message: string) => oauthError('invalid_client_metadata', message);
// RFC 6750 §3.1. One message for every cause: an unknown client, an operator's, a wrong token.
const invalidToken = (message = 'The registration access token is missing or not valid for this client.') =>
  new GatehouseError('invalid_token', message);

/** Member names that mean an attack on whoever merges the object (prototype pollution): refused anywhere. */
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
class ReservedName extends Error {}

/** Reads the JSON object a client sends (RFC 7591 §3.1); anything else is invalid_client_metadata. */
export function readMetadata(body: RequestBody): Record<string, unknown> {
  if ((body.contentType ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/json')
    throw invalidMetadata('Send the client metadata as application/json (RFC 7591 section 3.1).');
  let value: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(body.bytes);
    value = JSON.parse(text, (key, v: unknown) => {
      if (RESERVED_NAMES.has(key)) throw new ReservedName();
      return v;
    });
  } catch (e) {
    if (e instanceof ReservedName)
      throw invalidMetadata('The client metadata uses a reserved member name (__proto__, constructor or prototype).');
    throw invalidMetadata('The request body is not valid JSON.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalidMetadata('The client metadata must be a JSON object.');
  // RFC 7592 §2.2: a member sent as null asks for its default, as when it is left out.
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

const uris = z.array(z.string().max(2048)).max(20);

/**
 * The members Gatehouse reads (RFC 7591 §2, OIDC Registration §2, RFC 9126 §6, RFC 9449 §5.2); any
 * other is ignored (§3.2.1). Values are checked with the rest of the client in clientInput.
 */
const metadataSchema = z.object({
  client_id: z.string().max(64).optional(),
  client_secret: z.string().max(256).optional(),
  redirect_uris: uris.optional(),
  post_logout_redirect_uris: uris.optional(),
  client_name: z.string().max(200).optional(),
  token_endpoint_auth_method: z.string().max(64).optional(),
  grant_types: z.array(z.string().max(128)).max(10).optional(),
  response_types: z.array(z.string().max(64)).max(10).optional(),
  scope: z.string().max(1000).optional(),
  jwks: z.unknown().optional(),
  jwks_uri: z.undefined({ error: 'is not supported: send the keys inline as jwks' }).optional(),
  id_token_signed_response_alg: z.string().max(16).optional(),
  require_pushed_authorization_requests: z.boolean().optional(),
  dpop_bound_access_tokens: z.boolean().optional(),
});
type Metadata = z.output<typeof metadataSchema>;

/** clientInput's fields by their RFC 7591 names, for error descriptions. */
const PROTOCOL_NAMES: Record<string, string> = {
  name: 'client_name',
  redirectUris: 'redirect_uris',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  grantTypes: 'grant_types',
  scopes: 'scope',
  authMethod: 'token_endpoint_auth_method',
  idTokenAlg: 'id_token_signed_response_alg',
  requirePar: 'require_pushed_authorization_requests',
  requireDpop: 'dpop_bound_access_tokens',
};

/** RFC 7591 §3.2.2: the first problem, naming the field (never quoting its value). */
function metadataError(error: ZodError): GatehouseError {
  const issue = error.issues[0]!;
  const [head, ...rest] = issue.path;
  const name = PROTOCOL_NAMES[String(head)] ?? String(head ?? 'client metadata');
  const field = rest.reduce<string>((s, p) => (typeof p === 'number' ? `${s}[${p}]` : `${s}.${String(p)}`), name);
  const problem = (issue as { params?: { problem?: string } }).params?.problem ?? issue.message;
  const message = `${field}: ${problem}`;
  return name === 'redirect_uris' ? oauthError('invalid_redirect_uri', message) : invalidMetadata(message);
}

/** Grant types a registered client may have: the device grant stays with operator-registered clients. */
const REGISTRABLE_GRANTS = ['authorization_code', 'refresh_token', 'client_credentials'];

/** The client a registration asks for, with everything only an operator grants held at its safe value. */
function clientInputFrom(deps: Deps, m: Metadata, clientId: string | undefined): ClientInput {
  const grantTypes = m.grant_types ?? ['authorization_code'];
  if (grantTypes.some((g) => !REGISTRABLE_GRANTS.includes(g)))
    throw invalidMetadata('grant_types: may hold only authorization_code, refresh_token and client_credentials.');
  // RFC 7591 §2.1: response_types and grant_types agree; code is the only response type.
  const responseTypes = m.response_types ?? (grantTypes.includes('authorization_code') ? ['code'] : []);
  if (responseTypes.some((r) => r !== 'code')) throw invalidMetadata('response_types: may hold only code (no implicit or hybrid flows).');
  if (responseTypes.includes('code') !== grantTypes.includes('authorization_code'))
    throw invalidMetadata('response_types: code goes with the authorization_code grant, and only with it (RFC 7591 section 2.1).');
  // As at /authorize, scope values this server does not know are dropped.
  const scopes = m.scope?.split(' ').filter((s): s is (typeof KNOWN_SCOPES)[number] => (KNOWN_SCOPES as readonly string[]).includes(s));
  if (scopes?.length === 0) throw invalidMetadata('scope: names none of the scopes this server supports.');
  const authMethod = (m.token_endpoint_auth_method ?? 'client_secret_basic') as ClientInput['authMethod'];
  const isPublic = authMethod === 'none';
  return {
    ...(clientId ? { clientId } : {}),
    name: m.client_name ?? nameFrom(m.redirect_uris),
    redirectUris: m.redirect_uris ?? [],
    postLogoutRedirectUris: m.post_logout_redirect_uris ?? [],
    public: isPublic,
    authMethod,
    grantTypes,
    ...(scopes ? { scopes: [...new Set(scopes)] } : {}),
    ...(m.jwks !== undefined ? { jwks: m.jwks as ClientInput['jwks'] } : {}),
    ...(m.id_token_signed_response_alg !== undefined ? { idTokenAlg: m.id_token_signed_response_alg as ClientInput['idTokenAlg'] } : {}),
    requirePar: m.require_pushed_authorization_requests ?? false,
    requireDpop: m.dpop_bound_access_tokens ?? false,
    firstParty: false,
    resources: [],
    serves: [],
    requirePkce: isPublic || !deps.config.registration.pkceOptional,
  };
}

/** A client that gave no name is shown by its redirect URI's host. */
function nameFrom(redirectUris: string[] | undefined): string {
  try {
    return new URL(redirectUris?.[0] ?? '').host || 'Unnamed client';
  } catch {
    return 'Unnamed client';
  }
}

async function buildRegisteredClient(deps: Deps, m: Metadata, clientId: string | undefined) {
  try {
    return await buildClient(clientInputFrom(deps, m, clientId), deps.now());
  } catch (e) {
    throw e instanceof ZodError ? metadataError(e) : e;
  }
}

function parseMetadata(body: RequestBody): Metadata {
  const parsed = metadataSchema.safeParse(readMetadata(body));
  if (!parsed.success) throw metadataError(parsed.error);
  return parsed.data;
}

/** RFC 7591 §3.2.1 / RFC 7592 §3: the client as stored, what was issued now, and where to manage it. */
function clientInformation(deps: Deps, row: OAuthClientRow, issued: { clientSecret: string | null; registrationAccessToken: string }) {
  return {
    ...describeClient(row),
    client_id_issued_at: Math.floor(row.createdAt / 1000),
    ...(issued.clientSecret ? { client_secret: issued.clientSecret } : {}),
    ...(row.secretHash ? { client_secret_expires_at: 0 } : {}),
    registration_access_token: issued.registrationAccessToken,
    registration_client_uri: `${issuerOf(deps)}${ENDPOINTS.registration}/${row.clientId}`,
  };
}
export type ClientInformation = ReturnType<typeof clientInformation>;

const event = (type: AuditEvent['type'], row: OAuthClientRow, meta: RequestMeta, at: number): AuditEvent => ({
  type,
  meta,
  at,
  detail: {
    clientId: row.clientId,
    name: row.name,
    authMethod: row.tokenEndpointAuthMethod,
    grantTypes: JSON.parse(row.grantTypes),
    redirectUris: JSON.parse(row.redirectUris),
  },
});

/** RFC 7591 §3: registers a client for a caller holding the initial access token. */
export async function registerClient(
  deps: Deps,
  r: { bearer: string | undefined; body: RequestBody; meta: RequestMeta },
): Promise<ClientInformation> {
  const expected = deps.config.registration.initialToken;
  // Compared as hashes, which have one length: neither the token nor its length leaks.
  if (!expected || !r.bearer || !timingSafeEqualString(await sha256(r.bearer), await sha256(expected)))
    throw invalidToken('A valid initial access token is required to register a client.');
  const m = parseMetadata(r.body);
  const { row, clientSecret } = await buildRegisteredClient(deps, m, undefined);
  const token = randomToken(32);
  row.registrationTokenHash = await sha256(token);
  await failClosed('the database', () =>
    deps.db.batch([deps.db.insert(oauthClients).values(row), auditInsert(deps.db, event('client_registered', row, r.meta, row.createdAt))]),
  );
  return clientInformation(deps, row, { clientSecret, registrationAccessToken: token });
}

/**
 * The client a registration access token manages, and the token's hash. An unknown client, one an
 * operator registered (it has no token) and a wrong token are the same 401: whether a client
 * exists is not told.
 */
async function managedClient(
  deps: Deps,
  clientId: string,
  bearer: string | undefined,
): Promise<{ row: OAuthClientRow; tokenHash: string }> {
  const tokenHash = await sha256(bearer ?? '');
  const row = await failClosed('the database', () => deps.db.select().from(oauthClients).where(eq(oauthClients.clientId, clientId)).get());
  if (!bearer || !row?.registrationTokenHash || !timingSafeEqualString(row.registrationTokenHash, tokenHash)) throw invalidToken();
  return { row, tokenHash };
}

/** The row still holds this token: what a change that may race another is conditional on. */
const stillManagedBy = (clientId: string, tokenHash: string) =>
  and(eq(oauthClients.clientId, clientId), eq(oauthClients.registrationTokenHash, tokenHash))!;

/** RFC 7592 §2.1. The token is not rotated by a read; the response repeats it (§3 requires it). */
export async function readRegistration(deps: Deps, r: { clientId: string; bearer: string | undefined }): Promise<ClientInformation> {
  const { row } = await managedClient(deps, r.clientId, r.bearer);
  return clientInformation(deps, row, { clientSecret: null, registrationAccessToken: r.bearer! });
}

/**
 * RFC 7592 §2.2: replaces the metadata (a member left out takes its default). The body names the
 * client; a client_secret in it must be the current one — a client never chooses its secret. The
 * secret is kept while the method uses one; moving to a secret method issues one. Every update
 * rotates the registration access token: the old one stops working, the response carries the new.
 */
export async function updateRegistration(
  deps: Deps,
  r: { clientId: string; bearer: string | undefined; body: RequestBody; meta: RequestMeta },
): Promise<ClientInformation> {
  const { row: current, tokenHash } = await managedClient(deps, r.clientId, r.bearer);
  const m = parseMetadata(r.body);
  if (m.client_id !== current.clientId) throw invalidMetadata('client_id: must be present and be this client (RFC 7592 section 2.2).');
  if (m.client_secret !== undefined && !(current.secretHash && timingSafeEqualString(current.secretHash, await sha256(m.client_secret))))
    throw invalidMetadata('client_secret: must be the current secret if sent; a client cannot choose its secret (RFC 7592 section 2.2).');
  const changed = changedClient(current, await buildRegisteredClient(deps, m, current.clientId));
  const token = randomToken(32);
  const next: OAuthClientRow = { ...changed.row, registrationTokenHash: await sha256(token) };
  const updated = await replaceClient(deps, {
    next,
    guard: stillManagedBy(current.clientId, tokenHash),
    event: event('client_updated', next, r.meta, deps.now()),
  });
  // A concurrent update rotated the token, or a delete won: this one changed nothing.
  if (!updated) throw invalidToken();
  return clientInformation(deps, next, { clientSecret: changed.clientSecret, registrationAccessToken: token });
}

/**
 * RFC 7592 §2.3: deletes the client. Its consents go with it (foreign key); its refresh tokens and
 * codes then fail client authentication; JWT access tokens it holds live out their lifetime.
 */
export async function deleteRegistration(
  deps: Deps,
  r: { clientId: string; bearer: string | undefined; meta: RequestMeta },
): Promise<void> {
  const { row, tokenHash } = await managedClient(deps, r.clientId, r.bearer);
  const deleted = await removeClient(deps, {
    clientId: row.clientId,
    guard: stillManagedBy(row.clientId, tokenHash),
    event: { type: 'client_deleted', meta: r.meta, at: deps.now(), detail: { clientId: row.clientId, name: row.name } },
  });
  if (!deleted) throw invalidToken();
}
