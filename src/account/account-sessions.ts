import type { Deps } from '../deps';
import { audit } from '../identity/audit';
import { findUserView, type UserView } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import type { RequestMeta } from '../lib/request-meta';
import type { SessionClaims } from '../sessions/session-token';
import type { SessionRecord } from '../sessions/user-sessions';

export const signedOut = () => new GatehouseError('unauthenticated', 'Sign in to continue.');

export interface AccountView {
  user: UserView;
  current: SessionRecord;
  sessions: SessionRecord[];
}

/**
 * The account and its live sessions. Account pages check the Durable Object on every request
 * (they are where revocation is managed), so a session revoked elsewhere is refused here at once.
 */
export async function loadAccount(deps: Deps, claims: SessionClaims): Promise<AccountView> {
  const now = deps.now();
  const sessions = inOrder(await deps.sessions.list(claims.sub, now));
  const current = sessions.find((s) => s.sid === claims.sid);
  if (!current) throw signedOut();
  const user = await failClosed('the database', () => findUserView(deps.db, claims.sub));
  if (!user) throw signedOut();
  return { user, current, sessions };
}

/**
 * Every live session, each Gatehouse session followed by the app-host sessions made from it — so a
 * session some host got from one of yours (in another browser, say) is there to see and end.
 */
function inOrder(all: SessionRecord[]): SessionRecord[] {
  const live = new Set(all.map((s) => s.sid));
  const tops = all.filter((s) => !s.parentSid || !live.has(s.parentSid));
  return tops.flatMap((top) => [top, ...all.filter((s) => s.parentSid === top.sid)]);
}

/** Revokes one of the user's own sessions (an app-host one alone, or a Gatehouse one with its app-host sessions); 404 when there is no such live session. */
export async function revokeSession(deps: Deps, claims: SessionClaims, sid: string, meta: RequestMeta): Promise<void> {
  const revoked = await deps.sessions.revoke(claims.sub, sid);
  if (!revoked) throw new GatehouseError('not_found', 'No such session.', { field: 'sid' });
  await failClosed('the database', () =>
    audit(deps.db, { type: 'session_revoked', userId: claims.sub, meta, detail: { sid, current: sid === claims.sid }, at: deps.now() }),
  );
}

export async function signOut(deps: Deps, claims: SessionClaims, meta: RequestMeta): Promise<void> {
  await deps.sessions.revoke(claims.sub, claims.sid);
  await failClosed('the database', () =>
    audit(deps.db, { type: 'sign_out', userId: claims.sub, meta, detail: { sid: claims.sid }, at: deps.now() }),
  );
}

export async function signOutEverywhere(deps: Deps, claims: SessionClaims, meta: RequestMeta): Promise<number> {
  const count = await deps.sessions.revokeAll(claims.sub);
  await failClosed('the database', () =>
    audit(deps.db, { type: 'sessions_revoked_all', userId: claims.sub, meta, detail: { count }, at: deps.now() }),
  );
  return count;
}

/** The JSON shape of a session for its owner. */
export const sessionView = (s: SessionRecord, currentSid: string) => ({
  sid: s.sid,
  current: s.sid === currentSid,
  amr: s.amr,
  createdAt: s.createdAt,
  lastSeenAt: s.lastSeenAt,
  expiresAt: Math.min(s.idleExpiresAt, s.absoluteExpiresAt),
  ip: s.ip,
  userAgent: s.userAgent,
  /** The app host this session is for, or null for Gatehouse's own. */
  host: s.host,
  /** The Gatehouse session an app-host session was made from (it ends with it). */
  parentSid: s.parentSid,
});
