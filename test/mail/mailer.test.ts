import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { appWith, call, lastMailTo, uniqueEmail } from '../helpers';
import { httpMailer } from '../../src/mail/mailer';
import { GatehouseError } from '../../src/lib/errors';

describe('the HTTP mail sender', () => {
  it('posts the message as JSON with a bearer token', async () => {
    const sent: { url: string; init: RequestInit }[] = [];
    const mailer = httpMailer(
      { url: 'https://mail.example.com/emails', token: 'mail-api-token', from: 'Gatehouse <no-reply@example.com>' },
      async (url, init) => {
        sent.push({ url: String(url), init: init! });
        return new Response('{"id":"1"}', { status: 200 });
      },
    );
    await mailer.send({ to: 'someone@example.com', subject: 'Hi', text: 'Body', html: '<p>Body</p>' });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.url).toBe('https://mail.example.com/emails');
    expect(new Headers(sent[0]!.init.headers).get('authorization')).toBe('Bearer mail-api-token');
    expect(JSON.parse(String(sent[0]!.init.body))).toEqual({
      from: 'Gatehouse <no-reply@example.com>',
      to: ['someone@example.com'],
      subject: 'Hi',
      text: 'Body',
      html: '<p>Body</p>',
    });
  });

  it('turns a refusal or a network error into a 503, without echoing the provider answer', async () => {
    const refusing = httpMailer(
      { url: 'https://m.example', token: 't', from: 'f' },
      async () => new Response('leaked token=abc', { status: 500 }),
    );
    const err = await refusing.send({ to: 'a@b.co', subject: 's', text: 't' }).catch((e) => e);
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err.status).toBe(503);
    expect(err.message).not.toContain('abc');
    const offline = httpMailer({ url: 'https://m.example', token: 't', from: 'f' }, async () => {
      throw new TypeError('network down');
    });
    expect((await offline.send({ to: 'a@b.co', subject: 's', text: 't' }).catch((e) => e)).status).toBe(503);
  });

  it('makes a sign-up answer 503 when the mail cannot be sent', async () => {
    const request = appWith(() => ({
      mailer: { send: () => Promise.reject(new GatehouseError('temporarily_unavailable', 'the mail service is down')) },
    }));
    const res = await request('/auth/api/sign-up', { method: 'POST', json: { email: uniqueEmail(), password: 'long enough passphrase' } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull();
  });
});

describe('the dev mailbox', () => {
  it('is readable as JSON and HTML, filtered by recipient', async () => {
    const email = uniqueEmail('mailbox');
    await call('/auth/api/sign-up', { method: 'POST', json: { email, password: 'long enough passphrase' } });
    const json = await call(`/auth/dev/mailbox?to=${encodeURIComponent(email.toUpperCase())}`, { headers: { accept: 'application/json' } });
    const { messages } = await json.json<{ messages: { to: string; links: string[] }[] }>();
    expect(messages).toHaveLength(1);
    expect(messages[0]!.to).toBe(email);
    expect(messages[0]!.links[0]).toContain('/auth/verify-email?token=');
    const html = await (await call('/auth/dev/mailbox')).text();
    expect(html).toContain('Dev mailbox');
    expect(html).toContain(email);
  });

  it('does not exist when mail goes to the HTTP provider', async () => {
    // Mail the dev mailbox kept before, which the page would otherwise list (or empty).
    const email = uniqueEmail('kept');
    await call('/auth/api/sign-up', { method: 'POST', json: { email, password: 'long enough passphrase' } });
    await lastMailTo(email);
    const kept = async () =>
      (await env.DB.prepare('SELECT count(*) AS n FROM dev_mail WHERE "to" = ?').bind(email).first<{ n: number }>())!.n;
    expect(await kept()).toBe(1);
    const request = appWith((deps) => ({
      config: { ...deps.config, mail: { provider: 'http', from: 'f', url: 'https://m.example', token: 't' } },
    }));
    const res = await request(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(email)}`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain(email);
    expect((await request('/auth/dev/mailbox', { method: 'DELETE' })).status).toBe(404);
    expect(await kept()).toBe(1);
  });
});
