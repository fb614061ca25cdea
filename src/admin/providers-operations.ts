import { eq } from 'drizzle-orm';
import * as z from 'zod';
import { clientProviders, identityProviders, type IdentityProviderRow } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert } from '../identity/audit';
import { failClosed } from '../lib/errors';
import { forgetProviders } from '../auth/upstream-provider-records';
import {
  buildProvider,
  callbackPath,
  describeProvider,
  PROVIDER_KINDS,
  providerFromRow,
  providerInputOf,
  type ProviderInput,
} from '../auth/upstream-providers';
import { auditedChange, configChange, createOrConflict, notFound } from './config-writes';
import { adminUserPower, requireAdminPower } from './escalation';
import { builderInput, checkedInput } from './input-errors';
import { idParam, millis, operation, pageOf, pageQuery, type Actor } from './operations';
import { listPage } from './pages';

/**
 * Upstream identity providers (social and enterprise sign-in): the rules are providerInput's
 * (src/auth/upstream-providers.ts), as the providers CLI applies them; secrets are sealed under
 * KEY_ENCRYPTION_KEY and never in an answer. A change takes effect at once on this isolate and
 * within 30 s on others (docs/authentication.md "Upstream providers").
 */

const TAG = 'Upstream providers';
const LIST = {
  list: 'providers',
  created: identityProviders.createdAt,
  id: identityProviders.id,
  keyOf: (r: IdentityProviderRow): [number, string] => [r.createdAt, r.id],
};
const NAMES = {
  displayName: 'display_name',
  iconUrl: 'icon_url',
  clientId: 'client_id',
  clientSecret: 'client_secret',
  trustedEmailDomains: 'trusted_email_domains',
  storeTokens: 'store_tokens',
  teamId: 'team_id',
  keyId: 'key_id',
  privateKey: 'private_key',
};

const fields = {
  display_name: z.string().max(200).describe('The button reads “Continue with …”.'),
  icon_url: z.string().max(2048).nullable(),
  issuer: z.string().max(2048).describe('oidc: the issuer to discover.'),
  client_id: z.string().max(256).describe('The client id at the provider.'),
  client_secret: z.string().max(4096).describe('Sealed before it is stored; never shown again.'),
  scopes: z.array(z.string().max(100)).max(20).describe('Default: the kind’s.'),
  trusted_email_domains: z
    .array(z.string().max(253))
    .max(100)
    .describe('Addresses it may vouch for (* for any): it may then sign in to existing accounts. Needs admin:users:write as well.'),
  tenant: z.string().max(64).describe('entra: common, organizations, consumers or a tenant id.'),
  tenants: z.array(z.string().max(64)).max(100).describe('entra, common or organizations: only these tenants.'),
  apple: z
    .object({ team_id: z.string().max(10), key_id: z.string().max(10), private_key: z.string().max(4096).describe('The .p8 key (PEM).') })
    .strict(),
  store_tokens: z.boolean().describe('Keep its tokens (sealed) for apps to call its API.'),
  enabled: z.boolean(),
};
const patchBody = z.object(fields).partial().strict();
const createBody = patchBody
  .extend({
    id: z.string().max(32).describe('Names the callback URL: /auth/upstream/{id}/callback.'),
    kind: z.enum(PROVIDER_KINDS),
    display_name: fields.display_name,
    client_id: fields.client_id,
  })
  .strict();

const providerView = z.object({
  id: z.string(),
  kind: z.enum(PROVIDER_KINDS),
  display_name: z.string(),
  icon_url: z.string().optional(),
  issuer: z.string().optional(),
  client_id: z.string(),
  scopes: z.array(z.string()),
  trusted_email_domains: z.array(z.string()),
  tenants: z.array(z.string()).optional(),
  apple: z.object({ team_id: z.string(), key_id: z.string() }).optional(),
  store_tokens: z.boolean(),
  enabled: z.boolean(),
  callback_url: z.string().describe('The redirect URI to register at the provider.'),
  created_at: millis,
  updated_at: millis,
});
const withClients = providerView.extend({
  clients: z.array(z.object({ client_id: z.string(), share_tokens: z.boolean() })).describe('The clients whose sign-in page shows it.'),
});

const view = (deps: Deps, row: IdentityProviderRow) => ({
  ...describeProvider(providerFromRow(row), `${deps.config.publicUrl.origin}${callbackPath(row.id)}`),
  created_at: row.createdAt,
  updated_at: row.updatedAt,
});

async function readProvider(deps: Deps, id: string): Promise<IdentityProviderRow> {
  const row = await failClosed('the database', () => deps.db.select().from(identityProviders).where(eq(identityProviders.id, id)).get());
  if (!row) throw notFound('provider');
  return row;
}

/**
 * A provider that vouches for addresses signs people in to the accounts that have them — an
 * administrator's too. Making one, changing one, or turning one on is account takeover power:
 * admin:users:write's, and every admin scope an admin's token can carry (escalation.ts), which the
 * caller must hold as well.
 */
async function requireVouchingPower(deps: Deps, actor: Actor, ...domains: readonly string[][]): Promise<void> {
  if (domains.some((d) => d.length > 0))
    requireAdminPower(actor, ['admin:users:write', ...(await adminUserPower(deps))], {
      why: 'a provider trusted to vouch for addresses can sign in to existing accounts, an admin’s too',
      field: 'trusted_email_domains',
    });
}

const domainsOf = (row: IdentityProviderRow) => JSON.parse(row.trustedEmailDomains) as string[];
const byId = (id: string) => eq(identityProviders.id, id);

/** Updates a provider's columns, audited; the isolate's provider list is dropped. */
async function changeProvider(deps: Deps, id: string, event: ReturnType<typeof configChange>, columns: Partial<IdentityProviderRow>) {
  const guard = byId(id);
  const set = deps.db.update(identityProviders).set(columns).where(guard).returning();
  const changed = await auditedChange(deps, event, { table: identityProviders, guard }, set);
  forgetProviders();
  if (!changed) throw notFound('provider');
  return readProvider(deps, id);
}

const enableOperation = (enabled: boolean) =>
  operation({
    method: 'post',
    path: `/providers/{id}/${enabled ? 'enable' : 'disable'}`,
    operationId: enabled ? 'enableProvider' : 'disableProvider',
    tag: TAG,
    summary: enabled ? 'Turn a provider on' : 'Turn a provider off: its button goes, its sign-ins are refused',
    scope: 'admin:providers:write',
    params: idParam,
    responses: { 200: { description: 'The provider', schema: providerView } },
    handle: async ({ deps, actor, meta, params }) => {
      const current = await readProvider(deps, params.id);
      if (enabled) await requireVouchingPower(deps, actor, domainsOf(current));
      const now = deps.now();
      const event = configChange(actor, meta, now, enabled ? 'provider_enabled' : 'provider_disabled', { providerId: current.id });
      return { status: 200, body: view(deps, await changeProvider(deps, current.id, event, { enabled, updatedAt: now })) };
    },
  });

export const providerOperations = [
  operation({
    method: 'get',
    path: '/providers',
    operationId: 'listProviders',
    tag: TAG,
    summary: 'List upstream providers, newest first (never a secret)',
    scope: 'admin:providers:read',
    query: pageQuery,
    responses: { 200: { description: 'A page of providers', schema: pageOf(providerView) } },
    handle: async ({ deps, query }) => {
      const page = await listPage(deps, LIST, query, (where, orderBy, limit) =>
        deps.db
          .select()
          .from(identityProviders)
          .where(where)
          .orderBy(...orderBy)
          .limit(limit)
          .all(),
      );
      return { status: 200, body: { items: page.rows.map((r) => view(deps, r)), next_cursor: page.next_cursor } };
    },
  }),
  operation({
    method: 'get',
    path: '/providers/{id}',
    operationId: 'getProvider',
    tag: TAG,
    summary: 'Get a provider and the clients that show it',
    scope: 'admin:providers:read',
    params: idParam,
    responses: { 200: { description: 'The provider', schema: withClients } },
    handle: async ({ deps, params }) => {
      const row = await readProvider(deps, params.id);
      const clients = await failClosed('the database', () =>
        deps.db.select().from(clientProviders).where(eq(clientProviders.providerId, row.id)).orderBy(clientProviders.clientId).all(),
      );
      return {
        status: 200,
        body: { ...view(deps, row), clients: clients.map((c) => ({ client_id: c.clientId, share_tokens: c.shareTokens })) },
      };
    },
  }),
  operation({
    method: 'post',
    path: '/providers',
    operationId: 'createProvider',
    tag: TAG,
    summary: 'Add an upstream provider',
    description: 'Register the answer’s callback_url as the redirect URI at the provider.',
    scope: 'admin:providers:write',
    body: createBody,
    responses: { 201: { description: 'The provider', schema: providerView } },
    handle: async ({ deps, actor, meta, body }) => {
      await requireVouchingPower(deps, actor, body.trusted_email_domains ?? []);
      const now = deps.now();
      const input = builderInput(body, NAMES) as ProviderInput;
      const row = await checkedInput(NAMES, () => buildProvider(input, deps.config.keyEncryptionKey, now));
      await createOrConflict(
        deps,
        [
          deps.db.insert(identityProviders).values(row),
          auditInsert(deps.db, configChange(actor, meta, now, 'provider_created', { providerId: row.id, kind: row.kind })),
        ],
        { message: 'A provider with this id exists.', field: 'id' },
      );
      forgetProviders();
      return { status: 201, body: view(deps, row) };
    },
  }),
  operation({
    method: 'patch',
    path: '/providers/{id}',
    operationId: 'updateProvider',
    tag: TAG,
    summary: 'Change a provider',
    description:
      'Only the fields sent change (its id and kind never do); the result is checked as a new provider would be. Secrets not sent are kept.',
    scope: 'admin:providers:write',
    params: idParam,
    body: patchBody,
    responses: { 200: { description: 'The provider as it is now', schema: providerView } },
    handle: async ({ deps, actor, meta, params, body }) => {
      const current = await readProvider(deps, params.id);
      await requireVouchingPower(deps, actor, domainsOf(current), body.trusted_email_domains ?? []);
      const now = deps.now();
      const kek = deps.config.keyEncryptionKey;
      const input = { ...(await providerInputOf(providerFromRow(current), kek)), ...builderInput(body, NAMES) } as ProviderInput;
      const { id: _, createdAt: __, ...columns } = await checkedInput(NAMES, () => buildProvider(input, kek, now));
      const event = configChange(actor, meta, now, 'provider_updated', { providerId: current.id, fields: Object.keys(body).sort() });
      return { status: 200, body: view(deps, await changeProvider(deps, current.id, event, columns)) };
    },
  }),
  operation({
    method: 'delete',
    path: '/providers/{id}',
    operationId: 'deleteProvider',
    tag: TAG,
    summary: 'Remove a provider',
    description:
      'Its buttons go from every sign-in page. Identities linked through it stay with their accounts (they sign in again if it comes back under the same issuer).',
    scope: 'admin:providers:write',
    params: idParam,
    responses: { 204: { description: 'Removed' } },
    handle: async ({ deps, actor, meta, params }) => {
      const current = await readProvider(deps, params.id);
      const guard = byId(current.id);
      const event = configChange(actor, meta, deps.now(), 'provider_deleted', { providerId: current.id });
      const removed = deps.db.delete(identityProviders).where(guard).returning({ id: identityProviders.id });
      const deleted = await auditedChange(deps, event, { table: identityProviders, guard }, removed);
      forgetProviders();
      if (!deleted) throw notFound('provider');
      return { status: 204 };
    },
  }),
  enableOperation(true),
  enableOperation(false),
];
