import { and, eq } from 'drizzle-orm';
import * as z from 'zod';
import { apiResources, clientResources, type ApiResourceRow } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert } from '../identity/audit';
import { failClosed } from '../lib/errors';
import { forgetResource } from '../oauth/api-resource-cache';
import { buildResource, describeResource, prunedGrants, resourceFromRow, type ResourceInput } from '../oauth/api-resources';
import { forgetClient } from '../oauth/clients';
import { forgetKeys, keyIdsOf } from './client-records';
import { auditedChange, configChange, createOrConflict, notFound } from './config-writes';
import { refuseAdminResource } from './escalation';
import { builderInput, checkedInput } from './input-errors';
import { millis, operation, pageOf, pageQuery } from './operations';
import { listPage } from './pages';

/**
 * APIs (RFC 8707 resources): the rules are resourceInput's (src/oauth/api-resources.ts), as the
 * resources CLI applies them. The admin API's own resource (urn:gatehouse:admin) is read here but
 * never changed or deleted. A change takes effect at once on this isolate and within 30 s on others
 * (its clients' grants too; its API keys within 60 s).
 */

const TAG = 'APIs';
const LIST = {
  list: 'resources',
  created: apiResources.createdAt,
  id: apiResources.identifier,
  keyOf: (r: ApiResourceRow): [number, string] => [r.createdAt, r.identifier],
};
const NAMES = { accessTokenTtl: 'access_token_ttl', accessTokenFormat: 'access_token_format', rateLimit: 'rate_limit' };
const params = z.object({
  id: z.string().min(1).max(512).describe('The API’s identifier, percent-encoded (https%3A%2F%2Fapi.example.com).'),
});

const scope = z.object({ name: z.string().max(100), description: z.string().max(200).nullable().optional() }).strict();
const rateLimit = z.object({ requests: z.number().int(), period: z.number().int().describe('Seconds.') }).strict();
const fields = {
  name: z.string().max(200).describe('Shown on consent pages.'),
  scopes: z.array(scope).max(100).describe('Its scopes (replaces them all: clients lose the grants of a scope it drops).'),
  access_token_format: z.enum(['jwt', 'opaque']),
  access_token_ttl: z.number().int().nullable().describe('Seconds; null: the client’s lifetime, else the server default.'),
  rate_limit: rateLimit.nullable().describe('Token requests per client for this API at the token endpoint; null: none.'),
};
const patchBody = z.object(fields).partial().strict();
const createBody = patchBody
  .extend({ identifier: z.string().max(512).describe('Its tokens’ aud: an https URL or a URN, no fragment.'), name: fields.name })
  .strict();

const resourceView = z.object({
  identifier: z.string(),
  name: z.string(),
  scopes: z.array(z.object({ name: z.string(), description: z.string().nullable() })),
  access_token_format: z.enum(['jwt', 'opaque']),
  access_token_ttl: z.number().int().optional(),
  rate_limit: z.object({ requests: z.number().int(), period: z.number().int() }).optional(),
  created_at: millis,
  updated_at: millis,
});
const withClients = resourceView.extend({
  clients: z.array(z.object({ client_id: z.string(), scopes: z.array(z.string()) })).describe('The clients granted it.'),
});

const view = (row: typeof apiResources.$inferSelect) => ({
  ...describeResource(resourceFromRow(row)),
  created_at: row.createdAt,
  updated_at: row.updatedAt,
});

async function readResource(deps: Deps, identifier: string) {
  const [rows, grants] = await failClosed('the database', () =>
    deps.db.batch([
      deps.db.select().from(apiResources).where(eq(apiResources.identifier, identifier)),
      deps.db.select().from(clientResources).where(eq(clientResources.resource, identifier)).orderBy(clientResources.clientId),
    ]),
  );
  if (!rows[0]) throw notFound('API');
  return { row: rows[0], grants: grants.map((g) => ({ clientId: g.clientId, scopes: JSON.parse(g.scopes) as string[] })) };
}

const byId = (id: string) => eq(apiResources.identifier, id);

export const resourceOperations = [
  operation({
    method: 'get',
    path: '/resources',
    operationId: 'listResources',
    tag: TAG,
    summary: 'List APIs, newest first',
    scope: 'admin:resources:read',
    query: pageQuery,
    responses: { 200: { description: 'A page of APIs', schema: pageOf(resourceView) } },
    handle: async ({ deps, query }) => {
      const page = await listPage(deps, LIST, query, (where, orderBy, limit) =>
        deps.db
          .select()
          .from(apiResources)
          .where(where)
          .orderBy(...orderBy)
          .limit(limit)
          .all(),
      );
      return { status: 200, body: { items: page.rows.map(view), next_cursor: page.next_cursor } };
    },
  }),
  operation({
    method: 'get',
    path: '/resources/{id}',
    operationId: 'getResource',
    tag: TAG,
    summary: 'Get an API and the clients granted it',
    scope: 'admin:resources:read',
    params,
    responses: { 200: { description: 'The API', schema: withClients } },
    handle: async ({ deps, params }) => {
      const { row, grants } = await readResource(deps, params.id);
      return { status: 200, body: { ...view(row), clients: grants.map((g) => ({ client_id: g.clientId, scopes: g.scopes })) } };
    },
  }),
  operation({
    method: 'post',
    path: '/resources',
    operationId: 'createResource',
    tag: TAG,
    summary: 'Register an API',
    scope: 'admin:resources:write',
    body: createBody,
    responses: { 201: { description: 'The API', schema: resourceView } },
    handle: async ({ deps, actor, meta, body }) => {
      refuseAdminResource(body.identifier, 'identifier');
      const now = deps.now();
      const row = await checkedInput(NAMES, () => buildResource(builderInput(body, NAMES) as ResourceInput, now));
      await createOrConflict(
        deps,
        [
          deps.db.insert(apiResources).values(row),
          auditInsert(deps.db, configChange(actor, meta, now, 'resource_created', { resource: row.identifier })),
        ],
        { message: 'An API with this identifier exists.', field: 'identifier' },
      );
      return { status: 201, body: view(row) };
    },
  }),
  operation({
    method: 'patch',
    path: '/resources/{id}',
    operationId: 'updateResource',
    tag: TAG,
    summary: 'Change an API',
    description: 'Only the fields sent change. A scope it no longer defines leaves every client’s grant with it.',
    scope: 'admin:resources:write',
    params,
    body: patchBody,
    responses: { 200: { description: 'The API as it is now', schema: resourceView } },
    handle: async ({ deps, actor, meta, params, body }) => {
      refuseAdminResource(params.id);
      const current = await readResource(deps, params.id);
      const now = deps.now();
      const input = { ...resourceFromRow(current.row), ...builderInput(body, NAMES) } as ResourceInput;
      const row = { ...(await checkedInput(NAMES, () => buildResource(input, now))), createdAt: current.row.createdAt };
      const pruned = prunedGrants(resourceFromRow(row).scopes, current.grants);
      const guard = byId(row.identifier);
      const event = configChange(actor, meta, now, 'resource_updated', {
        resource: row.identifier,
        fields: Object.keys(body).sort(),
        ...(pruned.length ? { clientsNarrowed: pruned.map((g) => g.clientId) } : {}),
      });
      const { identifier: _, createdAt: __, ...columns } = row;
      const updated = await auditedChange(
        deps,
        event,
        { table: apiResources, guard },
        deps.db.update(apiResources).set(columns).where(guard).returning({ identifier: apiResources.identifier }),
        ...pruned.map((g) =>
          deps.db
            .update(clientResources)
            .set({ scopes: JSON.stringify(g.scopes) })
            .where(and(eq(clientResources.clientId, g.clientId), eq(clientResources.resource, row.identifier))),
        ),
      );
      forgetResource(row.identifier);
      for (const g of pruned) forgetClient(g.clientId);
      forgetKeys(await keyIdsOf(deps, { resource: row.identifier }));
      if (!updated) throw notFound('API');
      return { status: 200, body: view(row) };
    },
  }),
  operation({
    method: 'delete',
    path: '/resources/{id}',
    operationId: 'deleteResource',
    tag: TAG,
    summary: 'Delete an API',
    description:
      'Its client grants and API keys go with it; access tokens already issued for it live out their lifetime. urn:gatehouse:admin cannot be deleted.',
    scope: 'admin:resources:write',
    params,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ deps, actor, meta, params }) => {
      refuseAdminResource(params.id);
      const { row, grants } = await readResource(deps, params.id);
      const keys = await keyIdsOf(deps, { resource: row.identifier });
      const guard = byId(row.identifier);
      const event = configChange(actor, meta, deps.now(), 'resource_deleted', { resource: row.identifier });
      const deleted = await auditedChange(
        deps,
        event,
        { table: apiResources, guard },
        deps.db.delete(apiResources).where(guard).returning({ identifier: apiResources.identifier }),
      );
      forgetResource(row.identifier);
      for (const g of grants) forgetClient(g.clientId);
      forgetKeys(keys);
      if (!deleted) throw notFound('API');
      return { status: 204 };
    },
  }),
];
