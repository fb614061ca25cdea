import type * as z from 'zod';
import type { Config } from '../config';
import type { Deps } from '../deps';
import type { RequestMeta } from '../identity/audit';
import { profileChange } from '../identity/profile';
import { type AttributeValue, attributesChange, missingFor, readAttributes } from '../identity/profile-attributes';
import { runStatements, userChangeStatements } from '../identity/user-records';
import { findUserById, viewOf } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { assertLiveSession } from '../sessions/session-lifecycle';
import type { SessionClaims } from '../sessions/session-token';

/**
 * The profile a person edits themselves: their name, preferred locale and time zone (OIDC claims,
 * validated as the admin API validates them, identity/profile.ts), and the values of the profile
 * attributes the operator declares (PROFILE_ATTRIBUTES, each of its type). An unknown or
 * operator-only field (roles, tier, metadata, the address) is refused, naming it. Not a sensitive
 * action: none of these signs anyone in or changes where mail goes. Audited `user_updated` with the
 * field names (webhook `user.updated`).
 */
const claims = profileChange.pick({ name: true, locale: true, zoneinfo: true });

/** The body of a change, for this configuration's attributes. */
export const ownProfileInput = (config: Pick<Config, 'attributes'>) =>
  claims.extend({ attributes: attributesChange(config.attributes).optional() }).strict();
export type OwnProfileChange = z.output<ReturnType<typeof ownProfileInput>>;

export interface OwnProfile {
  profile: { name?: string; locale?: string; zoneinfo?: string };
  attributes: Record<string, AttributeValue>;
}

async function read(deps: Deps, userId: string): Promise<OwnProfile> {
  const user = await failClosed('the database', () => findUserById(deps.db, userId));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  const { name, locale, zoneinfo } = viewOf(user, []).profile;
  return {
    profile: { ...(name ? { name } : {}), ...(locale ? { locale } : {}), ...(zoneinfo ? { zoneinfo } : {}) },
    attributes: readAttributes(user.profileAttributes, deps.config.attributes),
  };
}

/** The fields the person may edit, as the record holds them. */
export async function ownProfile(deps: Deps, session: SessionClaims): Promise<OwnProfile> {
  await assertLiveSession(deps, session);
  return read(deps, session.sub);
}

export async function updateOwnProfile(
  deps: Deps,
  session: SessionClaims,
  change: OwnProfileChange,
  meta: RequestMeta,
): Promise<OwnProfile> {
  await assertLiveSession(deps, session);
  const { attributes, ...profile } = change;
  if (Object.keys(profile).length === 0 && Object.keys(attributes ?? {}).length === 0)
    throw new GatehouseError('invalid_request', 'body: nothing to change', { field: 'body' });
  const now = deps.now();
  await failClosed('the database', () =>
    runStatements(
      deps.db,
      userChangeStatements(
        deps.db,
        session.sub,
        { ...(Object.keys(profile).length ? { profile } : {}), ...(attributes && Object.keys(attributes).length ? { attributes } : {}) },
        { actor: null, meta },
        now,
      ),
    ),
  );
  return read(deps, session.sub);
}

/** The attributes an app (client) needs before it gets a code, that this person has not given (progressive profiling). */
export async function attributesMissingFor(deps: Deps, userId: string, clientId: string) {
  if (deps.config.attributes.length === 0) return [];
  const { attributes } = await read(deps, userId);
  return missingFor(deps.config.attributes, attributes, clientId);
}
