import * as z from 'zod';
import { credentialsOf, endAllSessions, endSession, removePasskeyOf, removeTotpOf, sessionsOf } from '../auth/user-credentials';
import { changeOf } from './acting';
import { idParam, millis, operation } from './operations';

/** A user's sessions and credentials: list them, end sessions, remove second factors (docs/admin-api.md "Users"). */

const sessionView = z.object({
  sid: z.string(),
  amr: z.array(z.string()).describe('How the person signed in (RFC 8176).'),
  auth_time: z.number().int().describe('When they signed in, seconds since the epoch.'),
  relayed: z.boolean().describe('Made by a cross-device handoff from another session.'),
  host: z.string().nullable().describe('The app host of an app-host session; null for Gatehouse’s own.'),
  parent_sid: z.string().nullable().describe('The Gatehouse session an app-host session was made from.'),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  created_at: millis,
  last_seen_at: millis,
  expires_at: millis,
});

const passkeyView = z.object({
  id: z.string().describe('The credential id (base64url).'),
  name: z.string(),
  backed_up: z.boolean(),
  created_at: millis,
  last_used_at: millis.nullable(),
});

const sessionParams = idParam.extend({ sid: z.string().min(1).max(64) });
const passkeyParams = idParam.extend({ passkey_id: z.string().min(1).max(1400) });
const deleted = { 204: { description: 'Removed' } };

export const userCredentialOperations = [
  operation({
    method: 'get',
    path: '/users/{id}/sessions',
    operationId: 'listUserSessions',
    tag: 'Users',
    summary: 'List a user’s live sessions, newest first',
    scope: 'admin:users:read',
    params: idParam,
    responses: { 200: { description: 'The sessions', schema: z.object({ items: z.array(sessionView) }) } },
    handle: async ({ deps, params }) => {
      const sessions = await sessionsOf(deps, params.id);
      const items = sessions.map((s) => ({
        sid: s.sid,
        amr: s.amr,
        auth_time: s.authTime,
        relayed: s.relayed,
        host: s.host,
        parent_sid: s.parentSid,
        ip: s.ip,
        user_agent: s.userAgent,
        created_at: s.createdAt,
        last_seen_at: s.lastSeenAt,
        expires_at: Math.min(s.idleExpiresAt, s.absoluteExpiresAt),
      }));
      return { status: 200, body: { items } };
    },
  }),
  operation({
    method: 'delete',
    path: '/users/{id}/sessions/{sid}',
    operationId: 'revokeUserSession',
    tag: 'Users',
    summary: 'End one session (with its app-host sessions and the refresh tokens born of it)',
    scope: 'admin:users:write',
    params: sessionParams,
    responses: deleted,
    handle: async ({ deps, actor, meta, params }) => {
      await endSession(deps, params.id, params.sid, await changeOf(deps, actor, meta, { userId: params.id }));
      return { status: 204 };
    },
  }),
  operation({
    method: 'delete',
    path: '/users/{id}/sessions',
    operationId: 'revokeAllUserSessions',
    tag: 'Users',
    summary: 'End every session and revoke every refresh token of a user',
    scope: 'admin:users:write',
    params: idParam,
    responses: { 200: { description: 'How many sessions ended', schema: z.object({ ended: z.number().int() }) } },
    handle: async ({ deps, actor, meta, params }) => ({
      status: 200,
      body: { ended: await endAllSessions(deps, params.id, await changeOf(deps, actor, meta, { userId: params.id })) },
    }),
  }),
  operation({
    method: 'get',
    path: '/users/{id}/credentials',
    operationId: 'listUserCredentials',
    tag: 'Users',
    summary: 'A user’s second factors and passkeys (metadata only, never a secret)',
    scope: 'admin:users:read',
    params: idParam,
    responses: {
      200: {
        description: 'The credentials',
        schema: z.object({ totp: z.boolean(), recovery_codes_left: z.number().int(), passkeys: z.array(passkeyView) }),
      },
    },
    handle: async ({ deps, params }) => {
      const { secondFactors, passkeys } = await credentialsOf(deps, params.id);
      return {
        status: 200,
        body: {
          totp: secondFactors.totp,
          recovery_codes_left: secondFactors.recoveryCodesLeft,
          passkeys: passkeys.map((p) => ({
            id: p.id,
            name: p.name,
            backed_up: p.backedUp,
            created_at: p.createdAt,
            last_used_at: p.lastUsedAt,
          })),
        },
      };
    },
  }),
  operation({
    method: 'delete',
    path: '/users/{id}/totp',
    operationId: 'removeUserTotp',
    tag: 'Users',
    summary: 'Remove a user’s authenticator app and recovery codes (as `npm run users -- reset-mfa`)',
    description: 'For someone who lost them, once you have verified who they are another way.',
    scope: 'admin:users:write',
    params: idParam,
    responses: deleted,
    handle: async ({ deps, actor, meta, params }) => {
      await removeTotpOf(deps, params.id, await changeOf(deps, actor, meta, { userId: params.id }));
      return { status: 204 };
    },
  }),
  operation({
    method: 'delete',
    path: '/users/{id}/passkeys/{passkey_id}',
    operationId: 'removeUserPasskey',
    tag: 'Users',
    summary: 'Remove one of a user’s passkeys',
    scope: 'admin:users:write',
    params: passkeyParams,
    responses: deleted,
    handle: async ({ deps, actor, meta, params }) => {
      await removePasskeyOf(deps, params.id, params.passkey_id, await changeOf(deps, actor, meta, { userId: params.id }));
      return { status: 204 };
    },
  }),
];
