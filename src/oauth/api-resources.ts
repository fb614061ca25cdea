import * as z from 'zod';
import type { ApiResourceRow } from '../db/schema';
import { displayText } from '../lib/display-text';
import type { RateLimit } from '../limits/rate-limit-rule';
import { resourceIdentifier } from './client-registration';
import { KNOWN_SCOPES } from './grants-and-scopes';

/**
 * The admin API's own resource (migrations/0013 registers it with its scopes): Gatehouse's to
 * define, never changed through the admin API, and its scopes granted only by whoever holds them.
 */
export const ADMIN_RESOURCE = 'urn:gatehouse:admin';

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

/** One problem with a client's grants: which grant (and which of its scopes), with and without the values. */
export interface GrantIssue {
  grant: number;
  scope?: number;
  /** For an operator's console: names the API or scope. */
  message: string;
  /** The same without the values, for answers that must not echo input. */
  problem: string;
}

/**
 * What is wrong with granting a client these APIs and scopes, one issue per problem: an API that
 * is not registered, or a scope it does not define. Empty when the grants may be stored.
 */
export function resourceGrantIssues(
  grants: readonly { resource: string; scopes: readonly string[] }[],
  registered: (identifier: string) => ApiResource | undefined,
): GrantIssue[] {
  return grants.flatMap((g, grant) => {
    const resource = registered(g.resource);
    if (!resource) return [{ grant, message: `${g.resource} is not a registered API`, problem: 'is not a registered API' }];
    const defined = resource.scopes.map((s) => s.name);
    return g.scopes.flatMap((s, scope) =>
      defined.includes(s) ? [] : [{ grant, scope, message: `${s} is not a scope of ${g.resource}`, problem: 'is not a scope of this API' }],
    );
  });
}

/** resourceGrantIssues, as one message each (the CLIs). */
export const resourceGrantProblems = (...a: Parameters<typeof resourceGrantIssues>) => resourceGrantIssues(...a).map((i) => i.message);

/**
 * The grants an API's new scopes leave changed: a scope the API no longer defines leaves every
 * client's grant with it. Returns only the grants that lose a scope, with what they keep.
 */
export function prunedGrants<G extends { scopes: readonly string[] }>(scopes: readonly ResourceScope[], grants: readonly G[]): G[] {
  const kept = new Set(scopes.map((s) => s.name));
  return grants.filter((g) => g.scopes.some((s) => !kept.has(s))).map((g) => ({ ...g, scopes: g.scopes.filter((s) => kept.has(s)) }));
}
