import * as z from 'zod';
import type { WebhookEndpointRow } from '../db/schema';
import type { Deps } from '../deps';
import { decodeCursor, encodeCursor } from './cursor';
import { type DeliveryView, listDeliveries, replay } from './webhook-deliveries';
import {
  createEndpoint,
  deleteEndpoint,
  findEndpoint,
  listEndpoints,
  previousSecretUntil,
  rotateSecret,
  updateEndpoint,
} from './webhook-endpoints';
import { WEBHOOK_EVENT_TYPES } from './webhook-events';
import { requireAdminPower } from './escalation';
import { type Actor, actorName, idParam, millis, operation, pageOf, pageQuery } from './operations';

/** Webhook endpoints (docs/webhooks.md): where events go, their secrets, their deliveries and replays. */

const eventTypes = z
  .array(z.enum([...WEBHOOK_EVENT_TYPES, '*']))
  .min(1)
  .max(WEBHOOK_EVENT_TYPES.length)
  .describe('The event types to send, or ["*"] for every one (docs/webhooks.md lists them).');
const url = z.string().min(1).max(2000).describe('https in production, to a public host (docs/webhooks.md, "SSRF").');
const description = z.string().max(200);

const endpointView = z.object({
  id: z.string(),
  url: z.string(),
  description: z.string().nullable(),
  event_types: z.array(z.string()),
  enabled: z.boolean(),
  disabled_reason: z.string().nullable().describe('Why it is off: turned off by an operator, or after failing for too long.'),
  failures_in_a_row: z.number().int().describe('Deliveries that failed in a row (a success resets it).'),
  previous_secret_expires_at: millis.nullable().describe('After a rotation: until when the previous secret still signs too.'),
  created_at: millis,
  updated_at: millis,
});

const deliveryView = z.object({
  id: z.string(),
  event_id: z.number().int().describe('The audit event it reports (GET /audit-events).'),
  event_type: z.string(),
  status: z.enum(['pending', 'succeeded', 'failed']),
  attempts: z.number().int(),
  last_attempt_at: millis.nullable(),
  last_status: z.number().int().nullable().describe('The endpoint’s HTTP status; null when it could not be reached.'),
  last_error: z.string().nullable(),
  next_attempt_at: millis.nullable().describe('When a pending delivery is tried next.'),
  created_at: millis,
});

const secretShown = z.string().describe('The signing secret (whsec_…): shown this once.');

function viewOf(row: WebhookEndpointRow, now: number) {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    event_types: JSON.parse(row.eventTypes) as string[],
    enabled: row.enabled,
    disabled_reason: row.disabledReason,
    failures_in_a_row: row.failuresInARow,
    previous_secret_expires_at: previousSecretUntil(row, now),
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

const deliveryOf = (d: DeliveryView) => ({
  id: d.id,
  event_id: d.eventId,
  event_type: d.eventType,
  status: d.status,
  attempts: d.attempts,
  last_attempt_at: d.lastAttemptAt,
  last_status: d.lastStatus,
  last_error: d.lastError,
  next_attempt_at: d.nextAttemptAt,
  created_at: d.createdAt,
});

/** A page: the rows asked for, and the signed cursor after the last when there were more. */
async function page<T extends { createdAt: number; id: string }, V>(
  deps: Deps,
  list: string,
  filters: unknown,
  limit: number,
  rows: T[],
  view: (row: T) => V,
) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(view),
    next_cursor: rows.length > limit && last ? await encodeCursor(deps, list, filters, [last.createdAt, last.id]) : null,
  };
}

const deliveryParams = idParam.extend({ delivery_id: z.string().min(1).max(64) });

/**
 * A webhook payload carries the user as they were (address, name, roles): whoever points an
 * endpoint somewhere, or sends events again, reads user data — so that takes admin:users:read too,
 * not only admin:webhooks:write.
 */
const USER_DATA = 'webhook payloads carry user data, so pointing an endpoint somewhere or replaying events reads it';
const requireUserRead = (actor: Actor, field?: string) =>
  requireAdminPower(actor, ['admin:users:read'], { why: USER_DATA, ...(field ? { field } : {}) });

export const webhookOperations = [
  operation({
    method: 'post',
    path: '/webhooks',
    operationId: 'createWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Add an endpoint; its signing secret is shown once',
    scope: 'admin:webhooks:write',
    body: z.object({ url, event_types: eventTypes, description: description.optional() }).strict(),
    responses: { 201: { description: 'The endpoint, with its secret', schema: endpointView.extend({ secret: secretShown }) } },
    handle: async ({ deps, actor, meta, body }) => {
      requireUserRead(actor, 'url');
      const { endpoint, secret } = await createEndpoint(
        deps,
        { actor: actorName(actor), meta },
        { url: body.url, eventTypes: body.event_types, description: body.description },
      );
      return { status: 201, body: { ...viewOf(endpoint, deps.now()), secret } };
    },
  }),
  operation({
    method: 'get',
    path: '/webhooks',
    operationId: 'listWebhookEndpoints',
    tag: 'Webhooks',
    summary: 'List the endpoints, newest first',
    scope: 'admin:webhooks:read',
    query: pageQuery,
    responses: { 200: { description: 'A page of endpoints', schema: pageOf(endpointView) } },
    handle: async ({ deps, query }) => {
      const after = await decodeCursor(deps, 'webhooks', {}, query.cursor);
      const rows = await listEndpoints(deps, query.limit + 1, after);
      return { status: 200, body: await page(deps, 'webhooks', {}, query.limit, rows, (r) => viewOf(r, deps.now())) };
    },
  }),
  operation({
    method: 'get',
    path: '/webhooks/{id}',
    operationId: 'getWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'An endpoint (never its secret)',
    scope: 'admin:webhooks:read',
    params: idParam,
    responses: { 200: { description: 'The endpoint', schema: endpointView } },
    handle: async ({ deps, params }) => ({ status: 200, body: viewOf(await findEndpoint(deps, params.id), deps.now()) }),
  }),
  operation({
    method: 'patch',
    path: '/webhooks/{id}',
    operationId: 'updateWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Change an endpoint’s URL, event types or description, or turn it off or on',
    description: 'Turning it on again clears its failures; its pending deliveries resume within minutes.',
    scope: 'admin:webhooks:write',
    params: idParam,
    body: z
      .object({
        url: url.optional(),
        event_types: eventTypes.optional(),
        description: description.nullable().optional(),
        enabled: z.boolean().optional(),
      })
      .strict()
      .refine((b) => Object.values(b).some((v) => v !== undefined), 'name at least one field to change'),
    responses: { 200: { description: 'The endpoint as changed', schema: endpointView } },
    handle: async ({ deps, actor, meta, params, body }) => {
      if (body.url !== undefined) requireUserRead(actor, 'url');
      const row = await updateEndpoint(deps, { actor: actorName(actor), meta }, params.id, {
        url: body.url,
        eventTypes: body.event_types,
        description: body.description,
        enabled: body.enabled,
      });
      return { status: 200, body: viewOf(row, deps.now()) };
    },
  }),
  operation({
    method: 'delete',
    path: '/webhooks/{id}',
    operationId: 'deleteWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Remove an endpoint and its deliveries',
    scope: 'admin:webhooks:write',
    params: idParam,
    responses: { 204: { description: 'Removed' } },
    handle: async ({ deps, actor, meta, params }) => {
      await deleteEndpoint(deps, { actor: actorName(actor), meta }, params.id);
      return { status: 204 };
    },
  }),
  operation({
    method: 'post',
    path: '/webhooks/{id}/rotate-secret',
    operationId: 'rotateWebhookSecret',
    tag: 'Webhooks',
    summary: 'A new signing secret (shown once); the previous one keeps signing for 24 hours',
    description: 'During the overlap every delivery carries two signatures, so a receiver with either secret verifies it.',
    scope: 'admin:webhooks:write',
    params: idParam,
    responses: {
      200: {
        description: 'The new secret',
        schema: z.object({
          secret: secretShown,
          previous_secret_expires_at: millis.describe('Until when the previous secret still signs.'),
        }),
      },
    },
    handle: async ({ deps, actor, meta, params }) => {
      const { secret, previousUntil } = await rotateSecret(deps, { actor: actorName(actor), meta }, params.id);
      return { status: 200, body: { secret, previous_secret_expires_at: previousUntil } };
    },
  }),
  operation({
    method: 'get',
    path: '/webhooks/{id}/deliveries',
    operationId: 'listWebhookDeliveries',
    tag: 'Webhooks',
    summary: 'An endpoint’s deliveries, newest first: status, attempts, the last answer',
    scope: 'admin:webhooks:read',
    params: idParam,
    query: pageQuery.extend({ status: z.enum(['pending', 'succeeded', 'failed']).optional() }),
    responses: { 200: { description: 'A page of deliveries', schema: pageOf(deliveryView) } },
    handle: async ({ deps, params, query }) => {
      const { limit, cursor, ...filters } = query;
      const bound = { endpoint: params.id, ...filters };
      const after = await decodeCursor(deps, 'webhook-deliveries', bound, cursor);
      const rows = await listDeliveries(deps, params.id, { status: filters.status, limit: limit + 1, after });
      return { status: 200, body: await page(deps, 'webhook-deliveries', bound, limit, rows, deliveryOf) };
    },
  }),
  operation({
    method: 'post',
    path: '/webhooks/{id}/deliveries/{delivery_id}/replay',
    operationId: 'replayWebhookDelivery',
    tag: 'Webhooks',
    summary: 'Send a delivery again, now, with fresh attempts (same webhook-id)',
    scope: 'admin:webhooks:write',
    params: deliveryParams,
    responses: { 202: { description: 'Queued', schema: deliveryView } },
    handle: async ({ deps, actor, meta, params }) => {
      requireUserRead(actor);
      const d = await replay(deps, { actor: actorName(actor), meta }, params.id, { deliveryId: params.delivery_id });
      return { status: 202, body: deliveryOf(d) };
    },
  }),
  operation({
    method: 'post',
    path: '/webhooks/{id}/replay',
    operationId: 'replayWebhookEvent',
    tag: 'Webhooks',
    summary: 'Send an event to this endpoint (again), e.g. one it missed while off',
    description: 'event_id is the audit event’s id (GET /audit-events); events are kept 30 days.',
    scope: 'admin:webhooks:write',
    params: idParam,
    body: z.object({ event_id: z.number().int().positive() }).strict(),
    responses: { 202: { description: 'Queued', schema: deliveryView } },
    handle: async ({ deps, actor, meta, params, body }) => {
      requireUserRead(actor);
      const d = await replay(deps, { actor: actorName(actor), meta }, params.id, { eventId: body.event_id });
      return { status: 202, body: deliveryOf(d) };
    },
  }),
];
