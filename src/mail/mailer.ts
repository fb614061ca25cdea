import type { Config } from '../config';
import type { Database } from '../db/client';
import { devMail } from '../db/schema';
import { shownEmail } from '../identity/email';
import { GatehouseError, unavailable } from '../lib/errors';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

/** Sends transactional mail. Throws a 503 GatehouseError when the mail cannot be handed over. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** Local development and tests: mail is kept in D1 and read at /auth/dev/mailbox. */
export function devMailbox(db: Database, now: () => number = Date.now): Mailer {
  return {
    async send(mail) {
      try {
        await db.insert(devMail).values({ ...mail, html: mail.html ?? null, createdAt: now() });
      } catch (e) {
        throw unavailable('the dev mailbox', e);
      }
    },
  };
}

/**
 * Production: an HTTP mail API taking `{ from, to: [..], subject, text, html }` with a bearer token
 * (Resend's shape; Postmark, SendGrid and others sit behind a small adapter at the same URL).
 */
export function httpMailer(opts: { url: string; token: string; from: string }, fetcher: typeof fetch): Mailer {
  return {
    async send(mail) {
      let response: Response;
      try {
        response = await fetcher(opts.url, {
          method: 'POST',
          headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ from: opts.from, to: [mail.to], subject: mail.subject, text: mail.text, html: mail.html }),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw unavailable('the mail service', e);
      }
      await response.body?.cancel();
      if (!response.ok) {
        // The provider's answer may echo addresses or tokens: log the status only.
        console.error(JSON.stringify({ event: 'mail_send_failed', status: response.status }));
        throw unavailable('the mail service');
      }
    },
  };
}

export function createMailer(config: Config, db: Database, fetcher: typeof fetch): Mailer {
  if (config.mail.provider === 'dev' && config.environment === 'production')
    throw new GatehouseError('config_invalid', 'the dev mailbox is never enabled in production');
  const mailer = config.mail.provider === 'dev' ? devMailbox(db) : httpMailer(config.mail, fetcher);
  // An account without an address (identity/email.ts) holds one that can never receive mail: nothing is sent there.
  return { send: (mail) => (shownEmail(mail.to) === null ? Promise.resolve() : mailer.send(mail)) };
}
