import type { Context } from 'hono';
import { type GatehouseError, isInternal } from '../lib/errors';
import { en } from './messages';
import { ConfirmActionPage, MessagePage } from './components';

// The pages that answer a hosted page's errors (src/error-channels.tsx renders with them).

/** What a route may say about its error page: a title of its own, and where to go from there. */
export interface ErrorPageOptions {
  title?: string;
  link?: { href: string; label: string };
}

/** An error on a hosted page: a readable page with the right status; 5xx never shows internals. */
export function renderErrorPage(c: Context, e: GatehouseError, options: ErrorPageOptions = {}): Response {
  const body = e.code === 'csrf_failed' ? en.errors.csrf : isInternal(e) ? en.errors.generic : e.message;
  if (e.extra.retryAfter) c.header('retry-after', String(e.extra.retryAfter));
  c.header('cache-control', 'no-store');
  const title = options.title ?? (e.status === 404 ? en.errors.notFound : 'Sorry');
  const link = options.link ?? { href: '/auth/sign-in', label: 'Back to sign in' };
  return c.html(<MessagePage title={title} body={body} status="error" link={link} />, e.status as 500) as Response;
}

/**
 * A sensitive action that needs a proof given now: the same action again, asking for it (fields
 * kept, never the proof or the CSRF token).
 */
export async function askForProof(c: Context, e: GatehouseError): Promise<Response> {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const fields = Object.fromEntries(
    Object.entries(body).filter(
      (f): f is [string, string] => typeof f[1] === 'string' && !['csrf_token', 'proof_password', 'proof_code'].includes(f[0]),
    ),
  );
  const error = e.code === 'invalid_proof' ? e.message : undefined;
  // The action with its query: a return_to there (confirming a link) must survive the proof.
  const url = new URL(c.req.url);
  return c.html(<ConfirmActionPage csrf={c.get('csrfToken')} action={`${url.pathname}${url.search}`} fields={fields} error={error} />, 403);
}
