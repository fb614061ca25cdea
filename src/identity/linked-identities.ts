import { and, eq } from 'drizzle-orm';
import type { Database } from '../db/client';
import { linkedIdentities, type LinkedIdentityRow } from '../db/schema';

export type { LinkedIdentityRow };

/** The identity an upstream vouches for, keyed by (issuer, subject). */
export async function findLinkedIdentity(db: Database, issuer: string, subject: string): Promise<LinkedIdentityRow | undefined> {
  return db
    .select()
    .from(linkedIdentities)
    .where(and(eq(linkedIdentities.issuer, issuer), eq(linkedIdentities.subject, subject)))
    .get();
}

/** A user's linked identities, oldest first. */
export async function identitiesOf(db: Database, userId: string): Promise<LinkedIdentityRow[]> {
  return (await db.select().from(linkedIdentities).where(eq(linkedIdentities.userId, userId)).all()).sort(
    (a, b) => a.createdAt - b.createdAt,
  );
}

/** What the account page and the JSON API show of an identity: never its tokens. */
export const describeIdentity = (r: LinkedIdentityRow, providerName: string) => ({
  id: r.id,
  provider: r.providerId,
  providerName,
  email: r.email,
  emailVerified: r.emailVerified,
  name: r.name,
  linkedAt: r.createdAt,
  lastSignInAt: r.lastSignInAt,
});
