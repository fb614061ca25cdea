import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { auditOf, call, createVerifiedUser, lastMailTo, SESSION, signIn, uniqueEmail } from '../helpers';

describe('sign up, verify, sign in, sign out (JSON API)', () => {
  it('creates the account only when the verification link is opened, then signs in', async () => {
    const email = uniqueEmail();
    const up = await call('/auth/api/sign-up', {
      method: 'POST',
      json: { email: `  ${email.toUpperCase()} `, password: 'correct horse battery staple 42' },
    });
    expect(up.status).toBe(202);
    expect(await up.json()).toMatchObject({ status: 'check_email' });
    expect(await env.DB.prepare('SELECT 1 FROM users WHERE email = ?').bind(email).first()).toBeNull();

    const mail = await lastMailTo(email);
    expect(mail.subject).toBe('Confirm your email address');
    expect(mail.links[0]).toMatch(/^https:\/\/gatehouse\.test\/auth\/verify-email\?token=[A-Za-z0-9_-]{43}$/);

    const { userId } = await createVerifiedUser(uniqueEmail());
    expect(userId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('signs in, lists exactly that session, signs out', async () => {
    const { email, userId } = await createVerifiedUser();
    const { cookie, setCookie, body } = await signIn(email);
    expect(setCookie).toMatch(/^__Host-gatehouse_session=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    expect(body.user).toMatchObject({ id: userId, email, emailVerified: true });

    const list = await call('/auth/api/sessions', { cookie });
    expect(list.status).toBe(200);
    const { sessions } = (await list.json()) as { sessions: { sid: string; current: boolean }[] };
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ sid: body.session.sid, current: true });

    const out = await call('/auth/api/sign-out', { method: 'POST', cookie, headers: { 'content-type': 'application/json' } });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie().join()).toContain(`${SESSION}=;`);
    const after = await call('/auth/api/sessions', { cookie });
    expect(after.status).toBe(401);
    expect((await auditOf(userId)).results.map((r) => r.type)).toEqual([
      'sign_up',
      'email_verified',
      'sign_in_risk',
      'sign_in',
      'sign_out',
    ]);
  });
});
