import type { Deps } from '../deps';
import { pendingPurposes } from '../identity/consent-records';
import { failClosed } from '../lib/errors';
import { attributesMissingFor } from './own-profile';

/**
 * What a person must do before an app gets tokens for them, whatever the way it asks — a code at
 * authorize, a device code approved on another screen: accept a required consent purpose at the
 * version in force (a new terms version since they signed in), or give the profile attributes this
 * app needs (progressive profiling). Null when nothing stands in the way.
 */
export async function appAccessBlocker(deps: Deps, userId: string, clientId: string): Promise<'purposes' | 'profile' | null> {
  if ((await failClosed('the database', () => pendingPurposes(deps.db, deps.config.purposes, userId))).length > 0) return 'purposes';
  if ((await attributesMissingFor(deps, userId, clientId)).length > 0) return 'profile';
  return null;
}
