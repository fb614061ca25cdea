// The grant types and scopes Gatehouse supports (no imports: shared with the Node scripts).

/** RFC 8628's grant type. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials' | typeof DEVICE_CODE_GRANT;
export const GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT];

/**
 * The OpenID Connect scopes (`profile`, `email`, `address`, `phone` release their standard claims);
 * `offline_access` lets a refresh token outlive the browser session it came from; `roles` releases
 * the user's roles and tier (in tokens and userinfo) — nothing else carries them.
 */
export const KNOWN_SCOPES = ['openid', 'profile', 'email', 'address', 'phone', 'roles', 'offline_access'] as const;
