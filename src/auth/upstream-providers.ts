import * as z from 'zod';
import type { IdentityProviderRow } from '../db/schema';
import { seal, unseal } from '../lib/crypto';
import { displayText } from '../lib/display-text';

/** How an upstream is spoken to: an OpenID Provider found by discovery, or a preset with its quirks. */
export const PROVIDER_KINDS = ['oidc', 'google', 'entra', 'apple', 'github'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** Entra's tenant-independent authorities: their discovery names `{tenantid}` in the issuer. */
export const ENTRA_MULTI_TENANT = ['common', 'organizations', 'consumers'] as const;

/** The issuer each preset speaks to (Entra: per tenant), and the scopes it asks by default. */
export const PRESETS: Record<ProviderKind, { issuer: ((tenant: string) => string) | null; scopes: string[] }> = {
  oidc: { issuer: null, scopes: ['openid', 'email', 'profile'] },
  google: { issuer: () => 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'] },
  entra: { issuer: (tenant) => `https://login.microsoftonline.com/${tenant}/v2.0`, scopes: ['openid', 'email', 'profile'] },
  apple: { issuer: () => 'https://appleid.apple.com', scopes: ['openid', 'email', 'name'] },
  github: { issuer: null, scopes: ['read:user', 'user:email'] },
};

/** An upstream as the sign-in code uses it; secrets still sealed (opened only when a request needs them). */
export interface UpstreamProvider {
  id: string;
  kind: ProviderKind;
  displayName: string;
  iconUrl: string | null;
  /** The OpenID Provider's issuer; for multi-tenant Entra, `…/{tenantid}/v2.0`; null for GitHub. */
  issuer: string | null;
  clientId: string;
  clientSecretSealed: string | null;
  scopes: string[];
  /** Domains whose addresses this provider is trusted to have verified (`*`: any). */
  trustedEmailDomains: string[];
  /** Entra: the tenants whose users may sign in (empty: any, for the common or organizations authority). */
  tenants: string[];
  apple: { teamId: string; keyId: string; privateKeySealed: string } | null;
  storeTokens: boolean;
  enabled: boolean;
}

const DOMAIN = /^(\*|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+)$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An https URL (http only on loopback, for local upstreams in development and tests). */
const upstreamUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
    return (u.protocol === 'https:' || (u.protocol === 'http:' && loopback)) && !u.search && !u.hash && !u.username;
  } catch {
    return false;
  }
}, 'must be an https URL (http only for localhost), without query or fragment');

/** Names the pages under /auth/upstream/ use themselves. */
const RESERVED_IDS = ['link'];

/** What an operator gives to add (or replace) a provider; secrets in the clear, sealed by buildProvider. */
export const providerInput = z
  .object({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{1,31}$/, 'must be 2–32 of a-z 0-9 - (it names the callback URL)')
      .refine((id) => !RESERVED_IDS.includes(id), `must not be ${RESERVED_IDS.join(' or ')} (a page's name)`),
    kind: z.enum(PROVIDER_KINDS, { error: `must be one of ${PROVIDER_KINDS.join(', ')}` }),
    displayName: displayText('displayName', 60),
    iconUrl: upstreamUrl.nullable().default(null),
    /** oidc: the issuer to discover; entra: not used (see tenant). */
    issuer: upstreamUrl.optional(),
    clientId: z.string().min(1).max(256),
    clientSecret: z.string().min(1).max(4096).optional(),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/, 'is not a scope'))
      .max(20)
      .optional(),
    trustedEmailDomains: z.array(z.string().toLowerCase().regex(DOMAIN, 'must be a domain name or *')).max(100).default([]),
    /** entra: `common`, `organizations`, `consumers`, or a tenant id. */
    tenant: z.string().optional(),
    /** entra with the common or organizations authority: the tenant ids allowed to sign in (none: any). */
    tenants: z.array(z.string().toLowerCase().regex(GUID, 'must be a tenant id (a GUID)')).max(100).default([]),
    /** apple: the team id, the key id and the key (a PKCS#8 PEM from the developer portal). */
    apple: z
      .object({
        teamId: z.string().regex(/^[A-Z0-9]{10}$/),
        keyId: z.string().regex(/^[A-Z0-9]{10}$/),
        privateKey: z.string().min(100).max(4096),
      })
      .strict()
      .optional(),
    storeTokens: z.boolean().default(false),
    enabled: z.boolean().default(true),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.kind === 'oidc' && !p.issuer) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'is required for an OpenID Provider' });
    if (p.kind !== 'oidc' && p.issuer)
      ctx.addIssue({ code: 'custom', path: ['issuer'], message: `is fixed for ${p.kind} (for Entra, give tenant)` });
    if (p.kind === 'apple' ? !p.apple : !p.clientSecret)
      ctx.addIssue({
        code: 'custom',
        path: [p.kind === 'apple' ? 'apple' : 'clientSecret'],
        message: p.kind === 'apple' ? 'Apple needs teamId, keyId and privateKey' : 'is required',
      });
    if (p.kind !== 'apple' && p.apple) ctx.addIssue({ code: 'custom', path: ['apple'], message: 'is for Apple only' });
    if (p.kind === 'entra') {
      const tenant = p.tenant ?? 'common';
      if (!(ENTRA_MULTI_TENANT as readonly string[]).includes(tenant) && !GUID.test(tenant))
        ctx.addIssue({ code: 'custom', path: ['tenant'], message: 'must be common, organizations, consumers or a tenant id' });
      // `consumers` has one tenant (personal accounts): a list there would not be checked.
      if (p.tenants.length && tenant !== 'common' && tenant !== 'organizations')
        ctx.addIssue({ code: 'custom', path: ['tenants'], message: 'applies to the common or organizations authority only' });
    } else if (p.tenant || p.tenants.length) ctx.addIssue({ code: 'custom', path: ['tenant'], message: 'is for Entra only' });
    // Entra lets its users set the email claim to any address and does not verify it.
    if (p.kind === 'entra' && p.trustedEmailDomains.length)
      ctx.addIssue({ code: 'custom', path: ['trustedEmailDomains'], message: "Entra's email claim is not verified: it cannot be trusted" });
  });

export type ProviderInput = z.input<typeof providerInput>;

const aad = (id: string, what: string) => `provider:${id}:${what}`;

/** The row for a new or replaced provider, its secrets sealed under the key-encryption key. */
export async function buildProvider(input: ProviderInput, kek: string, now: number): Promise<IdentityProviderRow> {
  const p = providerInput.parse(input);
  const preset = PRESETS[p.kind];
  const issuer = p.kind === 'oidc' ? p.issuer!.replace(/\/$/, '') : (preset.issuer?.(p.tenant ?? 'common') ?? null);
  const settings: Record<string, unknown> = {};
  if (p.kind === 'entra') settings.tenants = p.tenants;
  if (p.apple)
    settings.apple = {
      teamId: p.apple.teamId,
      keyId: p.apple.keyId,
      privateKeySealed: await seal(kek, aad(p.id, 'apple_key'), p.apple.privateKey),
    };
  return {
    id: p.id,
    kind: p.kind,
    displayName: p.displayName,
    iconUrl: p.iconUrl,
    issuer,
    clientId: p.clientId,
    clientSecretEncrypted: p.clientSecret ? await seal(kek, aad(p.id, 'client_secret'), p.clientSecret) : null,
    scopes: JSON.stringify(p.scopes ?? preset.scopes),
    trustedEmailDomains: JSON.stringify([...new Set(p.trustedEmailDomains)]),
    settings: JSON.stringify(settings),
    storeTokens: p.storeTokens,
    enabled: p.enabled,
    createdAt: now,
    updatedAt: now,
  };
}

export function providerFromRow(r: IdentityProviderRow): UpstreamProvider {
  const settings = JSON.parse(r.settings) as { tenants?: string[]; apple?: UpstreamProvider['apple'] };
  return {
    id: r.id,
    kind: r.kind,
    displayName: r.displayName,
    iconUrl: r.iconUrl,
    issuer: r.issuer,
    clientId: r.clientId,
    clientSecretSealed: r.clientSecretEncrypted,
    scopes: JSON.parse(r.scopes) as string[],
    trustedEmailDomains: JSON.parse(r.trustedEmailDomains) as string[],
    tenants: settings.tenants ?? [],
    apple: settings.apple ?? null,
    storeTokens: r.storeTokens,
    enabled: r.enabled,
  };
}

/**
 * A stored provider as providerInput takes it, its secrets opened: what a partial change (the
 * admin API's PATCH) starts from, so that the change is checked, and sealed, as a new one is.
 */
export async function providerInputOf(p: UpstreamProvider, kek: string): Promise<ProviderInput> {
  const [clientSecret, appleKey] = await Promise.all([clientSecretOf(p, kek), appleKeyOf(p, kek)]);
  return {
    id: p.id,
    kind: p.kind,
    displayName: p.displayName,
    iconUrl: p.iconUrl,
    ...(p.kind === 'oidc' && p.issuer ? { issuer: p.issuer } : {}),
    clientId: p.clientId,
    ...(clientSecret !== null ? { clientSecret } : {}),
    scopes: p.scopes,
    trustedEmailDomains: p.trustedEmailDomains,
    ...(p.kind === 'entra' ? { tenant: /\/([^/]+)\/v2\.0$/.exec(p.issuer ?? '')?.[1] ?? 'common', tenants: p.tenants } : {}),
    ...(p.apple && appleKey !== null ? { apple: { teamId: p.apple.teamId, keyId: p.apple.keyId, privateKey: appleKey } } : {}),
    storeTokens: p.storeTokens,
    enabled: p.enabled,
  };
}

/** The public description of a provider: never a secret. */
export const describeProvider = (p: UpstreamProvider, callbackUrl: string) => ({
  id: p.id,
  kind: p.kind,
  display_name: p.displayName,
  ...(p.iconUrl ? { icon_url: p.iconUrl } : {}),
  ...(p.issuer ? { issuer: p.issuer } : {}),
  client_id: p.clientId,
  scopes: p.scopes,
  trusted_email_domains: p.trustedEmailDomains,
  ...(p.tenants.length ? { tenants: p.tenants } : {}),
  ...(p.apple ? { apple: { team_id: p.apple.teamId, key_id: p.apple.keyId } } : {}),
  store_tokens: p.storeTokens,
  enabled: p.enabled,
  /** The redirect URI to register at the upstream. */
  callback_url: callbackUrl,
});

/** The client secret, opened. */
export const clientSecretOf = (p: UpstreamProvider, kek: string) =>
  p.clientSecretSealed ? unseal(kek, aad(p.id, 'client_secret'), p.clientSecretSealed) : Promise.resolve(null);

/** Apple's signing key (PKCS#8 PEM), opened. */
export const appleKeyOf = (p: UpstreamProvider, kek: string) =>
  p.apple ? unseal(kek, aad(p.id, 'apple_key'), p.apple.privateKeySealed) : Promise.resolve(null);

/** The sealing of an upstream's tokens kept for a linked identity. */
export const tokensAad = (providerId: string, identityId: string) => aad(providerId, `tokens:${identityId}`);

/** The redirect URI to register at an upstream for a provider (under PUBLIC_URL). */
export const callbackPath = (providerId: string) => `/auth/upstream/${providerId}/callback`;
