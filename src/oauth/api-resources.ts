import * as z from 'zod';
import type { ApiResourceRow } from '../db/schema';
import { displayText } from '../lib/display-text';
import type { RateLimit } from '../limits/rate-limit-rule';
import { resourceIdentifier } from './client-registration';
import { KNOWN_SCOPES } from './grants-and-scopes';

/** A scope an API defines, with what the consent page says of it. */
export interface ResourceScope {
  name: string;
  description: string | null;
}

/** An API Gatehouse issues access tokens for (a resource server, RFC 8707). */
export interface ApiResource {
  /** The tokens' `aud`. */
  identifier: string;
  name: string;
  scopes: ResourceScope[];
  /** Seconds; null: the client's lifetime, else the server default. */
  accessTokenTtl: number | null;
  accessTokenFormat: 'jwt' | 'opaque';
  /** Token requests per client at the token endpoint; null: unlimited. */
  rateLimit: RateLimit | null;
}

/**
 * A scope of an API: RFC 6749 §3.3 scope-token characters, narrowed to what reads well in a header
 * and a consent page (`orders:read`, `billing.write`). The OpenID scopes are Gatehouse's own.
 */
export const resourceScopeName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/, 'must be 1–100 of A-Z a-z 0-9 . _ : / - (e.g. orders:read)')
  .refine((s) => !(KNOWN_SCOPES as readonly string[]).includes(s), 'is an OpenID Connect scope, not an API scope');

export const rateLimitInput = z
  .object({
    requests: z.number().int().min(1).max(1_000_000),
    period: z.number().int().min(1).max(86_400),
  })
  .strict();

/** What an operator gives to register (or replace) an API. */
export const resourceInput = z
  .object({
    identifier: resourceIdentifier,
    name: displayText('name', 100),
    scopes: z
      .array(z.object({ name: resourceScopeName, description: displayText('description', 200).nullable().default(null) }).strict())
      .max(100)
      .default([])
      .refine((s) => new Set(s.map((x) => x.name)).size === s.length, 'names a scope twice'),
    accessTokenTtl: z.number().int().min(30).max(86_400).nullable().default(null),
    accessTokenFormat: z.enum(['jwt', 'opaque']).default('jwt'),
    rateLimit: rateLimitInput.nullable().default(null),
  })
  .strict();

export type ResourceInput = z.input<typeof resourceInput>;

/** The row for a new or replaced API (throws ZodError naming the field). */
export function buildResource(input: ResourceInput, now: number): ApiResourceRow {
  const r = resourceInput.parse(input);
  return {
    identifier: r.identifier,
    name: r.name,
    scopes: JSON.stringify(r.scopes),
    accessTokenTtl: r.accessTokenTtl,
    accessTokenFormat: r.accessTokenFormat,
    rateLimit: r.rateLimit ? JSON.stringify(r.rateLimit) : null,
    createdAt: now,
    updatedAt: now,
  };
}

export function resourceFromRow(r: ApiResourceRow): ApiResource {
  return {
    identifier: r.identifier,
    name: r.name,
    scopes: JSON.parse(r.scopes) as ResourceScope[],
    accessTokenTtl: r.accessTokenTtl,
    accessTokenFormat: r.accessTokenFormat,
    rateLimit: r.rateLimit ? (JSON.parse(r.rateLimit) as RateLimit) : null,
  };
}

/** The public description of an API (CLI output, later the admin API). */
export const describeResource = (r: ApiResource) => ({
  identifier: r.identifier,
  name: r.name,
  scopes: r.scopes,
  access_token_format: r.accessTokenFormat,
  ...(r.accessTokenTtl ? { access_token_ttl: r.accessTokenTtl } : {}),
  ...(r.rateLimit ? { rate_limit: r.rateLimit } : {}),
});

/**
 * The scopes of `resource` a client may have in its tokens: those it was granted for that API
 * that the API still defines.
 */
export function scopesAt(client: { resourceScopes: Readonly<Record<string, readonly string[]>> }, resource: ApiResource): string[] {
  const granted = client.resourceScopes[resource.identifier] ?? [];
  return resource.scopes.map((s) => s.name).filter((s) => granted.includes(s));
}

/**
 * What is wrong with granting a client these APIs and scopes, one message per problem: an API that
 * is not registered, or a scope it does not define. Empty when the grants may be stored.
 */
export function resourceGrantProblems(
  grants: readonly { resource: string; scopes: readonly string[] }[],
  registered: (identifier: string) => ApiResource | undefined,
): string[] {
  return grants.flatMap((g) => {
    const resource = registered(g.resource);
    if (!resource) return [`${g.resource} is not a registered API (npm run resources -- create)`];
    const defined = resource.scopes.map((s) => s.name);
    return g.scopes.filter((s) => !defined.includes(s)).map((s) => `${s} is not a scope of ${g.resource}`);
  });
}
