import type { Deps } from '../deps';
import type { RequestMeta } from '../identity/audit';
import { findUserView, type UserView } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { formatSessionCookie, parseSessionCookie } from './cookie';
import { issueSessionToken, verifySessionToken, type SessionClaims } from './session-token';
import type { SessionRecord } from './browser-sessions';

/** Seconds before expiry at which a session token is refreshed through the Durable Object. */
export const REFRESH_WITHIN = 60;

export interface StartedSession {
  record: SessionRecord;
  claims: SessionClaims;
  /** The Set-Cookie value and its Max-Age (seconds). */
  cookie: { value: string; maxAge: number };
}

const tokenOptions = (deps: Deps, now: number) => ({
  key: deps.keys.session,
  issuer: deps.config.publicUrl.origin,
  ttl: deps.config.session.tokenTtl,
  now,
});

/** The session token (and cookie) for a record: its sign-in facts come from the record, never from an older token. */
export async function cookieFor(deps: Deps, record: SessionRecord, secret: string, user: UserView, now: number) {
  const claims = {
    sub: record.userId,
    sid: record.sid,
    amr: record.amr,
    authTime: record.authTime,
    email: user.email,
    emailVerified: user.emailVerified,
    roles: user.roles,
    tier: user.tier,
    relayed: record.relayed,
    host: record.host,
  };
  const { token, exp } = await issueSessionToken(claims, tokenOptions(deps, now));
  return {
    claims: { ...claims, exp },
    cookie: { value: formatSessionCookie(token, secret), maxAge: (record.absoluteExpiresAt - now) / 1000 },
  };
}

/**
 * A new session (new id and secret) in the user's Durable Object, and the cookie that carries it.
 * `authTime` is when the person proved who they are — now, for a sign-in; the approving session's
 * sign-in for a handoff (`relayed`), so handing over never makes a sign-in look recent.
 */
export async function startSession(
  deps: Deps,
  s: { user: UserView; amr: string[]; meta: RequestMeta; now: number; authTime?: number; relayed?: boolean },
): Promise<StartedSession> {
  const { idleTtl, absoluteTtl } = deps.config.session;
  const created = await deps.sessions.create({
    userId: s.user.id,
    amr: s.amr,
    authTime: s.authTime ?? Math.floor(s.now / 1000),
    relayed: s.relayed ?? false,
    ip: s.meta.ip,
    userAgent: s.meta.userAgent,
    now: s.now,
    idleTtl,
    absoluteTtl,
  });
  const { secret, ...record } = created;
  return { record, ...(await cookieFor(deps, record, secret, s.user, s.now)) };
}

/**
 * For actions that create credentials or sessions (step-up, approving a handoff, adding a second
 * factor): the session must still be live in its Durable Object — a session revoked a moment ago
 * keeps a valid token for up to SESSION_TOKEN_TTL, and must not mint anything new with it.
 */
export async function assertLiveSession(deps: Deps, claims: SessionClaims): Promise<void> {
  if (!(await deps.sessions.get(claims.sub, claims.sid, deps.now())))
    throw new GatehouseError('unauthenticated', 'This session has ended. Sign in again.');
}

export type ResumedSession =
  | { status: 'none' }
  /** The cookie is unusable (tampered, foreign, revoked, expired): clear it. */
  | { status: 'ended' }
  | { status: 'valid'; claims: SessionClaims; refreshed?: { value: string; maxAge: number } };

/**
 * Reads a session cookie sent to `host`. A fresh token is accepted with no I/O; a stale one is
 * refreshed through the user's Durable Object (where a revoked session stops being accepted) and
 * the user's roles, tier and email are re-read from D1. Errors from either propagate as 503 (fail
 * closed). A session is only good on the host it was made for: Gatehouse's own sessions on
 * PUBLIC_URL's host, an app host's session on that app host.
 */
export async function resumeSession(deps: Deps, cookieValue: string | undefined, host: string): Promise<ResumedSession> {
  if (!cookieValue) return { status: 'none' };
  const parsed = parseSessionCookie(cookieValue);
  if (!parsed) return { status: 'ended' };
  const now = deps.now();
  const verdict = await verifySessionToken(parsed.token, {
    key: deps.keys.session,
    issuer: deps.config.publicUrl.origin,
    now,
    refreshWithin: REFRESH_WITHIN,
    maxAge: deps.config.session.absoluteTtl,
  });
  if (verdict.status === 'invalid') return { status: 'ended' };
  if ((verdict.claims.host ?? deps.config.publicUrl.host) !== host) return { status: 'ended' };
  if (verdict.status === 'valid') return { status: 'valid', claims: verdict.claims };

  const record = await deps.sessions.refresh(verdict.claims.sub, verdict.claims.sid, parsed.secret, now);
  if (!record) return { status: 'ended' };
  // Roles, tier and email are re-read at every refresh (fail closed, from the primary), so changes reach the token.
  const user = await failClosed('the database', () => findUserView(deps.primary, record.userId));
  if (!user) return { status: 'ended' };
  const { claims, cookie } = await cookieFor(deps, record, parsed.secret, user, now);
  return { status: 'valid', claims, refreshed: cookie };
}
