import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

// All times are Unix epoch milliseconds.

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  /** Normalised (trimmed, NFC, lower-cased); unique. */
  email: text('email').notNull().unique(),
  emailVerifiedAt: integer('email_verified_at'),
  /** PHC string (argon2id); null for accounts without a password. */
  passwordHash: text('password_hash'),
  tier: text('tier').notNull().default('free'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

export const userRoles = sqliteTable(
  'user_roles',
  {
    userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    role: text('role').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.role] })],
);

/**
 * Single-use tokens mailed to an address: email verification and password reset. Only the hash is kept.
 * A sign-up is pending until its link is opened: its token carries the chosen password hash and no
 * user id, and the account is created at verification. An attacker who signs up first with someone
 * else's address therefore owns nothing (no pre-hijacked account waiting for its owner to verify).
 */
export const emailTokens = sqliteTable(
  'email_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    purpose: text('purpose', { enum: ['verify_email', 'reset_password'] }).notNull(),
    userId: text('user_id').references(() => users.id, { onDelete: 'cascade' }),
    email: text('email').notNull(),
    /** Pending sign-up only: the password the account will be created with. */
    passwordHash: text('password_hash'),
    expiresAt: integer('expires_at').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('email_tokens_user_idx').on(t.userId, t.purpose), index('email_tokens_email_idx').on(t.email, t.purpose)],
);

/**
 * Failed credential attempts per account key (a hash of the normalised email), known or not:
 * an unknown email is throttled exactly like a known one, so the throttle reveals nothing.
 */
export const credentialFailures = sqliteTable('credential_failures', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  lockedUntil: integer('locked_until').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

export const auditEvents = sqliteTable(
  'audit_events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    type: text('type').notNull(),
    userId: text('user_id'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    /** JSON object with event-specific fields; never a secret. */
    detail: text('detail'),
    createdAt: integer('created_at').notNull().default(sql`(unixepoch() * 1000)`),
  },
  (t) => [index('audit_events_user_idx').on(t.userId, t.createdAt), index('audit_events_type_idx').on(t.type, t.createdAt)],
);

/** The dev mailbox (ENVIRONMENT development/test only): mail kept instead of sent. */
export const devMail = sqliteTable('dev_mail', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  to: text('to').notNull(),
  subject: text('subject').notNull(),
  text: text('text').notNull(),
  html: text('html'),
  createdAt: integer('created_at').notNull(),
});

/**
 * Asymmetric signing keys. `generation` numbers the keys of one algorithm; the unique index makes
 * concurrent creators agree on one key per generation (the loser's insert is ignored and it reads
 * the winner's). A key is published from `created_at` and signs from `signs_from`; it stays
 * published until its successor has signed for longer than any token lives.
 */
export const signingKeys = sqliteTable(
  'signing_keys',
  {
    kid: text('kid').primaryKey(),
    alg: text('alg', { enum: ['ES256', 'RS256'] }).notNull(),
    generation: integer('generation').notNull(),
    publicJwk: text('public_jwk').notNull(),
    /** AES-256-GCM under KEY_ENCRYPTION_KEY, the kid as associated data: base64url(iv || ciphertext). */
    privateJwkEncrypted: text('private_jwk_encrypted').notNull(),
    createdAt: integer('created_at').notNull(),
    signsFrom: integer('signs_from').notNull(),
  },
  (t) => [uniqueIndex('signing_keys_generation_idx').on(t.alg, t.generation)],
);

/** OAuth 2.0 / OIDC clients. JSON columns hold arrays of strings. */
export const oauthClients = sqliteTable('oauth_clients', {
  clientId: text('client_id').primaryKey(),
  name: text('name').notNull(),
  /** SHA-256 of the client secret (256 random bits, so a fast hash suffices); null for public clients. */
  secretHash: text('secret_hash'),
  tokenEndpointAuthMethod: text('token_endpoint_auth_method', {
    enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  }).notNull(),
  redirectUris: text('redirect_uris').notNull(),
  postLogoutRedirectUris: text('post_logout_redirect_uris').notNull().default('[]'),
  grantTypes: text('grant_types').notNull(),
  scopes: text('scopes').notNull(),
  /** First-party clients skip the consent page. */
  firstParty: integer('first_party', { mode: 'boolean' }).notNull().default(false),
  accessTokenFormat: text('access_token_format', { enum: ['jwt', 'opaque'] }).notNull().default('jwt'),
  idTokenSignedResponseAlg: text('id_token_signed_response_alg', { enum: ['RS256', 'ES256'] }).notNull().default('RS256'),
  /** For private_key_jwt: the client's public keys (a JWKS document). */
  jwks: text('jwks'),
  /** Seconds; null means the server default. */
  accessTokenTtl: integer('access_token_ttl'),
  refreshTokenIdleTtl: integer('refresh_token_idle_ttl'),
  refreshTokenAbsoluteTtl: integer('refresh_token_absolute_ttl'),
  /** Branding for the hosted pages (later): logo and colours. */
  logoUri: text('logo_uri'),
  brandColor: text('brand_color'),
  createdAt: integer('created_at').notNull(),
});

/** Remembered consent: which scopes a user granted a client. */
export const consents = sqliteTable(
  'consents',
  {
    userId: text('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    clientId: text('client_id').notNull().references(() => oauthClients.clientId, { onDelete: 'cascade' }),
    scopes: text('scopes').notNull(),
    grantedAt: integer('granted_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.clientId] })],
);

/** `jti`s of private_key_jwt client assertions already used (RFC 7523 §3: single use), until they expire. */
export const usedAssertions = sqliteTable('used_client_assertions', {
  key: text('key').primaryKey(),
  expiresAt: integer('expires_at').notNull(),
});

export type User = typeof users.$inferSelect;
export type OAuthClientRow = typeof oauthClients.$inferSelect;
