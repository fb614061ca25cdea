import { createPasswordHasher, type PasswordHasher } from './auth/argon2';
import { loadArgon2 } from './auth/argon2-worker';
import { COMMON_PASSWORDS_ASSET } from './auth/common-passwords';
import { commonPasswordsFromAssets, type CommonPasswords } from './auth/password-policy';
import { ConfigError, parseConfig, type Config, type Env } from './config';
import { createDb, type D1Queries, type Database } from './db/client';
import { openSession, type RequestSession, type SessionStart } from './db/replication';
import { deriveHmacKey } from './lib/crypto';
import { createHandoffStore, type HandoffStore } from './handoff/handoff-store';
import { createMailer, type Mailer } from './mail/mailer';
import type { Channel } from './lib/router';
import type { ErrorPageOptions } from './ui/error-page';
import type { FormState } from './ui/components';
import { createSessionStore, type SessionStore } from './sessions/session-store';
import { createRateLimitStore, type TakeFromWindow } from './limits/rate-limits';
import { KeyRing } from './tokens/key-ring';
import { assertionCache } from './gateway/assertion';
import { phantomCache } from './tokens/access-token';
import { verifiedSessionCache, type SessionClaims } from './sessions/session-token';
import { keyPolicy } from './tokens/keys';

/** Everything a request needs, built once per isolate and passed down; domain code never sees Hono. */
export interface Deps {
  config: Config;
  /**
   * This request's queries: on Gatehouse's own host, one D1 session per request (db/replication.ts;
   * reads may come from a replica where the request's kind allows it); elsewhere the binding itself.
   */
  db: Database;
  /** The same queries unwrapped, for atomic multi-statement batches. */
  d1: D1Queries;
  /**
   * Reads that must be current whatever the request's kind — who the caller is, what they may do
   * (docs/operations.md, "Read replication"): the primary, or this request's session where that
   * started on the primary.
   */
  primary: Database;
  /** Opens a request's D1 session (app.ts, once per request); absent where a test brought its own database. */
  openSession?: (start: SessionStart) => RequestSession;
  sessions: SessionStore;
  /** Cross-device handoffs, one object per short code. */
  handoffs: HandoffStore;
  mailer: Mailer;
  passwords: PasswordHasher;
  /** The common-password blocklist, read from the ASSETS binding on the first check and kept for the isolate. */
  commonPasswords: CommonPasswords;
  /** HMAC keys derived from AUTH_SECRET, one per purpose. `cursor`: the admin API's page cursors. */
  keys: { session: CryptoKey; csrf: CryptoKey; pending: CryptoKey; cursor: CryptoKey };
  /** Asymmetric signing keys (access and ID tokens, assertions), cached in the isolate. */
  signingKeys: KeyRing;
  /** Outbound HTTP to upstream identity providers (tests stand a fake upstream in). */
  fetch: typeof fetch;
  /** Per-IP limit on credential endpoints; resolves false when the caller is over it. */
  rateLimit: (key: string) => Promise<boolean>;
  /** The RateLimiter objects behind per-client and per-key limits (limits/rate-limits.ts). */
  limits: TakeFromWindow;
  /** Where the retention purge exports audit events before deleting them; absent when not bound (then it only deletes). */
  auditArchive?: R2Bucket;
  /** The webhook deliveries' queue: a message names a delivery to attempt (admin/webhook-delivery.ts). */
  webhooks: Queue<{ deliveryId: string }>;
  now: () => number;
}

export type AppEnv = {
  Bindings: Env;
  Variables: {
    deps: Deps;
    session: SessionClaims | null;
    /** Read it with requestIdOf (lib/request-meta.ts): made when first needed. */
    requestId?: string;
    csrfToken: string;
    /** Where this request's errors are answered when not the matched route's channel (src/error-channels.tsx). */
    channel?: Channel;
    /** A page route's form, re-rendered with the message at its field on a 4xx. */
    errorForm?: (state: FormState) => unknown;
    /** A page route's own title and way on for its error page. */
    errorPage?: ErrorPageOptions;
    /** Where a page comes back to once the person has signed in again or stepped up. */
    returnAfterSignIn?: string;
  };
};

// One hasher per isolate: its WebAssembly memory is reused between requests.
const passwords = createPasswordHasher(loadArgon2);
let cached: { env: Env; deps: Promise<Deps> } | undefined;

/** Builds (once per isolate and env) the deps for this worker; throws ConfigError naming bad vars. */
export function depsFor(env: Env): Promise<Deps> {
  if (cached?.env === env) return cached.deps;
  const deps = buildDeps(env);
  cached = { env, deps };
  deps.catch(() => (cached = undefined));
  return deps;
}

async function buildDeps(env: Env): Promise<Deps> {
  const config = parseConfig(env);
  verifiedSessionCache.resize(config.caches.sessionTokens);
  assertionCache.resize(config.caches.assertions);
  phantomCache.resize(config.caches.opaqueTokens);
  const [session, csrf, pending, cursor] = await Promise.all([
    deriveHmacKey(config.authSecret, 'session-token'),
    deriveHmacKey(config.authSecret, 'csrf'),
    deriveHmacKey(config.authSecret, 'pending-sign-in'),
    deriveHmacKey(config.authSecret, 'admin-cursor'),
  ]);
  const db = createDb(env.DB);
  const limiter = env.CREDENTIAL_RATE_LIMIT;
  if (!limiter) throw new ConfigError(['CREDENTIAL_RATE_LIMIT: missing rate limiting binding (see wrangler.toml)']);
  if (!env.WEBHOOKS) throw new ConfigError(['WEBHOOKS: missing queue binding (see wrangler.toml)']);
  if (!env.ASSETS) throw new ConfigError(['ASSETS: missing static assets binding (see wrangler.toml [assets])']);
  return {
    config,
    db,
    d1: env.DB,
    primary: db,
    openSession: (start) => openSession(env.DB, start),
    sessions: createSessionStore(env.USER_SESSIONS),
    handoffs: createHandoffStore(env.HANDOFFS),
    mailer: createMailer(config, db, (input, init) => fetch(input, init)),
    passwords,
    commonPasswords: commonPasswordsFromAssets(env.ASSETS, COMMON_PASSWORDS_ASSET),
    keys: { session, csrf, pending, cursor },
    signingKeys: new KeyRing(db, config.keyEncryptionKey, keyPolicy(config.tokens)),
    rateLimit: async (key) => (await limiter.limit({ key })).success,
    limits: createRateLimitStore(env.RATE_LIMITER),
    webhooks: env.WEBHOOKS as Queue<{ deliveryId: string }>,
    auditArchive: env.AUDIT_ARCHIVE,
    fetch: (input, init) => fetch(input, init),
    now: () => Date.now(),
  };
}
