import * as z from 'zod';
import { routesSchema, type Route } from './gateway/routes-config';
import { purposesSchema, type Purpose } from './identity/consent-purposes';
import { attributesSchema, type ProfileAttribute } from './identity/profile-attributes';

/**
 * Bindings and vars the worker receives (docs/configuration.md). The bindings and the [vars] of
 * wrangler.toml come from `npm run types` (WranglerEnv, worker-configuration.d.ts); the secrets and
 * the vars that have a default here are the schema's other keys, each a string when it is set.
 */
export interface Env extends WranglerEnv, Unlisted {
  /**
   * Optional R2 bucket: audit events past retention are exported to it before they are deleted
   * (docs/operations.md, "Retention"). Commented out in wrangler.toml, so not in WranglerEnv.
   */
  AUDIT_ARCHIVE?: R2Bucket;
}

/** What the schema reads that wrangler.toml does not list: secrets, and vars left to their default. */
type Unlisted = { [K in Exclude<keyof z.input<typeof schema>, keyof WranglerEnv>]?: string };

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const count = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);
const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true');

const schema = z
  .object({
    ENVIRONMENT: z.enum(['production', 'development', 'test']).default('production'),
    PUBLIC_URL: z.url().transform((u) => new URL(u)),
    // 32 random bytes, base64url. `npm run dev` writes one to .dev.vars; production uses `wrangler secret put`.
    AUTH_SECRET: z.string().regex(/^[A-Za-z0-9_-]{43,}$/, 'must be at least 32 random bytes, base64url-encoded'),
    // 32 random bytes, base64url: encrypts the private signing keys stored in D1 (AES-256-GCM).
    KEY_ENCRYPTION_KEY: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be exactly 32 random bytes, base64url-encoded'),
    MAIL_PROVIDER: z.enum(['dev', 'http']).default('http'),
    MAIL_FROM: z.string().min(3).default('Gatehouse <no-reply@localhost>'),
    MAIL_HTTP_URL: z.url().optional(),
    MAIL_HTTP_TOKEN: z.string().min(1).optional(),
    // NIST SP 800-63B: at least 8; never lower.
    PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).max(64).default(8),
    REQUIRE_VERIFIED_EMAIL: flag(true),
    SESSION_TOKEN_TTL: seconds(300).pipe(z.number().max(3600)),
    SESSION_IDLE_TTL: seconds(7 * 86400),
    SESSION_ABSOLUTE_TTL: seconds(30 * 86400),
    ACCESS_TOKEN_TTL: seconds(600).pipe(z.number().max(86400)),
    ID_TOKEN_TTL: seconds(3600).pipe(z.number().max(86400)),
    REFRESH_TOKEN_IDLE_TTL: seconds(14 * 86400),
    REFRESH_TOKEN_ABSOLUTE_TTL: seconds(90 * 86400),
    ROUTES: routesSchema,
    IDENTITY_HEADER_PREFIX: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]*-$/, 'must be a header-name prefix ending in -, like X-Auth-')
      .default('X-Auth-'),
    KEY_ROTATION_DAYS: z.coerce.number().int().min(1).max(365).default(30),
    // Passkeys: the RP ID is a registrable domain suffix of every allowed origin (default: PUBLIC_URL's host).
    WEBAUTHN_RP_ID: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'must be a host name like example.com')
      .optional(),
    WEBAUTHN_RP_NAME: z.string().min(1).max(64).default('Gatehouse'),
    // Comma-separated origins passkey ceremonies may run on (default: PUBLIC_URL's origin).
    WEBAUTHN_ORIGINS: z
      .string()
      .optional()
      .transform((v, ctx) => {
        if (v === undefined) return undefined;
        const origins = v
          .split(',')
          .map((o) => o.trim())
          .filter(Boolean);
        for (const o of origins) {
          let ok = false;
          try {
            ok = new URL(o).origin === o;
          } catch {}
          if (!ok) {
            ctx.addIssue({ code: 'custom', message: `${o} is not an origin like https://auth.example.com` });
            return z.NEVER;
          }
        }
        return origins;
      }),
    // adaptive: the second factor is asked on a new device or network; always: at every sign-in.
    MFA_POLICY: z.enum(['adaptive', 'always']).default('adaptive'),
    NEW_SIGN_IN_EMAIL: flag(true),
    // Must exceed how long anyone caches the JWKS (its max-age is 300 s) and the isolate key cache.
    KEY_PUBLISH_LEAD: seconds(3600).pipe(z.number().min(600)),
    // RFC 9449 §8: every DPoP proof must carry a nonce this server issued (DPoP-Nonce).
    DPOP_REQUIRE_NONCE: flag(false),
    // RFC 7591 §3: the initial access token dynamic registration asks for; unset, registration is off.
    REGISTRATION_TOKEN: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43,}$/, 'must be at least 32 random bytes, base64url-encoded')
      .optional(),
    // Confidential clients registered dynamically may send `nonce` instead of PKCE (RFC 9700 §2.1.1; docs/oidc.md says the risk).
    REGISTRATION_PKCE_OPTIONAL: flag(false),
    // Webhooks (docs/webhooks.md): attempts per delivery (under the queue's max_retries of 30), the
    // first retry's delay in seconds (doubling after, each at most 12 h: a queue's longest delay), and
    // how many deliveries in a row may fail before the endpoint is turned off.
    WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(10),
    WEBHOOK_BACKOFF_BASE: seconds(60).pipe(z.number().max(3600)),
    WEBHOOK_DISABLE_AFTER: z.coerce.number().int().min(1).max(1000).default(10),
    // Retention (docs/operations.md): what the scheduled purge keeps, and how much it deletes per run.
    RETENTION_AUDIT_DAYS: count(400, 0, 36_500),
    RETENTION_SIGN_IN_HISTORY_DAYS: count(180, 1, 3650),
    RETENTION_SIGN_IN_HISTORY_PER_KIND: count(20, 1, 1000),
    RETENTION_BATCH_SIZE: count(500, 1, 10_000),
    RETENTION_MAX_ROWS_PER_RUN: count(50_000, 1, 10_000_000),
    // Isolate caches (docs/operations.md, "Caches"): entries each, least recently used out first.
    SESSION_CACHE_SIZE: count(50_000, 100, 1_000_000),
    ASSERTION_CACHE_SIZE: count(10_000, 100, 1_000_000),
    OPAQUE_TOKEN_CACHE_SIZE: count(10_000, 100, 1_000_000),
    // What people are asked to agree to (terms, privacy policy, marketing mail…): docs/privacy.md.
    CONSENT_PURPOSES: purposesSchema,
    // Self-service deletion waits this many days, during which a sign-in cancels it; 0: at once (docs/privacy.md).
    ACCOUNT_DELETION_GRACE_DAYS: count(0, 0, 90),
    // Profile attributes people give, some needed before an app gets a code (docs/privacy.md, "Profile").
    PROFILE_ATTRIBUTES: attributesSchema,
  })
  .superRefine((c, ctx) => {
    if (c.ENVIRONMENT === 'production') {
      if (c.MAIL_PROVIDER === 'dev')
        ctx.addIssue({ code: 'custom', path: ['MAIL_PROVIDER'], message: 'the dev mailbox is never enabled in production' });
      if (c.PUBLIC_URL.protocol !== 'https:')
        ctx.addIssue({ code: 'custom', path: ['PUBLIC_URL'], message: 'must be https in production' });
    }
    if (c.MAIL_PROVIDER === 'http' && (!c.MAIL_HTTP_URL || !c.MAIL_HTTP_TOKEN))
      ctx.addIssue({
        code: 'custom',
        path: [c.MAIL_HTTP_URL ? 'MAIL_HTTP_TOKEN' : 'MAIL_HTTP_URL'],
        message: 'required when MAIL_PROVIDER is "http"',
      });
    const publicUrl = c.PUBLIC_URL instanceof URL ? c.PUBLIC_URL : null;
    const rpId = c.WEBAUTHN_RP_ID ?? publicUrl?.hostname;
    for (const o of rpId ? (c.WEBAUTHN_ORIGINS ?? (publicUrl ? [publicUrl.origin] : [])) : []) {
      const host = new URL(o).hostname;
      if (host !== rpId && !host.endsWith(`.${rpId}`))
        ctx.addIssue({ code: 'custom', path: ['WEBAUTHN_RP_ID'], message: `${rpId} is not ${host} or a parent domain of it` });
    }
    if (c.SESSION_IDLE_TTL > c.SESSION_ABSOLUTE_TTL)
      ctx.addIssue({ code: 'custom', path: ['SESSION_IDLE_TTL'], message: 'must not exceed SESSION_ABSOLUTE_TTL' });
  });

export interface Config {
  environment: 'production' | 'development' | 'test';
  /** Origin Gatehouse is served from; issuer and links derive from it, never from Host. */
  publicUrl: URL;
  authSecret: string;
  keyEncryptionKey: string;
  mail: { provider: 'dev'; from: string } | { provider: 'http'; from: string; url: string; token: string };
  passwordMinLength: number;
  requireVerifiedEmail: boolean;
  /** Lifetimes in seconds. */
  session: { tokenTtl: number; idleTtl: number; absoluteTtl: number };
  /**
   * The gateway: routes in the order they are tried, the identity header prefix, the app hosts
   * routes name (each gets its own session through the host handshake), and whether any route can
   * match Gatehouse's own host — then origins share it, and sensitive actions ask for a proof.
   */
  gateway: { routes: Route[]; prefix: string; appHosts: string[]; sharedHost: boolean };
  /** Passkeys: relying party and the origins ceremonies may come from. */
  webauthn: { rpId: string; rpName: string; origins: string[] };
  /** When a sign-in needs the second factor (for users who have one). */
  mfa: { policy: 'adaptive' | 'always'; newSignInEmail: boolean };
  /** Signed-token lifetimes and key rotation, in seconds (rotation in days). */
  tokens: {
    accessTtl: number;
    idTtl: number;
    refreshIdleTtl: number;
    refreshAbsoluteTtl: number;
    rotationDays: number;
    publishLead: number;
  };
  /** DPoP (RFC 9449): whether proofs must carry a server nonce. */
  dpop: { requireNonce: boolean };
  /**
   * Dynamic client registration (RFC 7591/7592): the initial access token, or null (off); and
   * whether confidential clients it registers may use `nonce` instead of PKCE.
   */
  registration: { initialToken: string | null; pkceOptional: boolean };
  /** Webhook deliveries: attempts each, the first retry's delay (seconds), failed deliveries in a row before an endpoint is turned off. */
  webhooks: { maxAttempts: number; backoffBase: number; disableAfter: number };
  /**
   * Retention: audit events kept for `auditDays` (0: forever); sign-in history markers for
   * `signInHistoryDays` and at most `signInHistoryPerKind` devices, countries and networks each per
   * user; the scheduled purge deletes `batchSize` rows at a time, `maxRowsPerRun` per table per run.
   */
  retention: { auditDays: number; signInHistoryDays: number; signInHistoryPerKind: number; batchSize: number; maxRowsPerRun: number };
  /** Entries each isolate cache holds: verified session tokens, signed assertions, opaque tokens' JWTs. */
  caches: { sessionTokens: number; assertions: number; opaqueTokens: number };
  /** Consent purposes, in the order they are shown (docs/privacy.md). */
  purposes: Purpose[];
  /** Days a self-service deletion waits (a sign-in meanwhile cancels it); 0 deletes at once. */
  deletionGraceDays: number;
  /** Operator-declared profile attributes, in the order they are shown. */
  attributes: ProfileAttribute[];
}

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration: ${issues.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses env into a Config; throws ConfigError naming each bad or missing var (never its value). */
export function parseConfig(env: Partial<Env>): Config {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => {
        const name = i.path.join('.') || 'env';
        // Missing means the variable itself is unset (a bad field inside a JSON var is no missing var).
        const absent = i.code !== 'custom' && env[String(i.path[0] ?? name) as keyof Env] === undefined;
        return `${name}: ${absent ? 'missing' : i.message}`;
      }),
    );
  }
  const c = result.data;
  return {
    environment: c.ENVIRONMENT,
    publicUrl: c.PUBLIC_URL,
    authSecret: c.AUTH_SECRET,
    keyEncryptionKey: c.KEY_ENCRYPTION_KEY,
    mail:
      c.MAIL_PROVIDER === 'dev'
        ? { provider: 'dev', from: c.MAIL_FROM }
        : { provider: 'http', from: c.MAIL_FROM, url: c.MAIL_HTTP_URL!, token: c.MAIL_HTTP_TOKEN! },
    passwordMinLength: c.PASSWORD_MIN_LENGTH,
    requireVerifiedEmail: c.REQUIRE_VERIFIED_EMAIL,
    session: { tokenTtl: c.SESSION_TOKEN_TTL, idleTtl: c.SESSION_IDLE_TTL, absoluteTtl: c.SESSION_ABSOLUTE_TTL },
    gateway: {
      routes: c.ROUTES,
      prefix: c.IDENTITY_HEADER_PREFIX,
      appHosts: [...new Set(c.ROUTES.map((r) => r.host).filter((h): h is string => h !== undefined && h !== c.PUBLIC_URL.host))],
      sharedHost: c.ROUTES.some((r) => r.host === undefined || r.host === c.PUBLIC_URL.host),
    },
    webauthn: {
      rpId: c.WEBAUTHN_RP_ID ?? c.PUBLIC_URL.hostname,
      rpName: c.WEBAUTHN_RP_NAME,
      origins: c.WEBAUTHN_ORIGINS ?? [c.PUBLIC_URL.origin],
    },
    mfa: { policy: c.MFA_POLICY, newSignInEmail: c.NEW_SIGN_IN_EMAIL },
    tokens: {
      accessTtl: c.ACCESS_TOKEN_TTL,
      idTtl: c.ID_TOKEN_TTL,
      refreshIdleTtl: c.REFRESH_TOKEN_IDLE_TTL,
      refreshAbsoluteTtl: c.REFRESH_TOKEN_ABSOLUTE_TTL,
      rotationDays: c.KEY_ROTATION_DAYS,
      publishLead: c.KEY_PUBLISH_LEAD,
    },
    dpop: { requireNonce: c.DPOP_REQUIRE_NONCE },
    registration: { initialToken: c.REGISTRATION_TOKEN ?? null, pkceOptional: c.REGISTRATION_PKCE_OPTIONAL },
    webhooks: { maxAttempts: c.WEBHOOK_MAX_ATTEMPTS, backoffBase: c.WEBHOOK_BACKOFF_BASE, disableAfter: c.WEBHOOK_DISABLE_AFTER },
    retention: {
      auditDays: c.RETENTION_AUDIT_DAYS,
      signInHistoryDays: c.RETENTION_SIGN_IN_HISTORY_DAYS,
      signInHistoryPerKind: c.RETENTION_SIGN_IN_HISTORY_PER_KIND,
      batchSize: c.RETENTION_BATCH_SIZE,
      maxRowsPerRun: c.RETENTION_MAX_ROWS_PER_RUN,
    },
    caches: { sessionTokens: c.SESSION_CACHE_SIZE, assertions: c.ASSERTION_CACHE_SIZE, opaqueTokens: c.OPAQUE_TOKEN_CACHE_SIZE },
    purposes: c.CONSENT_PURPOSES,
    deletionGraceDays: c.ACCOUNT_DELETION_GRACE_DAYS,
    attributes: c.PROFILE_ATTRIBUTES,
  };
}
