import * as z from 'zod';
import { blockUser, deleteUser, existingUser, unblockUser } from '../auth/account-lifecycle';
import { createUser, updateUser } from '../auth/manage-users';
import { countsOf } from '../auth/user-credentials';
import type { Deps } from '../deps';
import { emailField, shownEmail } from '../identity/email';
import type { ChangeBy } from '../identity/user-records';
import { metadataInput, profileChange, profileOutput, readMetadata, roleName, rolesInput } from '../identity/profile';
import { searchUsers } from '../identity/user-search';
import { rolesOf, type User, viewOf } from '../identity/users';
import { failClosed } from '../lib/errors';
import { forgetKeys, keyIdsOf } from './client-records';
import { decodeCursor, encodeCursor } from './cursor';
import { changeOf, readBy } from './acting';
import { idParam, millis, operation, pageOf, pageQuery } from './operations';
import { userCredentialOperations } from './user-credentials-operations';
import { exportDocument, exportUserData } from '../account/data-export';

/** Users: search, read, create, change, block, delete (docs/admin-api.md "Users"). */

export const userView = z.object({
  id: z.string(),
  email: z.string().nullable().describe('null for an account without an address (made from an upstream identity that shared none).'),
  email_verified: z.boolean().nullable(),
  has_password: z.boolean(),
  roles: z.array(z.string()),
  tier: z.string(),
  profile: profileOutput,
  app_metadata: z.record(z.string(), z.unknown()),
  user_metadata: z.record(z.string(), z.unknown()),
  blocked: z.boolean(),
  blocked_at: millis.nullable(),
  created_at: millis,
  updated_at: millis,
  last_sign_in_at: millis.nullable(),
});

/** A user as the admin API shows them: never a password hash or a secret; a placeholder address as null. */
export function userJson(user: User, roles: string[]): z.output<typeof userView> {
  const email = shownEmail(user.email);
  return {
    id: user.id,
    email,
    email_verified: email === null ? null : user.emailVerifiedAt !== null,
    has_password: user.passwordHash !== null,
    roles: [...roles].sort(),
    tier: user.tier,
    profile: viewOf(user, roles).profile as z.output<typeof profileOutput>,
    app_metadata: readMetadata(user.appMetadata),
    user_metadata: readMetadata(user.userMetadata),
    blocked: user.blockedAt !== null,
    blocked_at: user.blockedAt,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
    last_sign_in_at: user.lastSignInAt,
  };
}

const userDetail = userView.extend({
  counts: z.object({
    sessions: z.number().int().describe('Live sessions, app-host sessions included.'),
    passkeys: z.number().int(),
    linked_identities: z.number().int(),
  }),
  second_factors: z.object({ totp: z.boolean(), recovery_codes_left: z.number().int() }),
});

/** The user as they are now, with their roles. */
export async function currentUser(deps: Deps, id: string) {
  const user = await existingUser(deps, id);
  return userJson(user, await failClosed('the database', () => rolesOf(deps.db, id)));
}

const since = (what: string) => z.coerce.number().int().min(0).optional().describe(`${what} from this time (ms), inclusive.`);
const until = (what: string) => z.coerce.number().int().min(0).optional().describe(`${what} before this time (ms), exclusive.`);

const userQuery = pageQuery.extend({
  email: z.string().max(320).optional().describe('Exactly this address (normalised as at sign-up).'),
  email_prefix: z.string().min(1).max(254).optional().describe('Addresses that start with this (in address order).'),
  id: z.string().max(200).optional(),
  role: roleName.optional().describe('Users with this role (in user-id order).'),
  tier: roleName.optional(),
  blocked: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  created_since: since('Created'),
  created_until: until('Created'),
  last_sign_in_since: since('Last signed in'),
  last_sign_in_until: until('Last signed in'),
});

const accountFields = {
  email: emailField,
  email_verified: z.boolean().optional().describe('Whether the address counts as verified (the operator vouches for it).'),
  roles: rolesInput.optional(),
  tier: roleName.optional().describe('Default: free.'),
  profile: profileChange.optional(),
  app_metadata: metadataInput.optional(),
  user_metadata: metadataInput.optional(),
};

/** The fields creating and changing share, from the API's names to the domain's. */
const accountOf = (body: Partial<z.output<z.ZodObject<typeof accountFields>>>) => ({
  emailVerified: body.email_verified,
  roles: body.roles,
  tier: body.tier,
  profile: body.profile,
  appMetadata: body.app_metadata,
  userMetadata: body.user_metadata,
});

const createBody = z
  .object({
    ...accountFields,
    password: z.string().max(1024).optional().describe('Under the sign-up password policy; omit for an account without one.'),
    send_invitation: z.boolean().optional().describe('Mail a link to choose a password (valid 72 hours); only without `password`.'),
  })
  .strict();

const updateBody = z
  .object({
    ...accountFields,
    email: emailField.optional(),
    verify: z.boolean().optional().describe('Mark the address (the new one, or the current) unverified and mail it a link to confirm it.'),
  })
  .strict();

const userResponse = { 200: { description: 'The user', schema: userView } };

/** POST /users/{id}/block and /unblock: idempotent, answering with the user as the change left them. */
const blockingOperation = (
  verb: 'block' | 'unblock',
  summary: string,
  change: (deps: Deps, userId: string, by: ChangeBy) => Promise<unknown>,
) =>
  operation({
    method: 'post',
    path: `/users/{id}/${verb}`,
    operationId: `${verb}User`,
    tag: 'Users',
    summary,
    description: verb === 'block' ? 'Idempotent. An admin cannot block their own account (409).' : 'Idempotent.',
    scope: 'admin:users:write',
    params: idParam,
    responses: userResponse,
    handle: async ({ deps, actor, meta, params }) => {
      await change(deps, params.id, await changeOf(deps, actor, meta, { userId: params.id }));
      // A blocked user's API keys open nothing: this isolate drops what it holds of them now.
      forgetKeys(await keyIdsOf(deps, { userId: params.id }));
      return { status: 200, body: await currentUser(deps, params.id) };
    },
  });

const accountOperations = [
  operation({
    method: 'get',
    path: '/users',
    operationId: 'listUsers',
    tag: 'Users',
    summary: 'Search users',
    description:
      'Pages walk an index: by address for `email`/`email_prefix`, by user id for `role`, most recent first for a last-sign-in range, otherwise newest first.',
    scope: 'admin:users:read',
    query: userQuery,
    responses: { 200: { description: 'A page of users', schema: pageOf(userView) } },
    handle: async ({ deps, query }) => {
      const { limit, cursor, ...filters } = query;
      const after = await decodeCursor(deps, 'users', filters, cursor);
      const page = await failClosed('the database', () => searchUsers(deps.db, filters, after, limit));
      return {
        status: 200,
        body: {
          items: page.users.map((u) => userJson(u, u.roles)),
          next_cursor: page.next ? await encodeCursor(deps, 'users', filters, page.next) : null,
        },
      };
    },
  }),
  operation({
    method: 'post',
    path: '/users',
    operationId: 'createUser',
    tag: 'Users',
    summary: 'Create a user',
    description: 'With or without a password (the sign-up policy applies), verified or not; an address already taken is a 409.',
    scope: 'admin:users:write',
    body: createBody,
    responses: { 201: { description: 'The user created', schema: userView } },
    handle: async ({ deps, actor, meta, body, defer }) => {
      const id = await createUser(
        deps,
        { ...accountOf(body), email: body.email, password: body.password, sendInvitation: body.send_invitation },
        await changeOf(deps, actor, meta, { roles: body.roles }),
        defer,
      );
      return { status: 201, body: await currentUser(deps, id), headers: { location: `/auth/admin/v1/users/${id}` } };
    },
  }),
  operation({
    method: 'get',
    path: '/users/{id}',
    operationId: 'getUser',
    tag: 'Users',
    summary: 'Read a user, with counts of their sessions and credentials',
    scope: 'admin:users:read',
    params: idParam,
    responses: { 200: { description: 'The user', schema: userDetail } },
    handle: async ({ deps, params }) => {
      const user = await currentUser(deps, params.id);
      const counts = await countsOf(deps, params.id);
      return {
        status: 200,
        body: {
          ...user,
          counts: { sessions: counts.sessions, passkeys: counts.factors.passkeys, linked_identities: counts.linkedIdentities },
          second_factors: { totp: counts.factors.totp, recovery_codes_left: counts.factors.recoveryCodesLeft },
        },
      };
    },
  }),
  operation({
    method: 'patch',
    path: '/users/{id}',
    operationId: 'updateUser',
    tag: 'Users',
    summary: 'Change a user’s address, roles, tier, profile or metadata',
    description:
      'Only the fields given change; `roles` and each metadata object are replaced whole; a profile field set to null is cleared. Audited as user_updated with the names of the fields changed.',
    scope: 'admin:users:write',
    params: idParam,
    body: updateBody,
    responses: userResponse,
    handle: async ({ deps, actor, meta, params, body, defer }) => {
      const by = await changeOf(deps, actor, meta, { userId: params.id, roles: body.roles });
      await updateUser(deps, params.id, { ...accountOf(body), email: body.email, verify: body.verify }, by, defer);
      return { status: 200, body: await currentUser(deps, params.id) };
    },
  }),
  operation({
    method: 'get',
    path: '/users/{id}/export',
    operationId: 'exportUser',
    tag: 'Users',
    summary: 'Everything held about a user, as one JSON document (the same the person downloads)',
    description:
      'Profile, address, roles, metadata, linked identities, credentials (metadata only, never secrets), sessions, connected apps, consent history, sign-in history and the newest audit events (docs/privacy.md, "Data export"). Audited as data_exported.',
    scope: 'admin:users:read',
    params: idParam,
    responses: { 200: { description: 'The export document', schema: exportDocument } },
    handle: async ({ deps, actor, meta, params }) => ({
      status: 200,
      body: await exportUserData(deps, params.id, readBy(actor, meta)),
    }),
  }),
  blockingOperation('block', 'Block a user: no sign-in by any method; every session and token ends now', blockUser),
  blockingOperation('unblock', 'Unblock a user: they can sign in again (nothing that ended comes back)', unblockUser),
  operation({
    method: 'delete',
    path: '/users/{id}',
    operationId: 'deleteUser',
    tag: 'Users',
    summary: 'Delete a user, their sessions, tokens and credentials',
    description:
      'A 503 part-way leaves the account in place and blocked; repeat the call to finish. An admin cannot delete their own account (409).',
    scope: 'admin:users:write',
    params: idParam,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ deps, actor, meta, params }) => {
      const keys = await keyIdsOf(deps, { userId: params.id });
      await deleteUser(deps, params.id, await changeOf(deps, actor, meta, { userId: params.id }));
      forgetKeys(keys);
      return { status: 204 };
    },
  }),
];

/** Users, then their sessions and credentials. */
export const userOperations = [...accountOperations, ...userCredentialOperations];
