import type { Deps } from '../deps';
import { GatehouseError, oauthText, type ErrorCode } from '../lib/errors';
import { issuerOf } from './issue';

/** How the response reaches the client: the redirect URI's query, or an auto-posted form (OAuth 2.0 Form Post Response Mode). */
export type ResponseMode = 'query' | 'form_post';
export const RESPONSE_MODES: readonly ResponseMode[] = ['query', 'form_post'];

/**
 * The CSP source naming a redirect URI's origin, the one target a form_post page may post to; null
 * where CSP cannot name it (a native app's private-use scheme, an IPv6 literal): no form_post there.
 */
export function formActionSource(redirectUri: string): string | null {
  const { origin } = new URL(redirectUri);
  return /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(origin) ? origin : null;
}

/** Where an authorization response goes: a validated redirect URI, the request's state and mode. */
export interface ResponseTarget {
  redirectUri: string;
  state: string | undefined;
  mode: ResponseMode;
}

/** An authorization response (a code or an error) with every field it carries, `state` and `iss` included. */
export interface AuthorizationResponse {
  target: ResponseTarget;
  fields: Record<string, string>;
}

/**
 * An error the client may receive at its redirect URI (its client_id and redirect_uri were valid).
 * On the authorization endpoint it goes back to the client; on the PAR endpoint it is OAuth JSON
 * like any other error.
 */
export class RedirectableError extends GatehouseError {
  constructor(
    readonly target: ResponseTarget,
    code: ErrorCode,
    description: string,
  ) {
    super(code, description);
  }
  /** The authorization response that carries this error to the client. */
  response(deps: Deps): AuthorizationResponse {
    return authorizationResponse(deps, this.target, { error: this.code, error_description: this.message });
  }
}

/**
 * The response for the client: `code` or `error` (its description in RFC 6749's charset), with
 * `state` and `iss` (RFC 9207).
 */
export function authorizationResponse(deps: Deps, target: ResponseTarget, fields: Record<string, string>): AuthorizationResponse {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = k === 'error_description' ? oauthText(v) : v;
  if (target.state !== undefined) out.state = target.state;
  out.iss = issuerOf(deps);
  return { target, fields: out };
}

/** The response as a URL (query mode). */
export function responseUrl(r: AuthorizationResponse): string {
  const url = new URL(r.target.redirectUri);
  for (const [k, v] of Object.entries(r.fields)) url.searchParams.set(k, v);
  return url.toString();
}
