import { and, desc, eq, lt, or, type SQL, sql } from 'drizzle-orm';
import { webhookDeliveries, webhookEndpoints, webhookEvents, type WebhookDeliveryRow } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsertWhile } from '../identity/audit';
import { randomToken } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import type { RequestMeta } from '../lib/request-meta';
import { enqueueDeliveries } from './webhook-dispatch';
import { findEndpoint } from './webhook-endpoints';

/** An endpoint's deliveries (what was sent, how it went) and replays of them. */

export type DeliveryStatus = WebhookDeliveryRow['status'];
export type DeliveryView = WebhookDeliveryRow & { eventType: string };

const columns = {
  id: webhookDeliveries.id,
  eventId: webhookDeliveries.eventId,
  endpointId: webhookDeliveries.endpointId,
  status: webhookDeliveries.status,
  attempts: webhookDeliveries.attempts,
  lastAttemptAt: webhookDeliveries.lastAttemptAt,
  lastStatus: webhookDeliveries.lastStatus,
  lastError: webhookDeliveries.lastError,
  nextAttemptAt: webhookDeliveries.nextAttemptAt,
  createdAt: webhookDeliveries.createdAt,
  eventType: webhookEvents.type,
};

/** A page of an endpoint's deliveries, newest first, after the previous page's last (created_at, id). */
export async function listDeliveries(
  deps: Deps,
  endpointId: string,
  o: { status?: DeliveryStatus | undefined; only?: string; limit: number; after: readonly (string | number)[] | undefined },
): Promise<DeliveryView[]> {
  await findEndpoint(deps, endpointId);
  const where: (SQL | undefined)[] = [
    eq(webhookDeliveries.endpointId, endpointId),
    o.status ? eq(webhookDeliveries.status, o.status) : undefined,
    o.only ? eq(webhookDeliveries.id, o.only) : undefined,
    o.after
      ? or(
          lt(webhookDeliveries.createdAt, Number(o.after[0])),
          and(eq(webhookDeliveries.createdAt, Number(o.after[0])), lt(webhookDeliveries.id, String(o.after[1]))),
        )
      : undefined,
  ];
  return failClosed('the database', () =>
    deps.db
      .select(columns)
      .from(webhookDeliveries)
      .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
      .where(and(...where))
      .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
      .limit(o.limit)
      .all(),
  );
}

/**
 * Sends an event to an endpoint again, now, with a fresh count of attempts: a delivery of it (a
 * failed one, or a succeeded one the receiver lost), or an event the endpoint never got (it was off,
 * or did not want that type then). Same `webhook-id` as before, so a receiver that has it can skip
 * it. The endpoint must be on and want the event's type.
 */
export async function replay(
  deps: Deps,
  by: { actor: string; meta: RequestMeta },
  endpointId: string,
  which: { deliveryId: string } | { eventId: number },
): Promise<DeliveryView> {
  const endpoint = await findEndpoint(deps, endpointId);
  const found = await failClosed('the database', () =>
    'deliveryId' in which
      ? deps.db
          .select({ eventId: webhookEvents.id, type: webhookEvents.type })
          .from(webhookDeliveries)
          .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
          .where(and(eq(webhookDeliveries.id, which.deliveryId), eq(webhookDeliveries.endpointId, endpointId)))
          .get()
      : deps.db
          .select({ eventId: webhookEvents.id, type: webhookEvents.type })
          .from(webhookEvents)
          .where(eq(webhookEvents.id, which.eventId))
          .get(),
  );
  if (!found)
    throw 'deliveryId' in which
      ? new GatehouseError('not_found', 'No such delivery to this endpoint.', { field: 'delivery_id' })
      : new GatehouseError('not_found', 'No such event (events are kept 30 days).', { field: 'event_id' });
  if (!endpoint.enabled) throw new GatehouseError('conflict', 'The endpoint is off; turn it on (enabled: true) before replaying to it.');
  const types = JSON.parse(endpoint.eventTypes) as string[];
  if (!types.includes('*') && !types.includes(found.type))
    throw new GatehouseError('conflict', `The endpoint does not take ${found.type} events.`, { field: 'event_id' });
  const now = deps.now();
  const guard = and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.enabled, true))!;
  const [, rows] = await failClosed('the database', () =>
    deps.db.batch([
      auditInsertWhile(
        deps.db,
        {
          type: 'admin_change',
          actor: by.actor,
          meta: by.meta,
          at: now,
          detail: { action: 'webhook_replayed', endpointId, eventId: found.eventId },
        },
        webhookEndpoints,
        guard,
      ),
      deps.db
        .insert(webhookDeliveries)
        .select(
          // Every column, in the table's order: a new pending delivery, if the endpoint is still on.
          sql`SELECT ${`dlv_${randomToken(12)}`}, ${found.eventId}, id, 'pending', 0, NULL, NULL, NULL, ${now}, ${now}
              FROM webhook_endpoints WHERE id = ${endpointId} AND enabled = 1`,
        )
        .onConflictDoUpdate({
          target: [webhookDeliveries.eventId, webhookDeliveries.endpointId],
          set: { status: 'pending', attempts: 0, nextAttemptAt: now },
        })
        .returning({ id: webhookDeliveries.id }),
    ]),
  );
  const id = rows[0]?.id;
  if (!id) throw new GatehouseError('conflict', 'The endpoint was turned off meanwhile.');
  // A failure to queue leaves it pending and due: the sweep sends it.
  await enqueueDeliveries(deps, [id]).catch(() => undefined);
  const [delivery] = await listDeliveries(deps, endpointId, { only: id, limit: 1, after: undefined });
  return delivery!;
}
