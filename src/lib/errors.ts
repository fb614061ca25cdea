/** Stable error codes; clients may switch on them. */
export type ErrorCode =
  | 'invalid_request'
  | 'invalid_json'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'invalid_credentials'
  | 'email_not_verified'
  | 'weak_password'
  | 'invalid_token'
  | 'expired_token'
  | 'unauthenticated'
  | 'forbidden'
  | 'csrf_failed'
  | 'not_found'
  | 'method_not_allowed'
  | 'rate_limited'
  | 'account_locked'
  | 'temporarily_unavailable'
  | 'config_invalid'
  | 'server_error'
  // OAuth 2.0 / OIDC (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6; RFC 6750 §3.1)
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'insufficient_scope'
  | 'invalid_code'
  | 'code_reused'
  | 'too_many_attempts'
  | 'already_enrolled'
  | 'second_factor_required'
  | 'recent_sign_in_required'
  | 'proof_required'
  | 'invalid_proof'
  | 'totp_required'
  | 'invalid_target'
  | 'invalid_request_uri'
  | 'request_uri_not_supported'
  | 'invalid_request_object'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'invalid_client_metadata'
  | 'invalid_redirect_uri'
  | 'invalid_passkey'
  | 'invalid_challenge'
  | 'request_not_held'
  | 'authorization_pending'
  | 'slow_down';

/** The one error model; routes render it as problem+json (APIs) or a page (forms). */
export class GatehouseError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    /** `field`: the input at fault; `retryAfter`: seconds; `acr`: the sign-in strength to step up to. */
    readonly extra: { field?: string; retryAfter?: number; acr?: string } = {},
  ) {
    super(message);
    this.name = 'GatehouseError';
  }
}

export const badRequest = (message: string, field?: string) =>
  new GatehouseError('invalid_request', 400, message, field ? { field } : {});

/** A dependency (D1, a Durable Object, the mail API) failed where the answer needs it: fail closed. */
export const unavailable = (what: string, cause?: unknown) => {
  const e = new GatehouseError('temporarily_unavailable', 503, `${what} is temporarily unavailable; try again shortly`, {
    retryAfter: 5,
  });
  if (cause !== undefined) (e as { cause?: unknown }).cause = cause;
  return e;
};

/** An OAuth error (RFC 6749): `error` is the code, `error_description` the message. */
export const oauthError = (code: ErrorCode, message: string, status = 400) => new GatehouseError(code, status, message);

/**
 * Text fit for an OAuth `error_description` (RFC 6749 §4.1.2.1, §5.2): only %x20-21 / %x23-5B /
 * %x5D-7E. Typographic punctuation is spelled in ASCII, `"` becomes `'` and `\` becomes `/`,
 * accents are dropped, anything else is removed. (Messages never carry the caller's input; this is
 * the guarantee on top.)
 */
export function oauthText(text: string): string {
  const spelled = text
    .replace(/§/g, 'section ')
    .replace(/[‘’‚′]/g, "'")
    .replace(/[“”„″"]/g, "'")
    .replace(/[–—−]/g, '-')
    .replace(/…/g, '...')
    .replace(/\\/g, '/')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '');
  return spelled.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '').replace(/ {2,}/g, ' ').trim();
}

/** RFC 9457 problem body for an error. */
export function problemBody(e: GatehouseError, instance?: string) {
  return {
    type: `https://gatehouse.dev/problems/${e.code}`,
    title: e.code.replace(/_/g, ' '),
    status: e.status,
    detail: e.message,
    code: e.code,
    ...(e.extra.field ? { field: e.extra.field } : {}),
    ...(instance ? { instance } : {}),
  };
}

/**
 * Runs a call to D1 or a Durable Object; anything it throws becomes a 503 (never a 500, never a pass).
 * GatehouseErrors raised deliberately inside pass through untouched.
 */
export async function failClosed<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof GatehouseError) throw e;
    throw unavailable(what, e);
  }
}

/**
 * A log-safe description of an unexpected error: the innermost cause's name and message, with any
 * bound parameters removed (query builders append them, and they can hold hashes or addresses).
 */
export function describeError(e: unknown): string {
  let inner = e;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  if (!(inner instanceof Error)) return String(inner ?? '');
  const message = inner.message.split(/\n\s*params:/)[0]!.slice(0, 500);
  return `${inner.name}: ${message}`;
}
