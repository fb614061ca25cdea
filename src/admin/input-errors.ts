import { ZodError } from 'zod';
import { GatehouseError } from '../lib/errors';

/**
 * Bad input as the admin API answers it: one RFC 9457 problem naming every failing field (`errors`)
 * — never the values sent, so a secret typed into the wrong field is not echoed back. A domain
 * check that quotes the value for an operator's console gives the same text without it as
 * `params.problem` (redirect URIs, API identifiers, scopes); that text is the one used here.
 */
export function invalidFields(
  where: 'path' | 'query' | 'body',
  error: ZodError,
  names: Readonly<Record<string, string>> = {},
): GatehouseError {
  const errors = error.issues.map((i) => {
    const path = i.path.map((p) => names[String(p)] ?? String(p));
    const problem = (i as { params?: { problem?: unknown } }).params?.problem;
    return {
      field: [where === 'body' ? '' : where, ...path].filter(Boolean).join('.') || where,
      message: i.code === 'invalid_type' && i.input === undefined ? 'is required' : typeof problem === 'string' ? problem : i.message,
    };
  });
  const first = errors[0]!;
  return new GatehouseError('invalid_request', `${first.field}: ${first.message}`, { field: first.field, errors });
}

/**
 * Runs a domain builder (buildClient, buildResource, …) on what the body asked for: its ZodError
 * becomes the admin API's 400, its fields named as the API names them (`names`: the builder's
 * field names → the API's, e.g. redirectUris → redirect_uris, at any depth).
 */
export async function checkedInput<T>(names: Readonly<Record<string, string>>, run: () => T | Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ZodError) throw invalidFields('body', e, names);
    throw e;
  }
}

/**
 * A body as a domain builder takes it: each field named as the builder names it (`names`: the
 * builder's → the API's, the map checkedInput takes), at any depth; fields not sent left out.
 */
export function builderInput(body: object, names: Readonly<Record<string, string>>): Record<string, unknown> {
  const inverse = new Map(Object.entries(names).map(([builder, api]) => [api, builder]));
  const rename = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(rename)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([, x]) => x !== undefined)
              .map(([k, x]) => [inverse.get(k) ?? k, rename(x)]),
          )
        : v;
  return rename(body) as Record<string, unknown>;
}
