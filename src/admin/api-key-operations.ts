import { and, eq, isNull, type SQL } from 'drizzle-orm';
import * as z from 'zod';
import { apiKeys, apiResources, type ApiKeyRow } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert } from '../identity/audit';
import { findUserById } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { apiKeyIdOf, apiKeyInput, buildApiKey, describeApiKey, type ApiKeyOwner } from '../oauth/api-keys';
import { resourceFromRow } from '../oauth/api-resources';
import { clientFromRow } from '../oauth/clients';
import { forgetKeys, readClient } from './client-records';
import { auditedChange, configChange, notFound } from './config-writes';
import { checkedInput } from './input-errors';
import { millis, operation, pageOf, pageQuery, type Actor } from './operations';
import { listPage } from './pages';

/**
 * API keys, for callers that cannot do OAuth: the rules are buildApiKey's (src/oauth/api-keys.ts),
 * as the api-keys CLI applies them — a client's key only with scopes the client was granted at
 * that API, and no key for the admin API itself (it takes access tokens only). The key is in the
 * answer that issues it, this once; no answer ever has its secret or hash. A revocation takes
 * effect at once on this isolate and within 60 s on others (at once on `fresh` routes).
 */

const TAG = 'API keys';
const LIST = {
  list: 'api_keys',
  created: apiKeys.createdAt,
  id: apiKeys.id,
  keyOf: (r: ApiKeyRow): [number, string] => [r.createdAt, r.id],
};
const NAMES = { expiresAt: 'expires_at', client: 'client_id' };

const params = z.object({ id: z.string().min(1).max(200).describe('The key’s id (the 16 characters after gk_), or its prefix gk_<id>.') });

const keyView = z.object({
  id: z.string(),
  prefix: z.string().describe('gk_<id>: how the key begins, to recognise it.'),
  name: z.string(),
  owner: z.union([z.object({ user_id: z.string() }), z.object({ client_id: z.string() })]),
  resource: z.string(),
  scopes: z.array(z.string()),
  created_at: millis,
  expires_at: millis.nullable(),
  last_used_at: millis.nullable(),
  revoked_at: millis.nullable(),
});

const createBody = z
  .object({
    name: z.string().max(200).describe('What the key is for, shown in lists.'),
    resource: z.string().max(512).describe('The API the key is for (a registered resource).'),
    user_id: z.string().max(200).optional().describe('The key acts as this user (give this or client_id).'),
    client_id: z.string().max(200).optional().describe('The key acts as this client, for itself (a machine).'),
    scopes: z.array(z.string().max(100)).max(100).optional(),
    expires_at: millis.nullable().optional().describe('It stops working then; null or absent: until revoked.'),
  })
  .strict();

const listQuery = pageQuery.extend({
  user_id: z.string().max(200).optional(),
  client_id: z.string().max(200).optional(),
  resource: z.string().max(512).optional(),
});

/** The key a path names (its id or prefix), or 404. */
async function readKey(deps: Deps, given: string): Promise<ApiKeyRow> {
  const id = apiKeyIdOf(given);
  const row = id ? await failClosed('the database', () => deps.db.select().from(apiKeys).where(eq(apiKeys.id, id)).get()) : undefined;
  if (!row) throw notFound('API key');
  return row;
}

/** Who the body says the key acts as, read now from D1: exactly one of a user and a client. */
async function ownerOf(deps: Deps, body: z.output<typeof createBody>): Promise<ApiKeyOwner> {
  if ((body.user_id === undefined) === (body.client_id === undefined))
    throw new GatehouseError('invalid_request', 'owner: give exactly one of user_id and client_id.', { field: 'user_id' });
  if (body.user_id !== undefined) {
    if (!(await failClosed('the database', () => findUserById(deps.db, body.user_id!))))
      throw new GatehouseError('invalid_request', 'user_id: no such user.', { field: 'user_id' });
    return { kind: 'user', userId: body.user_id };
  }
  const { row, grants } = await readClient(deps, body.client_id!).catch((e: unknown) => {
    throw e instanceof GatehouseError && e.code === 'not_found'
      ? new GatehouseError('invalid_request', 'client_id: no such client.', { field: 'client_id' })
      : e;
  });
  return { kind: 'client', client: clientFromRow(row, grants) };
}

/** A change to one key, audited; its record in this isolate is dropped. */
async function changeKey(deps: Deps, row: ApiKeyRow, event: ReturnType<typeof configChange>, change: SQL | null, set?: Partial<ApiKeyRow>) {
  const guard = and(eq(apiKeys.id, row.id), change ?? undefined)!;
  const statement = set
    ? deps.db.update(apiKeys).set(set).where(guard).returning({ id: apiKeys.id })
    : deps.db.delete(apiKeys).where(guard).returning({ id: apiKeys.id });
  const changed = await auditedChange(deps, event, { table: apiKeys, guard }, statement);
  forgetKeys([row.id]);
  return changed;
}

const keyEvent = (actor: Actor, meta: Parameters<typeof configChange>[1], at: number, action: string, row: ApiKeyRow) =>
  configChange(
    actor,
    meta,
    at,
    action,
    { keyId: row.id, resource: row.resource, ...(row.clientId ? { clientId: row.clientId } : {}) },
    row.userId,
  );

export const apiKeyOperations = [
  operation({
    method: 'get',
    path: '/api-keys',
    operationId: 'listApiKeys',
    tag: TAG,
    summary: 'List API keys, newest first (never a secret)',
    scope: 'admin:api_keys:read',
    query: listQuery,
    responses: { 200: { description: 'A page of keys', schema: pageOf(keyView) } },
    handle: async ({ deps, query }) => {
      const { limit, cursor, ...filters } = query;
      const where = [
        filters.user_id !== undefined ? eq(apiKeys.userId, filters.user_id) : undefined,
        filters.client_id !== undefined ? eq(apiKeys.clientId, filters.client_id) : undefined,
        filters.resource !== undefined ? eq(apiKeys.resource, filters.resource) : undefined,
      ];
      const page = await listPage(deps, LIST, { limit, cursor, filters, where }, (w, orderBy, n) =>
        deps.db
          .select()
          .from(apiKeys)
          .where(w)
          .orderBy(...orderBy)
          .limit(n)
          .all(),
      );
      return { status: 200, body: { items: page.rows.map(describeApiKey), next_cursor: page.next_cursor } };
    },
  }),
  operation({
    method: 'get',
    path: '/api-keys/{id}',
    operationId: 'getApiKey',
    tag: TAG,
    summary: 'Get an API key (never its secret)',
    scope: 'admin:api_keys:read',
    params,
    responses: { 200: { description: 'The key', schema: keyView } },
    handle: async ({ deps, params }) => ({ status: 200, body: describeApiKey(await readKey(deps, params.id)) }),
  }),
  operation({
    method: 'post',
    path: '/api-keys',
    operationId: 'issueApiKey',
    tag: TAG,
    summary: 'Issue an API key: it is in the answer, this once',
    scope: 'admin:api_keys:write',
    body: createBody,
    responses: {
      201: { description: 'The key', schema: keyView.extend({ key: z.string().describe('Shown this once; only a hash is kept.') }) },
    },
    handle: async ({ deps, actor, meta, body }) => {
      const owner = await ownerOf(deps, body);
      const resourceRow = await failClosed('the database', () =>
        deps.db.select().from(apiResources).where(eq(apiResources.identifier, body.resource)).get(),
      );
      if (!resourceRow) throw new GatehouseError('invalid_request', 'resource: is not a registered API.', { field: 'resource' });
      const now = deps.now();
      const input = { name: body.name, scopes: body.scopes ?? [], expiresAt: body.expires_at ?? null };
      const { row, key } = await checkedInput(NAMES, () => buildApiKey(input, owner, resourceFromRow(resourceRow), now));
      await failClosed('the database', () =>
        deps.db.batch([deps.db.insert(apiKeys).values(row), auditInsert(deps.db, keyEvent(actor, meta, now, 'api_key_issued', row))]),
      );
      return { status: 201, body: { ...describeApiKey(row), key } };
    },
  }),
  operation({
    method: 'patch',
    path: '/api-keys/{id}',
    operationId: 'renameApiKey',
    tag: TAG,
    summary: 'Rename an API key',
    description: 'What a key may do is fixed when it is issued: issue another to change it.',
    scope: 'admin:api_keys:write',
    params,
    body: z.object({ name: apiKeyInput.shape.name }).strict(),
    responses: { 200: { description: 'The key', schema: keyView } },
    handle: async ({ deps, actor, meta, params, body }) => {
      const row = await readKey(deps, params.id);
      if (!(await changeKey(deps, row, keyEvent(actor, meta, deps.now(), 'api_key_renamed', row), null, { name: body.name })))
        throw notFound('API key');
      return { status: 200, body: describeApiKey({ ...row, name: body.name }) };
    },
  }),
  operation({
    method: 'post',
    path: '/api-keys/{id}/revoke',
    operationId: 'revokeApiKey',
    tag: TAG,
    summary: 'Revoke an API key (it stays listed, revoked)',
    scope: 'admin:api_keys:write',
    params,
    responses: { 200: { description: 'The key, revoked', schema: keyView } },
    handle: async ({ deps, actor, meta, params }) => {
      const row = await readKey(deps, params.id);
      const now = deps.now();
      // Revoking a revoked key changes nothing (and records nothing): it answers as it stands.
      await changeKey(deps, row, keyEvent(actor, meta, now, 'api_key_revoked', row), isNull(apiKeys.revokedAt), { revokedAt: now });
      return { status: 200, body: describeApiKey(await readKey(deps, row.id)) };
    },
  }),
  operation({
    method: 'delete',
    path: '/api-keys/{id}',
    operationId: 'deleteApiKey',
    tag: TAG,
    summary: 'Delete an API key: it stops working and leaves the list',
    scope: 'admin:api_keys:write',
    params,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ deps, actor, meta, params }) => {
      const row = await readKey(deps, params.id);
      if (!(await changeKey(deps, row, keyEvent(actor, meta, deps.now(), 'api_key_deleted', row), null))) throw notFound('API key');
      return { status: 204 };
    },
  }),
];
