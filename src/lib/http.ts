import type { Context } from 'hono';
import type { SignInContext } from '../auth/risk';
import { COOKIES, readCookie, writeCookie } from './cookies';
import { randomToken } from './crypto';
import type { z } from 'zod';
import { GatehouseError, problemBody } from './errors';
import { describeDevice, type RequestMeta } from './request-meta';

/** The device cookie lives a year. */
const DEVICE_COOKIE_MAX_AGE = 365 * 86400;

/** Largest request body any Gatehouse endpoint accepts. */
export const MAX_BODY_BYTES = 16 * 1024;


/**
 * Where a sign-in comes from: meta, the device cookie (minted and set here when the browser has
 * none) and the country and ASN Cloudflare attaches to the request.
 */
export function signInContext(c: Context): SignInContext {
  let deviceId = readCookie(c, COOKIES.device);
  if (!deviceId || !/^[A-Za-z0-9_-]{43}$/.test(deviceId)) {
    deviceId = randomToken(32);
    writeCookie(c, COOKIES.device, deviceId, DEVICE_COOKIE_MAX_AGE);
  }
  const cf = (c.req.raw as { cf?: { country?: unknown; asn?: unknown } }).cf;
  return {
    meta: requestMeta(c),
    deviceId,
    country: typeof cf?.country === 'string' && /^[A-Z]{2}$/.test(cf.country) ? cf.country : null,
    asn: typeof cf?.asn === 'number' && Number.isInteger(cf.asn) ? cf.asn : null,
  };
}

export function requestMeta(c: Context): RequestMeta {
  return {
    ip: c.req.header('cf-connecting-ip') ?? null,
    userAgent: c.req.header('user-agent') ?? null,
  };
}

/** Turns the first zod issue into a 400 that names the field. */
export function invalidInput(error: z.ZodError): GatehouseError {
  const issue = error.issues[0]!;
  const field = issue.path.map(String).join('.') || undefined;
  const message = issue.code === 'invalid_type' && issue.input === undefined ? `${field ?? 'body'} is required` : issue.message;
  return new GatehouseError('invalid_request', field && !message.includes(field) ? `${field}: ${message}` : message, {
    ...(field ? { field } : {}),
  });
}

async function readBody(c: Context, kind: 'json' | 'form'): Promise<unknown> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (kind === 'json') {
    // Requiring application/json also keeps cross-site forms out: browsers preflight it.
    if (type !== 'application/json')
      throw new GatehouseError('unsupported_media_type', 'Send the request body as application/json.');
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

/** RFC 9457 problem+json, with Retry-After where the error carries one. */
export function problemResponse(c: Context, e: GatehouseError): Response {
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json',
    'cache-control': 'no-store',
  };
  if (e.extra.retryAfter) headers['retry-after'] = String(e.extra.retryAfter);
  if (e.status === 401) headers['www-authenticate'] = 'Cookie realm="gatehouse"';
  // Through the context, so headers a route set before failing (a cookie change, Allow) go with it.
  return c.body(JSON.stringify(problemBody(e, c.get('requestId'))), e.status as 400, headers);
}

/**
 * Runs `task` after the response is sent (waitUntil) and logs its failure without details; awaits
 * it where the runtime offers no execution context.
 */
export function deferTo(c: Context, event: string): (task: Promise<void>) => void {
  return (task) => {
    const logged = task.catch((e: unknown) => {
      console.error(JSON.stringify({ event, requestId: c.get('requestId'), error: e instanceof Error ? e.name : 'unknown' }));
    });
    try {
      c.executionCtx.waitUntil(logged);
    } catch {
      // app.fetch(request, env) without a context (tests): the promise still runs to completion.
    }
  };
}

/** Who is asking, for a person to recognise: browser and system, IP, approximate place (request.cf). */
export function requesterOf(c: Context): { device: string; ip: string | null; place: string | null } {
  const meta = requestMeta(c);
  const cf = (c.req.raw as { cf?: { city?: unknown; country?: unknown } }).cf;
  const place = [cf?.city, cf?.country].filter((v): v is string => typeof v === 'string' && v.length > 0 && v.length < 64).join(', ');
  return { device: meta.userAgent ? describeDevice(meta.userAgent) : 'an unknown browser', ip: meta.ip, place: place || null };
}
