import type { Context } from 'hono';
import type { GatehouseError } from '../lib/errors';
import { en } from './messages';
import { MessagePage } from './pages/credentials';

/** An error on a hosted page: a readable page with the right status; 5xx never shows internals. */
export function renderErrorPage(c: Context, e: GatehouseError): Response {
  const body = e.code === 'csrf_failed' ? en.errors.csrf : e.status >= 500 && e.code !== 'temporarily_unavailable' ? en.errors.generic : e.message;
  if (e.extra.retryAfter) c.header('retry-after', String(e.extra.retryAfter));
  c.header('cache-control', 'no-store');
  return c.html(
    <MessagePage title={e.status === 404 ? en.errors.notFound : 'Sorry'} body={body} status="error" link={{ href: '/auth/sign-in', label: 'Back to sign in' }} />,
    e.status as 500,
  ) as Response;
}
