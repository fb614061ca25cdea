import { eq } from 'drizzle-orm';
import { clientResources, oauthClients } from '../db/schema';
import type { Deps } from '../deps';
import { failClosed, GatehouseError } from '../lib/errors';
import { ADMIN_RESOURCE } from '../oauth/api-resources';
import { ADMIN_SCOPES, type Actor } from './operations';

/**
 * The admin API never lets a caller give more admin power than its own token holds — to a new
 * client, to another, or to itself. Who attacks this: an admin client with fewer scopes (a CRM
 * sync with admin:clients:write, say) that is compromised, or misused by whoever runs it.
 */

/** The admin API scopes a client's grants give it. */
export const adminScopesIn = (grants: readonly { resource: string; scopes: readonly string[] }[]): string[] => [
  ...new Set(grants.filter((g) => g.resource === ADMIN_RESOURCE).flatMap((g) => g.scopes)),
];

/** Why a change to a client needs its admin scopes: it could hand them to whoever makes it. */
const CLIENT_POWER = 'a client with admin API scopes is changed only by a caller that holds them all';

/**
 * Refuses a change unless the caller's token holds every one of `scopes`: for a client, the admin
 * scopes it has before and after the change — whatever else the change touches (its secret,
 * redirect URIs, keys, grants) could hand those scopes to the caller. 403 insufficient_scope
 * naming the ones missing.
 */
export function requireAdminPower(actor: Actor, scopes: readonly string[], o: { why?: string; field?: string } = {}): void {
  const missing = [...new Set(scopes)].filter((s) => !actor.scopes.includes(s));
  if (missing.length === 0) return;
  throw new GatehouseError('insufficient_scope', `This needs ${missing.join(' ')} as well: ${o.why ?? CLIENT_POWER}.`, {
    scope: missing.join(' '),
    ...(o.field ? { field: o.field } : {}),
  });
}

/** The admin API's own resource is Gatehouse's (migrations define it): the API neither changes nor deletes it. */
export function refuseAdminResource(identifier: string, field?: string): void {
  if (identifier === ADMIN_RESOURCE)
    throw new GatehouseError('forbidden', `${ADMIN_RESOURCE} is the admin API itself: it is defined by Gatehouse, not through the API.`, {
      ...(field ? { field } : {}),
    });
}

/**
 * The admin scopes a user's token can carry: those granted at the admin API to the clients people
 * sign in through (any grant but client_credentials), read now from D1. Whoever can make an admin,
 * or get into one's account, holds these.
 */
export async function adminUserPower(deps: Deps): Promise<string[]> {
  const rows = await failClosed('the database', () =>
    deps.db
      .select({ scopes: clientResources.scopes, grantTypes: oauthClients.grantTypes })
      .from(clientResources)
      .innerJoin(oauthClients, eq(oauthClients.clientId, clientResources.clientId))
      .where(eq(clientResources.resource, ADMIN_RESOURCE))
      .all(),
  );
  const people = rows.filter((r) => (JSON.parse(r.grantTypes) as string[]).some((g) => g !== 'client_credentials'));
  const held = new Set(people.flatMap((r) => JSON.parse(r.scopes) as string[]));
  return ADMIN_SCOPES.filter((s) => held.has(s));
}
