/**
 * Webhook events and their payloads (version 1), in one place; docs/webhooks.md documents each.
 *
 * Which audit events become which webhook event: the same table migrations/0013 seeds into
 * webhook_event_types, whose trigger writes the outbox row in the transaction of the change (a test
 * compares the two). A payload is built from that row — the user as they were then, and only the
 * fields of the audit detail meant for integrations: never an address, device or secret.
 */
export const WEBHOOK_EVENTS = {
  'user.created': ['sign_up', 'user_created'],
  'user.updated': ['user_updated', 'email_changed', 'email_change_undone'],
  'user.email_verified': ['email_verified'],
  'user.deleted': ['user_deleted'],
  'user.blocked': ['user_blocked'],
  'user.unblocked': ['user_unblocked'],
  'user.signed_in': ['sign_in'],
  'user.sign_in_failed': ['sign_in_locked'],
  'session.revoked': ['session_revoked', 'sessions_revoked_all'],
  'second_factor.added': ['mfa_enrolled', 'passkey_added'],
  'second_factor.removed': ['mfa_disabled', 'passkey_removed'],
  'consent.granted': ['consent_granted'],
  'consent.revoked': ['consent_revoked'],
  'consent.updated': ['purpose_consent_changed'],
  'identity.linked': ['identity_linked'],
  'identity.unlinked': ['identity_unlinked'],
} as const;

export type WebhookEventType = keyof typeof WEBHOOK_EVENTS;
export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_EVENTS) as [WebhookEventType, ...WebhookEventType[]];

/** The payloads' version: fields are only added within it; a change to one would be a new event type. */
export const PAYLOAD_VERSION = 1;

/** The user as they were when the event happened (the outbox trigger's snapshot). */
export interface WebhookUser {
  id: string;
  /** null for an account without an address (signed up through a provider that shared none). */
  email: string | null;
  email_verified: boolean;
  name: string | null;
  tier: string;
  roles: string[];
  blocked: boolean;
  created_at: number;
}

/** What every event's `data` has: whose event, the user then (null if they no longer existed), and who acted. */
interface Common {
  user_id: string | null;
  user: WebhookUser | null;
  /** `client:<id>` or `user:<id>` when an operator acted through the admin API; null when the user did. */
  actor: string | null;
}

export interface WebhookEventData {
  'user.created': Common & { source: 'sign_up' | 'upstream' | 'admin'; provider: string | null };
  'user.updated': Common & { changed: string[] };
  'user.email_verified': Common;
  'user.deleted': Common;
  'user.blocked': Common;
  'user.unblocked': Common;
  'user.signed_in': Common & { method: string; provider: string | null; amr: string[]; acr: string | null; session_id: string | null };
  'user.sign_in_failed': Common & { failures: number };
  'session.revoked': Common & { session_id: string | null; all: boolean };
  'second_factor.added': Common & { kind: 'totp' | 'passkey'; passkey_id: string | null };
  'second_factor.removed': Common & { kind: 'totp' | 'passkey'; passkey_id: string | null };
  'consent.granted': Common & { client_id: string | null; scopes: string[]; apis: Record<string, string[]> };
  'consent.revoked': Common & { client_id: string | null };
  /** A purpose (terms, privacy, marketing…, CONSENT_PURPOSES) accepted or refused at a version; `previous` is the answer before. */
  'consent.updated': Common & {
    purpose: string | null;
    version: string | null;
    granted: boolean;
    source: string | null;
    previous: { version: string; granted: boolean } | null;
  };
  'identity.linked': Common & { provider: string | null; subject: string | null };
  'identity.unlinked': Common & { provider: string | null; subject: string | null };
}

/** The JSON body of a delivery. */
export interface WebhookPayload<T extends WebhookEventType = WebhookEventType> {
  type: T;
  version: typeof PAYLOAD_VERSION;
  /** When the change happened (ISO 8601); the same on every retry and replay. */
  timestamp: string;
  data: WebhookEventData[T];
}

/** An outbox row, with the audit event it came from (same id): its own type and who acted. */
export interface OutboxEvent {
  id: number;
  type: string;
  userId: string | null;
  user: string | null;
  detail: string | null;
  createdAt: number;
  auditType: string | null;
  actor: string | null;
}

/** `webhook-id`: one per event, the same on every retry and replay, so receivers can drop duplicates. */
export const webhookIdOf = (e: { id: number; createdAt: number }) => `evt_${e.createdAt.toString(36)}_${e.id.toString(36)}`;

type Detail = Record<string, unknown>;
const text = (d: Detail, key: string): string | null => (typeof d[key] === 'string' ? (d[key] as string) : null);
const texts = (d: Detail, key: string): string[] =>
  Array.isArray(d[key]) ? (d[key] as unknown[]).filter((v): v is string => typeof v === 'string') : [];

/** `apis` of a consent: each API's granted scopes. */
function apisOf(d: Detail): Record<string, string[]> {
  const apis = d.apis && typeof d.apis === 'object' ? (d.apis as Detail) : {};
  return Object.fromEntries(Object.keys(apis).map((api) => [api, texts(apis, api)]));
}

/** A purpose's answer before this one, when it had one. */
function previousAnswer(v: unknown): { version: string; granted: boolean } | null {
  if (!v || typeof v !== 'object') return null;
  const { version, granted } = v as Detail;
  return typeof version === 'string' && typeof granted === 'boolean' ? { version, granted } : null;
}

/** How a sign-in was made, from its detail (email_code, passkey, upstream…) or its amr (pwd: password). */
function signInMethod(d: Detail): string {
  const method = text(d, 'method');
  if (method) return method;
  return texts(d, 'amr').includes('pwd') ? 'password' : 'other';
}

const BUILD: { [T in WebhookEventType]: (d: Detail, e: OutboxEvent) => Omit<WebhookEventData[T], keyof Common> } = {
  'user.created': (d, e) => ({
    source: e.auditType === 'user_created' ? 'admin' : text(d, 'via') ? 'upstream' : 'sign_up',
    provider: text(d, 'via'),
  }),
  // The audit detail names the changed fields `fields` (user-records.ts changedFields, email-change.ts).
  'user.updated': (d) => ({ changed: texts(d, 'fields') }),
  'user.email_verified': () => ({}),
  'user.deleted': () => ({}),
  'user.blocked': () => ({}),
  'user.unblocked': () => ({}),
  'user.signed_in': (d) => ({
    method: signInMethod(d),
    provider: text(d, 'provider'),
    amr: texts(d, 'amr'),
    acr: text(d, 'acr'),
    session_id: text(d, 'sid'),
  }),
  'user.sign_in_failed': (d) => ({ failures: typeof d.failures === 'number' ? d.failures : 0 }),
  'session.revoked': (d, e) => ({ session_id: text(d, 'sid'), all: e.auditType === 'sessions_revoked_all' }),
  'second_factor.added': (d) => ({ kind: text(d, 'passkey') ? 'passkey' : 'totp', passkey_id: text(d, 'passkey') }),
  'second_factor.removed': (d) => ({ kind: text(d, 'passkey') ? 'passkey' : 'totp', passkey_id: text(d, 'passkey') }),
  'consent.granted': (d) => ({ client_id: text(d, 'clientId'), scopes: texts(d, 'scope'), apis: apisOf(d) }),
  'consent.revoked': (d) => ({ client_id: text(d, 'clientId') }),
  'consent.updated': (d) => ({
    purpose: text(d, 'purpose'),
    version: text(d, 'version'),
    granted: d.granted === true,
    source: text(d, 'source'),
    previous: previousAnswer(d.previous),
  }),
  'identity.linked': (d) => ({ provider: text(d, 'provider'), subject: text(d, 'subject') }),
  'identity.unlinked': (d) => ({ provider: text(d, 'provider'), subject: text(d, 'subject') }),
};

const isEventType = (t: string): t is WebhookEventType => Object.hasOwn(WEBHOOK_EVENTS, t);

/** The payload of an outbox event; null for a type this version does not know (an old row, a newer migration). */
export function payloadOf(e: OutboxEvent): WebhookPayload | null {
  if (!isEventType(e.type)) return null;
  const detail = (e.detail ? JSON.parse(e.detail) : {}) as Detail;
  const user = e.user ? (JSON.parse(e.user) as WebhookUser) : null;
  const data = { user_id: e.userId, user, actor: e.actor, ...BUILD[e.type](detail, e) };
  return { type: e.type, version: PAYLOAD_VERSION, timestamp: new Date(e.createdAt).toISOString(), data } as WebhookPayload;
}
