import { sql } from 'drizzle-orm';
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

// All times are Unix epoch milliseconds.

export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    /** Normalised (trimmed, NFC, lower-cased); unique. */
    email: text('email').notNull().unique(),
    emailVerifiedAt: integer('email_verified_at'),
    /** PHC string (argon2id); null for accounts without a password. */
    passwordHash: text('password_hash'),
    tier: text('tier').notNull().default('free'),
    // The OpenID Connect standard claims (OIDC Core §5.1) a user record can hold; all optional.
    name: text('name'),
    givenName: text('given_name'),
    familyName: text('family_name'),
    middleName: text('middle_name'),
    nickname: text('nickname'),
    preferredUsername: text('preferred_username'),
    profileUrl: text('profile_url'),
    picture: text('picture'),
    website: text('website'),
    gender: text('gender'),
    /** YYYY, or YYYY-MM-DD. */
    birthdate: text('birthdate'),
    /** An IANA time zone, e.g. Europe/Paris. */
    zoneinfo: text('zoneinfo'),
    /** A BCP 47 language tag, e.g. fr-CA. */
    locale: text('locale'),
    /** E.164, e.g. +14155550100. */
    phoneNumber: text('phone_number'),
    phoneNumberVerifiedAt: integer('phone_number_verified_at'),
    /** A JSON object with OIDC Core §5.1.1's address fields. */
    address: text('address'),
    /** Operator-set data about the user that apps read and the user cannot change (a JSON object). */
    appMetadata: text('app_metadata').notNull().default('{}'),
    /** Data the user's apps keep for them (a JSON object; the admin API writes it). */
    userMetadata: text('user_metadata').notNull().default('{}'),
    /** Values of the operator-declared profile attributes (PROFILE_ATTRIBUTES), a JSON object; the person sets them. */
    profileAttributes: text('profile_attributes').notNull().default('{}'),
    /** Set while the account is blocked: it cannot sign in, and its sessions were ended. */
    blockedAt: integer('blocked_at'),
    /**
     * The person asked for their account's deletion with a grace period (ACCOUNT_DELETION_GRACE_DAYS):
     * the scheduled handler deletes it from this time on; a sign-in before clears it.
     */
    deletionDueAt: integer('deletion_due_at'),
    /** The last completed sign-in (kept by a trigger on the sign_in audit event, migrations/0013). */
    lastSignInAt: integer('last_sign_in_at'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    index('users_created_idx').on(t.createdAt, t.id),
    index('users_last_sign_in_idx').on(t.lastSignInAt, t.id),
    index('users_tier_idx').on(t.tier, t.createdAt),
    index('users_deletion_due_idx').on(t.deletionDueAt),
  ],
);

export const userRoles = sqliteTable(
  'user_roles',
  {
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: text('role').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.role] }), index('user_roles_role_idx').on(t.role, t.userId)],
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
    /** Pending sign-up through an upstream that did not verify the address: the identity to link (JSON). */
    upstreamIdentity: text('upstream_identity'),
    /** Pending sign-up only: the profile attributes given on the sign-up form (JSON), the account's from the start. */
    profileAttributes: text('profile_attributes'),
    expiresAt: integer('expires_at').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    index('email_tokens_user_idx').on(t.userId, t.purpose),
    index('email_tokens_email_idx').on(t.email, t.purpose),
    index('email_tokens_expiry_idx').on(t.expiresAt),
  ],
);

/**
 * A change of address in flight (docs/privacy.md, "Email change"). `confirm`: the link mailed to the
 * new address, bound to the browser that asked (`binding_hash`, the hash of a cookie's secret);
 * `undo`: the link mailed to the old address, which puts it back. Only hashes of the links are
 * kept; each is used once (`used_at`, set by a conditional UPDATE).
 */
export const emailChanges = sqliteTable(
  'email_changes',
  {
    tokenHash: text('token_hash').primaryKey(),
    kind: text('kind', { enum: ['confirm', 'undo'] }).notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    bindingHash: text('binding_hash'),
    /** A confirm link: the session that asked for the change; once it has ended, the link changes nothing. */
    requestedSid: text('requested_sid'),
    oldEmail: text('old_email').notNull(),
    newEmail: text('new_email').notNull(),
    expiresAt: integer('expires_at').notNull(),
    usedAt: integer('used_at'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('email_changes_user_idx').on(t.userId, t.kind), index('email_changes_expiry_idx').on(t.expiresAt)],
);

/**
 * Failed credential attempts per account key (a hash of the normalised email), known or not:
 * an unknown email is throttled exactly like a known one, so the throttle reveals nothing.
 */
export const credentialFailures = sqliteTable(
  'credential_failures',
  {
    key: text('key').primaryKey(),
    failures: integer('failures').notNull(),
    lockedUntil: integer('locked_until').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('credential_failures_updated_idx').on(t.updatedAt)],
);

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
    /** The OAuth client the event concerns, when one does (from the detail's clientId). */
    clientId: text('client_id'),
    /** Who acted, when not the user themselves: `client:<id>` or `user:<id>` through the admin API. */
    actor: text('actor'),
    createdAt: integer('created_at').notNull().default(sql`(unixepoch() * 1000)`),
  },
  (t) => [
    index('audit_events_user_idx').on(t.userId, t.createdAt),
    index('audit_events_type_idx').on(t.type, t.createdAt),
    index('audit_events_client_idx').on(t.clientId, t.createdAt),
    index('audit_events_created_idx').on(t.createdAt),
  ],
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
  accessTokenFormat: text('access_token_format', { enum: ['jwt', 'opaque'] })
    .notNull()
    .default('jwt'),
  idTokenSignedResponseAlg: text('id_token_signed_response_alg', { enum: ['RS256', 'ES256'] })
    .notNull()
    .default('RS256'),
  /** For private_key_jwt: the client's public keys (a JWKS document). */
  jwks: text('jwks'),
  /** Seconds; null means the server default. */
  accessTokenTtl: integer('access_token_ttl'),
  refreshTokenIdleTtl: integer('refresh_token_idle_ttl'),
  refreshTokenAbsoluteTtl: integer('refresh_token_absolute_ttl'),
  /** Branding for the hosted pages (later): logo and colours. */
  /** Every sign-in for this client needs a second factor (acr urn:gatehouse:acr:mfa or stronger). */
  requireMfa: integer('require_mfa', { mode: 'boolean' }).notNull().default(false),
  /**
   * Unused since migration 0010 (a client's APIs are in client_resources); kept so that a worker of
   * the previous version still runs between the migration and the deploy. A later migration drops it.
   */
  resources: text('resources').notNull().default('[]'),
  /** Resources this client *is* (an API with credentials of its own): it may introspect their tokens. */
  serves: text('serves').notNull().default('[]'),
  /**
   * PKCE is required (the default, and always for public clients). A confidential client may be set
   * to allow OpenID requests that use `nonce` instead (RFC 9700 §2.1.1) — for certification runs and
   * old relying parties; see docs/oidc.md for the risk.
   */
  requirePkce: integer('require_pkce', { mode: 'boolean' }).notNull().default(true),
  /** Put the claims its scopes release in the ID token too, not only at userinfo (OIDC Core §5.4). */
  idTokenClaims: integer('id_token_claims', { mode: 'boolean' }).notNull().default(false),
  /** Authorization requests must be pushed first (RFC 9126 PAR): /authorize takes only a request_uri. */
  requirePar: integer('require_par', { mode: 'boolean' }).notNull().default(false),
  /** Access tokens must be DPoP-bound (RFC 9449 §5.2 `dpop_bound_access_tokens`): a token request without a proof is refused. */
  requireDpop: integer('require_dpop', { mode: 'boolean' }).notNull().default(false),
  /** Registered through RFC 7591: SHA-256 of its registration access token (RFC 7592), else null. */
  registrationTokenHash: text('registration_token_hash'),
  logoUri: text('logo_uri'),
  brandColor: text('brand_color'),
  createdAt: integer('created_at').notNull(),
});

/** Remembered consent: which scopes a user granted a client. */
export const consents = sqliteTable(
  'consents',
  {
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.clientId, { onDelete: 'cascade' }),
    scopes: text('scopes').notNull(),
    /**
     * The APIs (RFC 8707 resources) the user let the client's tokens be for, each with the scopes of
     * it agreed to: a JSON object `{ "<api>": ["scope", …] }` (a JSON array of APIs in rows from
     * before APIs had scopes).
     */
    resources: text('resources').notNull().default('[]'),
    grantedAt: integer('granted_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.clientId] })],
);

/**
 * Purpose-based consent (docs/privacy.md): every answer a person gave to a purpose the operator
 * declares (CONSENT_PURPOSES), at a version, accepted or refused, when and from where. Append-only
 * (a trigger refuses updates): the current state of a purpose is its newest row, and the rows
 * before it are the history.
 */
export const consentRecords = sqliteTable(
  'consent_records',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    purpose: text('purpose').notNull(),
    version: text('version').notNull(),
    granted: integer('granted', { mode: 'boolean' }).notNull(),
    /** Where the answer was given: `sign_in` (the prompt), `account` (the page), `api`. */
    source: text('source').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('consent_records_user_purpose_idx').on(t.userId, t.purpose, t.id)],
);

export type ConsentRecordRow = typeof consentRecords.$inferSelect;

/** `jti`s of private_key_jwt client assertions already used (RFC 7523 §3: single use), until they expire. */
export const usedAssertions = sqliteTable(
  'used_client_assertions',
  {
    key: text('key').primaryKey(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('used_client_assertions_expiry_idx').on(t.expiresAt)],
);

/** WebAuthn credentials (passkeys). `id` is the credential id (base64url), unique across users. */
export const passkeys = sqliteTable(
  'passkeys',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** COSE public key, base64url. */
    publicKey: text('public_key').notNull(),
    /** The authenticator's signature counter (0 for authenticators that do not count). */
    counter: integer('counter').notNull(),
    transports: text('transports').notNull().default('[]'),
    backedUp: integer('backed_up', { mode: 'boolean' }).notNull().default(false),
    createdAt: integer('created_at').notNull(),
    lastUsedAt: integer('last_used_at'),
  },
  (t) => [index('passkeys_user_idx').on(t.userId)],
);

/** Outstanding WebAuthn challenges: single use (deleted when taken) and short-lived. */
export const webauthnChallenges = sqliteTable(
  'webauthn_challenges',
  {
    id: text('id').primaryKey(),
    challenge: text('challenge').notNull(),
    purpose: text('purpose', { enum: ['register', 'authenticate'] }).notNull(),
    /** Registration: whose credential this will be. */
    userId: text('user_id'),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('webauthn_challenges_expiry_idx').on(t.expiresAt)],
);

/**
 * One TOTP authenticator per user. The secret is AES-256-GCM under KEY_ENCRYPTION_KEY with the user
 * id as associated data. `lastStep` is the newest time step accepted: a step is never accepted twice.
 * `confirmedAt` is null while enrolment waits for the first code.
 */
export const totpCredentials = sqliteTable('totp_credentials', {
  userId: text('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  secretEncrypted: text('secret_encrypted').notNull(),
  lastStep: integer('last_step').notNull().default(0),
  confirmedAt: integer('confirmed_at'),
  createdAt: integer('created_at').notNull(),
});

/** Recovery codes (SHA-256 of 50-bit random codes), each usable once. */
export const recoveryCodes = sqliteTable(
  'recovery_codes',
  {
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: integer('used_at'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.codeHash] })],
);

/**
 * Email sign-in requests (magic link + one-time code in one mail). Unknown addresses get a row too
 * (no mail, `userId` null), so every answer — including the attempt limit — is the same for them.
 * `bindingHash` ties the request to the browser that made it (a cookie): the link opened elsewhere
 * asks for confirmation.
 */
export const emailSignIns = sqliteTable(
  'email_sign_ins',
  {
    id: text('id').primaryKey(),
    userId: text('user_id').references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull().unique(),
    codeHash: text('code_hash').notNull(),
    bindingHash: text('binding_hash').notNull(),
    attempts: integer('attempts').notNull().default(0),
    requesterIp: text('requester_ip'),
    requesterUserAgent: text('requester_user_agent'),
    /** Where the person was going (a same-origin path), so the link brings them back there. */
    returnTo: text('return_to'),
    expiresAt: integer('expires_at').notNull(),
    consumedAt: integer('consumed_at'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('email_sign_ins_user_idx').on(t.userId), index('email_sign_ins_expiry_idx').on(t.expiresAt)],
);

/**
 * What a user has signed in from before: devices (hash of the device cookie) and networks
 * (`country:FR`, `asn:13335`). Adaptive sign-in asks for the second factor when something is new.
 */
export const signInHistory = sqliteTable(
  'sign_in_history',
  {
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** `device:<hash>`, `country:<code>` or `asn:<number>`. */
    marker: text('marker').notNull(),
    firstSeenAt: integer('first_seen_at').notNull(),
    lastSeenAt: integer('last_seen_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.marker] }), index('sign_in_history_last_seen_idx').on(t.lastSeenAt)],
);

export type User = typeof users.$inferSelect;
export type OAuthClientRow = typeof oauthClients.$inferSelect;

/**
 * Pushed authorization requests (RFC 9126): the parameters a client pushed, under the hash of the
 * request_uri's secret part. Usable while it lives and until a code is issued from it (then
 * `used_at` is set, once, by a conditional UPDATE).
 */
export const pushedAuthorizations = sqliteTable(
  'pushed_authorizations',
  {
    idHash: text('id_hash').primaryKey(),
    clientId: text('client_id').notNull(),
    params: text('params').notNull(),
    expiresAt: integer('expires_at').notNull(),
    usedAt: integer('used_at'),
  },
  (t) => [index('pushed_authorizations_expiry_idx').on(t.expiresAt)],
);

/**
 * API resources (resource servers, RFC 8707): an API Gatehouse issues access tokens for. The
 * identifier is the tokens' `aud`; the API's own scopes (JSON array of `{ name, description }`);
 * lifetime and format of its tokens (null: the client's, else the server default); `rate_limit`
 * (JSON `{ requests, period }` or null): token requests per client per period at the token endpoint.
 */
export const apiResources = sqliteTable('api_resources', {
  identifier: text('identifier').primaryKey(),
  name: text('name').notNull(),
  scopes: text('scopes').notNull().default('[]'),
  accessTokenTtl: integer('access_token_ttl'),
  accessTokenFormat: text('access_token_format', { enum: ['jwt', 'opaque'] })
    .notNull()
    .default('jwt'),
  rateLimit: text('rate_limit'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

/** Which clients may ask tokens for which API, and for which of its scopes (a JSON array). */
export const clientResources = sqliteTable(
  'client_resources',
  {
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.clientId, { onDelete: 'cascade' }),
    resource: text('resource')
      .notNull()
      .references(() => apiResources.identifier, { onDelete: 'cascade' }),
    scopes: text('scopes').notNull().default('[]'),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.resource] }), index('client_resources_resource_idx').on(t.resource)],
);

/**
 * API keys for callers that cannot do OAuth. `id` is the key's public part (its visible prefix);
 * only the SHA-256 of its secret is kept. Owned by a user or by a client (exactly one), for one API
 * (`resource`, the audience) and some of its scopes.
 */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    secretHash: text('secret_hash').notNull(),
    name: text('name').notNull(),
    userId: text('user_id').references(() => users.id, { onDelete: 'cascade' }),
    clientId: text('client_id').references(() => oauthClients.clientId, { onDelete: 'cascade' }),
    resource: text('resource')
      .notNull()
      .references(() => apiResources.identifier, { onDelete: 'cascade' }),
    scopes: text('scopes').notNull().default('[]'),
    expiresAt: integer('expires_at'),
    lastUsedAt: integer('last_used_at'),
    revokedAt: integer('revoked_at'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    index('api_keys_user_idx').on(t.userId),
    index('api_keys_client_idx').on(t.clientId),
    check('api_keys_one_owner', sql`(${t.userId} IS NULL) <> (${t.clientId} IS NULL)`),
  ],
);

export type ApiResourceRow = typeof apiResources.$inferSelect;
export type ClientResourceRow = typeof clientResources.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/**
 * Upstream identity providers people sign in with (social login, enterprise OpenID Providers).
 * `kind` picks the protocol and its quirks (an OpenID Provider found by discovery, or a preset);
 * the client secret — and an Apple signing key in `settings` — are AES-256-GCM under
 * KEY_ENCRYPTION_KEY with `provider:<id>` as associated data. `trusted_email_domains`: the domains
 * whose addresses this provider is trusted to verify (`*`: any), for linking to existing accounts.
 */
export const identityProviders = sqliteTable('identity_providers', {
  id: text('id').primaryKey(),
  kind: text('kind', { enum: ['oidc', 'google', 'entra', 'apple', 'github'] }).notNull(),
  displayName: text('display_name').notNull(),
  /** An https URL of the button's icon, or null for the kind's own (or none). */
  iconUrl: text('icon_url'),
  /** The OpenID Provider's issuer (discovery); for Entra the tenant's (or `common`); null for GitHub. */
  issuer: text('issuer'),
  clientId: text('client_id').notNull(),
  clientSecretEncrypted: text('client_secret_encrypted'),
  scopes: text('scopes').notNull(),
  trustedEmailDomains: text('trusted_email_domains').notNull().default('[]'),
  /** Kind-specific settings (JSON): Apple's team and key ids, sealed key; Entra's allowed tenants. */
  settings: text('settings').notNull().default('{}'),
  /** Keep the upstream's tokens (sealed) so an app can call its API for the user. */
  storeTokens: integer('store_tokens', { mode: 'boolean' }).notNull().default(false),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

/**
 * Which providers' buttons a client's sign-in page shows; `share_tokens`: the client may read the
 * upstream access tokens Gatehouse keeps for its users (GET /auth/upstream-token).
 */
export const clientProviders = sqliteTable(
  'client_providers',
  {
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.clientId, { onDelete: 'cascade' }),
    providerId: text('provider_id')
      .notNull()
      .references(() => identityProviders.id, { onDelete: 'cascade' }),
    shareTokens: integer('share_tokens', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.providerId] })],
);

/**
 * A user's identities at upstream providers, keyed by (issuer, subject) — never by email, which an
 * upstream may let its users change. The claims that matter are kept and refreshed at each sign-in.
 */
export const linkedIdentities = sqliteTable(
  'linked_identities',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    providerId: text('provider_id').notNull(),
    issuer: text('issuer').notNull(),
    subject: text('subject').notNull(),
    email: text('email'),
    emailVerified: integer('email_verified', { mode: 'boolean' }).notNull().default(false),
    name: text('name'),
    picture: text('picture'),
    /** The upstream's tokens, sealed (only for a provider set to keep them). */
    tokensEncrypted: text('tokens_encrypted'),
    createdAt: integer('created_at').notNull(),
    lastSignInAt: integer('last_sign_in_at'),
  },
  (t) => [uniqueIndex('linked_identities_subject_idx').on(t.issuer, t.subject), index('linked_identities_user_idx').on(t.userId)],
);

/**
 * Sign-ins in flight at an upstream: under the hash of the `state`, what the callback needs (the
 * nonce, the PKCE verifier, where to go back) and the hash of the secret in the starting
 * browser's cookie. Taken once by the callback; short-lived.
 */
export const upstreamRequests = sqliteTable(
  'upstream_requests',
  {
    stateHash: text('state_hash').primaryKey(),
    bindingHash: text('binding_hash').notNull(),
    providerId: text('provider_id').notNull(),
    nonce: text('nonce'),
    codeVerifier: text('code_verifier').notNull(),
    returnTo: text('return_to'),
    /** `sign_in`, or `link` to the signed-in user named here. */
    intent: text('intent', { enum: ['sign_in', 'link'] }).notNull(),
    userId: text('user_id'),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('upstream_requests_expiry_idx').on(t.expiresAt)],
);

export type IdentityProviderRow = typeof identityProviders.$inferSelect;
export type LinkedIdentityRow = typeof linkedIdentities.$inferSelect;

/**
 * Where webhooks go. `secrets`: a JSON array of Standard Webhooks secrets, each sealed under
 * KEY_ENCRYPTION_KEY, with the date until which it still signs (the previous one, after a rotation).
 * `event_types`: a JSON array of event types, or ["*"].
 */
export const webhookEndpoints = sqliteTable('webhook_endpoints', {
  id: text('id').primaryKey(),
  url: text('url').notNull(),
  description: text('description'),
  eventTypes: text('event_types').notNull(),
  secrets: text('secrets').notNull(),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  /** Why it was turned off: by the operator, or after failing for too long. */
  disabledReason: text('disabled_reason'),
  /** Deliveries that failed in a row (reset by a success). */
  failuresInARow: integer('failures_in_a_row').notNull().default(0),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

/**
 * The outbox: an event, written by a trigger on audit_events in the same transaction as the change
 * it reports (migrations/0013), waiting to be fanned out to the endpoints that want it.
 * `user`: the user as they were then (JSON), `detail`: the audit event's detail.
 */
export const webhookEvents = sqliteTable(
  'webhook_events',
  {
    id: integer('id').primaryKey(),
    type: text('type').notNull(),
    userId: text('user_id'),
    user: text('user'),
    detail: text('detail'),
    createdAt: integer('created_at').notNull(),
    /** When the event was fanned out into deliveries; null while waiting. */
    dispatchedAt: integer('dispatched_at'),
  },
  (t) => [index('webhook_events_waiting_idx').on(t.dispatchedAt, t.id)],
);

/** Which audit events become which webhook events (seeded by the migration; src/admin/webhook-events.ts lists the same). */
export const webhookEventTypes = sqliteTable('webhook_event_types', {
  auditType: text('audit_type').primaryKey(),
  eventType: text('event_type').notNull(),
});

/** One event for one endpoint: its attempts and how they went. */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    eventId: integer('event_id')
      .notNull()
      .references(() => webhookEvents.id, { onDelete: 'cascade' }),
    endpointId: text('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    status: text('status', { enum: ['pending', 'succeeded', 'failed'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    lastAttemptAt: integer('last_attempt_at'),
    /** The endpoint's HTTP status, or null when it could not be reached. */
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    /** When the next attempt is due (the sweep re-queues deliveries past it). */
    nextAttemptAt: integer('next_attempt_at'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    uniqueIndex('webhook_deliveries_event_endpoint_idx').on(t.eventId, t.endpointId),
    index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.createdAt),
    index('webhook_deliveries_due_idx').on(t.status, t.nextAttemptAt),
    // The sweep's prune (admin/webhook-dispatch.ts): deliveries made before the retention cutoff.
    index('webhook_deliveries_created_idx').on(t.createdAt),
  ],
);

export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookEventRow = typeof webhookEvents.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
