import type { Context } from 'hono';
import type * as z from 'zod';
import { GatehouseError } from './errors';

/** Largest request body any Gatehouse endpoint accepts (but the admin API). */
export const MAX_BODY_BYTES = 16 * 1024;
/** The admin API's (an authenticated back channel): a user's two metadata objects take up to 16 KiB each. */
export const ADMIN_MAX_BODY_BYTES = 64 * 1024;

/** Turns the first zod issue into a 400 that names the field. */
export function invalidInput(error: z.ZodError): GatehouseError {
  const issue = error.issues[0]!;
  // A key the schema does not allow (a strict object) is named by itself.
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
  const field = path.map(String).join('.') || undefined;
  const message = issue.code === 'invalid_type' && issue.input === undefined ? `${field ?? 'body'} is required` : issue.message;
  return new GatehouseError('invalid_request', field && !message.includes(field) ? `${field}: ${message}` : message, {
    ...(field ? { field } : {}),
  });
}

async function readBody(c: Context, kind: 'json' | 'form'): Promise<unknown> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (kind === 'json') {
    // Requiring application/json also keeps cross-site forms out: browsers preflight it.
    if (type !== 'application/json') throw new GatehouseError('unsupported_media_type', 'Send the request body as application/json.');
    try {
      return await c.req.json();
    } catch {
      throw new GatehouseError('invalid_json', 'The request body is not valid JSON.');
    }
  }
  if (type !== 'application/x-www-form-urlencoded' && type !== 'multipart/form-data')
    throw new GatehouseError('unsupported_media_type', 'Send the form as application/x-www-form-urlencoded.');
  try {
    const form = await c.req.parseBody({ all: false });
    return Object.fromEntries(Object.entries(form).filter(([, v]) => typeof v === 'string'));
  } catch {
    throw new GatehouseError('invalid_request', 'The form body could not be read.');
  }
}

/** Reads and validates a JSON (API) or form (pages) body; bad input throws a 4xx naming the field. */
export async function parseInput<S extends z.ZodType>(c: Context, kind: 'json' | 'form', schema: S): Promise<z.output<S>> {
  const body = await readBody(c, kind);
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new GatehouseError('invalid_request', 'The request body must be a JSON object.');
  const result = schema.safeParse(body);
  if (!result.success) throw invalidInput(result.error);
  return result.data;
}
