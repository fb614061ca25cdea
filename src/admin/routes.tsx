import type { Context } from 'hono';
import type * as z from 'zod';
import type { AppEnv } from '../deps';
import { auditInsert } from '../identity/audit';
import { deferTo } from '../lib/defer';
import { GatehouseError } from '../lib/errors';
import { ADMIN_MAX_BODY_BYTES } from '../lib/request-body';
import { requestMeta } from '../lib/request-meta';
import { router } from '../lib/router';
import { issuerOf } from '../tokens/access-token';
import { authenticateAdmin } from './authenticate';
import { invalidFields } from './input-errors';
import { ADMIN_BASE, ADMIN_OPERATIONS } from './catalogue';
import { openApiDocument } from './openapi';
import { ReferencePage } from './reference-page';
import { actorName, type Operation } from './operations';

type C = Context<AppEnv>;

/**
 * The admin API under /auth/admin/v1: every operation of the catalogue behind the same steps —
 * the caller's token and scope (authenticate.ts), then path, query and body validated by the
 * operation's own schemas (every failing field named in one RFC 9457 answer, never the values),
 * then the domain function. Reads are audited here with who made them; writes are audited by the
 * domain functions, in the batch of the change.
 */
export const adminRoutes = router('admin');

/** The OpenAPI document and its reference page: public (they describe, they grant nothing). */
export const adminDocs = router('problem');

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: 'path' | 'query' | 'body'): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value);
  if (!result.success) throw invalidFields(where, result.error);
  return result.data;
}

async function jsonBody(c: C): Promise<unknown> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new GatehouseError('unsupported_media_type', 'Send the request body as application/json.');
  const text = await c.req.text();
  if (text.length > ADMIN_MAX_BODY_BYTES)
    throw new GatehouseError('payload_too_large', `The request body is larger than ${ADMIN_MAX_BODY_BYTES} bytes.`);
  try {
    return JSON.parse(text);
  } catch {
    throw new GatehouseError('invalid_json', 'The request body is not valid JSON.');
  }
}

/** A query as zod sees it: a repeated name becomes an array, a single one a string. */
function queryOf(c: C): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of Object.entries(c.req.queries())) out[name] = values.length === 1 ? values[0]! : values;
  return out;
}

const honoPath = (path: string) => path.replace(/\{([A-Za-z_]+)\}/g, ':$1');

function mount(op: Operation) {
  adminRoutes.on(op.method.toUpperCase(), honoPath(op.path), async (c) => {
    const { deps } = c.var;
    const actor = await authenticateAdmin(
      deps,
      {
        authorization: c.req.header('authorization'),
        dpop: c.req.header('dpop'),
        method: c.req.method,
        url: `${issuerOf(deps)}${new URL(c.req.url).pathname}`,
      },
      op.scope,
    );
    const params = parse(op.params, c.req.param(), 'path');
    const query = parse(op.query, queryOf(c), 'query');
    const body = op.body ? parse(op.body, await jsonBody(c), 'body') : undefined;
    const meta = requestMeta(c);
    const defer = deferTo(c, 'admin_deferred_failed');
    const result = await op.handle({ deps, actor, meta, params, query, body, defer });
    if (op.method === 'get')
      defer(
        auditInsert(deps.db, {
          type: 'admin_read',
          actor: actorName(actor),
          meta,
          detail: { operation: op.operationId, clientId: actor.clientId, ...(params as object) },
          at: deps.now(),
        }).then(() => undefined),
      );
    c.header('cache-control', 'no-store');
    for (const [name, value] of Object.entries(result.headers ?? {})) c.header(name, value);
    return result.status === 204 ? c.body(null, 204) : c.json(result.body, result.status);
  });
}

for (const op of ADMIN_OPERATIONS) mount(op);

adminDocs.get(`${ADMIN_BASE.replace('/auth', '')}/openapi.json`, (c) =>
  c.json(openApiDocument(issuerOf(c.var.deps)), 200, { 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' }),
);
adminDocs.get(`${ADMIN_BASE.replace('/auth', '')}/reference`, (c) =>
  c.html(<ReferencePage document={openApiDocument(issuerOf(c.var.deps))} />),
);
