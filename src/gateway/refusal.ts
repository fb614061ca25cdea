import type { Context } from 'hono';
import type { AppEnv } from '../deps';
import { COOKIES, serializeCookie } from '../lib/cookies';
import { GatehouseError, type ErrorCode, type ErrorExtra } from '../lib/errors';
import { beginHandshake, HANDSHAKE_TTL } from './app-session';

type C = Context<AppEnv>;

/**
 * The gateway's refusal of a request: an error with the headers the answer must carry (the
 * route's WWW-Authenticate challenge, a DPoP nonce, Allow) and, for a browser that may sign in,
 * where it comes back to afterwards.
 */
export class GatewayRefusal extends GatehouseError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Set when a browser (no bearer token) may be sent to sign in instead: the path and query to return to. */
    readonly signInBack?: string,
    extra: ErrorExtra = {},
  ) {
    super(code, message, extra);
  }
}

/** The way to one of Gatehouse's pages and back. */
export interface ToGatehouse {
  back: string;
  via?: { path: string; query?: Record<string, string> };
  status: 302 | 303;
}

/**
 * Sends a browser to one of Gatehouse's pages (`via`, sign-in by default) and back to `back`:
 * directly on Gatehouse's own host; from an app host, through the host handshake (its state
 * cookie set here).
 */
export async function gatewayRedirect(c: C, to: ToGatehouse): Promise<Response> {
  const { deps } = c.var;
  const host = new URL(c.req.url).host;
  const target = to.via ?? { path: '/auth/sign-in' };
  if (host === deps.config.publicUrl.host)
    return c.redirect(`${target.path}?${new URLSearchParams({ ...target.query, return_to: to.back })}`, to.status);
  const { state, location } = await beginHandshake(deps, host, to.back, to.via);
  c.header('set-cookie', serializeCookie(COOKIES.connect, state, HANDSHAKE_TTL), { append: true });
  c.header('cache-control', 'no-store');
  return c.redirect(location, to.status);
}
