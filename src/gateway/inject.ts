import type { Identity } from './identity';

/**
 * Adds the identity headers of DESIGN.md §3 (never empty ones; email only when the route exposes
 * it). A machine caller gets `Client-Id` and `Scope` only: there is no user to name. A caller with
 * an API key also gets `Key-Id` (the key's public id, never its secret).
 */
export function injectIdentity(headers: Headers, who: Identity, prefix: string, assertion: string, exposeEmail: boolean): void {
  const set = (name: string, value: string | null | undefined) => {
    if (value !== null && value !== undefined && value !== '') headers.set(`${prefix}${name}`, value);
  };
  set('Client-Id', who.clientId);
  set('Key-Id', who.keyId);
  if (who.scopes) set('Scope', who.scopes.join(' '));
  set('Assertion', assertion);
  if (who.kind === 'machine') return;
  set('User-Id', who.sub);
  if (exposeEmail) {
    set('Email', who.email);
    if (who.emailVerified !== null) set('Email-Verified', String(who.emailVerified));
  }
  set('Roles', who.roles.join(','));
  set('Tier', who.tier);
  set('Session-Id', who.sid);
  set('Amr', who.amr.join(','));
  set('Acr', who.acr);
  set('Auth-Time', who.authTime === null ? null : String(who.authTime));
}
