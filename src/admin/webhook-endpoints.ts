import { and, desc, eq, lt, or } from 'drizzle-orm';
import { webhookEndpoints, type WebhookEndpointRow } from '../db/schema';
import type { Deps } from '../deps';
import { type AuditEvent, auditInsert, auditInsertWhile } from '../identity/audit';
import { base64url, randomToken, seal, unseal } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import type { RequestMeta } from '../lib/request-meta';
import { forgetEnabledEndpoints } from './webhook-dispatch';
import type { WebhookEventType } from './webhook-events';
import { checkWebhookUrl } from './webhook-urls';

/**
 * Webhook endpoints: where events go, which ones, and the Standard Webhooks secrets they are
 * signed with — `whsec_` and 32 random bytes, shown once, stored sealed under KEY_ENCRYPTION_KEY
 * (bound to the endpoint's id). After a rotation the previous secret signs too, for
 * SECRET_OVERLAP_MS, so receivers can switch without losing a delivery. Every change is audited
 * (admin_change, with the actor) in the batch that makes it.
 */

/** How long the previous secret keeps signing after a rotation. */
export const SECRET_OVERLAP_MS = 24 * 3600_000;

/** A stored secret: sealed, and the time it stops signing (null: the current one). */
interface StoredSecret {
  sealed: string;
  until: number | null;
}

export type EventTypes = (WebhookEventType | '*')[];

const aad = (id: string) => `webhook-endpoint:${id}`;
const secretsOf = (row: WebhookEndpointRow) => JSON.parse(row.secrets) as StoredSecret[];

/** A Standard Webhooks secret: `whsec_` and the key in standard base64. */
function newSecret(): string {
  const key = base64url(crypto.getRandomValues(new Uint8Array(32)))
    .replace(/-/g, '+')
    .replace(/_/g, '/');
  return `whsec_${key}${'='.repeat((4 - (key.length % 4)) % 4)}`;
}

/** '*' (every event) stands alone; a list is kept once each, in order. */
function normaliseTypes(types: EventTypes): EventTypes {
  if (types.includes('*') && types.length > 1)
    throw new GatehouseError('invalid_request', 'event_types: "*" (every event) stands alone.', { field: 'event_types' });
  return [...new Set(types)];
}

const notFound = () => new GatehouseError('not_found', 'No such webhook endpoint.', { field: 'id' });

/** The audit event of an endpoint change, by the admin API's `actor`. */
const changeEvent = (actor: string, meta: RequestMeta, at: number, detail: Record<string, unknown>): AuditEvent => ({
  type: 'admin_change',
  actor,
  meta,
  detail,
  at,
});

export async function createEndpoint(
  deps: Deps,
  by: { actor: string; meta: RequestMeta },
  input: { url: string; eventTypes: EventTypes; description?: string | undefined },
): Promise<{ endpoint: WebhookEndpointRow; secret: string }> {
  const url = checkWebhookUrl(input.url, deps.config.environment);
  const eventTypes = normaliseTypes(input.eventTypes);
  const now = deps.now();
  const id = `whe_${randomToken(12)}`;
  const secret = newSecret();
  const secrets: StoredSecret[] = [{ sealed: await seal(deps.config.keyEncryptionKey, aad(id), secret), until: null }];
  const row: WebhookEndpointRow = {
    id,
    url,
    description: input.description ?? null,
    eventTypes: JSON.stringify(eventTypes),
    secrets: JSON.stringify(secrets),
    enabled: true,
    disabledReason: null,
    failuresInARow: 0,
    createdAt: now,
    updatedAt: now,
  };
  await failClosed('the database', () =>
    deps.db.batch([
      deps.db.insert(webhookEndpoints).values(row),
      auditInsert(deps.db, changeEvent(by.actor, by.meta, now, { action: 'webhook_endpoint_created', endpointId: id, url, eventTypes })),
    ]),
  );
  forgetEnabledEndpoints();
  return { endpoint: row, secret };
}

export async function findEndpoint(deps: Deps, id: string): Promise<WebhookEndpointRow> {
  const row = await failClosed('the database', () => deps.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id)).get());
  if (!row) throw notFound();
  return row;
}

/** A page of endpoints, newest first, after the (created_at, id) of the previous page's last. */
export function listEndpoints(deps: Deps, limit: number, after: readonly (string | number)[] | undefined): Promise<WebhookEndpointRow[]> {
  const where = after
    ? or(
        lt(webhookEndpoints.createdAt, Number(after[0])),
        and(eq(webhookEndpoints.createdAt, Number(after[0])), lt(webhookEndpoints.id, String(after[1]))),
      )
    : undefined;
  return failClosed('the database', () =>
    deps.db
      .select()
      .from(webhookEndpoints)
      .where(where)
      .orderBy(desc(webhookEndpoints.createdAt), desc(webhookEndpoints.id))
      .limit(limit)
      .all(),
  );
}

/**
 * Changes an endpoint. Turning it on again clears its failure count and reason (its pending
 * deliveries resume with the next sweep); turning it off records who did.
 */
export async function updateEndpoint(
  deps: Deps,
  by: { actor: string; meta: RequestMeta },
  id: string,
  patch: {
    url?: string | undefined;
    eventTypes?: EventTypes | undefined;
    description?: string | null | undefined;
    enabled?: boolean | undefined;
  },
): Promise<WebhookEndpointRow> {
  const now = deps.now();
  const set: Partial<WebhookEndpointRow> = { updatedAt: now };
  if (patch.url !== undefined) set.url = checkWebhookUrl(patch.url, deps.config.environment);
  if (patch.eventTypes !== undefined) set.eventTypes = JSON.stringify(normaliseTypes(patch.eventTypes));
  if (patch.description !== undefined) set.description = patch.description;
  if (patch.enabled === true) Object.assign(set, { enabled: true, disabledReason: null, failuresInARow: 0 });
  if (patch.enabled === false) Object.assign(set, { enabled: false, disabledReason: `Turned off by ${by.actor}.` });
  const changed = Object.keys(patch).filter((k) => patch[k as keyof typeof patch] !== undefined);
  const guard = eq(webhookEndpoints.id, id);
  const [, rows] = await failClosed('the database', () =>
    deps.db.batch([
      auditInsertWhile(
        deps.db,
        changeEvent(by.actor, by.meta, now, {
          action: 'webhook_endpoint_updated',
          endpointId: id,
          changed,
          ...(set.url ? { url: set.url } : {}),
        }),
        webhookEndpoints,
        guard,
      ),
      deps.db.update(webhookEndpoints).set(set).where(guard).returning(),
    ]),
  );
  forgetEnabledEndpoints();
  if (!rows[0]) throw notFound();
  return rows[0];
}

/** Deletes an endpoint and, with it, its deliveries. */
export async function deleteEndpoint(deps: Deps, by: { actor: string; meta: RequestMeta }, id: string): Promise<void> {
  const now = deps.now();
  const guard = eq(webhookEndpoints.id, id);
  const [, rows] = await failClosed('the database', () =>
    deps.db.batch([
      auditInsertWhile(
        deps.db,
        changeEvent(by.actor, by.meta, now, { action: 'webhook_endpoint_deleted', endpointId: id }),
        webhookEndpoints,
        guard,
      ),
      deps.db.delete(webhookEndpoints).where(guard).returning({ id: webhookEndpoints.id }),
    ]),
  );
  forgetEnabledEndpoints();
  if (!rows[0]) throw notFound();
}

/**
 * A new secret, shown once, that signs from now on; the current one keeps signing beside it for
 * SECRET_OVERLAP_MS (one secret older than that is dropped at once). Two rotations racing: one wins,
 * the other is a 409 — never a secret shown that was not stored.
 */
export async function rotateSecret(
  deps: Deps,
  by: { actor: string; meta: RequestMeta },
  id: string,
): Promise<{ secret: string; previousUntil: number }> {
  const row = await findEndpoint(deps, id);
  const now = deps.now();
  const current = secretsOf(row).find((s) => s.until === null);
  const previousUntil = now + SECRET_OVERLAP_MS;
  const secret = newSecret();
  const secrets: StoredSecret[] = [
    { sealed: await seal(deps.config.keyEncryptionKey, aad(id), secret), until: null },
    ...(current ? [{ sealed: current.sealed, until: previousUntil }] : []),
  ];
  const guard = and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.secrets, row.secrets))!;
  const [, rows] = await failClosed('the database', () =>
    deps.db.batch([
      auditInsertWhile(
        deps.db,
        changeEvent(by.actor, by.meta, now, { action: 'webhook_secret_rotated', endpointId: id, previousUntil }),
        webhookEndpoints,
        guard,
      ),
      deps.db
        .update(webhookEndpoints)
        .set({ secrets: JSON.stringify(secrets), updatedAt: now })
        .where(guard)
        .returning({ id: webhookEndpoints.id }),
    ]),
  );
  if (!rows[0]) throw new GatehouseError('conflict', 'The secret was changed meanwhile; rotate again.');
  return { secret, previousUntil };
}

/** Until when the previous secret still signs, or null when only the current one does. */
export function previousSecretUntil(row: WebhookEndpointRow, now: number): number | null {
  const previous = secretsOf(row).find((s) => s.until !== null && s.until > now);
  return previous?.until ?? null;
}

/** The secrets that sign a delivery now, the current one first. */
export function signingSecrets(deps: Deps, row: WebhookEndpointRow, now: number): Promise<string[]> {
  const live = secretsOf(row).filter((s) => s.until === null || s.until > now);
  return Promise.all(live.map((s) => unseal(deps.config.keyEncryptionKey, aad(row.id), s.sealed)));
}
