import { DPOP_ALGS } from '../tokens/dpop';
import { ACR_VALUES } from '../auth/acr';
import type { Deps } from '../deps';
import { GRANT_TYPES, KNOWN_SCOPES } from './clients';
import { RESPONSE_MODES } from './authorization-response';
import { SCOPE_CLAIMS } from './claims';
import { REQUEST_OBJECT_ALGS } from './request-object';
import { issuerOf } from './issue';

export const ENDPOINTS = {
  authorization: '/auth/authorize',
  token: '/auth/token',
  userinfo: '/auth/userinfo',
  registration: '/auth/register',
  revocation: '/auth/revoke',
  introspection: '/auth/introspect',
  endSession: '/auth/logout',
  deviceAuthorization: '/auth/device_authorization',
  pushedAuthorization: '/auth/par',
  /** Not OpenID metadata: an upstream's kept access token, for an app (src/oauth/upstream-token.ts). */
  upstreamToken: '/auth/upstream-token',
  jwks: '/.well-known/jwks.json',
} as const;

const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];

/** OpenID Provider metadata (OIDC Discovery 1.0 §3; RFC 8414). Everything named here is served. */
export function providerMetadata(deps: Deps) {
  const issuer = issuerOf(deps);
  const at = (path: string) => `${issuer}${path}`;
  return {
    issuer,
    authorization_endpoint: at(ENDPOINTS.authorization),
    token_endpoint: at(ENDPOINTS.token),
    userinfo_endpoint: at(ENDPOINTS.userinfo),
    // RFC 8414 §2: named only while dynamic registration is on (REGISTRATION_TOKEN set).
    ...(deps.config.registration.initialToken ? { registration_endpoint: at(ENDPOINTS.registration) } : {}),
    jwks_uri: at(ENDPOINTS.jwks),
    revocation_endpoint: at(ENDPOINTS.revocation),
    introspection_endpoint: at(ENDPOINTS.introspection),
    end_session_endpoint: at(ENDPOINTS.endSession),
    device_authorization_endpoint: at(ENDPOINTS.deviceAuthorization),
    pushed_authorization_request_endpoint: at(ENDPOINTS.pushedAuthorization),
    require_pushed_authorization_requests: false,
    scopes_supported: [...KNOWN_SCOPES],
    response_types_supported: ['code'],
    response_modes_supported: [...RESPONSE_MODES],
    grant_types_supported: [...GRANT_TYPES],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    userinfo_signing_alg_values_supported: [],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: ['ES256', 'RS256', 'PS256', 'EdDSA'],
    revocation_endpoint_auth_methods_supported: AUTH_METHODS,
    introspection_endpoint_auth_methods_supported: AUTH_METHODS.filter((m) => m !== 'none'),
    code_challenge_methods_supported: ['S256'],
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
    acr_values_supported: [...ACR_VALUES],
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'nonce',
      'acr',
      'amr',
      'sid',
      ...new Set(Object.values(SCOPE_CLAIMS).flat()),
    ],
    authorization_response_iss_parameter_supported: true,
    claims_parameter_supported: true,
    request_parameter_supported: true,
    request_object_signing_alg_values_supported: REQUEST_OBJECT_ALGS,
    request_uri_parameter_supported: false,
    dpop_signing_alg_values_supported: DPOP_ALGS,
    require_request_uri_registration: false,
    frontchannel_logout_supported: false,
    backchannel_logout_supported: false,
  };
}

/** The metadata document as JSON text, made once per isolate's config (it depends on nothing else). */
const metadataText = new WeakMap<object, string>();

/** The discovery response (OIDC Discovery 1.0 §4; RFC 8414 §3): the same document at both paths. */
export function metadataResponse(deps: Deps): Response {
  let text = metadataText.get(deps.config);
  if (text === undefined) {
    text = JSON.stringify(providerMetadata(deps));
    metadataText.set(deps.config, text);
  }
  return new Response(text, {
    headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600', 'access-control-allow-origin': '*' },
  });
}

/** The discovery documents' paths, under /.well-known. */
export const METADATA_PATHS = ['/openid-configuration', '/oauth-authorization-server'] as const;
