import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import type { Deps } from '../deps';
import type { RequestMeta } from '../identity/audit';
import { GatehouseError } from '../lib/errors';
import type { SessionClaims } from '../sessions/session-token';
import { registerPasskey, registrationOptions, removePasskey, type PasskeyView } from './passkeys';
import { authorizeSensitiveAction, requireRecentSignIn, type Proof } from './recent-auth';
import {
  confirmTotpEnrollment,
  disableTotp,
  pendingTotpSecret,
  regenerateRecoveryCodes,
  secondFactorsOf,
  startTotpEnrollment,
} from './totp';

/**
 * The signed-in person managing their own second factors: each action checks the sensitive-action
 * rule (recent-auth.ts) itself, so no route can forget it. Showing or starting something (a new
 * authenticator secret, passkey options) needs a recent sign-in on this device; creating or
 * removing a credential needs that or a proof given now.
 */

/** Starts (or shows again) TOTP enrolment: the secret and the otpauth:// URI for the app. */
export async function beginTotpEnrolment(deps: Deps, session: SessionClaims): Promise<{ secret: string; uri: string }> {
  await requireRecentSignIn(deps, session);
  const user = { id: session.sub, email: session.email };
  return (await pendingTotpSecret(deps, user)) ?? (await startTotpEnrollment(deps, user));
}

/** The pending enrolment's secret (to re-render its page), or null when none waits. */
export const pendingTotpEnrolment = (deps: Deps, session: SessionClaims) =>
  pendingTotpSecret(deps, { id: session.sub, email: session.email });

/** Confirms enrolment with the app's first code; returns the recovery codes (shown once). */
export async function finishTotpEnrolment(
  deps: Deps,
  session: SessionClaims,
  code: string,
  proof: Proof | undefined,
  meta: RequestMeta,
): Promise<string[]> {
  await authorizeSensitiveAction(deps, session, proof, meta);
  return confirmTotpEnrollment(deps, session.sub, code, meta);
}

export async function removeTotp(deps: Deps, session: SessionClaims, proof: Proof | undefined, meta: RequestMeta): Promise<void> {
  await authorizeSensitiveAction(deps, session, proof, meta);
  await disableTotp(deps, session.sub, meta);
}

/** New recovery codes; they come with an authenticator app, so there must be one. */
export async function replaceRecoveryCodes(
  deps: Deps,
  session: SessionClaims,
  proof: Proof | undefined,
  meta: RequestMeta,
): Promise<string[]> {
  if (!(await secondFactorsOf(deps, session.sub)).totp)
    throw new GatehouseError('totp_required', 'Set up an authenticator app first: recovery codes come with it.');
  await authorizeSensitiveAction(deps, session, proof, meta);
  return regenerateRecoveryCodes(deps, session.sub, meta);
}

export async function beginPasskeyRegistration(deps: Deps, session: SessionClaims) {
  await requireRecentSignIn(deps, session);
  return registrationOptions(deps, { id: session.sub, email: session.email });
}

export async function addPasskey(
  deps: Deps,
  session: SessionClaims,
  input: { challengeId: string; response: RegistrationResponseJSON; name: string },
  proof: Proof | undefined,
  meta: RequestMeta,
): Promise<PasskeyView> {
  await authorizeSensitiveAction(deps, session, proof, meta);
  return registerPasskey(deps, session.sub, input, meta);
}

export async function deletePasskey(
  deps: Deps,
  session: SessionClaims,
  id: string,
  proof: Proof | undefined,
  meta: RequestMeta,
): Promise<void> {
  await authorizeSensitiveAction(deps, session, proof, meta);
  await removePasskey(deps, session.sub, id, meta);
}
