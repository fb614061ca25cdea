import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { CreateSessionInput, UserSessions } from '../../src/sessions/user-sessions';

const objectFor = () => {
  const userId = crypto.randomUUID();
  return { userId, stub: env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId)) };
};
const input = (userId: string, now: number, over: Partial<CreateSessionInput> = {}): CreateSessionInput => ({
  userId,
  amr: ['pwd'],
  ip: '203.0.113.7',
  userAgent: 'vitest',
  now,
  idleTtl: 3600,
  absoluteTtl: 86400,
  ...over,
});

describe('UserSessions Durable Object', () => {
  it('creates sessions with 128-bit ids and 256-bit secrets, storing only the secret hash', async () => {
    const { userId, stub } = objectFor();
    const now = Date.now();
    const s = (await stub.create(input(userId, now)))!;
    expect(s.sid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(s.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s).toMatchObject({ userId, amr: ['pwd'], idleExpiresAt: now + 3600_000, absoluteExpiresAt: now + 86400_000 });
    const stored = await runInDurableObject(stub, (_: UserSessions, state) => state.storage.sql.exec('SELECT * FROM sessions').toArray());
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(s.secret);
    const other = (await stub.create(input(userId, now)))!;
    expect(other.sid).not.toBe(s.sid);
    expect(other.secret).not.toBe(s.secret);
  });

  it('refreshes only with the right secret and slides the idle timeout', async () => {
    const { userId, stub } = objectFor();
    const t0 = Date.now();
    const s = (await stub.create(input(userId, t0)))!;
    expect(await stub.refresh(s.sid, 'A'.repeat(43), t0 + 1000)).toBeNull();
    expect(await stub.refresh('unknown-sid', s.secret, t0 + 1000)).toBeNull();
    const refreshed = await stub.refresh(s.sid, s.secret, t0 + 1800_000);
    expect(refreshed).toMatchObject({ sid: s.sid, lastSeenAt: t0 + 1800_000, idleExpiresAt: t0 + 1800_000 + 3600_000 });
  });

  it('ends a session at its idle timeout and at its absolute timeout', async () => {
    const { userId, stub } = objectFor();
    const t0 = Date.now();
    const idle = (await stub.create(input(userId, t0)))!;
    expect(await stub.refresh(idle.sid, idle.secret, t0 + 3600_000)).toBeNull();
    expect(await stub.get(idle.sid, t0)).toBeNull(); // deleted on the failed refresh

    const abs = (await stub.create(input(userId, t0, { idleTtl: 3, absoluteTtl: 5 })))!;
    let now = t0;
    for (let i = 0; i < 2; i++) {
      now += 2000;
      expect(await stub.refresh(abs.sid, abs.secret, now)).not.toBeNull();
    }
    // Idle would allow now + 3 s, but the absolute limit is t0 + 5 s.
    expect((await stub.get(abs.sid, now))!.idleExpiresAt).toBe(t0 + 5000);
    expect(await stub.refresh(abs.sid, abs.secret, t0 + 5000)).toBeNull();
  });

  it('lists live sessions newest first, revokes one, revokes all but one, revokes all', async () => {
    const { userId, stub } = objectFor();
    const now = Date.now();
    const a = (await stub.create(input(userId, now)))!;
    const b = (await stub.create(input(userId, now + 1)))!;
    const c = (await stub.create(input(userId, now + 2)))!;
    expect((await stub.list(now + 3)).map((s) => s.sid)).toEqual([c.sid, b.sid, a.sid]);
    expect(await stub.revoke(b.sid)).toBe(true);
    expect(await stub.revoke(b.sid)).toBe(false);
    expect(await stub.refresh(b.sid, b.secret, now + 4)).toBeNull();
    expect(await stub.revokeAll(c.sid)).toBe(1);
    expect((await stub.list(now + 5)).map((s) => s.sid)).toEqual([c.sid]);
    expect(await stub.revokeAll()).toBe(1);
    expect(await stub.list(now + 6)).toEqual([]);
  });

  it('arms an alarm for the earliest expiry; running it keeps live sessions and re-arms', async () => {
    const { userId, stub } = objectFor();
    const now = Date.now();
    const soon = (await stub.create(input(userId, now, { idleTtl: 600 })))!;
    const later = (await stub.create(input(userId, now)))!;
    const alarmAt = await runInDurableObject(stub, (_: UserSessions, state) => state.storage.getAlarm());
    expect(alarmAt).toBe(soon.idleExpiresAt);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.list(Date.now())).map((s) => s.sid).sort()).toEqual([soon.sid, later.sid].sort());
    expect(await runInDurableObject(stub, (_: UserSessions, state) => state.storage.getAlarm())).toBe(soon.idleExpiresAt);
  });

  it('purges expired sessions when its alarm runs', async () => {
    const { userId, stub } = objectFor();
    const now = Date.now();
    await stub.create(input(userId, now - 10_000, { idleTtl: 1, absoluteTtl: 5 })); // expired 5 s ago
    const live = (await stub.create(input(userId, now)))!;
    // An alarm in the past fires at once on its own; run it here too in case it has not yet.
    await runDurableObjectAlarm(stub);
    const rows = await runInDurableObject(stub, (_: UserSessions, state) =>
      state.storage.sql.exec<{ sid: string }>('SELECT sid FROM sessions').toArray(),
    );
    expect(rows.map((r) => r.sid)).toEqual([live.sid]);
    expect(await runInDurableObject(stub, (_: UserSessions, state) => state.storage.getAlarm())).toBe(live.idleExpiresAt);
  });

  it('clears its alarm once no session is left', async () => {
    const { userId, stub } = objectFor();
    const s = (await stub.create(input(userId, Date.now())))!;
    await stub.revoke(s.sid);
    await runInDurableObject(stub, (instance: UserSessions) => instance.alarm());
    expect(await runInDurableObject(stub, (_: UserSessions, state) => state.storage.getAlarm())).toBeNull();
  });
});

describe('a blocked account in its UserSessions object', () => {
  const grant = (sid: string) => ({
    clientId: 'c1',
    scope: ['openid'],
    sid,
    authTime: 1,
    amr: ['pwd'],
    acr: null,
    resources: [],
    claims: null,
    dpopJkt: null,
  });
  const policy = { idleTtlMs: 3600_000, absoluteTtlMs: 86400_000 };

  it('ends everything at once and makes nothing new — session, code, refresh family, rotation, opaque token — until unblocked', async () => {
    const { userId, stub } = objectFor();
    const now = Date.now();
    const s = (await stub.create(input(userId, now)))!;
    const family = (await stub.createRefreshFamily(grant(s.sid), policy, now))!;
    const opaque = (await stub.storeOpaque('jwt', now + 60_000, family.familyId))!;
    const iat = Math.floor(now / 1000) - 1;
    expect(await stub.isTokenLive({ grantId: family.familyId, jti: 'j1', issuedAt: iat })).toBe(true);

    expect(await stub.block(now)).toEqual({ sessions: 1 });
    expect(await stub.isBlocked()).toBe(true);
    expect(await stub.list(now)).toEqual([]);
    expect(await stub.create(input(userId, now))).toBeNull();
    expect(
      await stub.issueCode({ ...grant(s.sid), redirectUri: 'https://x', codeChallenge: null, nonce: null, now, ttlMs: 60_000 }),
    ).toBeNull();
    expect(await stub.createRefreshFamily(grant(s.sid), policy, now)).toBeNull();
    expect(await stub.rotateRefresh({ familyId: family.familyId, secret: family.secret, clientId: 'c1', now })).toMatchObject({
      status: 'invalid',
    });
    expect(await stub.storeOpaque('jwt', now + 60_000, null)).toBeNull();
    expect(await stub.resolveOpaque(opaque, now)).toBeNull();
    expect(await stub.isTokenLive({ grantId: null, jti: null, issuedAt: Math.floor(now / 1000) + 5 })).toBe(false);

    await stub.unblock();
    expect(await stub.isBlocked()).toBe(false);
    expect(await stub.create(input(userId, now))).not.toBeNull();
    // What was out before the block stays dead; what is issued after lives.
    expect(await stub.isTokenLive({ grantId: null, jti: 'j1', issuedAt: iat })).toBe(false);
    expect(await stub.isTokenLive({ grantId: null, jti: 'j2', issuedAt: Math.floor(now / 1000) + 5 })).toBe(true);
    expect(await stub.rotateRefresh({ familyId: family.familyId, secret: family.secret, clientId: 'c1', now })).toMatchObject({
      status: 'invalid',
    });
  });

  it('a create racing a block: whichever the object serves second, no session is left once block returns', async () => {
    const { userId, stub } = objectFor();
    const now = Date.now();
    const [created] = await Promise.all([stub.create(input(userId, now)), stub.block(now)]);
    const live = await stub.list(now);
    expect(live).toEqual([]);
    if (created) expect(await stub.get(created.sid, now)).toBeNull();
  });
});
