import { sql, type SQL } from 'drizzle-orm';
import { linkedIdentities, passkeys, users } from '../db/schema';
import { NO_EMAIL_DOMAIN } from './email';

/**
 * "The account keeps a way in without this one": a password, an address email sign-in can reach,
 * a passkey or a linked identity other than the one being removed. One SQL condition that every
 * removal of a way to sign in (unlinking an identity, removing a passkey) puts in its own DELETE,
 * so two removals racing each other cannot both leave the account with none.
 */
export function anotherWayIn(userId: string, except: { passkey?: string; identity?: string }): SQL {
  return sql`(
    EXISTS (SELECT 1 FROM ${users} u WHERE u.id = ${userId}
      AND (u.password_hash IS NOT NULL OR u.email NOT LIKE ${`%@${NO_EMAIL_DOMAIN}`}))
    OR EXISTS (SELECT 1 FROM ${passkeys} p WHERE p.user_id = ${userId} AND p.id != ${except.passkey ?? ''})
    OR EXISTS (SELECT 1 FROM ${linkedIdentities} l WHERE l.user_id = ${userId} AND l.id != ${except.identity ?? ''})
  )`;
}
