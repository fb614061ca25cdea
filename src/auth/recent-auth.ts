import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { findUserById } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { assertLiveSession } from '../sessions/session-lifecycle';
import type { SessionClaims } from '../sessions/session-token';
import { verifyPasskey, type PasskeyAssertion } from './passkeys';
import { checkSecondFactor } from './second-factor';
import { assertNotLocked, clearAttemptsStatement, recordAttempt, throttleKey } from './throttle';

/** A sign-in at most this old (seconds) counts as recent. */
export const RECENT_SIGN_IN = 600;

/** What a person gives, at that moment, to confirm a sensitive action: something an origin's script cannot. */
export type Proof = { password: string } | { code: string } | { passkey: PasskeyAssertion };

const recentRequired = (message: string) => new GatehouseError('recent_sign_in_required', message);

/**
 * The session must be live, signed in on this device (not relayed by a handoff) and recently.
 * Required to see or start something sensitive (a new authenticator secret, passkey options).
 */
export async function requireRecentSignIn(deps: Deps, session: SessionClaims): Promise<void> {
  await assertLiveSession(deps, session);
  if (session.relayed)
    throw recentRequired('This device was signed in from another device. Sign in here to change your security settings.');
  if (deps.now() / 1000 - session.authTime > RECENT_SIGN_IN) throw recentRequired('For your security, sign in again to continue.');
}

/**
 * The one rule for every action that creates or removes a credential, changes where mail goes, or
 * signs in another device (docs/security.md): a proof given now (password, TOTP or recovery code,
 * passkey) always suffices; without one, a recent sign-in on this device does — except where an
 * origin shares Gatehouse's host, whose scripts can act with the person's cookies: there the proof
 * is required every time.
 */
export async function authorizeSensitiveAction(
  deps: Deps,
  session: SessionClaims,
  proof: Proof | undefined,
  meta: RequestMeta,
): Promise<void> {
  if (proof) {
    await assertLiveSession(deps, session);
    await checkProof(deps, session, proof, meta);
    return;
  }
  if (deps.config.gateway.sharedHost)
    throw new GatehouseError('proof_required', 'Confirm with your password, a code from your authenticator app, or a passkey.', {
      field: 'proof',
    });
  await requireRecentSignIn(deps, session);
}

async function checkProof(deps: Deps, session: SessionClaims, proof: Proof, meta: RequestMeta): Promise<void> {
  const invalid = (message: string) => new GatehouseError('invalid_proof', message, { field: 'proof' });
  if ('code' in proof) {
    await checkSecondFactor(deps, session.sub, { kind: 'code', code: proof.code }, meta).catch((e: unknown) => {
      throw e instanceof GatehouseError && e.status === 400 ? invalid(e.message) : e;
    });
    return;
  }
  if ('passkey' in proof) {
    const verified = await verifyPasskey(deps, proof.passkey, meta).catch((e: unknown) => {
      throw e instanceof GatehouseError && e.status === 400 ? invalid(e.message) : e;
    });
    if (verified.userId !== session.sub) throw invalid('That passkey belongs to another account.');
    return;
  }
  // A password, throttled like sign-in for this account.
  const now = deps.now();
  await failClosed('the database', () => assertNotLocked(deps.db, 'sign_in', session.email, now));
  const user = await failClosed('the database', () => findUserById(deps.db, session.sub));
  const verdict = user?.passwordHash
    ? await deps.passwords.verify(user.passwordHash, proof.password)
    : await deps.passwords.verifyDummy(proof.password).then(() => ({ ok: false }));
  if (!verdict.ok) {
    await failClosed('the database', async () => {
      await recordAttempt(deps.db, 'sign_in', session.email, now);
      await auditInsert(deps.db, { type: 'proof_failed', userId: session.sub, meta, detail: { method: 'password' }, at: now });
    });
    throw invalid(user?.passwordHash ? 'That password is not right.' : 'This account has no password; confirm with a code or a passkey.');
  }
  await failClosed('the database', async () =>
    deps.db.batch([clearAttemptsStatement(deps.db, await throttleKey('sign_in', session.email))]),
  );
}
