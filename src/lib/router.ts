import { Hono } from 'hono';
import type { AppEnv } from '../deps';

/**
 * Where an error is answered, and so in which shape (docs/api.md "Errors"):
 * - `oauth`: RFC 6749 §5.2 JSON (`error`, `error_description`), no-store; `invalid_client` with a
 *   Basic challenge.
 * - `oauth-resource`: a protected resource (RFC 6750 §3): 401s as a Bearer challenge (and, with
 *   `dpop`, a DPoP one, RFC 9449 §7.1), 403 as `insufficient_scope`; otherwise as `oauth`.
 * - `authorize`: an error for a validated redirect URI goes back to the client (RFC 6749
 *   §4.1.2.1); any other is a page (never a redirect to an unchecked URI). `consent` is the same,
 *   answering one of our own form posts (so through the Continue page).
 * - `problem`: RFC 9457 problem+json (the JSON APIs, discovery).
 * - `page`: a hosted page — the form re-rendered with the message at its field when the route
 *   declared one, a sign-in or proof step when that is what is missing, an error page otherwise.
 * - `admin`: problem+json, as a protected resource (RFC 6750 §3): a 401 is a Bearer challenge, a
 *   403 `insufficient_scope` names the scope wanted.
 * - `gateway`: problem+json with the route's challenge, or, for a browser that must sign in, the
 *   way to the sign-in page.
 *
 * The renderers are in src/error-channels.tsx; this module only names the channels, so that every
 * router can declare one without importing them.
 */
export type ChannelName = 'oauth' | 'oauth-resource' | 'authorize' | 'consent' | 'problem' | 'admin' | 'page' | 'gateway';
export interface Channel {
  name: ChannelName;
  /** oauth-resource: the resource takes DPoP-bound tokens too (its 401 challenges both schemes). */
  dpop?: boolean;
}

type Router = Hono<AppEnv>;

const declared = new WeakMap<Router, Channel>();

/** A router whose every route answers errors in one channel. */
export function router(name: ChannelName, options: { dpop?: boolean } = {}): Router {
  const r = new Hono<AppEnv>();
  declared.set(r, { name, ...options });
  return r;
}

/** The channel a router declared with router(), if it did. */
export const channelOf = (r: Router): Channel | undefined => declared.get(r);
