// The grant types and scopes Gatehouse supports (no imports: shared with the Node scripts).

export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';
export const GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'refresh_token', 'client_credentials'];

/** `offline_access` lets a refresh token outlive the browser session it came from. */
export const KNOWN_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
