import type { Deps } from '../deps';
import { assertPersonalAddress, NO_EMAIL_DOMAIN } from '../identity/email';
import { EMAIL_TOKEN_TTL, emailTokenStatement } from '../identity/email-tokens';
import type { ProfileChange } from '../identity/profile';
import {
  type ChangeBy,
  changedFields,
  newUserStatements,
  runStatements,
  type Statement,
  type UserChange,
  userChangeStatements,
} from '../identity/user-records';
import { findUserByEmail, newUserId, type User } from '../identity/users';
import { failClosed, GatehouseError } from '../lib/errors';
import { confirmAddressMail, invitationMail } from '../mail/templates';
import { existingUser } from './account-lifecycle';
import { checkNewPassword } from './password-policy';
import { authUrl } from './urls';

/**
 * Operators creating and changing accounts (the admin API). The rules of sign-up apply where they
 * do — the password policy, one account per address — and every write is one D1 batch with its
 * audit event; mail (an invitation, a link to confirm a new address) is sent after it commits.
 */

/** How long an invitation's link to choose a password lives (a reset link lives 30 minutes). */
export const INVITATION_TTL = 72 * 3600;

export interface NewAccount {
  /** Normalised (emailField). */
  email: string;
  password?: string | undefined;
  emailVerified?: boolean | undefined;
  /** Mail a link to choose a password (for an account created without one). */
  sendInvitation?: boolean | undefined;
  roles?: readonly string[] | undefined;
  tier?: string | undefined;
  profile?: ProfileChange | undefined;
  appMetadata?: Record<string, unknown> | undefined;
  userMetadata?: Record<string, unknown> | undefined;
}

const addressTaken = () => new GatehouseError('conflict', 'Another account has this email address.', { field: 'email' });

/** D1's answer to a second account with the same address (the users.email unique index), raced past the check. */
const isTakenAddress = (e: unknown) =>
  e instanceof Error && /UNIQUE constraint failed: users\.email/.test(`${e.message} ${String(e.cause ?? '')}`);

/** Runs the batch; a taken address is a 409, any other failure a 503 (nothing was written either way). */
async function commit(deps: Deps, statements: Statement[]): Promise<void> {
  try {
    await runStatements(deps.db, statements);
  } catch (e) {
    if (isTakenAddress(e)) throw addressTaken();
    await failClosed('the database', () => Promise.reject(e));
  }
}

/**
 * Creates an account, with a password (under the sign-up policy) or without one, verified or not,
 * with roles, tier, profile and metadata; with `sendInvitation`, mails a link to choose a password
 * (valid INVITATION_TTL). Returns the new user's id.
 */
export async function createUser(deps: Deps, a: NewAccount, by: ChangeBy, defer: (task: Promise<void>) => void): Promise<string> {
  assertPersonalAddress(a.email);
  if (a.password !== undefined) await checkNewPassword(deps.commonPasswords, a.password, deps.config.passwordMinLength);
  if (a.sendInvitation && a.password !== undefined)
    throw new GatehouseError('invalid_request', 'send_invitation: an invitation lets the person choose a password; send one or the other', {
      field: 'send_invitation',
    });
  if (await failClosed('the database', () => findUserByEmail(deps.db, a.email))) throw addressTaken();
  const passwordHash = a.password !== undefined ? await deps.passwords.hash(a.password) : null;
  const now = deps.now();
  const id = newUserId();
  const statements = newUserStatements(
    deps.db,
    {
      id,
      email: a.email,
      passwordHash,
      emailVerified: a.emailVerified ?? false,
      roles: a.roles ?? [],
      tier: a.tier ?? 'free',
      ...(a.profile ? { profile: a.profile } : {}),
      ...(a.appMetadata ? { appMetadata: a.appMetadata } : {}),
      ...(a.userMetadata ? { userMetadata: a.userMetadata } : {}),
    },
    by,
    now,
  );
  const invitation = a.sendInvitation
    ? await emailTokenStatement(deps.db, { purpose: 'reset_password', email: a.email, userId: id, now, ttl: INVITATION_TTL })
    : null;
  await commit(deps, invitation ? [...statements, invitation.statement] : statements);
  if (invitation)
    defer(
      deps.mailer.send(
        invitationMail(a.email, authUrl(deps.config, '/auth/reset-password', { token: invitation.token }), INVITATION_TTL / 3600),
      ),
    );
  return id;
}

export interface AccountChange extends Omit<UserChange, 'emailVerified'> {
  /** The operator says whether the address is verified. */
  emailVerified?: boolean | undefined;
  /** Mark the address (the new one, or the current) unverified and mail it a link to confirm it. */
  verify?: boolean | undefined;
}

/**
 * Changes an account. A new address is checked like a new account's; with `verify` it becomes
 * unverified and gets a confirmation link (links mailed before, to any address, stop working),
 * without it the operator's word stands. Roles are replaced whole; an admin cannot take the admin
 * role from themselves (they would lock themselves out). Audited as `user_updated` with the names
 * of the fields changed.
 */
export async function updateUser(
  deps: Deps,
  userId: string,
  c: AccountChange,
  by: ChangeBy,
  defer: (task: Promise<void>) => void,
): Promise<void> {
  const { verify, emailVerified, ...rest } = c;
  if (changedFields(c).length === 0 && !verify) throw new GatehouseError('invalid_request', 'body: nothing to change', { field: 'body' });
  if (verify && emailVerified !== undefined)
    throw new GatehouseError('invalid_request', 'verify: give verify or email_verified, not both', { field: 'verify' });
  const user = await existingUser(deps, userId);
  if (c.roles !== undefined && by.actor === `user:${userId}` && !c.roles.includes('admin'))
    throw new GatehouseError('conflict', 'An admin cannot take the admin role from themselves; another admin or a machine client can.', {
      field: 'roles',
    });
  const email = c.email !== undefined && c.email !== user.email ? c.email : undefined;
  if (email !== undefined) {
    assertPersonalAddress(email);
    if (await failClosed('the database', () => findUserByEmail(deps.db, email))) throw addressTaken();
  }
  const change: UserChange = {
    ...rest,
    ...(email !== undefined ? { email } : {}),
    ...(verify ? { emailVerified: false } : emailVerified !== undefined ? { emailVerified } : {}),
  };
  // The address it already has, and nothing else: nothing to write.
  if (changedFields(change).length === 0) return;
  const now = deps.now();
  const confirm = verify ? await confirmation(deps, user, email ?? user.email, now) : null;
  await commit(deps, [...userChangeStatements(deps.db, userId, change, by, now), ...(confirm ? [confirm.statement] : [])]);
  if (confirm) defer(deps.mailer.send(confirm.mail));
}

/** A link to confirm `address` for the user, and the insert of its token (batched after the change, which voids older links). */
async function confirmation(deps: Deps, user: User, address: string, now: number) {
  if (address.endsWith(`@${NO_EMAIL_DOMAIN}`))
    throw new GatehouseError('invalid_request', 'verify: this account has no address to confirm', { field: 'verify' });
  const { token, statement } = await emailTokenStatement(deps.db, { purpose: 'verify_email', email: address, userId: user.id, now });
  const link = authUrl(deps.config, '/auth/verify-email', { token });
  return { statement, mail: confirmAddressMail(address, link, EMAIL_TOKEN_TTL.verify_email / 60) };
}
