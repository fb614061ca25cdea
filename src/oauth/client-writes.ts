import { eq, type SQL } from 'drizzle-orm';
import { clientResources, oauthClients, type ClientResourceRow, type OAuthClientRow } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsertWhile, type AuditEvent } from '../identity/audit';
import { failClosed } from '../lib/errors';
import { forgetClient } from './clients';

/**
 * Changes to a stored client, shared by dynamic client registration (RFC 7592) and the admin API:
 * each is conditional on `guard` (a condition on oauth_clients: the registration token still
 * held, or the row still there), audited exactly when it happens, in the same D1 batch, and the
 * isolate's cached record is dropped so that the change takes effect here at once (elsewhere within
 * CLIENT_CACHE_TTL_MS).
 */

type Batch = Parameters<Deps['db']['batch']>[0];

/**
 * Replaces a client's row (all but its id) with `next`; with `grants`, its API grants too. Its
 * consents stay: they name scopes, and a scope the client may no longer have is never issued
 * (grantableScope). Returns whether the guard held and the row changed.
 */
export async function replaceClient(
  deps: Deps,
  r: { next: OAuthClientRow; guard: SQL; event: AuditEvent; grants?: readonly ClientResourceRow[] },
): Promise<boolean> {
  const { clientId, ...columns } = r.next;
  const grants = r.grants
    ? [
        deps.db.delete(clientResources).where(eq(clientResources.clientId, clientId)),
        ...(r.grants.length ? [deps.db.insert(clientResources).values([...r.grants])] : []),
      ]
    : [];
  const [, updated] = await failClosed('the database', () =>
    deps.db.batch([
      auditInsertWhile(deps.db, r.event, oauthClients, r.guard),
      deps.db.update(oauthClients).set(columns).where(r.guard).returning({ clientId: oauthClients.clientId }),
      ...grants,
    ] as unknown as Batch),
  );
  forgetClient(clientId);
  return (updated as unknown[]).length === 1;
}

/**
 * Deletes a client. What hangs on it goes with it (foreign keys): its consents, API grants,
 * sign-in providers and API keys. Its refresh tokens and codes then fail client authentication;
 * signed access tokens it holds live out their lifetime. Returns whether the guard held.
 */
export async function removeClient(deps: Deps, r: { clientId: string; guard: SQL; event: AuditEvent }): Promise<boolean> {
  const [, deleted] = await failClosed('the database', () =>
    deps.db.batch([
      auditInsertWhile(deps.db, r.event, oauthClients, r.guard),
      deps.db.delete(oauthClients).where(r.guard).returning({ clientId: oauthClients.clientId }),
    ]),
  );
  forgetClient(r.clientId);
  return deleted.length === 1;
}
