import { and, eq, inArray } from 'drizzle-orm';
import { consents, oauthClients } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { authorizeSensitiveAction, type Proof } from '../auth/recent-auth';
import { failClosed, GatehouseError, unavailable } from '../lib/errors';
import type { SessionClaims } from '../sessions/session-token';
import { storedConsent } from './consent';

/** An app (OAuth client) holding access to the person's account. */
export interface ConnectedApp {
  clientId: string;
  name: string;
  logoUri: string | null;
  /** The OpenID scopes agreed to (consent), together with those its live refresh tokens carry. */
  scopes: string[];
  /** Each API (RFC 8707 resource) its tokens may be for, with the scopes of it agreed to. */
  apis: Record<string, string[]>;
  /** When consent was last given; null for a first-party app (it asks none). */
  grantedAt: number | null;
  /** Live refresh tokens (families) it holds, and the latest sign-in behind one (seconds), or null. */
  refreshTokens: number;
  lastAuthTime: number | null;
}

/**
 * Every app the person has let in: the consents recorded in D1, and the clients holding a live
 * refresh token in the person's Durable Object (a first-party app records no consent but may still
 * hold one). Newest grant first.
 */
export async function listConnectedApps(deps: Deps, userId: string): Promise<ConnectedApp[]> {
  const [rows, live] = await Promise.all([
    failClosed('the database', () =>
      deps.db
        .select({ clientId: consents.clientId, scopes: consents.scopes, grantedAt: consents.grantedAt })
        .from(consents)
        .where(eq(consents.userId, userId))
        .all(),
    ),
    deps.sessions.clientsWithGrants(userId, deps.now()),
  ]);
  const ids = [...new Set([...rows.map((r) => r.clientId), ...live.map((l) => l.clientId)])];
  if (ids.length === 0) return [];
  const clients = await failClosed('the database', () =>
    deps.db
      .select({ clientId: oauthClients.clientId, name: oauthClients.name, logoUri: oauthClients.logoUri })
      .from(oauthClients)
      .where(inArray(oauthClients.clientId, ids))
      .all(),
  );
  const apps = await Promise.all(
    ids.map(async (clientId) => {
      const consent = rows.some((r) => r.clientId === clientId) ? await storedConsent(deps, userId, clientId) : { scopes: [], apis: {} };
      const grants = live.find((l) => l.clientId === clientId);
      const client = clients.find((c) => c.clientId === clientId);
      return {
        clientId,
        name: client?.name ?? clientId,
        logoUri: client?.logoUri ?? null,
        scopes: [...new Set([...consent.scopes, ...(grants?.scope ?? [])])].sort(),
        apis: consent.apis,
        grantedAt: rows.find((r) => r.clientId === clientId)?.grantedAt ?? null,
        refreshTokens: grants?.familyCount ?? 0,
        lastAuthTime: grants?.lastAuthTime ?? null,
      } satisfies ConnectedApp;
    }),
  );
  return apps.sort((a, b) => (b.grantedAt ?? b.lastAuthTime! * 1000) - (a.grantedAt ?? a.lastAuthTime! * 1000));
}

/**
 * Takes an app's access away: the sensitive-action rule first (a stale or stolen session cannot
 * disconnect the person's apps), then everything the app holds for this person in their Durable
 * Object — refresh tokens (offline_access too), unredeemed codes, access tokens through the
 * revocation list — so its next refresh fails at once; then the consent, with its audit event, in
 * one batch. Only the person's own grants can be named: the key is (this user, client id). 404
 * when the app holds nothing.
 */
export async function revokeConnectedApp(
  deps: Deps,
  session: SessionClaims,
  clientId: string,
  proof: Proof | undefined,
  meta: RequestMeta,
): Promise<void> {
  await authorizeSensitiveAction(deps, session, proof, meta);
  await disconnectApp(deps, session.sub, clientId, { meta, actor: null });
}

/**
 * Ends what one app holds for one person: its refresh tokens, codes and access (the user's object),
 * then its consent, with `consent_revoked` in the same batch. The person (revokeConnectedApp) or an
 * operator (admin API, `actor` set) — a 404 when the app holds nothing for them.
 */
export async function disconnectApp(
  deps: Deps,
  userId: string,
  clientId: string,
  w: { meta: RequestMeta; actor: string | null },
): Promise<void> {
  const { meta } = w;
  const consent = await failClosed('the database', () =>
    deps.db
      .select({ scopes: consents.scopes })
      .from(consents)
      .where(and(eq(consents.userId, userId), eq(consents.clientId, clientId)))
      .get(),
  );
  const families = await deps.sessions.revokeClient(userId, clientId);
  if (!consent && families === 0) throw new GatehouseError('not_found', 'No such connected app.', { field: 'clientId' });
  try {
    await deps.db.batch([
      deps.db.delete(consents).where(and(eq(consents.userId, userId), eq(consents.clientId, clientId))),
      auditInsert(deps.db, {
        type: 'consent_revoked',
        userId,
        actor: w.actor,
        meta,
        detail: { clientId, by: w.actor ? 'admin' : 'user', refreshTokensRevoked: families, hadConsent: consent !== undefined },
        at: deps.now(),
      }),
    ]);
  } catch (e) {
    throw unavailable('the database', e);
  }
}
