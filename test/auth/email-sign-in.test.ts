import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { appWith, auditOf, call, createVerifiedUser, lastMailTo, SESSION, uniqueEmail, type Mail, type Problem } from '../helpers';
import { enrolled } from './helpers';

const BINDING = '__Host-gatehouse_email_signin';
const codeOf = (mail: Mail) => /code: (\d{4}) (\d{4})/.exec(mail.text)!.slice(1).join('');
const linkOf = (mail: Mail) => mail.links.find((l) => l.includes('/auth/email-sign-in/link'))!;
const tokenOf = (mail: Mail) => new URL(linkOf(mail)).searchParams.get('token')!;

async function ask(browser: TestBrowser, email: string) {
  const res = await browser.post('/auth/api/email-sign-in', { email });
  return { res, body: await res.json() };
}

describe('email sign-in (link and code)', () => {
  it('answers the same for known and unknown addresses; only the known one gets mail', async () => {
    const { email } = await createVerifiedUser();
    const known = await ask(new TestBrowser(), email);
    const unknownBrowser = new TestBrowser();
    const unknown = await ask(unknownBrowser, uniqueEmail('nobody'));
    expect(known.res.status).toBe(202);
    expect(unknown.res.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    expect(unknownBrowser.cookie(BINDING)).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    const mail = await lastMailTo(email);
    expect(mail.subject).toMatch(/^Your sign-in code: \d{4} \d{4}$/);
    expect(codeOf(mail)).toMatch(/^\d{8}$/);
    expect(linkOf(mail)).toMatch(/^https:\/\/gatehouse\.test\/auth\/email-sign-in\/link\?token=[A-Za-z0-9_-]{43}$/);
  });

  it('the code signs in the browser that asked, once; not another browser', async () => {
    const { email, userId } = await createVerifiedUser();
    const browser = new TestBrowser();
    await ask(browser, email);
    const code = codeOf(await lastMailTo(email));
    const elsewhere = await new TestBrowser().post('/auth/api/email-sign-in/code', { code });
    expect(elsewhere.status).toBe(400);
    const ok = await browser.post('/auth/api/email-sign-in/code', { code: `${code.slice(0, 4)} ${code.slice(4)}` });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'signed_in', user: { id: userId }, session: { amr: ['email'] } });
    expect(browser.cookie(SESSION)).toBeDefined();
    expect(browser.cookie(BINDING)).toBeUndefined();
  });

  it('a link opened in another browser asks for confirmation first; it works once', async () => {
    const { email } = await createVerifiedUser();
    const laptop = new TestBrowser();
    await ask(laptop, email);
    const mail = await lastMailTo(email);
    const phone = new TestBrowser();
    const page = await phone.open(new URL(linkOf(mail)).pathname + new URL(linkOf(mail)).search);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('Sign in on this device?');
    expect(page.html).toContain('requested from a browser on Linux'); // who asked, from the requesting User-Agent
    expect(phone.cookie(SESSION)).toBeUndefined(); // opening signs nobody in

    // The asking browser gets a plain "finish signing in" button instead.
    const same = await laptop.open(new URL(linkOf(mail)).pathname + new URL(linkOf(mail)).search);
    expect(same.html).toContain('Finish signing in');

    const confirmed = await phone.submit(
      '/auth/email-sign-in/link',
      { token: tokenOf(mail) },
      new URL(linkOf(mail)).pathname + new URL(linkOf(mail)).search,
    );
    expect(confirmed.status).toBe(303);
    expect(confirmed.headers.get('location')).toBe('/auth/account');
    expect(phone.cookie(SESSION)).toBeDefined();
    const reused = await new TestBrowser().post('/auth/api/email-sign-in/link', { token: tokenOf(mail) });
    expect(reused.status).toBe(400);
    expect(((await reused.json()) as Problem).code).toBe('invalid_link');
  });

  it('20 concurrent uses of one link give exactly one session', async () => {
    const { email, userId } = await createVerifiedUser();
    await ask(new TestBrowser(), email);
    const token = tokenOf(await lastMailTo(email));
    const results = await Promise.all(Array.from({ length: 20 }, () => new TestBrowser().post('/auth/api/email-sign-in/link', { token })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const sessions = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE user_id = ? AND type = 'sign_in'")
      .bind(userId)
      .first('n');
    expect(sessions).toBe(1);
  });

  it('five wrong codes end the request, even for the right code — the same for unknown addresses', async () => {
    const { email } = await createVerifiedUser();
    for (const [address, mailed] of [
      [email, true],
      [uniqueEmail('ghost'), false],
    ] as const) {
      const browser = new TestBrowser();
      await ask(browser, address);
      const right = mailed ? codeOf(await lastMailTo(address)) : '12345678';
      const wrong = right === '00000000' ? '11111111' : '00000000';
      const answers: string[] = [];
      for (let i = 0; i < 5; i++)
        answers.push(((await (await browser.post('/auth/api/email-sign-in/code', { code: wrong })).json()) as Problem).code);
      expect(answers).toEqual(Array(5).fill('invalid_code'));
      const last = await browser.post('/auth/api/email-sign-in/code', { code: right });
      expect(last.status).toBe(400);
      expect(((await last.json()) as Problem).code).toBe('too_many_attempts');
      expect(browser.cookie(SESSION)).toBeUndefined();
    }
  });

  it('parallel guesses cannot exceed the attempt limit', async () => {
    const browser = new TestBrowser();
    await ask(browser, uniqueEmail('ghost'));
    const guesses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => browser.post('/auth/api/email-sign-in/code', { code: String(10_000_000 + i) })),
    );
    const codes = await Promise.all(guesses.map(async (g) => ((await g.json()) as Problem).code));
    expect(codes.filter((c) => c === 'invalid_code')).toHaveLength(5);
  });

  it('link and code expire after ten minutes', async () => {
    const { email } = await createVerifiedUser();
    const browser = new TestBrowser();
    await ask(browser, email);
    const mail = await lastMailTo(email);
    const later = appWith(() => ({ now: () => Date.now() + 11 * 60_000 }));
    const link = await later('/auth/api/email-sign-in/link', { method: 'POST', json: { token: tokenOf(mail) } });
    expect(link.status).toBe(400);
    const code = await later('/auth/api/email-sign-in/code', {
      method: 'POST',
      json: { code: codeOf(mail) },
      cookie: browser.cookieHeader,
    });
    expect(code.status).toBe(400);
  });

  it('holds mail back per address past five, answering exactly the same for known and unknown addresses', async () => {
    // The known address already had one mail (its sign-up link); a 429 here would give that away.
    const known = await createVerifiedUser();
    const answers: Record<string, { status: number; body: unknown; binding: boolean }[]> = {};
    for (const address of [known.email, uniqueEmail('ghost')]) {
      answers[address] = [];
      for (let i = 0; i < 6; i++) {
        const browser = new TestBrowser();
        const { res, body } = await ask(browser, address);
        answers[address]!.push({ status: res.status, body, binding: browser.cookie(BINDING) !== undefined });
      }
    }
    const [a, b] = Object.values(answers);
    expect(a).toEqual(b);
    expect(a!.every((x) => x.status === 202 && x.binding)).toBe(true);
    // Behind the identical answers, the per-address limit held mail back: five mails in all
    // (the sign-up link and four sign-in mails), then none.
    const res = await call(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(known.email)}`);
    const { messages } = (await res.json()) as { messages: { subject: string }[] };
    expect(messages.filter((m) => m.subject.startsWith('Your sign-in code'))).toHaveLength(4);
    const types = (await auditOf(known.userId)).results.map((r) => r.type);
    expect(types.filter((t) => t === 'email_sign_in_requested')).toHaveLength(4);
    expect(types.filter((t) => t === 'mail_suppressed')).toHaveLength(2);
  });

  it('is a first factor: an enrolled second factor is still asked on a new device', async () => {
    const { email } = await enrolled();
    const browser = new TestBrowser();
    await ask(browser, email);
    const res = await browser.post('/auth/api/email-sign-in/code', { code: codeOf(await lastMailTo(email)) });
    expect(await res.json()).toMatchObject({ status: 'second_factor_required' });
    expect(browser.cookie(SESSION)).toBeUndefined();
  });
});

describe('email sign-in from a page', () => {
  it('the link brings the person back to where they were going (same-origin paths only)', async () => {
    const { email } = await createVerifiedUser();
    for (const [asked, landed] of [
      ['/demo/me/orders?id=7', '/demo/me/orders?id=7'],
      ['https://evil.example/x', '/auth/account'],
    ] as const) {
      const browser = new TestBrowser();
      const res = await browser.submit(
        '/auth/email-sign-in',
        { email, return_to: asked },
        `/auth/email-sign-in?return_to=${encodeURIComponent(asked)}`,
      );
      expect(res.status).toBe(202);
      const mail = await lastMailTo(email);
      const path = new URL(linkOf(mail)).pathname + new URL(linkOf(mail)).search;
      const done = await browser.submit('/auth/email-sign-in/link', { token: tokenOf(mail) }, path);
      expect(done.headers.get('location')).toBe(landed);
    }
  });
});
