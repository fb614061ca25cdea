import type { Identity } from './identity';
import type { RoutePolicy } from './routes-config';

export type Decision =
  | { allow: true }
  /** No (valid) credential: a browser goes to sign-in, an API client gets 401. */
  | { allow: false; status: 401; error: 'invalid_token' | 'unauthenticated'; reason: string }
  /** Authenticated but not enough (RFC 6750 §3.1 insufficient_scope, or a role/tier/freshness rule). */
  | { allow: false; status: 403; error: 'insufficient_scope' | 'forbidden'; reason: string }
  /** Signed in, but too long ago or not strongly enough: a browser re-authenticates. */
  | { allow: false; status: 401; error: 'reauthenticate'; reason: string };

/** Applies a route's policy to who is asking (pure; the caller has verified the identity). */
export function decide(policy: RoutePolicy, who: Identity | null, nowSeconds: number): Decision {
  if (policy.access === 'public') return { allow: true };
  if (!who) return { allow: false, status: 401, error: 'unauthenticated', reason: 'Sign in to continue.' };
  if (policy.rolesAny && !policy.rolesAny.some((r) => who.roles.includes(r)))
    return { allow: false, status: 403, error: 'forbidden', reason: `Requires one of the roles: ${policy.rolesAny.join(', ')}.` };
  if (policy.rolesAll && !policy.rolesAll.every((r) => who.roles.includes(r)))
    return { allow: false, status: 403, error: 'forbidden', reason: `Requires the roles: ${policy.rolesAll.join(', ')}.` };
  if (policy.tiers && (!who.tier || !policy.tiers.includes(who.tier)))
    return { allow: false, status: 403, error: 'forbidden', reason: `Requires the tier: ${policy.tiers.join(' or ')}.` };
  if (policy.scopes && who.via === 'bearer' && !policy.scopes.every((s) => who.scopes?.includes(s)))
    return { allow: false, status: 403, error: 'insufficient_scope', reason: `Requires the scopes: ${policy.scopes.join(' ')}.` };
  if (policy.amr && !policy.amr.some((m) => who.amr.includes(m)))
    return { allow: false, status: 401, error: 'reauthenticate', reason: `Sign in with: ${policy.amr.join(' or ')}.` };
  if (policy.acr && (!who.acr || !policy.acr.includes(who.acr)))
    return { allow: false, status: 401, error: 'reauthenticate', reason: 'A stronger sign-in is required.' };
  if (policy.maxAuthAge !== undefined && (who.authTime === null || nowSeconds - who.authTime > policy.maxAuthAge))
    return { allow: false, status: 401, error: 'reauthenticate', reason: 'Sign in again to continue.' };
  return { allow: true };
}
