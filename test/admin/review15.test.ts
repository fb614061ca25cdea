import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { apiKeys, apiResources } from '../../src/db/schema';
import { buildApiKey } from '../../src/oauth/api-keys';
import { resourceFromRow } from '../../src/oauth/api-resources';
import { APP, appWith, createVerifiedUser } from '../helpers';
import { API, registerClient } from '../oauth/helpers';
import { admin, adminClient } from './helpers';

/**
 * Review of issue 15, each test shaped like its attacker: a blocked person still holding an API key,
 * and a compromised admin client with only admin:users:write climbing to every admin scope through
 * the `admin` role.
 */

const db = () => createDb(env.DB);

/** A key that acts as `userId` at API (orders:read), as the admin API would issue it. */
async function userKey(userId: string) {
  await registerClient(); // registers API (kept if it exists)
  const row = (await db().select().from(apiResources).all()).find((r) => r.identifier === API)!;
  const built = await buildApiKey(
    { name: 'integration', scopes: ['orders:read'] },
    { kind: 'user', userId },
    resourceFromRow(row),
    Date.now(),
  );
  await db().insert(apiKeys).values(built.row);
  return built.key;
}

const request = appWith(() => ({}));
const through = (path: string, key: string) =>
  request(`${APP}${path}`, { headers: { accept: 'application/json', authorization: `Bearer ${key}` } });

describe('a blocked user holding an API key', () => {
  it('is refused with it at once, on fresh routes and on this isolate’s cached ones, and until the unblock', async () => {
    const ops = await adminClient(['admin:users:write']);
    const user = await createVerifiedUser();
    const key = await userKey(user.userId);
    // The key works, and this isolate now holds its record.
    expect((await through('/demo/keys-users/x', key)).status).toBe(200);
    expect((await admin(ops.token, 'POST', `/users/${user.userId}/block`)).status).toBe(200);
    for (const path of ['/demo/keys-users/x', '/demo/keys-fresh/x']) {
      const res = await through(path, key);
      expect(res.status, path).toBe(401);
      expect(JSON.stringify(await res.json())).not.toContain(user.userId);
    }
    expect((await admin(ops.token, 'POST', `/users/${user.userId}/unblock`)).status).toBe(200);
    expect((await through('/demo/keys-fresh/x', key)).status).toBe(200);
  });
});
