import { dictionary } from '@zxcvbn-ts/language-common';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { COMMON_PASSWORDS_ASSET } from '../../src/auth/common-passwords';
import { commonPasswordsFromAssets } from '../../src/auth/password-policy';
import { ConfigError } from '../../src/config';
import { depsFor } from '../../src/deps';
import { appWith, call, createVerifiedUser, lastMailTo, type Problem, signIn, STRONG_PASSWORD, tokenFrom, uniqueEmail } from '../helpers';

// The blocklist is a static asset read through the ASSETS binding (wrangler.toml `[assets]`).
// test/auth/sign-up.test.ts and test/ui/pages.test.ts refuse listed passwords through the real
// worker and its real binding; here the binding is missing the file or fails, and nothing is let through.

/** The worker's app whose ASSETS binding lacks the list (a real 404 from the binding). */
const withoutList = () => appWith(() => ({ commonPasswords: commonPasswordsFromAssets(env.ASSETS, '/no-such-list.bin') }));
const tokensFor = async (email: string) =>
  (await env.DB.prepare('SELECT count(*) AS n FROM email_tokens WHERE email = ?').bind(email).first<{ n: number }>())!.n;
const mailCount = async (to: string) => {
  const res = await call(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(to)}`);
  return ((await res.json()) as { messages: unknown[] }).messages.length;
};

describe('the common-password blocklist on the sign-up and reset routes', () => {
  it('refuses listed passwords through the real sign-up route and the real asset', async () => {
    const email = uniqueEmail('listed');
    // The first, middle and last of the list's passwords long enough to get past the length rule, as typed and upper-cased.
    const long = (dictionary['passwords-common'] as string[]).filter((p) => [...p].length >= 8);
    const listed = [long[0]!, long[long.length >> 1]!, long.at(-1)!];
    for (const password of [...listed, ...listed.map((p) => p.toUpperCase())]) {
      const res = await call('/auth/api/sign-up', { method: 'POST', json: { email, password } });
      expect(res.status, password).toBe(400);
      expect(await res.json()).toMatchObject({
        code: 'weak_password',
        field: 'password',
        detail: 'This password is too common; choose another.',
      });
    }
    expect(await tokensFor(email)).toBe(0);
    expect((await call('/auth/api/sign-up', { method: 'POST', json: { email, password: STRONG_PASSWORD } })).status).toBe(202);
  });

  it('fails closed on sign-up when the list cannot be read: 503, nothing stored, nothing mailed, for any password', async () => {
    const request = withoutList();
    for (const password of ['password1', STRONG_PASSWORD]) {
      const email = uniqueEmail('nolist');
      const res = await request('/auth/api/sign-up', { method: 'POST', json: { email, password } });
      expect(res.status, password).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      const body = await res.json<Problem>();
      expect(body).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
      expect(body.detail).toContain('password check');
      expect(await tokensFor(email)).toBe(0);
      expect(await mailCount(email)).toBe(0);
    }
  });

  it('fails closed on password reset: 503, the password unchanged, the link still good once the list is back', async () => {
    const { email } = await createVerifiedUser();
    expect((await call('/auth/api/forgot-password', { method: 'POST', json: { email } })).status).toBe(202);
    const token = tokenFrom(await lastMailTo(email));
    const res = await withoutList()('/auth/api/reset-password', { method: 'POST', json: { token, password: 'a brand new passphrase 7' } });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'temporarily_unavailable' });
    await signIn(email);
    const again = await call('/auth/api/reset-password', { method: 'POST', json: { token, password: 'a brand new passphrase 7' } });
    expect(again.status).toBe(200);
    await signIn(email, 'a brand new passphrase 7');
  });

  it('reads the list again once the binding answers, without a new isolate', async () => {
    let down = true;
    const flaky = { fetch: (r: Request) => (down ? Promise.reject(new Error('network connection lost')) : env.ASSETS.fetch(r)) };
    const commonPasswords = commonPasswordsFromAssets(flaky, COMMON_PASSWORDS_ASSET);
    const request = appWith(() => ({ commonPasswords }));
    const signUp = (password: string) => request('/auth/api/sign-up', { method: 'POST', json: { email: uniqueEmail('flaky'), password } });
    expect((await signUp('password1')).status).toBe(503);
    down = false;
    expect((await signUp('password1')).status).toBe(400);
    down = true;
    expect((await signUp(STRONG_PASSWORD)).status).toBe(202);
  });

  it('refuses to start without the ASSETS binding, naming it', async () => {
    const e = await depsFor({ ...env, ASSETS: undefined } as unknown as typeof env).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).issues.join('\n')).toContain('ASSETS');
  });
});
