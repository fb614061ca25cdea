import { env } from 'cloudflare:workers';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { deriveHmacKey } from '../../src/lib/crypto';
import { createSessionStore } from '../../src/sessions/session-store';
import { appWith, brokenSessionsNamespace, call, cookieFrom, createVerifiedUser, SESSION, signIn } from '../helpers';
import type { Problem } from '../helpers';

const sessionsApi = (cookie: string) => call('/auth/api/sessions', { cookie });

describe('the session cookie', () => {
  it('is accepted with no Durable Object call while its token is fresh', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    let calls = 0;
    const request = appWith((deps) => ({
      sessions: {
        ...deps.sessions,
        refresh: (...a) => {
          calls++;
          return deps.sessions.refresh(...a);
        },
      },
    }));
    // The account page itself reads the session list; /auth/sign-in only needs the cookie.
    const res = await request('/auth/sign-in', { cookie });
    expect(res.status).toBe(200);
    expect(calls).toBe(0);
    expect(cookieFrom(res, SESSION)).toBeUndefined();
  });

  it('signs out (clears the cookie, no 500) when the cookie is tampered with', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const value = cookie.slice(SESSION.length + 1);
    const [token, secret] = value.split('~') as [string, string];
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(atob(p.replace(/-/g, '+').replace(/_/g, '/')));
    const forgedPayload = btoa(JSON.stringify({ ...claims, sub: crypto.randomUUID() }))
      .replace(/=+$/, '')
      .replace(/\+/g, '-')
      .replace(/\//g, '_');
    const variants = [
      `${h}.${forgedPayload}.${s}~${secret}`, // payload swapped
      `${h}.${p}.${s.slice(0, -2)}AA~${secret}`, // signature changed
      `${token}`, // secret missing
      'garbage',
      `${'a'.repeat(5000)}`,
      `${h}.${p}.${s}~${secret}~${secret}`,
    ];
    for (const v of variants) {
      const res = await sessionsApi(`${SESSION}=${v}`);
      expect(res.status, v.slice(0, 40)).toBe(401);
      expect(res.headers.getSetCookie().join(), v.slice(0, 40)).toMatch(/__Host-gatehouse_session=;.*Max-Age=0/);
      const page = await call('/auth/account', { cookie: `${SESSION}=${v}` });
      expect(page.status).toBe(303);
      expect(page.headers.get('location')).toBe('/auth/sign-in?return_to=%2Fauth%2Faccount');
    }
  });

  it('rejects a well-formed token signed with another key (a foreign cookie)', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const secret = cookie.split('~')[1]!;
    const foreignKey = await deriveHmacKey('Zm9yZWlnbi1rZXktZm9yLWEtZGlmZmVyZW50LWRlcGxveW1lbnQ', 'session-token');
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ sid: 'x'.repeat(22), amr: ['pwd'], auth_time: now })
      .setProtectedHeader({ alg: 'HS256', typ: 'gh-session+jwt' })
      .setSubject(userId)
      .setIssuer('https://gatehouse.test')
      .setAudience('https://gatehouse.test')
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(foreignKey);
    const res = await sessionsApi(`${SESSION}=${token}~${secret}`);
    expect(res.status).toBe(401);
    expect((await res.json<Problem>()).code).toBe('unauthenticated');
  });

  it('refreshes a stale token through the Durable Object and re-sets the cookie', async () => {
    const { email } = await createVerifiedUser();
    const { cookie, body } = await signIn(email);
    const later = Date.now() + 10 * 60_000;
    const request = appWith(() => ({ now: () => later }));
    const res = await request('/auth/api/me', { cookie });
    expect(res.status).toBe(200);
    expect((await res.json<{ session: unknown }>()).session).toMatchObject({ sid: body.session.sid, lastSeenAt: later });
    const renewed = cookieFrom(res, SESSION)!;
    expect(renewed.header).toMatch(/HttpOnly; Secure; SameSite=Lax/);
    expect(renewed.pair).not.toBe(cookie);
    expect(renewed.pair.split('~')[1]).toBe(cookie.split('~')[1]); // same session secret
  });

  it('stops accepting a revoked session at its next refresh at the latest', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie, body } = await signIn(email);
    await env.USER_SESSIONS.get(env.USER_SESSIONS.idFromName(userId)).revoke(body.session.sid);
    const later = Date.now() + 10 * 60_000;
    const request = appWith(() => ({ now: () => later }));
    const res = await request('/auth/sign-in', { cookie });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie().join()).toMatch(/__Host-gatehouse_session=;.*Max-Age=0/);
    // Account endpoints check the object on every request: refused at once, even with a fresh token.
    expect((await sessionsApi(cookie)).status).toBe(401);
  });

  it('fails closed (503) when a stale token cannot be refreshed because the object is down', async () => {
    const { email } = await createVerifiedUser();
    const { cookie } = await signIn(email);
    const later = Date.now() + 10 * 60_000;
    const request = appWith(() => ({ now: () => later, sessions: createSessionStore(brokenSessionsNamespace()) }));
    const res = await request('/auth/api/me', { cookie });
    expect(res.status).toBe(503);
    expect((await res.json<Problem>()).code).toBe('temporarily_unavailable');
    expect(res.headers.getSetCookie()).toEqual([]); // neither renewed nor cleared
  });
});
