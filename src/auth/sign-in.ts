import { eq } from 'drizzle-orm';
import { users } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert } from '../identity/audit';
import { byEmail, findUserById, userWithRolesQuery } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { combineAmr } from './acr';
import { type PasskeyAssertion, verifyPasskey } from './passkeys';
import type { SignInContext } from './risk';
import { completeFirstFactor, type SignInOutcome } from './second-factor';
import { assertUnlocked, clearAttemptsStatement, lockQuery, recordAttemptStatement, THROTTLE, throttleKey } from './throttle';

export const invalidCredentials = () => new GatehouseError('invalid_credentials', 'The email or password is incorrect.');

/**
 * Password sign-in. Unknown email and wrong password give the same error after the same work
 * (a dummy hash). A correct password clears the failure counter (and upgrades the hash when its
 * parameters rose) in one batch, then the sign-in goes on as any first factor does: a session at
 * once, or the second step (completeFirstFactor).
 */
export async function signInWithPassword(
  deps: Deps,
  input: { email: string; password: string },
  ctx: SignInContext,
  opts: { defer: (task: Promise<void>) => void },
): Promise<SignInOutcome> {
  const { db } = deps;
  const meta = ctx.meta;
  const now = deps.now();
  const key = await throttleKey('sign_in', input.email);
  // The counter's lock and the user with their roles, in one round trip.
  const [[lock], [user]] = await failClosed('the database', () =>
    db.batch([lockQuery(db, key), userWithRolesQuery(db, byEmail(input.email))]),
  );
  assertUnlocked(lock, 'sign_in', now);

  const verdict = user?.passwordHash
    ? await deps.passwords.verify(user.passwordHash, input.password)
    : await deps.passwords.verifyDummy(input.password).then(() => ({ ok: false, needsRehash: false }));

  if (!user || !verdict.ok) {
    await failClosed('the database', async () => {
      const [[counted]] = await db.batch([
        recordAttemptStatement(db, key, now),
        auditInsert(db, { type: 'sign_in_failed', userId: user?.id ?? null, meta, at: now }),
      ]);
      // The failure that first locks a known account is an event (webhooks: user.sign_in_failed); later ones are not.
      const failures = counted?.failures ?? 1;
      if (user && failures === THROTTLE.freeAttempts + 1)
        await auditInsert(db, { type: 'sign_in_locked', userId: user.id, meta, detail: { failures }, at: now });
    });
    throw invalidCredentials();
  }
  if (deps.config.requireVerifiedEmail && user.emailVerifiedAt === null) {
    throw new GatehouseError(
      'email_not_verified',
      'Confirm your email address before signing in: sign up again with this address to get a new link.',
    );
  }

  const rehash = verdict.needsRehash ? await deps.passwords.hash(input.password) : null;
  // The counter reset and any rehash commit in the same batch as the rest of the sign-in.
  const statements = [
    clearAttemptsStatement(db, key),
    ...(rehash ? [db.update(users).set({ passwordHash: rehash, updatedAt: now }).where(eq(users.id, user.id))] : []),
  ];
  return completeFirstFactor(deps, user, ['pwd'], ctx, { ...opts, statements, ...(rehash ? { detail: { rehashed: true } } : {}) });
}

/**
 * Signs in with a passkey as the first factor (with user verification it is two factors at once):
 * the assertion verified against its challenge and stored key, then on as any first factor.
 */
export async function signInWithPasskey(
  deps: Deps,
  input: PasskeyAssertion,
  ctx: SignInContext,
  opts: { defer: (task: Promise<void>) => void },
): Promise<SignInOutcome> {
  const proof = await verifyPasskey(deps, input, ctx.meta);
  const user = await failClosed('the database', () => findUserById(deps.db, proof.userId));
  if (!user) throw new GatehouseError('invalid_passkey', 'This passkey is not registered here.');
  return completeFirstFactor(deps, user, combineAmr([], proof.amr), ctx, { ...opts, detail: { method: 'passkey' } });
}
