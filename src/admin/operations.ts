import * as z from 'zod';
import type { Deps } from '../deps';
import { ADMIN_RESOURCE } from '../oauth/api-resources';
import type { RequestMeta } from '../lib/request-meta';

/**
 * The admin API's operations, each declared once: its method and path, the scope it needs, and the
 * zod schemas of its path parameters, query, body and answers. The same declaration validates the
 * request (src/admin/routes.ts) and writes the OpenAPI 3.1 document (src/admin/openapi.ts), so the
 * document cannot drift from what the code accepts. (zod's own JSON Schema output, not
 * @hono/zod-openapi: that one brings a second, full copy of zod — 76 KiB of gzip in a 400 KiB budget.)
 */

/** The admin API's audience (RFC 8707 resource); registered by migrations/0013 with its scopes. */
export const ADMIN_AUDIENCE = ADMIN_RESOURCE;

export const ADMIN_SCOPES = [
  'admin:users:read',
  'admin:users:write',
  'admin:clients:read',
  'admin:clients:write',
  'admin:resources:read',
  'admin:resources:write',
  'admin:providers:read',
  'admin:providers:write',
  'admin:api_keys:read',
  'admin:api_keys:write',
  'admin:keys:read',
  'admin:keys:write',
  'admin:audit:read',
  'admin:webhooks:read',
  'admin:webhooks:write',
] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

/** Who is calling: a machine client (client_credentials) or an admin user, through their token. */
export interface Actor {
  kind: 'client' | 'user';
  id: string;
  /** The client the token was issued to. */
  clientId: string;
  scopes: readonly string[];
}

/** `client:<id>` or `user:<id>`: how the audit log names an actor. */
export const actorName = (a: Actor) => `${a.kind}:${a.id}`;

/** What an operation's handler gets: its validated input, who calls, and the deps. */
export interface OperationInput<P, Q, B> {
  deps: Deps;
  actor: Actor;
  meta: RequestMeta;
  params: P;
  query: Q;
  body: B;
  /** Work to finish after the answer (mail, webhooks): ctx.waitUntil. */
  defer: (task: Promise<void>) => void;
}

/** A handler's answer: a status and a JSON body (none for 204), and headers to add. */
export interface OperationResult {
  status: 200 | 201 | 202 | 204;
  body?: unknown;
  headers?: Record<string, string>;
}

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface Operation<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: Method;
  /** OpenAPI style, relative to /auth/admin/v1: `/users/{id}`. */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  scope: AdminScope;
  params?: P;
  query?: Q;
  body?: B;
  /** The answers, by status; a `schema` for those with a JSON body. Errors are problem+json (added to every operation). */
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  handle: (input: OperationInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<OperationResult>;
}

/** Declares an operation (typed: the handler sees the schemas' outputs). */
export function operation<P extends z.ZodType = z.ZodObject, Q extends z.ZodType = z.ZodObject, B extends z.ZodType = z.ZodUnknown>(
  o: Operation<P, Q, B>,
): Operation {
  return o as unknown as Operation;
}

// ── Shared pieces of schemas ──────────────────────────────────────────────────────────────────

/** Path parameter `id`. */
export const idParam = z.object({ id: z.string().min(1).max(200) });

/** A page of a list: `limit` (1–100, default 50) and the opaque `cursor` of the previous page's `next_cursor`. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50).describe('How many items (1–100).'),
  cursor: z.string().max(500).optional().describe('The next_cursor of the previous page.'),
});

/** A list's answer: the items and, when there are more, the cursor of the next page. */
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable().describe('Pass as cursor for the next page; null at the end.') });

/** Epoch milliseconds, as every time in the admin API. */
export const millis = z.number().int().describe('Milliseconds since the Unix epoch.');
