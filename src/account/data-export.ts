import { and, desc, eq, gte } from 'drizzle-orm';
import * as z from 'zod';
import { authorizeSensitiveAction, type Proof } from '../auth/recent-auth';
import { existingUser } from '../auth/account-lifecycle';
import { listPasskeys } from '../auth/passkeys';
import { secondFactorsOf } from '../auth/totp';
import { auditEvents, signInHistory } from '../db/schema';
import type { Deps } from '../deps';
import { audit, type RequestMeta } from '../identity/audit';
import { consentHistory, purposeStates } from '../identity/consent-records';
import { shownEmail } from '../identity/email';
import { identitiesOf } from '../identity/linked-identities';
import { readMetadata } from '../identity/profile';
import { readAttributes } from '../identity/profile-attributes';
import type { ChangeBy } from '../identity/user-records';
import { rolesOf, viewOf } from '../identity/users';
import { failClosed } from '../lib/errors';
import { listConnectedApps } from '../oauth/connected-apps';
import type { SessionClaims } from '../sessions/session-token';
import { sessionView } from './account-sessions';

/**
 * Everything Gatehouse holds about a person, as one JSON document (GDPR art. 15 and 20): the
 * account page's download and the admin API's export are this one builder. Secrets never appear —
 * no password hash, TOTP secret, recovery code hash, passkey public key, sealed upstream token,
 * session secret or refresh-token hash (docs/privacy.md, "Data export").
 */

export const EXPORT_FORMAT = 'gatehouse.export';
export const EXPORT_VERSION = 1;
/** Audit events in the export: the newest this many, within the retention period. */
export const EXPORT_AUDIT_LIMIT = 1000;

const millis = z.number().int();
const record = z.record(z.string(), z.unknown());

export const exportDocument = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.literal(EXPORT_VERSION),
  exported_at: millis,
  account: z.object({
    id: z.string(),
    email: z.string().nullable(),
    email_verified_at: millis.nullable(),
    roles: z.array(z.string()),
    tier: z.string(),
    profile: record.describe('OpenID Connect standard claims (OIDC Core §5.1) the record holds.'),
    user_metadata: record,
    app_metadata: record.describe('Set by the operator about the person; apps read it, the person cannot change it.'),
    attributes: record.describe('Values of the profile attributes the operator declares (PROFILE_ATTRIBUTES).'),
    blocked_at: millis.nullable(),
    created_at: millis,
    updated_at: millis,
    last_sign_in_at: millis.nullable(),
  }),
  emails: z.array(z.object({ address: z.string(), primary: z.boolean(), verified: z.boolean() })),
  linked_identities: z.array(
    z.object({
      provider: z.string(),
      issuer: z.string(),
      subject: z.string(),
      email: z.string().nullable(),
      email_verified: z.boolean(),
      name: z.string().nullable(),
      picture: z.string().nullable(),
      linked_at: millis,
      last_sign_in_at: millis.nullable(),
      tokens_kept: z.boolean().describe('Whether the upstream’s tokens are kept (sealed; never exported).'),
    }),
  ),
  credentials: z.object({
    password: z.boolean(),
    passkeys: z.array(
      z.object({ id: z.string(), name: z.string(), created_at: millis, last_used_at: millis.nullable(), backed_up: z.boolean() }),
    ),
    totp: z.boolean(),
    recovery_codes_left: z.number().int(),
  }),
  sessions: z.array(record),
  connected_apps: z.array(record),
  consents: z.object({
    purposes: z.array(z.object({ id: z.string(), version: z.string(), accepted: z.boolean(), answered_at: millis.nullable() })),
    history: z.array(
      z.object({
        purpose: z.string(),
        version: z.string(),
        granted: z.boolean(),
        source: z.string(),
        ip: z.string().nullable(),
        user_agent: z.string().nullable(),
        at: millis,
      }),
    ),
  }),
  sign_in_history: z.array(
    z.object({
      kind: z.string().describe('device, country or asn'),
      value: z.string().nullable(),
      first_seen_at: millis,
      last_seen_at: millis,
    }),
  ),
  audit_events: z.object({
    limit: z.number().int(),
    since: millis.nullable().describe('The retention cutoff (null: kept forever).'),
    truncated: z.boolean(),
    items: z.array(
      z.object({
        type: z.string(),
        at: millis,
        ip: z.string().nullable(),
        user_agent: z.string().nullable(),
        by: z.string().describe('you, administrator, or cli'),
        detail: record.nullable(),
      }),
    ),
  }),
});

export type ExportDocument = z.output<typeof exportDocument>;

/** Who an audit event says acted, without naming another person (an admin's own id stays theirs). */
const byWhom = (actor: string | null) => (actor === null ? 'you' : actor === 'cli' ? 'cli' : 'administrator');

/** Builds the document for one user (who may see it is the caller's rule). */
export async function buildExport(deps: Deps, userId: string): Promise<ExportDocument> {
  const user = await existingUser(deps, userId);
  const now = deps.now();
  const auditDays = deps.config.retention.auditDays;
  const since = auditDays > 0 ? now - auditDays * 86_400_000 : null;
  const [roles, identities, passkeys, factors, purposes, history, markers, events, sessions, apps] = await Promise.all([
    failClosed('the database', () => rolesOf(deps.db, userId)),
    failClosed('the database', () => identitiesOf(deps.db, userId)),
    listPasskeys(deps, userId),
    secondFactorsOf(deps, userId),
    failClosed('the database', () => purposeStates(deps.db, deps.config.purposes, userId)),
    failClosed('the database', () => consentHistory(deps.db, userId)),
    failClosed('the database', () => deps.db.select().from(signInHistory).where(eq(signInHistory.userId, userId)).all()),
    failClosed('the database', () =>
      deps.db
        .select()
        .from(auditEvents)
        .where(since === null ? eq(auditEvents.userId, userId) : and(eq(auditEvents.userId, userId), gte(auditEvents.createdAt, since)))
        .orderBy(desc(auditEvents.createdAt), desc(auditEvents.id))
        .limit(EXPORT_AUDIT_LIMIT + 1)
        .all(),
    ),
    deps.sessions.list(userId, now),
    listConnectedApps(deps, userId),
  ]);
  const email = shownEmail(user.email);
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exported_at: now,
    account: {
      id: user.id,
      email,
      email_verified_at: email === null ? null : user.emailVerifiedAt,
      roles,
      tier: user.tier,
      profile: viewOf(user, roles).profile as Record<string, unknown>,
      user_metadata: readMetadata(user.userMetadata),
      app_metadata: readMetadata(user.appMetadata),
      attributes: readAttributes(user.profileAttributes, deps.config.attributes),
      blocked_at: user.blockedAt,
      created_at: user.createdAt,
      updated_at: user.updatedAt,
      last_sign_in_at: user.lastSignInAt,
    },
    emails: email === null ? [] : [{ address: email, primary: true, verified: user.emailVerifiedAt !== null }],
    linked_identities: identities.map((i) => ({
      provider: i.providerId,
      issuer: i.issuer,
      subject: i.subject,
      email: i.email,
      email_verified: i.emailVerified,
      name: i.name,
      picture: i.picture,
      linked_at: i.createdAt,
      last_sign_in_at: i.lastSignInAt,
      tokens_kept: i.tokensEncrypted !== null,
    })),
    credentials: {
      password: user.passwordHash !== null,
      passkeys: passkeys.map((p) => ({
        id: p.id,
        name: p.name,
        created_at: p.createdAt,
        last_used_at: p.lastUsedAt,
        backed_up: p.backedUp,
      })),
      totp: factors.totp,
      recovery_codes_left: factors.recoveryCodesLeft,
    },
    sessions: sessions.map((s) => {
      const { current: _, ...view } = sessionView(s, '');
      return { ...view, amr: s.amr, auth_time: s.authTime };
    }),
    connected_apps: apps.map((a) => ({ ...a })),
    consents: {
      purposes: purposes.map((p) => ({ id: p.id, version: p.version, accepted: p.accepted, answered_at: p.answer?.at ?? null })),
      history: history.map((r) => ({
        purpose: r.purpose,
        version: r.version,
        granted: r.granted,
        source: r.source,
        ip: r.ip,
        user_agent: r.userAgent,
        at: r.createdAt,
      })),
    },
    // A device is known by a hash of its cookie: the kind is shown, not the hash (it is the cookie's stand-in).
    sign_in_history: markers.map((m) => {
      const [kind, ...rest] = m.marker.split(':');
      return {
        kind: kind ?? m.marker,
        value: kind === 'device' ? null : rest.join(':'),
        first_seen_at: m.firstSeenAt,
        last_seen_at: m.lastSeenAt,
      };
    }),
    audit_events: {
      limit: EXPORT_AUDIT_LIMIT,
      since,
      truncated: events.length > EXPORT_AUDIT_LIMIT,
      items: events.slice(0, EXPORT_AUDIT_LIMIT).map((e) => ({
        type: e.type,
        at: e.createdAt,
        ip: e.ip,
        user_agent: e.userAgent,
        by: byWhom(e.actor),
        detail: e.detail ? (JSON.parse(e.detail) as Record<string, unknown>) : null,
      })),
    },
  };
}

/**
 * The signed-in person downloads their data: a sensitive action (a proof given now, or a recent
 * sign-in on this device), so a stolen session cannot walk off with it. Audited `data_exported`
 * before the document is handed over.
 */
export async function exportOwnData(
  deps: Deps,
  session: SessionClaims,
  proof: Proof | undefined,
  meta: RequestMeta,
): Promise<ExportDocument> {
  await authorizeSensitiveAction(deps, session, proof, meta);
  const doc = await buildExport(deps, session.sub);
  await failClosed('the database', () =>
    audit(deps.db, { type: 'data_exported', userId: session.sub, meta, detail: { sid: session.sid }, at: deps.now() }),
  );
  return doc;
}

/** An operator exports a user's data (the same document); audited with who asked. */
export async function exportUserData(deps: Deps, userId: string, by: ChangeBy): Promise<ExportDocument> {
  const doc = await buildExport(deps, userId);
  await failClosed('the database', () =>
    audit(deps.db, {
      type: 'data_exported',
      userId,
      actor: by.actor,
      meta: by.meta,
      ...(by.detail ? { detail: by.detail } : {}),
      at: deps.now(),
    }),
  );
  return doc;
}

/** The download's file name: `gatehouse-export-<date>.json`. */
export const exportFileName = (doc: ExportDocument) => `gatehouse-export-${new Date(doc.exported_at).toISOString().slice(0, 10)}.json`;
