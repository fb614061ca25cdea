import { createLocalJWKSet, errors, jwtVerify } from 'jose';
import type { Deps } from '../deps';
import { oauthError } from '../lib/errors';
import type { Client } from './clients';
import { issuerOf } from './issue';

/** Algorithms a request object may be signed with: asymmetric only, never `none`. */
export const REQUEST_OBJECT_ALGS = ['ES256', 'RS256', 'PS256', 'EdDSA'];

/**
 * A signed request object (RFC 9101 JAR): verified against the client's registered keys (`jwks`),
 * `iss` the client, `aud` this issuer, at most ten minutes old, `typ` oauth-authz-req+jwt when
 * given. Its claims are the request's parameters — and the only ones used (RFC 9101 §6.3); the
 * outer `client_id` must name the same client. An unsigned one (`alg: none`), one signed with a key
 * the client did not register, or a client with no keys: `invalid_request_object`.
 */
export async function requestObjectParams(deps: Deps, client: Client, jwt: string): Promise<Record<string, string>> {
  const invalid = (why: string) => oauthError('invalid_request_object', `The request object was refused: ${why}.`);
  if (!client.jwks) throw invalid('this client has no registered keys');
  let payload: Record<string, unknown>;
  try {
    const verified = await jwtVerify(jwt, createLocalJWKSet(client.jwks), {
      algorithms: REQUEST_OBJECT_ALGS,
      issuer: client.clientId,
      audience: issuerOf(deps),
      currentDate: new Date(deps.now()),
      maxTokenAge: '10m',
      requiredClaims: ['iat'],
    });
    if (verified.protectedHeader.typ !== undefined && !/^(application\/)?oauth-authz-req\+jwt$/i.test(verified.protectedHeader.typ))
      throw invalid('typ is not oauth-authz-req+jwt');
    payload = verified.payload as Record<string, unknown>;
  } catch (e) {
    if (e instanceof errors.JWTClaimValidationFailed || e instanceof errors.JWTExpired)
      throw invalid(`its ${e.claim} claim is missing or not valid`);
    if (e instanceof errors.JOSEError) throw invalid(e.code);
    throw e;
  }
  if (payload.client_id !== undefined && payload.client_id !== client.clientId) throw invalid('client_id does not match');
  const out: Record<string, string> = { client_id: client.clientId };
  for (const [k, v] of Object.entries(payload)) {
    if (['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'request', 'request_uri'].includes(k)) continue;
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) out[k] = String(v);
    else if (k === 'claims' && v && typeof v === 'object') out[k] = JSON.stringify(v);
    else if (k === 'resource' && Array.isArray(v) && v.every((r) => typeof r === 'string')) out[k] = v.join(' ');
    else throw invalid(`parameter ${/^[a-z_]{1,40}$/.test(k) ? k : ''} is not a string`);
  }
  return out;
}
