/**
 * Every error Gatehouse answers with: a stable code (clients may switch on it), the HTTP status
 * that always goes with it, and a short title (RFC 9457 `title`). A code's status never depends on
 * where it is thrown; the channel that renders it (OAuth JSON, redirect, problem+json, page,
 * gateway) only chooses the shape of the body (src/error-channels.tsx, docs/api.md "Errors").
 */
export const ERRORS = {
  // Request shape
  invalid_request: [400, 'Invalid request'],
  invalid_json: [400, 'Invalid JSON'],
  unsupported_media_type: [415, 'Unsupported media type'],
  payload_too_large: [413, 'Request body too large'],
  not_found: [404, 'Not found'],
  method_not_allowed: [405, 'Method not allowed'],
  conflict: [409, 'Conflict'],
  upgrade_required: [426, 'Upgrade required'],
  // Sign-in and sessions
  invalid_credentials: [401, 'Invalid credentials'],
  email_not_verified: [403, 'Email not verified'],
  weak_password: [400, 'Weak password'],
  invalid_link: [400, 'Invalid link'],
  expired_token: [400, 'Expired'],
  unauthenticated: [401, 'Sign-in required'],
  forbidden: [403, 'Forbidden'],
  csrf_failed: [403, 'Cross-site request refused'],
  rate_limited: [429, 'Too many requests'],
  account_locked: [429, 'Account temporarily locked'],
  account_blocked: [403, 'Account blocked'],
  invalid_code: [400, 'Invalid code'],
  code_reused: [400, 'Code already used'],
  too_many_attempts: [400, 'Too many attempts'],
  already_enrolled: [409, 'Already enrolled'],
  second_factor_required: [403, 'Second factor required'],
  recent_sign_in_required: [403, 'Recent sign-in required'],
  proof_required: [403, 'Proof required'],
  invalid_proof: [403, 'Invalid proof'],
  totp_required: [409, 'Authenticator app required'],
  invalid_passkey: [400, 'Invalid passkey'],
  invalid_challenge: [400, 'Invalid challenge'],
  request_not_held: [409, 'Request not held'],
  upstream_failed: [400, 'Sign-in with the identity provider failed'],
  identity_in_use: [409, 'Identity linked to another account'],
  last_sign_in_method: [409, 'Last way to sign in'],
  upstream_reauth_required: [409, 'Sign-in with the identity provider needed'],
  // Dependencies and the server
  temporarily_unavailable: [503, 'Temporarily unavailable'],
  bad_gateway: [502, 'Origin unreachable'],
  upstream_unavailable: [502, 'Identity provider unreachable'],
  gateway_timeout: [504, 'Origin timed out'],
  config_invalid: [500, 'Configuration invalid'],
  server_error: [500, 'Server error'],
  // OAuth 2.0 / OIDC (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6; RFC 6750 §3.1; RFC 8628 §3.5;
  // RFC 8707; RFC 9126; RFC 9449; RFC 7591 §3.2.2)
  invalid_client: [401, 'Invalid client'],
  invalid_grant: [400, 'Invalid grant'],
  unauthorized_client: [400, 'Unauthorized client'],
  unsupported_grant_type: [400, 'Unsupported grant type'],
  unsupported_response_type: [400, 'Unsupported response type'],
  invalid_scope: [400, 'Invalid scope'],
  access_denied: [400, 'Access denied'],
  login_required: [400, 'Login required'],
  consent_required: [400, 'Consent required'],
  interaction_required: [400, 'Interaction required'],
  invalid_token: [401, 'Invalid token'],
  insufficient_scope: [403, 'Insufficient scope'],
  invalid_target: [400, 'Invalid target'],
  invalid_request_uri: [400, 'Invalid request_uri'],
  request_uri_not_supported: [400, 'request_uri not supported'],
  invalid_request_object: [400, 'Invalid request object'],
  invalid_dpop_proof: [400, 'Invalid DPoP proof'],
  use_dpop_nonce: [400, 'DPoP nonce required'],
  invalid_client_metadata: [400, 'Invalid client metadata'],
  invalid_redirect_uri: [400, 'Invalid redirect URI'],
  authorization_pending: [400, 'Authorization pending'],
  slow_down: [400, 'Slow down'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERRORS;

/** `field`: the input at fault; `retryAfter`: seconds; `acr`: the sign-in strength to step up to. */
export interface ErrorExtra {
  field?: string;
  /** Every field that failed validation (the admin API names them all). */
  errors?: { field: string; message: string }[];
  /** The scope a protected resource wanted (RFC 6750 §3's `scope`). */
  scope?: string;
  retryAfter?: number;
  acr?: string;
}

/**
 * The one error model (jose's error classes are the pattern): a code from ERRORS, whose status it
 * carries, and a message fit to show. Subclasses add what one channel needs (a DPoP nonce, a
 * validated redirect target); none changes the status.
 */
export class GatehouseError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: ErrorExtra = {},
  ) {
    super(message);
    this.name = 'GatehouseError';
    this.status = ERRORS[code][0];
  }
  get title(): string {
    return ERRORS[this.code][1];
  }
}

/** The account was blocked by an operator: no sign-in, by any method, until it is unblocked. */
export const accountBlocked = () =>
  new GatehouseError(
    'account_blocked',
    'This account is blocked and cannot sign in. Contact the site’s support if you think this is a mistake.',
  );

export const badRequest = (message: string, field?: string) => new GatehouseError('invalid_request', message, field ? { field } : {});

/** A dependency (D1, a Durable Object, the mail API) failed where the answer needs it: fail closed. */
export const unavailable = (what: string, cause?: unknown) => {
  const e = new GatehouseError('temporarily_unavailable', `${what} is temporarily unavailable; try again shortly`, {
    retryAfter: 5,
  });
  if (cause !== undefined) (e as { cause?: unknown }).cause = cause;
  return e;
};

/** An OAuth error (RFC 6749): `error` is the code, `error_description` the message. */
export const oauthError = (code: ErrorCode, message: string) => new GatehouseError(code, message);

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
  return spelled
    .replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '')
    .replace(/ {2,}/g, ' ')
    .trim();
}

/**
 * A 5xx other than a dependency outage is ours to fix: its message (a config variable's name, a
 * binding) goes to the log with the request id, never to the caller, in every channel. An outage's
 * message is Gatehouse's own words about what is down (never the dependency's), so it is shown.
 */
const SAID: ReadonlySet<string> = new Set(['temporarily_unavailable', 'upstream_unavailable']);
export const isInternal = (e: GatehouseError) => e.status >= 500 && !SAID.has(e.code);

/** What a caller is told of an internal error. */
export const INTERNAL_DETAIL = 'The server could not complete the request.';

/** RFC 9457 problem body for an error. */
export function problemBody(e: GatehouseError, instance?: string) {
  return {
    type: `https://gatehouse.dev/problems/${e.code}`,
    title: e.title,
    status: e.status,
    detail: isInternal(e) ? INTERNAL_DETAIL : e.message,
    code: e.code,
    ...(e.extra.field ? { field: e.extra.field } : {}),
    ...(e.extra.errors ? { errors: e.extra.errors } : {}),
    ...(e.extra.scope ? { scope: e.extra.scope } : {}),
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
