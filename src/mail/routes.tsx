import { desc, eq } from 'drizzle-orm';
import { router } from '../lib/router';
import { devMail } from '../db/schema';
import { normaliseEmail } from '../identity/email';
import { GatehouseError } from '../lib/errors';
import { Layout } from '../ui/layout';

/**
 * The dev mailbox at /auth/dev/mailbox: HTML for people, JSON (`Accept: application/json` or
 * `?format=json`) for tests and scripts; `?to=` filters by recipient. Mounted only when
 * MAIL_PROVIDER is "dev", which the config refuses in production.
 */
export const devMailboxRoutes = router('problem');

devMailboxRoutes.use('/*', async (c, next) => {
  if (c.var.deps.config.mail.provider !== 'dev' || c.var.deps.config.environment === 'production')
    throw new GatehouseError('not_found', 'Not found.');
  c.header('cache-control', 'no-store');
  await next();
});

const linksIn = (text: string) => [...text.matchAll(/https?:\/\/[^\s<>"]+/g)].map((m) => m[0]);

devMailboxRoutes.get('/mailbox', async (c) => {
  const to = c.req.query('to');
  const rows = await c.var.deps.db
    .select()
    .from(devMail)
    .where(to ? eq(devMail.to, normaliseEmail(to)) : undefined)
    .orderBy(desc(devMail.id))
    .limit(100)
    .all();
  const messages = rows.map((m) => ({ ...m, links: linksIn(m.text) }));
  if (c.req.query('format') === 'json' || c.req.header('accept')?.includes('application/json')) return c.json({ messages });
  return c.html(
    <Layout title="Dev mailbox">
      <p>Mail Gatehouse would have sent, newest first. Local development only.</p>
      {messages.length === 0 && <p role="status">No mail yet.</p>}
      {messages.map((m) => (
        <article class="notice">
          <h2>{m.subject}</h2>
          <p>
            To: {m.to} · {new Date(m.createdAt).toISOString()}
          </p>
          <pre class="mail-text">{m.text}</pre>
          {m.links.map((href) => (
            <p>
              <a href={href}>{href}</a>
            </p>
          ))}
        </article>
      ))}
    </Layout>,
  );
});

devMailboxRoutes.delete('/mailbox', async (c) => {
  await c.var.deps.db.delete(devMail);
  return c.body(null, 204);
});
