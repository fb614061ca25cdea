import type { Deps } from '../deps';
import type { ChangeBy } from '../identity/user-records';
import { rolesOf } from '../identity/users';
import { failClosed } from '../lib/errors';
import type { RequestMeta } from '../lib/request-meta';
import { ADMIN_ROLE } from './authenticate';
import { adminUserPower, requireAdminPower } from './escalation';
import { type Actor, actorName } from './operations';

/**
 * Who makes a change to a user through the admin API, as its audit event records them (and the
 * client they called with) — every change to a user goes through here, and here the admin power
 * rule (escalation.ts) meets users: an account with the `admin` role is admin power (its address,
 * password, second factors, sessions are a way into every admin scope its token can carry), so
 * changing one, or giving the role (`roles`), needs a caller that holds all of those scopes.
 */
export async function changeOf(
  deps: Deps,
  actor: Actor,
  meta: RequestMeta,
  target: { userId?: string; roles?: readonly string[] | undefined },
): Promise<ChangeBy> {
  const gives = target.roles?.includes(ADMIN_ROLE) ?? false;
  const is =
    !gives &&
    target.userId !== undefined &&
    (await failClosed('the database', () => rolesOf(deps.db, target.userId!))).includes(ADMIN_ROLE);
  if (gives || is)
    requireAdminPower(actor, await adminUserPower(deps), {
      why: gives
        ? `the ${ADMIN_ROLE} role gives its user every admin scope the apps admins sign in through hold`
        : `an account with the ${ADMIN_ROLE} role is the admin power of every app admins sign in through`,
      ...(gives ? { field: 'roles' } : {}),
    });
  return readBy(actor, meta);
}

/** Who reads through the admin API (an export, say): recorded like a change's actor; reading needs no admin power. */
export const readBy = (actor: Actor, meta: RequestMeta): ChangeBy => ({
  actor: actorName(actor),
  meta,
  detail: { clientId: actor.clientId },
});
