import { ACR, acrSatisfies, targetAcr } from '../auth/acr';
import type { Identity } from './identity';
import type { RoutePolicy } from './routes-config';

export type Decision =
  | { allow: true }
  /** No (valid) credential: a browser goes to sign-in, an API client gets 401. */
  | { allow: false; status: 401; error: 'invalid_token' | 'unauthenticated'; reason: string }
  /** Authenticated but not enough (RFC 6750 §3.1 insufficient_scope, or a role/tier/freshness rule). */
  | { allow: false; status: 403; error: 'insufficient_scope' | 'forbidden'; reason: string }
  /**
   * Signed in, but not strongly enough (`stepUp: second_factor`, towards `acr`) or too long ago
   * (`stepUp: sign_in`): a browser is taken through step-up and brought back.
   */
  | { allow: false; status: 401; error: 'reauthenticate'; reason: string; stepUp: 'second_factor' | 'sign_in'; acr: string | null };

/** Applies a route's policy to who is asking (pure; the caller has verified the identity). */
export function decide(policy: RoutePolicy, who: Identity | null, nowSeconds: number): Decision {
  if (policy.access === 'public') return { allow: true };
  if (!who) return { allow: false, status: 401, error: 'unauthenticated', reason: 'Sign in to continue.' };
  // A client acting for itself is not a user: only routes that opt in take it (DESIGN.md §3).
  if (who.kind === 'machine' && !policy.machine)
    return {
      allow: false,
      status: 403,
      error: 'forbidden',
      reason: 'This route serves users: a token a client got for itself is not accepted.',
    };
  if (policy.clients && who.via !== 'session' && (!who.clientId || !policy.clients.includes(who.clientId)))
    return { allow: false, status: 403, error: 'forbidden', reason: 'Tokens of this client are not accepted here.' };
  if (policy.rolesAny && !policy.rolesAny.some((r) => who.roles.includes(r)))
    return { allow: false, status: 403, error: 'forbidden', reason: `Requires one of the roles: ${policy.rolesAny.join(', ')}.` };
  if (policy.rolesAll && !policy.rolesAll.every((r) => who.roles.includes(r)))
    return { allow: false, status: 403, error: 'forbidden', reason: `Requires the roles: ${policy.rolesAll.join(', ')}.` };
  if (policy.tiers && (!who.tier || !policy.tiers.includes(who.tier)))
    return { allow: false, status: 403, error: 'forbidden', reason: `Requires the tier: ${policy.tiers.join(' or ')}.` };
  if (policy.scopes && who.via !== 'session' && !policy.scopes.every((s) => who.scopes?.includes(s)))
    return { allow: false, status: 403, error: 'insufficient_scope', reason: `Requires the scopes: ${policy.scopes.join(' ')}.` };
  if (policy.maxAuthAge !== undefined && (who.authTime === null || nowSeconds - who.authTime > policy.maxAuthAge))
    return { allow: false, status: 401, error: 'reauthenticate', reason: 'Sign in again to continue.', stepUp: 'sign_in', acr: null };
  if (policy.amr && !policy.amr.some((m) => who.amr.includes(m))) {
    const acr = policy.amr.includes('hwk') ? ACR.phishingResistant : ACR.mfa;
    return {
      allow: false,
      status: 401,
      error: 'reauthenticate',
      reason: `Sign in with: ${policy.amr.join(' or ')}.`,
      stepUp: 'second_factor',
      acr,
    };
  }
  if (policy.acr && !acrSatisfies(who.acr, policy.acr))
    return {
      allow: false,
      status: 401,
      error: 'reauthenticate',
      reason: `A stronger sign-in is required (${policy.acr.join(' or ')}).`,
      stepUp: 'second_factor',
      acr: targetAcr(policy.acr),
    };
  return { allow: true };
}
