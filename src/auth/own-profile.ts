import type * as z from 'zod';
import type { Deps } from '../deps';
import type { RequestMeta } from '../identity/audit';
import { profileChange } from '../identity/profile';
import { runStatements, userChangeStatements } from '../identity/user-records';
import { findUserView, type StandardProfile } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { assertLiveSession } from '../sessions/session-lifecycle';
import type { SessionClaims } from '../sessions/session-token';

/**
 * The profile claims a person edits themselves: their name and preferred locale and time zone,
 * validated as the admin API validates them (identity/profile.ts) — an unknown or operator-only
 * field (roles, tier, metadata, the address) is refused, naming it. Not a sensitive action: none of
 * these signs anyone in or changes where mail goes. Audited `user_updated` with the field names
 * (webhook `user.updated`).
 */
export const ownProfileChange = profileChange.pick({ name: true, locale: true, zoneinfo: true }).strict();
export type OwnProfileChange = z.output<typeof ownProfileChange>;

export const OWN_PROFILE_FIELDS = ['name', 'locale', 'zoneinfo'] as const;

/** The fields the person may edit, as the record holds them. */
export async function ownProfile(deps: Deps, session: SessionClaims): Promise<Pick<StandardProfile, 'name' | 'locale' | 'zoneinfo'>> {
  await assertLiveSession(deps, session);
  const user = await failClosed('the database', () => findUserView(deps.db, session.sub));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  const { name, locale, zoneinfo } = user.profile;
  return { ...(name ? { name } : {}), ...(locale ? { locale } : {}), ...(zoneinfo ? { zoneinfo } : {}) };
}

export async function updateOwnProfile(deps: Deps, session: SessionClaims, change: OwnProfileChange, meta: RequestMeta) {
  await assertLiveSession(deps, session);
  if (Object.keys(change).length === 0) throw new GatehouseError('invalid_request', 'body: nothing to change', { field: 'body' });
  const now = deps.now();
  await failClosed('the database', () =>
    runStatements(deps.db, userChangeStatements(deps.db, session.sub, { profile: change }, { actor: null, meta }, now)),
  );
  return ownProfile(deps, session);
}
