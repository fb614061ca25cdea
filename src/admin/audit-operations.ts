import { and, desc, eq, gte, inArray, lt, or, type SQL } from 'drizzle-orm';
import * as z from 'zod';
import { auditEvents } from '../db/schema';
import { failClosed } from '../lib/errors';
import { decodeCursor, encodeCursor } from './cursor';
import { millis, operation, pageOf, pageQuery } from './operations';

/** The audit log: who did what, when, from where — newest first, by user, client, type and time. */

const auditEvent = z.object({
  id: z.number().int(),
  type: z.string(),
  user_id: z.string().nullable(),
  client_id: z.string().nullable(),
  actor: z.string().nullable().describe('client:<id> or user:<id> when the admin API acted; null when the user did.'),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()).nullable(),
  created_at: millis,
});

const auditQuery = pageQuery.extend({
  user_id: z.string().max(200).optional(),
  client_id: z.string().max(200).optional(),
  type: z
    .union([z.string().regex(/^[a-z_]{1,40}$/), z.array(z.string().regex(/^[a-z_]{1,40}$/)).max(20)])
    .optional()
    .describe('One type, or several (repeat the parameter).'),
  since: z.coerce.number().int().min(0).optional().describe('From this time (ms since the epoch), inclusive.'),
  until: z.coerce.number().int().min(0).optional().describe('Before this time (ms since the epoch), exclusive.'),
});

export const auditOperations = [
  operation({
    method: 'get',
    path: '/audit-events',
    operationId: 'listAuditEvents',
    tag: 'Audit',
    summary: 'Query the audit log, newest first',
    scope: 'admin:audit:read',
    query: auditQuery,
    responses: { 200: { description: 'A page of events', schema: pageOf(auditEvent) } },
    handle: async ({ deps, query }) => {
      const { limit, cursor, ...filters } = query;
      const after = await decodeCursor(deps, 'audit', filters, cursor);
      const types = filters.type === undefined ? undefined : Array.isArray(filters.type) ? filters.type : [filters.type];
      const where: (SQL | undefined)[] = [
        filters.user_id !== undefined ? eq(auditEvents.userId, filters.user_id) : undefined,
        filters.client_id !== undefined ? eq(auditEvents.clientId, filters.client_id) : undefined,
        types ? inArray(auditEvents.type, types) : undefined,
        filters.since !== undefined ? gte(auditEvents.createdAt, filters.since) : undefined,
        filters.until !== undefined ? lt(auditEvents.createdAt, filters.until) : undefined,
        // Keyset: strictly after the previous page's last (created_at, id), newest first.
        after
          ? or(
              lt(auditEvents.createdAt, Number(after[0])),
              and(eq(auditEvents.createdAt, Number(after[0])), lt(auditEvents.id, Number(after[1]))),
            )
          : undefined,
      ];
      const rows = await failClosed('the database', () =>
        deps.db
          .select()
          .from(auditEvents)
          .where(and(...where))
          .orderBy(desc(auditEvents.createdAt), desc(auditEvents.id))
          .limit(limit + 1)
          .all(),
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        status: 200,
        body: {
          items: page.map((r) => ({
            id: r.id,
            type: r.type,
            user_id: r.userId,
            client_id: r.clientId,
            actor: r.actor,
            ip: r.ip,
            user_agent: r.userAgent,
            detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
            created_at: r.createdAt,
          })),
          next_cursor: rows.length > limit && last ? await encodeCursor(deps, 'audit', filters, [last.createdAt, last.id]) : null,
        },
      };
    },
  }),
];
