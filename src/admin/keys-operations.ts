import * as z from 'zod';
import { auditInsert } from '../identity/audit';
import { failClosed } from '../lib/errors';
import { loadKeys, SIGNING_ALGS } from '../tokens/key-store';
import { keyPolicy, rotateKeysNow, viewKeys } from '../tokens/keys';
import { actorName, millis, operation } from './operations';

/** Signing keys: their public parts and where each stands; a rotation on demand. */

const keyView = z.object({
  kid: z.string(),
  alg: z.enum(SIGNING_ALGS),
  generation: z.number().int(),
  state: z
    .enum(['upcoming', 'signing', 'retired', 'expired'])
    .describe('retired: still published for the tokens it signed; expired: about to be deleted.'),
  created_at: millis,
  signs_from: millis,
  public_jwk: z.record(z.string(), z.unknown()),
});

export const keyOperations = [
  operation({
    method: 'get',
    path: '/signing-keys',
    operationId: 'listSigningKeys',
    tag: 'Signing keys',
    summary: 'List the signing keys (public parts) and the state of each',
    scope: 'admin:keys:read',
    responses: { 200: { description: 'The keys, newest first', schema: z.object({ items: z.array(keyView) }) } },
    handle: async ({ deps }) => {
      const now = deps.now();
      const keys = await failClosed('the database', () => loadKeys(deps.db));
      const view = viewKeys(keys, now, keyPolicy(deps.config.tokens));
      const stateOf = (kid: string) =>
        Object.values(view.signers).some((k) => k?.kid === kid)
          ? 'signing'
          : Object.values(view.upcoming).some((k) => k?.kid === kid)
            ? 'upcoming'
            : view.expired.some((k) => k.kid === kid)
              ? 'expired'
              : 'retired';
      const items = keys
        .sort((a, b) => b.createdAt - a.createdAt || b.generation - a.generation)
        .map((k) => ({
          kid: k.kid,
          alg: k.alg,
          generation: k.generation,
          state: stateOf(k.kid),
          created_at: k.createdAt,
          signs_from: k.signsFrom,
          public_jwk: k.publicJwk as Record<string, unknown>,
        }));
      return { status: 200, body: { items } };
    },
  }),
  operation({
    method: 'post',
    path: '/signing-keys/rotate',
    operationId: 'rotateSigningKeys',
    tag: 'Signing keys',
    summary: 'Rotate now: a new key per algorithm signs from now on',
    description:
      'Tokens signed by the keys it replaces keep verifying until they expire (the old keys stay in the JWKS that long). Use it after a suspected key leak; the cron rotates on schedule otherwise.',
    scope: 'admin:keys:write',
    body: z.object({ algs: z.array(z.enum(SIGNING_ALGS)).min(1).optional().describe('Default: every algorithm.') }).strict(),
    responses: { 200: { description: 'The keys made', schema: z.object({ created: z.array(z.string()) }) } },
    handle: async ({ deps, actor, meta, body }) => {
      const now = deps.now();
      const created = await failClosed('the database', () =>
        rotateKeysNow(deps.db, deps.config.keyEncryptionKey, now, body.algs ?? SIGNING_ALGS),
      );
      await failClosed('the database', () =>
        auditInsert(deps.db, {
          type: 'admin_change',
          actor: actorName(actor),
          meta,
          detail: { action: 'signing_keys_rotated', created },
          at: now,
        }),
      );
      return { status: 200, body: { created } };
    },
  }),
];
