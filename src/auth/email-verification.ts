import type { Deps } from '../deps';
import type { RequestMeta } from '../identity/audit';
import { consumeEmailToken, peekEmailToken, TOKEN_IS_LIVE } from '../identity/email-tokens';
import { findUserByEmail, findUserById, newUserId } from '../identity/users';
import { randomToken, sha256 } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import type { SignInContext } from './risk';
import { completeFirstFactor, type SignInOutcome } from './second-factor';

/**
 * Opens a verification link. For a pending sign-up this creates the account (with the password
 * chosen at sign-up, or none for a passkey sign-up) already verified; for an existing account it
 * marks the address verified.
 * The token is consumed in the same D1 transaction as those writes and the audit event.
 * A sign-up through an upstream gets the upstream identity linked (and its name and picture) only
 * when the link is opened in the browser that started it (`upstreamBinding`, its cookie), and
 * while the provider is enabled: anyone can make an upstream account claim an address, and the
 * mailbox's owner opening that mail must not let the stranger in.
 */
export async function verifyEmail(
  deps: Deps,
  token: string,
  meta: RequestMeta,
  upstreamBinding?: string,
): Promise<{ userId: string; email: string; created: boolean; passwordless: boolean }> {
  const now = deps.now();
  // Never matches a stored hash without the cookie (a hash is 43 base64url characters).
  const bindingHash = upstreamBinding ? await sha256(upstreamBinding) : '-';
  const bound = `(upstream_identity IS NOT NULL AND json_extract(upstream_identity, '$.bindingHash') = ?6
      AND EXISTS (SELECT 1 FROM identity_providers ip WHERE ip.id = json_extract(upstream_identity, '$.providerId') AND ip.enabled = 1))`;
  const peeked = await failClosed('the database', () => peekEmailToken(deps.db, 'verify_email', token, now));
  const id = newUserId();
  const consumed = await failClosed('the database', () =>
    consumeEmailToken(deps.d1, {
      purpose: 'verify_email',
      tokenHash: peeked.tokenHash,
      now,
      effects: [
        {
          // A pending sign-up becomes an account, unless the address got one meanwhile.
          sql: `INSERT INTO users (id, email, email_verified_at, password_hash, tier, name, picture, profile_attributes, created_at, updated_at)
                SELECT ?4, email, ?3, password_hash, 'free',
                       CASE WHEN ${bound} THEN json_extract(upstream_identity, '$.name') END,
                       CASE WHEN ${bound} THEN json_extract(upstream_identity, '$.picture') END,
                       coalesce(profile_attributes, '{}'), ?3, ?3
                FROM email_tokens
                WHERE ${TOKEN_IS_LIVE} AND user_id IS NULL
                  AND NOT EXISTS (SELECT 1 FROM users WHERE users.email = email_tokens.email)`,
          params: [id, null, bindingHash],
        },
        {
          // After the account, so the webhook outbox (migrations/0013) has the user to report.
          sql: `INSERT INTO audit_events (type, user_id, ip, user_agent, detail, created_at)
                SELECT 'sign_up', ?4, ?5, ?6, NULL, ?3 FROM email_tokens
                WHERE ${TOKEN_IS_LIVE} AND EXISTS (SELECT 1 FROM users WHERE users.id = ?4)`,
          params: [id, meta.ip, meta.userAgent?.slice(0, 256) ?? null],
        },
        {
          // A sign-up through an upstream that did not verify the address: its identity is linked to
          // the account this very consumption made (never to one the address got meanwhile).
          sql: `INSERT INTO linked_identities (id, user_id, provider_id, issuer, subject, email, email_verified, name, picture, created_at)
                SELECT ?5, ?4, json_extract(upstream_identity, '$.providerId'), json_extract(upstream_identity, '$.issuer'),
                       json_extract(upstream_identity, '$.subject'), email, 0, json_extract(upstream_identity, '$.name'),
                       json_extract(upstream_identity, '$.picture'), ?3
                FROM email_tokens WHERE ${TOKEN_IS_LIVE} AND user_id IS NULL AND ${bound}
                  AND EXISTS (SELECT 1 FROM users WHERE users.id = ?4)
                  AND NOT EXISTS (SELECT 1 FROM linked_identities l WHERE l.issuer = json_extract(upstream_identity, '$.issuer')
                                  AND l.subject = json_extract(upstream_identity, '$.subject'))`,
          params: [id, randomToken(16), bindingHash],
        },
        {
          sql: `UPDATE users SET email_verified_at = coalesce(email_verified_at, ?3), updated_at = ?3
                WHERE id = (SELECT user_id FROM email_tokens WHERE ${TOKEN_IS_LIVE})`,
        },
        {
          sql: `INSERT INTO audit_events (type, user_id, ip, user_agent, detail, created_at)
                SELECT 'email_verified', (SELECT id FROM users WHERE users.email = email_tokens.email), ?4, ?5, NULL, ?3
                FROM email_tokens WHERE ${TOKEN_IS_LIVE}`,
          params: [meta.ip, meta.userAgent?.slice(0, 256) ?? null],
        },
        {
          // Other pending sign-ups for this address are void once it has an account.
          sql: `DELETE FROM email_tokens WHERE purpose = ?2 AND token_hash != ?1 AND user_id IS NULL
                AND email = (SELECT email FROM email_tokens WHERE ${TOKEN_IS_LIVE})`,
        },
      ],
    }),
  );
  const user = await failClosed('the database', () => findUserByEmail(deps.db, consumed.email));
  const created = user!.id === id;
  return { userId: user!.id, email: consumed.email, created, passwordless: created && user!.passwordHash === null };
}

/**
 * A passkey sign-up has no password to sign in with: confirming the address (a proven email, amr
 * `email`) signs the person in, so they can create their passkey next.
 */
export async function signInAfterPasskeySignUp(
  deps: Deps,
  userId: string,
  ctx: SignInContext,
  defer: (task: Promise<void>) => void,
): Promise<SignInOutcome> {
  const user = await failClosed('the database', () => findUserById(deps.db, userId));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in to continue.');
  return completeFirstFactor(deps, user, ['email'], ctx, { defer, detail: { method: 'email_verification' } });
}
