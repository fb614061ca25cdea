import { eq } from 'drizzle-orm';
import * as z from 'zod';
import { clientResources, oauthClients } from '../db/schema';
import { auditInsert } from '../identity/audit';
import { GatehouseError } from '../lib/errors';
import { buildClient, changedClient, clientInputFromRow, issueClientSecret } from '../oauth/client-registration';
import { removeClient, replaceClient } from '../oauth/client-writes';
import { forgetClient } from '../oauth/clients';
import { clientLinkOperations } from './client-links-operations';
import {
  CLIENT_FIELD_NAMES,
  checkGrants,
  clientCreateBody,
  clientInputOf,
  clientPatchBody,
  clientView,
  forgetKeys,
  grantsOf,
  keyIdsOf,
  readClient,
  readClients,
  viewClient,
} from './client-records';
import { auditedChange, configChange, createOrConflict, notFound } from './config-writes';
import { adminScopesIn, requireAdminPower } from './escalation';
import { checkedInput } from './input-errors';
import { idParam, operation, pageOf, pageQuery } from './operations';
import { listPage } from './pages';

/**
 * OAuth clients: the rules are clientInput's (src/oauth/client-registration.ts), the writes the
 * ones dynamic registration makes (src/oauth/client-writes.ts); a change takes effect at once on
 * this isolate and within 30 s on others (docs/oidc.md "Client records in the isolate").
 */

const TAG = 'Clients';
const LIST = {
  list: 'clients',
  created: oauthClients.createdAt,
  id: oauthClients.clientId,
  keyOf: (r: { id: string; createdAt: number }): [number, string] => [r.createdAt, r.id],
};
const withSecret = clientView.extend({ client_secret: z.string().optional().describe('Shown this once; only a hash is kept.') });
const byClient = (id: string) => eq(oauthClients.clientId, id);

export const clientOperations = [
  operation({
    method: 'get',
    path: '/clients',
    operationId: 'listClients',
    tag: TAG,
    summary: 'List clients, newest first',
    scope: 'admin:clients:read',
    query: pageQuery,
    responses: { 200: { description: 'A page of clients', schema: pageOf(clientView) } },
    handle: async ({ deps, query }) => {
      const page = await listPage(deps, LIST, query, (where, orderBy, limit) =>
        deps.db
          .select({ id: oauthClients.clientId, createdAt: oauthClients.createdAt })
          .from(oauthClients)
          .where(where)
          .orderBy(...orderBy)
          .limit(limit)
          .all(),
      );
      const found = await readClients(
        deps,
        page.rows.map((r) => r.id),
      );
      const items = page.rows.flatMap((r) => found.filter((f) => f.row.clientId === r.id));
      return { status: 200, body: { items: items.map((f) => viewClient(f.row, f.grants, f.providers)), next_cursor: page.next_cursor } };
    },
  }),
  operation({
    method: 'get',
    path: '/clients/{id}',
    operationId: 'getClient',
    tag: TAG,
    summary: 'Get a client (never its secret)',
    scope: 'admin:clients:read',
    params: idParam,
    responses: { 200: { description: 'The client', schema: clientView } },
    handle: async ({ deps, params }) => {
      const c = await readClient(deps, params.id);
      return { status: 200, body: viewClient(c.row, c.grants, c.providers) };
    },
  }),
  operation({
    method: 'post',
    path: '/clients',
    operationId: 'createClient',
    tag: TAG,
    summary: 'Register a client; a confidential one’s secret is in the answer, this once',
    scope: 'admin:clients:write',
    body: clientCreateBody,
    responses: { 201: { description: 'The client, and its secret', schema: withSecret } },
    handle: async ({ deps, actor, meta, body }) => {
      const now = deps.now();
      const built = await checkedInput(CLIENT_FIELD_NAMES, () => buildClient(clientInputOf({}, body), now));
      await checkGrants(deps, actor, { before: [], grants: grantsOf(built.grants), serves: body.serves ?? [] });
      const { row } = built;
      await createOrConflict(
        deps,
        [
          deps.db.insert(oauthClients).values(row),
          ...(built.grants.length ? [deps.db.insert(clientResources).values(built.grants)] : []),
          auditInsert(deps.db, configChange(actor, meta, now, 'client_created', { clientId: row.clientId, name: row.name })),
        ],
        { message: 'A client with this client_id exists.', field: 'client_id' },
      );
      // A secret the caller chose is not repeated back; one made here is shown this once.
      const secret = body.client_secret === undefined ? built.clientSecret : null;
      return { status: 201, body: { ...viewClient(row, built.grants, []), ...(secret ? { client_secret: secret } : {}) } };
    },
  }),
  operation({
    method: 'patch',
    path: '/clients/{id}',
    operationId: 'updateClient',
    tag: TAG,
    summary: 'Change a client',
    description:
      'Only the fields sent change; the result is checked as a new client would be. Moving to a secret method (from none or private_key_jwt) issues a secret, shown in the answer this once.',
    scope: 'admin:clients:write',
    params: idParam,
    body: clientPatchBody,
    responses: { 200: { description: 'The client as it is now', schema: withSecret } },
    handle: async ({ deps, actor, meta, params, body }) => {
      const current = await readClient(deps, params.id);
      const built = await checkedInput(CLIENT_FIELD_NAMES, () =>
        buildClient(clientInputOf(clientInputFromRow(current.row, current.grants), body), deps.now()),
      );
      const grants = body.resources !== undefined ? built.grants : undefined;
      await checkGrants(deps, actor, {
        before: current.grants,
        ...(grants ? { grants: grantsOf(grants) } : {}),
        ...(body.serves ? { serves: body.serves } : {}),
      });
      const changed = changedClient(current.row, built);
      const clientId = current.row.clientId;
      const event = configChange(actor, meta, deps.now(), 'client_updated', { clientId, fields: Object.keys(body).sort() });
      if (!(await replaceClient(deps, { next: changed.row, guard: byClient(clientId), event, ...(grants ? { grants } : {}) })))
        throw notFound('client');
      forgetKeys(await keyIdsOf(deps, { clientId }));
      const view = viewClient(changed.row, grants ?? current.grants, current.providers);
      return { status: 200, body: { ...view, ...(changed.clientSecret ? { client_secret: changed.clientSecret } : {}) } };
    },
  }),
  operation({
    method: 'delete',
    path: '/clients/{id}',
    operationId: 'deleteClient',
    tag: TAG,
    summary: 'Delete a client',
    description:
      'Its consents, API grants, sign-in providers and API keys go with it; its refresh tokens and codes then fail client authentication, and its admin API tokens stop working. Signed access tokens it holds for other APIs live out their lifetime.',
    scope: 'admin:clients:write',
    params: idParam,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ deps, actor, meta, params }) => {
      const { row, grants } = await readClient(deps, params.id);
      requireAdminPower(actor, adminScopesIn(grantsOf(grants)));
      const keys = await keyIdsOf(deps, { clientId: row.clientId });
      const event = configChange(actor, meta, deps.now(), 'client_deleted', { clientId: row.clientId, name: row.name });
      if (!(await removeClient(deps, { clientId: row.clientId, guard: byClient(row.clientId), event }))) throw notFound('client');
      forgetKeys(keys);
      return { status: 204 };
    },
  }),
  operation({
    method: 'post',
    path: '/clients/{id}/secret',
    operationId: 'rotateClientSecret',
    tag: TAG,
    summary: 'Rotate a client’s secret: the new one is in the answer, this once',
    description:
      'The old secret is refused from now on by this isolate and within 30 s by every other; the new one works everywhere at once. Tokens already issued live out their lifetime.',
    scope: 'admin:clients:write',
    params: idParam,
    responses: {
      200: { description: 'The new secret', schema: z.object({ client_id: z.string(), client_secret: z.string() }) },
    },
    handle: async ({ deps, actor, meta, params }) => {
      const { row, grants } = await readClient(deps, params.id);
      if (row.tokenEndpointAuthMethod !== 'client_secret_basic' && row.tokenEndpointAuthMethod !== 'client_secret_post')
        throw new GatehouseError('conflict', `This client authenticates with ${row.tokenEndpointAuthMethod}: it has no secret to rotate.`);
      requireAdminPower(actor, adminScopesIn(grantsOf(grants)));
      const { secret, hash } = await issueClientSecret();
      const guard = byClient(row.clientId);
      const event = configChange(actor, meta, deps.now(), 'client_secret_rotated', { clientId: row.clientId });
      const set = deps.db.update(oauthClients).set({ secretHash: hash }).where(guard).returning({ clientId: oauthClients.clientId });
      const updated = await auditedChange(deps, event, { table: oauthClients, guard }, set);
      forgetClient(row.clientId);
      if (!updated) throw notFound('client');
      return { status: 200, body: { client_id: row.clientId, client_secret: secret } };
    },
  }),
  ...clientLinkOperations,
];
