import * as z from 'zod';
import { ADMIN_BASE, ADMIN_OPERATIONS } from './catalogue';
import { ADMIN_AUDIENCE, ADMIN_SCOPES, type Operation } from './operations';

/**
 * The OpenAPI 3.1 document of the admin API, written from the operations' own zod schemas (JSON
 * Schema 2020-12, which OpenAPI 3.1 uses): what validates a request is what the document says.
 * Built once per issuer and isolate.
 */
type Json = Record<string, unknown>;

const schemaOf = (s: z.ZodType, io: 'input' | 'output'): Json => {
  const { $schema: _, ...rest } = z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
  return rest;
};

/** A zod object's fields as OpenAPI parameters (`in: path` or `query`). */
function parametersOf(s: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (!s) return [];
  const json = schemaOf(s, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return {
      name,
      in: where,
      required: where === 'path' || (json.required ?? []).includes(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const PROBLEM: Json = {
  description: 'RFC 9457 problem details',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

function operationOf(op: Operation): Json {
  const responses: Json = {};
  for (const [status, r] of Object.entries(op.responses))
    responses[status] = r.schema
      ? { description: r.description, content: { 'application/json': { schema: schemaOf(r.schema, 'output') } } }
      : { description: r.description };
  for (const status of ['400', '401', '403', '404', '409', '503', ...(op.body ? ['413', '415'] : [])]) responses[status] ??= PROBLEM;
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    parameters: [...parametersOf(op.params, 'path'), ...parametersOf(op.query, 'query')],
    ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.body, 'input') } } } } : {}),
    responses,
    security: [{ oauth2: [op.scope] }],
    'x-required-scope': op.scope,
  };
}

const built = new Map<string, Json>();

export function openApiDocument(issuer: string): Json {
  const hit = built.get(issuer);
  if (hit) return hit;
  const paths: Record<string, Json> = {};
  for (const op of ADMIN_OPERATIONS) {
    paths[op.path] ??= {};
    paths[op.path]![op.method] = operationOf(op);
  }
  const scopes = Object.fromEntries(ADMIN_SCOPES.map((s) => [s, s.replace('admin:', '').replace(':', ' — ')]));
  const document: Json = {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse admin API',
      version: '1',
      description: `Manage users, clients, APIs, providers, keys, audit events and webhooks. Every call takes an access token for the audience ${ADMIN_AUDIENCE} with the scope the operation names (docs/admin-api.md).`,
    },
    servers: [{ url: `${issuer}${ADMIN_BASE}` }],
    paths,
    components: {
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          description: `Tokens for the resource ${ADMIN_AUDIENCE} (RFC 8707): a machine client (client_credentials), or an admin user's token.`,
          flows: {
            clientCredentials: { tokenUrl: `${issuer}/auth/token`, scopes },
            authorizationCode: { authorizationUrl: `${issuer}/auth/authorize`, tokenUrl: `${issuer}/auth/token`, scopes },
          },
        },
      },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail', 'code'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string', description: 'A stable error code (docs/api.md "Errors").' },
            field: { type: 'string', description: 'The first field that failed.' },
            errors: {
              type: 'array',
              items: {
                type: 'object',
                required: ['field', 'message'],
                properties: { field: { type: 'string' }, message: { type: 'string' } },
              },
            },
            scope: { type: 'string', description: 'The scope the operation needs (insufficient_scope).' },
            instance: { type: 'string' },
          },
        },
      },
    },
  };
  built.set(issuer, document);
  return document;
}
