import { and, eq, type SQL } from 'drizzle-orm';
import type { SQLiteTable } from 'drizzle-orm/sqlite-core';
import * as z from 'zod';
import { clientProviders, clientResources, identityProviders, oauthClients } from '../db/schema';
import type { Deps } from '../deps';
import type { AuditEvent } from '../identity/audit';
import { failClosed } from '../lib/errors';
import { forgetClient } from '../oauth/clients';
import { checkGrants, forgetKeys, grantsOf, grantView, keyIdsOf, readClient } from './client-records';
import { auditedChange, configChange, notFound } from './config-writes';
import { adminScopesIn, requireAdminPower } from './escalation';
import { operation } from './operations';

/**
 * What hangs on a client: its API grants (which APIs it may ask tokens for, with which of their
 * scopes) and the upstream providers its sign-in page shows. Each is a change to the client: the
 * admin power rule (escalation.ts) applies, and its cached record is dropped.
 */

const TAG = 'Clients';
const grantParams = z.object({
  id: z.string().min(1).max(200),
  resource: z.string().min(1).max(512).describe('The API’s identifier, percent-encoded (urn%3A…, https%3A%2F%2F…).'),
});
const providerParams = z.object({ id: z.string().min(1).max(200), provider_id: z.string().min(1).max(32) });
const providerLink = z.object({ provider_id: z.string(), share_tokens: z.boolean() });

/** A change to what hangs on a client, audited when it happens; the client's cached record is dropped. */
async function changeLink(deps: Deps, event: AuditEvent, table: SQLiteTable, guard: SQL, change: Parameters<typeof auditedChange>[3]) {
  const changed = await auditedChange(deps, event, { table, guard }, change);
  forgetClient(String(event.detail?.clientId));
  return changed;
}

export const clientLinkOperations = [
  operation({
    method: 'put',
    path: '/clients/{id}/grants/{resource}',
    operationId: 'setClientGrant',
    tag: TAG,
    summary: 'Let a client ask tokens for an API, with these of its scopes (replaces what it had there)',
    description: 'Scopes of the admin API (urn:gatehouse:admin) need a caller that holds every one of them.',
    scope: 'admin:clients:write',
    params: grantParams,
    body: z
      .object({ scopes: z.array(z.string().max(100)).max(100).describe('None: tokens for that API carry OpenID scopes only.') })
      .strict(),
    responses: { 200: { description: 'The grant', schema: grantView } },
    handle: async ({ deps, actor, meta, params, body }) => {
      const { row, grants } = await readClient(deps, params.id);
      const scopes = [...new Set(body.scopes)];
      await checkGrants(deps, actor, {
        before: grants,
        grants: [{ resource: params.resource, scopes: body.scopes }],
        fieldOf: (_, s) => (s === undefined ? 'path.resource' : `scopes.${s}`),
      });
      const event = configChange(actor, meta, deps.now(), 'client_grant_set', {
        clientId: row.clientId,
        resource: params.resource,
        scopes,
      });
      const set = deps.db
        .insert(clientResources)
        .values({ clientId: row.clientId, resource: params.resource, scopes: JSON.stringify(scopes) })
        .onConflictDoUpdate({ target: [clientResources.clientId, clientResources.resource], set: { scopes: JSON.stringify(scopes) } })
        .returning({ clientId: clientResources.clientId });
      if (!(await changeLink(deps, event, oauthClients, eq(oauthClients.clientId, row.clientId), set))) throw notFound('client');
      forgetKeys(await keyIdsOf(deps, { clientId: row.clientId }));
      return { status: 200, body: { resource: params.resource, scopes } };
    },
  }),
  operation({
    method: 'delete',
    path: '/clients/{id}/grants/{resource}',
    operationId: 'removeClientGrant',
    tag: TAG,
    summary: 'Take an API away from a client',
    description: 'Its API keys for that API stop working with it (at once here, within 60 s elsewhere).',
    scope: 'admin:clients:write',
    params: grantParams,
    responses: { 204: { description: 'Removed' } },
    handle: async ({ deps, actor, meta, params }) => {
      const { row, grants } = await readClient(deps, params.id);
      requireAdminPower(actor, adminScopesIn(grantsOf(grants)));
      const which = and(eq(clientResources.clientId, row.clientId), eq(clientResources.resource, params.resource))!;
      const event = configChange(actor, meta, deps.now(), 'client_grant_removed', { clientId: row.clientId, resource: params.resource });
      const removed = deps.db.delete(clientResources).where(which).returning({ clientId: clientResources.clientId });
      if (!(await changeLink(deps, event, clientResources, which, removed))) throw notFound('grant of this API to this client');
      forgetKeys(await keyIdsOf(deps, { clientId: row.clientId }));
      return { status: 204 };
    },
  }),
  operation({
    method: 'put',
    path: '/clients/{id}/providers/{provider_id}',
    operationId: 'setClientProvider',
    tag: TAG,
    summary: 'Show an upstream provider on a client’s sign-in page',
    description:
      'share_tokens: the client may also read the tokens Gatehouse keeps from that provider for its users (GET /auth/upstream-token; the provider must keep them).',
    scope: 'admin:clients:write',
    params: providerParams,
    body: z.object({ share_tokens: z.boolean().default(false) }).strict(),
    responses: { 200: { description: 'The link', schema: providerLink } },
    handle: async ({ deps, actor, meta, params, body }) => {
      const { row, grants } = await readClient(deps, params.id);
      requireAdminPower(actor, adminScopesIn(grantsOf(grants)));
      const provider = await failClosed('the database', () =>
        deps.db.select({ id: identityProviders.id }).from(identityProviders).where(eq(identityProviders.id, params.provider_id)).get(),
      );
      if (!provider) throw notFound('provider');
      const detail = { clientId: row.clientId, providerId: provider.id, shareTokens: body.share_tokens };
      const event = configChange(actor, meta, deps.now(), 'client_provider_set', detail);
      const set = deps.db
        .insert(clientProviders)
        .values({ clientId: row.clientId, providerId: provider.id, shareTokens: body.share_tokens })
        .onConflictDoUpdate({ target: [clientProviders.clientId, clientProviders.providerId], set: { shareTokens: body.share_tokens } })
        .returning({ clientId: clientProviders.clientId });
      if (!(await changeLink(deps, event, oauthClients, eq(oauthClients.clientId, row.clientId), set))) throw notFound('client');
      return { status: 200, body: { provider_id: provider.id, share_tokens: body.share_tokens } };
    },
  }),
  operation({
    method: 'delete',
    path: '/clients/{id}/providers/{provider_id}',
    operationId: 'removeClientProvider',
    tag: TAG,
    summary: 'Take an upstream provider off a client’s sign-in page',
    scope: 'admin:clients:write',
    params: providerParams,
    responses: { 204: { description: 'Removed' } },
    handle: async ({ deps, actor, meta, params }) => {
      const { row, grants } = await readClient(deps, params.id);
      requireAdminPower(actor, adminScopesIn(grantsOf(grants)));
      const which = and(eq(clientProviders.clientId, row.clientId), eq(clientProviders.providerId, params.provider_id))!;
      const event = configChange(actor, meta, deps.now(), 'client_provider_removed', {
        clientId: row.clientId,
        providerId: params.provider_id,
      });
      const removed = deps.db.delete(clientProviders).where(which).returning({ clientId: clientProviders.clientId });
      if (!(await changeLink(deps, event, clientProviders, which, removed))) throw notFound('provider on this client');
      return { status: 204 };
    },
  }),
];
