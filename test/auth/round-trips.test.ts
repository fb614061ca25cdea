import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { tracedD1 } from '../db/traced-d1';
import { appWith, createVerifiedUser, uniqueEmail } from '../helpers';

/**
 * Issue 17: the D1 round trips of the sign-in paths, counted through the real routes with a D1
 * binding that counts (a batch is one round trip). A change that adds a read in series shows here.
 */
function counted() {
  const { d1, trace } = tracedD1(env.DB);
  const app = appWith(() => ({ d1, db: createDb(d1) }));
  return { app, trace };
}

describe('D1 round trips of a sign-in (issue 17)', () => {
  it('password sign-in: three (lock + user and roles; second factors + history; the writes)', async () => {
    const user = await createVerifiedUser();
    const { app, trace } = counted();
    const res = await app('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: user.password } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { user: { id: string } }).user.id).toBe(user.userId);
    expect(trace.roundTrips).toBe(3);
  });

  it('a wrong password and an unknown address: two each, the same', async () => {
    const user = await createVerifiedUser();
    for (const email of [user.email, uniqueEmail('nobody')]) {
      const { app, trace } = counted();
      const res = await app('/auth/api/sign-in', { method: 'POST', json: { email, password: 'not the password at all' } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_credentials');
      expect(trace.roundTrips).toBe(2);
    }
  });

  it('email sign-in request: two for a known and an unknown address, and no purge on the way', async () => {
    const user = await createVerifiedUser();
    for (const email of [user.email, uniqueEmail('nobody')]) {
      const { app, trace } = counted();
      const res = await app('/auth/api/email-sign-in', { method: 'POST', json: { email } });
      expect(res.status).toBe(202);
      expect(trace.roundTrips).toBe(2);
      expect(trace.statements.filter((s) => /^delete/i.test(s.sql))).toEqual([]);
    }
  });
});
