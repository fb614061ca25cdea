import { eq } from 'drizzle-orm';
import { users } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { findUserByEmail, rolesOf, viewOf, type UserView } from '../identity/users';
import { failClosed, GatehouseError, unavailable } from '../lib/errors';
import { startSession, type StartedSession } from '../sessions/sessions';
import { assertNotLocked, clearAttemptsStatement, recordAttempt, throttleKey } from './throttle';

export const invalidCredentials = () =>
  new GatehouseError('invalid_credentials', 401, 'The email or password is incorrect.');

/**
 * Password sign-in. Unknown email and wrong password give the same error after the same work
 * (a dummy hash). On success a new session is created in the user's Durable Object first; the D1
 * writes that go with it (audit, counter reset, rehash) then commit in one batch, and if they fail
 * the session is revoked again: either all of it happens or none of it (503).
 */
export async function signInWithPassword(
  deps: Deps,
  input: { email: string; password: string },
  meta: RequestMeta,
): Promise<{ user: UserView; session: StartedSession }> {
  const { db } = deps;
  const now = deps.now();
  await failClosed('the database', () => assertNotLocked(db, 'sign_in', input.email, now));
  const user = await failClosed('the database', () => findUserByEmail(db, input.email));

  const verdict = user?.passwordHash
    ? await deps.passwords.verify(user.passwordHash, input.password)
    : (await deps.passwords.verifyDummy(input.password), { ok: false, needsRehash: false });

  if (!user || !verdict.ok) {
    await failClosed('the database', async () => {
      await recordAttempt(deps.d1, 'sign_in', input.email, now);
      await auditInsert(db, { type: 'sign_in_failed', userId: user?.id ?? null, meta, at: now });
    });
    throw invalidCredentials();
  }
  if (deps.config.requireVerifiedEmail && user.emailVerifiedAt === null) {
    throw new GatehouseError(
      'email_not_verified',
      403,
      'Confirm your email address before signing in: sign up again with this address to get a new link.',
    );
  }

  const rehash = verdict.needsRehash ? await deps.passwords.hash(input.password) : null;
  const roles = await failClosed('the database', () => rolesOf(db, user.id));
  const view = viewOf(user, roles);
  const session = await startSession(deps, { user: view, amr: ['pwd'], meta, now });

  try {
    const key = await throttleKey('sign_in', input.email);
    const audit = auditInsert(db, {
      type: 'sign_in',
      userId: user.id,
      meta,
      detail: { sid: session.record.sid, amr: ['pwd'], ...(rehash ? { rehashed: true } : {}) },
      at: now,
    });
    const clear = clearAttemptsStatement(db, key);
    await (rehash
      ? db.batch([audit, clear, db.update(users).set({ passwordHash: rehash, updatedAt: now }).where(eq(users.id, user.id))])
      : db.batch([audit, clear]));
  } catch (e) {
    await deps.sessions.revoke(user.id, session.record.sid).catch(() => undefined);
    throw e instanceof GatehouseError ? e : unavailable('the database', e);
  }
  return { user: view, session };
}
