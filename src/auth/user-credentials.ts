import { count, eq } from 'drizzle-orm';
import { linkedIdentities } from '../db/schema';
import type { Deps } from '../deps';
import { audit } from '../identity/audit';
import type { ChangeBy } from '../identity/user-records';
import { failClosed, GatehouseError } from '../lib/errors';
import type { SessionRecord } from '../sessions/user-sessions';
import { existingUser } from './account-lifecycle';
import { listPasskeys, type PasskeyView, removePasskey } from './passkeys';
import { disableTotp, type SecondFactors, secondFactorsOf } from './totp';

/**
 * An operator looking after a user's sessions and credentials (the admin API). Removing a second
 * factor is what the person does from their account page and what `npm run users -- reset-mfa`
 * does — the same statements (identity/second-factors.ts) — for someone who lost theirs, after
 * proving who they are another way. Secrets never leave: passkeys are listed by their metadata.
 */

export interface Credentials {
  secondFactors: SecondFactors;
  passkeys: PasskeyView[];
}

export async function credentialsOf(deps: Deps, userId: string): Promise<Credentials> {
  await existingUser(deps, userId);
  const [secondFactors, passkeys] = await Promise.all([secondFactorsOf(deps, userId), listPasskeys(deps, userId)]);
  return { secondFactors, passkeys };
}

/** What the user's record page counts: live sessions (from the user's object), factors, passkeys, linked identities. */
export async function countsOf(deps: Deps, userId: string) {
  const [sessions, factors, identities] = await Promise.all([
    deps.sessions.list(userId, deps.now()),
    secondFactorsOf(deps, userId),
    failClosed('the database', () =>
      deps.db.select({ n: count() }).from(linkedIdentities).where(eq(linkedIdentities.userId, userId)).get(),
    ),
  ]);
  return { sessions: sessions.length, factors, linkedIdentities: identities?.n ?? 0 };
}

/** Removes the authenticator app and its recovery codes; 404 when the user has none. */
export async function removeTotpOf(deps: Deps, userId: string, by: ChangeBy): Promise<void> {
  await existingUser(deps, userId);
  const factors = await secondFactorsOf(deps, userId);
  if (!factors.totp && factors.recoveryCodesLeft === 0)
    throw new GatehouseError('not_found', 'This user has no authenticator app.', { field: 'totp' });
  await disableTotp(deps, userId, by.meta, { actor: by.actor, ...(by.detail ? { detail: by.detail } : {}) });
}

/** Removes one passkey; 404 when the user has no passkey with that id. */
export async function removePasskeyOf(deps: Deps, userId: string, passkeyId: string, by: ChangeBy): Promise<void> {
  await existingUser(deps, userId);
  await removePasskey(deps, userId, passkeyId, by.meta, { actor: by.actor, ...(by.detail ? { detail: by.detail } : {}) });
}

/** The user's live sessions (Gatehouse's and the app-host sessions made from them), newest first. */
export async function sessionsOf(deps: Deps, userId: string): Promise<SessionRecord[]> {
  await existingUser(deps, userId);
  return deps.sessions.list(userId, deps.now());
}

/** Ends one session (and the app-host sessions made from it, and refresh tokens born of it); 404 when there is none. */
export async function endSession(deps: Deps, userId: string, sid: string, by: ChangeBy): Promise<void> {
  await existingUser(deps, userId);
  if (!(await deps.sessions.revoke(userId, sid))) throw new GatehouseError('not_found', 'No such session.', { field: 'sid' });
  await failClosed('the database', () =>
    audit(deps.db, { type: 'session_revoked', userId, actor: by.actor, meta: by.meta, detail: { ...by.detail, sid }, at: deps.now() }),
  );
}

/** Ends every session and revokes every refresh token of the user ("sign out everywhere"); returns how many sessions ended. */
export async function endAllSessions(deps: Deps, userId: string, by: ChangeBy): Promise<number> {
  await existingUser(deps, userId);
  const ended = await deps.sessions.revokeAll(userId);
  await failClosed('the database', () =>
    audit(deps.db, {
      type: 'sessions_revoked_all',
      userId,
      actor: by.actor,
      meta: by.meta,
      detail: { ...by.detail, count: ended },
      at: deps.now(),
    }),
  );
  return ended;
}
