import * as z from 'zod';
import { jsonArrayVar } from '../lib/json-var';

/**
 * The gateway's route table (the `ROUTES` var: a JSON array), validated at start-up: a bad route
 * fails loudly with the field named, e.g. `ROUTES.2.origin: …`. Routes are tried in order; the first
 * whose pattern (and method and host, when given) matches wins.
 */
const pattern = z
  .string()
  .regex(/^\/([A-Za-z0-9\-._~%!$&'()+,=:@]+\/?)*(\*)?$/, 'must be a path like /api/* or /health')
  .refine((p) => !p.includes('*') || p.endsWith('/*') || p === '/*', 'a * may only end the pattern, after a /');

const origin = z.string().refine((o) => {
  if (/^service:[A-Z][A-Z0-9_]*$/.test(o)) return true;
  try {
    const u = new URL(o);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.pathname === '/' && !u.search && !u.hash && !u.username;
  } catch {
    return false;
  }
}, 'must be an origin URL (https://api.internal, no path) or service:BINDING');

const policy = z
  .object({
    access: z.enum(['public', 'authenticated']).default('authenticated'),
    rolesAny: z.array(z.string().min(1)).optional(),
    rolesAll: z.array(z.string().min(1)).optional(),
    tiers: z.array(z.string().min(1)).optional(),
    scopes: z.array(z.string().min(1)).optional(),
    acr: z.array(z.string().min(1)).optional(),
    amr: z.array(z.string().min(1)).optional(),
    /** Seconds since sign-in. */
    maxAuthAge: z.number().int().positive().optional(),
    /** Check the session's (or the token's grant's) Durable Object on every request (instant revocation). */
    fresh: z.boolean().default(false),
    /** Identity headers that are opt-in. */
    expose: z.array(z.enum(['email'])).default([]),
    /**
     * RFC 8707 resources this route is: a bearer token is accepted only when its `aud` names one of
     * them. Without it the route takes no bearer tokens at all (browser sessions only).
     */
    audiences: z.array(z.string().min(1).max(512)).min(1).optional(),
    /** Only tokens issued to these clients (`client_id`). */
    clients: z.array(z.string().min(1).max(64)).min(1).optional(),
    /** Accept tokens a client got for itself (client_credentials): no user, `X-Auth-Client-Id` only. */
    machine: z.boolean().default(false),
    /** Take DPoP-bound access tokens only (RFC 9449); a bound token needs its proof on every route anyway. */
    dpop: z.boolean().default(false),
    /**
     * Take Gatehouse API keys (for an API in `audiences`), sent as `Authorization: Bearer gk_…`,
     * as `X-API-Key: gk_…`, or either.
     */
    apiKeys: z
      .array(z.enum(['authorization', 'x-api-key']))
      .min(1)
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (
      p.access === 'public' &&
      (p.rolesAny ||
        p.rolesAll ||
        p.tiers ||
        p.scopes ||
        p.acr ||
        p.amr ||
        p.maxAuthAge ||
        p.fresh ||
        p.audiences ||
        p.clients ||
        p.machine ||
        p.dpop ||
        p.apiKeys)
    )
      ctx.addIssue({ code: 'custom', message: 'a public route cannot have identity requirements' });
    if (p.dpop && p.apiKeys)
      ctx.addIssue({
        code: 'custom',
        path: ['apiKeys'],
        message: 'a route that takes DPoP-bound tokens only cannot take API keys (a key is a bearer credential)',
      });
    if ((p.clients || p.machine || p.dpop || p.apiKeys) && !p.audiences)
      ctx.addIssue({
        code: 'custom',
        path: [p.clients ? 'clients' : p.machine ? 'machine' : p.dpop ? 'dpop' : 'apiKeys'],
        message: "only applies to access tokens and API keys: name the route's audiences too",
      });
  });

export const routeSchema = z
  .object({
    match: pattern,
    methods: z.array(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])).optional(),
    host: z
      .string()
      .regex(/^[a-z0-9.-]+(:\d+)?$/)
      .optional(),
    origin,
    policy: policy.default({ access: 'authenticated', fresh: false, expose: [], machine: false, dpop: false }),
    /**
     * At most `requests` per `period` seconds for each caller — an API key, the client an access
     * token was issued to, or a signed-in user — past which the answer is 429 with Retry-After.
     * Routes with the same `bucket` share one count (default: each route its own).
     */
    rateLimit: z
      .object({
        requests: z.number().int().min(1).max(1_000_000),
        period: z.number().int().min(1).max(86_400),
        bucket: z
          .string()
          .regex(/^[A-Za-z0-9._:-]{1,64}$/)
          .optional(),
      })
      .strict()
      .optional(),
    /** Milliseconds before an origin that has not answered gets a 504. */
    timeoutMs: z.number().int().min(100).max(300_000).default(30_000),
    /**
     * Request headers a client may never send this origin (e.g. one its own infrastructure sets),
     * removed in any case and `_`/`.` spelling, like the identity headers.
     */
    stripHeaders: z
      .array(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name'))
      .max(50)
      .default([]),
  })
  .strict()
  .refine((r) => !(r.rateLimit && r.policy.access === 'public'), {
    path: ['rateLimit'],
    message: 'counts callers: a public route has none (put a limit in front of it at the edge instead)',
  });

export type Route = z.output<typeof routeSchema>;
export type RoutePolicy = Route['policy'];

export const routesSchema = jsonArrayVar('routes').pipe(
  z
    .array(routeSchema)
    .max(500)
    .superRefine((routes, ctx) => {
      // Routes that share a bucket share one count: one limit for it, or the count means nothing.
      const limits = new Map<string, string>();
      routes.forEach((r, i) => {
        if (!r.rateLimit?.bucket) return;
        const limit = `${r.rateLimit.requests}/${r.rateLimit.period}`;
        const seen = limits.get(r.rateLimit.bucket);
        if (seen === undefined) limits.set(r.rateLimit.bucket, limit);
        else if (seen !== limit)
          ctx.addIssue({
            code: 'custom',
            path: [i, 'rateLimit', 'bucket'],
            message: `another route counts "${r.rateLimit.bucket}" at ${seen}: routes sharing a bucket need the same requests and period`,
          });
      });
    }),
);
