import { describe, expect, it } from 'vitest';
import { call, createVerifiedUser, STRONG_PASSWORD, uniqueEmail } from '../helpers';

/**
 * The per-address mail limit protects an inbox from being flooded, silently: past it, a request
 * is answered exactly as before (a 429 there would tell an address whose owner's own mails count —
 * one with an account — from one without). The attacker enumerates addresses.
 */
const mailsTo = async (email: string) =>
  ((await (await call(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(email)}`)).json()) as { messages: unknown[] }).messages.length;

describe('the per-address mail limit answers the same for known and unknown addresses', () => {
  for (const [endpoint, body] of [
    ['/auth/api/forgot-password', (email: string) => ({ email })],
    ['/auth/api/sign-up', (email: string) => ({ email, password: STRONG_PASSWORD })],
  ] as const) {
    it(`${endpoint}: seven requests, identical answers; mail stops after five`, async () => {
      const known = await createVerifiedUser(); // one mail already (the sign-up link)
      const unknown = uniqueEmail('ghost');
      const answers = async (email: string) => {
        const out: { status: number; body: unknown }[] = [];
        for (let i = 0; i < 7; i++) {
          const res = await call(endpoint, { method: 'POST', json: body(email) });
          out.push({ status: res.status, body: await res.json() });
        }
        return out;
      };
      const [a, b] = [await answers(known.email), await answers(unknown)];
      expect(a).toEqual(b);
      expect(a.every((x) => x.status === 202)).toBe(true);
      expect(await mailsTo(known.email)).toBe(5);
    });
  }
});
