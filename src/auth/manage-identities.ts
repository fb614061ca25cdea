import { and, eq } from 'drizzle-orm';
import { linkedIdentities } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsertWhile, type RequestMeta } from '../identity/audit';
import { shownEmail } from '../identity/email';
import { describeIdentity, identitiesOf } from '../identity/linked-identities';
import { anotherWayIn } from '../identity/sign-in-methods';
import { findUserById } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { identityUnlinkedMail } from '../mail/templates';
import type { SessionClaims } from '../sessions/session-token';
import { authorizeSensitiveAction, type Proof } from './recent-auth';
import { allProviders } from './upstream-provider-records';
import { authUrl } from './urls';

/** A user's linked identities as the account page and the JSON API show them. */
export async function listIdentities(deps: Deps, userId: string) {
  const [rows, providers] = await failClosed('the database', () =>
    Promise.all([identitiesOf(deps.db, userId), allProviders(deps.db, deps.now())]),
  );
  return rows.map((r) => describeIdentity(r, providers.find((p) => p.id === r.providerId)?.displayName ?? r.providerId));
}

/** Removing this would leave the account with no way to sign in. */
export const lastWayIn = () =>
  new GatehouseError('last_sign_in_method', 'This is the only way to sign in to your account: add another (a passkey) first.');

/**
 * Unlinks an identity from the signed-in account — a sensitive action (a proof, or a recent
 * sign-in on this device) — but never the last way to sign in: a password, a passkey, another
 * identity, or an address that email sign-in can reach must remain. Audited and mailed.
 */
export async function unlinkIdentity(
  deps: Deps,
  session: SessionClaims,
  identityId: string,
  proof: Proof | undefined,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<void> {
  await authorizeSensitiveAction(deps, session, proof, meta);
  const userId = session.sub;
  const [user, identity] = await failClosed('the database', () =>
    Promise.all([
      findUserById(deps.db, userId),
      deps.db
        .select()
        .from(linkedIdentities)
        .where(and(eq(linkedIdentities.id, identityId), eq(linkedIdentities.userId, userId)))
        .get(),
    ]),
  );
  if (!user || !identity) throw new GatehouseError('not_found', 'That linked account is not on your account.');
  const address = shownEmail(user.email);
  // The delete checks in its own statement that another way in remains: two removals racing each
  // other (an unlink, a passkey removed) cannot both leave the account with none.
  const now = deps.now();
  const which = and(
    eq(linkedIdentities.id, identityId),
    eq(linkedIdentities.userId, userId),
    anotherWayIn(userId, { identity: identityId }),
  )!;
  const [, deleted] = await failClosed('the database', async () =>
    deps.db.batch([
      // Batched before the delete and under its condition: written exactly when the unlink is.
      auditInsertWhile(
        deps.db,
        {
          type: 'identity_unlinked',
          userId,
          meta,
          detail: { provider: identity.providerId, issuer: identity.issuer, subject: identity.subject },
          at: now,
        },
        linkedIdentities,
        which,
      ),
      deps.db.delete(linkedIdentities).where(which).returning({ id: linkedIdentities.id }),
    ]),
  );
  if (deleted.length === 0) throw lastWayIn();
  const providers = await failClosed('the database', () => allProviders(deps.db, now));
  if (address)
    defer(
      deps.mailer.send(
        identityUnlinkedMail(address, {
          provider: providers.find((p) => p.id === identity.providerId)?.displayName ?? identity.providerId,
          account: identity.email ?? identity.name ?? identity.subject,
          accountLink: authUrl(deps.config, '/auth/account'),
        }),
      ),
    );
}
