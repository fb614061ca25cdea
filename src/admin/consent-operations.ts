import * as z from 'zod';
import { existingUser } from '../auth/account-lifecycle';
import { recordPurposeAnswers } from '../auth/purposes';
import { purposeDecisionsInput } from '../auth/schemas';
import { consentHistory, purposeStates, type PurposeState } from '../identity/consent-records';
import { failClosed } from '../lib/errors';
import { disconnectApp, listConnectedApps } from '../oauth/connected-apps';
import { actorName, idParam, millis, operation } from './operations';

/**
 * A user's consents through the admin API (docs/admin-api.md "Consents"): the purposes they agreed
 * to (terms, privacy policy, marketing… — CONSENT_PURPOSES) with their history, answers given
 * elsewhere entered by an operator, and the apps they connected, which an operator can disconnect.
 * The rules are the self-service ones (src/auth/purposes.ts, src/oauth/connected-apps.ts).
 */

const answerView = z.object({ version: z.string(), granted: z.boolean(), at: millis }).nullable();

const purposeView = z.object({
  id: z.string(),
  title: z.string(),
  version: z.string().describe('The version in force.'),
  required: z.boolean().describe('Must be accepted at this version to finish a sign-in.'),
  accepted: z.boolean().describe('Accepted at the version in force.'),
  answer: answerView.describe('The newest answer, at whatever version; null when never asked.'),
});

const historyView = z.object({
  purpose: z.string(),
  version: z.string(),
  granted: z.boolean(),
  source: z.string().describe('Where it was answered: sign_in, account, api or admin.'),
  at: millis,
  ip: z.string().nullable(),
});

const consentsView = z.object({ purposes: z.array(purposeView), history: z.array(historyView) });

const appView = z.object({
  client_id: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  apis: z.record(z.string(), z.array(z.string())),
  granted_at: millis.nullable().describe('When consent was last given; null for a first-party app, which asks none.'),
  refresh_tokens: z.number().int().describe('Live refresh tokens (families) the app holds for this user.'),
});

const showPurpose = (p: PurposeState) => ({
  id: p.id,
  title: p.title,
  version: p.version,
  required: p.required,
  accepted: p.accepted,
  answer: p.answer,
});

async function consentsOf(deps: Parameters<typeof existingUser>[0], userId: string, purposes?: PurposeState[]) {
  const [states, rows] = await Promise.all([
    purposes ?? failClosed('the database', () => purposeStates(deps.db, deps.config.purposes, userId)),
    failClosed('the database', () => consentHistory(deps.db, userId)),
  ]);
  return {
    purposes: states.map(showPurpose),
    history: rows.map((r) => ({ purpose: r.purpose, version: r.version, granted: r.granted, source: r.source, at: r.createdAt, ip: r.ip })),
  };
}

export const consentOperations = [
  operation({
    method: 'get',
    path: '/users/{id}/consents',
    operationId: 'getUserConsents',
    tag: 'Users',
    summary: 'A user’s consent purposes (current answers) and their whole history, newest first',
    scope: 'admin:users:read',
    params: idParam,
    responses: { 200: { description: 'Purposes and history', schema: consentsView } },
    handle: async ({ deps, params }) => {
      await existingUser(deps, params.id);
      return { status: 200, body: await consentsOf(deps, params.id) };
    },
  }),
  operation({
    method: 'post',
    path: '/users/{id}/consents',
    operationId: 'recordUserConsents',
    tag: 'Users',
    summary: 'Record answers the person gave elsewhere (a signed form, a call): source admin, with the actor',
    scope: 'admin:users:write',
    params: idParam,
    body: purposeDecisionsInput.strict(),
    responses: { 200: { description: 'Purposes and history after the change', schema: consentsView } },
    handle: async ({ deps, actor, meta, params, body }) => {
      await existingUser(deps, params.id);
      const purposes = await recordPurposeAnswers(deps, params.id, body.decisions, {
        meta,
        source: 'admin',
        actor: actorName(actor),
      });
      return { status: 200, body: await consentsOf(deps, params.id, purposes) };
    },
  }),
  operation({
    method: 'get',
    path: '/users/{id}/connected-apps',
    operationId: 'listUserConnectedApps',
    tag: 'Users',
    summary: 'The apps a user granted access, or that hold refresh tokens for them',
    scope: 'admin:users:read',
    params: idParam,
    responses: { 200: { description: 'The apps', schema: z.object({ items: z.array(appView) }) } },
    handle: async ({ deps, params }) => {
      await existingUser(deps, params.id);
      const apps = await listConnectedApps(deps, params.id);
      const items = apps.map((a) => ({
        client_id: a.clientId,
        name: a.name,
        scopes: a.scopes,
        apis: a.apis,
        granted_at: a.grantedAt,
        refresh_tokens: a.refreshTokens,
      }));
      return { status: 200, body: { items } };
    },
  }),
  operation({
    method: 'delete',
    path: '/users/{id}/connected-apps/{client_id}',
    operationId: 'disconnectUserApp',
    tag: 'Users',
    summary: 'Disconnect an app: its refresh tokens, codes and access end now, its consent goes (consent_revoked)',
    scope: 'admin:users:write',
    params: idParam.extend({ client_id: z.string().min(1).max(256) }),
    responses: { 204: { description: 'Disconnected' } },
    handle: async ({ deps, actor, meta, params }) => {
      await existingUser(deps, params.id);
      await disconnectApp(deps, params.id, params.client_id, { meta, actor: actorName(actor) });
      return { status: 204 };
    },
  }),
];
