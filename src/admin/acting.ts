import type { ChangeBy } from '../identity/user-records';
import type { RequestMeta } from '../lib/request-meta';
import { type Actor, actorName } from './operations';

/** Who makes a change through the admin API, as its audit event records them (and the client they called with). */
export const changeBy = (actor: Actor, meta: RequestMeta): ChangeBy => ({
  actor: actorName(actor),
  meta,
  detail: { clientId: actor.clientId },
});
