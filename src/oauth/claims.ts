import type { UserView } from '../identity/users';

/**
 * Claims about the user released by scope (OIDC Core §5.4), plus Gatehouse's business claims:
 * `roles` and `tier` only with the `roles` scope.
 */
export function userClaims(user: UserView, scope: readonly string[]): Record<string, unknown> {
  const claims: Record<string, unknown> = { sub: user.id };
  if (scope.includes('email')) {
    claims.email = user.email;
    claims.email_verified = user.emailVerified;
  }
  if (scope.includes('profile')) {
    claims.preferred_username = user.email;
    claims.updated_at = Math.floor(user.createdAt / 1000);
  }
  if (scope.includes('roles')) {
    claims.roles = user.roles;
    claims.tier = user.tier;
  }
  return claims;
}
