import type { Deps } from '../deps';
import { oauthError } from '../lib/errors';
import type { VerifiedProof } from '../tokens/dpop';
import { parseAuthorizationRequest, resolveClient } from './authorize';
import type { Client } from './clients';
import { pushRequest } from './pushed-requests';
import { requestObjectParams } from './request-object';

/** Client-authentication fields: they authenticate the push, they are not part of the request. */
const CLIENT_AUTH_FIELDS = ['client_secret', 'client_assertion', 'client_assertion_type'];

/**
 * A pushed authorization request (RFC 9126) from an authenticated client: its parameters (or its
 * request object's, RFC 9101), never a request_uri (§2.1) and never another client's id; bound to
 * the DPoP key that came with the push (RFC 9449 §10.1: a `dpop_jkt` given must agree). The checks
 * the authorization endpoint will make are made now, so a bad request is refused here as JSON
 * (§2.3). Returns the `request_uri` to use and its lifetime.
 */
export async function pushAuthorizationRequest(deps: Deps, client: Client, params: Record<string, string>, proof: VerifiedProof | null) {
  if (params.request_uri !== undefined)
    throw oauthError('invalid_request', 'request_uri is not allowed in a pushed request (RFC 9126 section 2.1).');
  const pushed =
    params.request !== undefined
      ? await requestObjectParams(deps, client, params.request)
      : Object.fromEntries(Object.entries(params).filter(([k]) => !CLIENT_AUTH_FIELDS.includes(k)));
  if (proof) {
    if (pushed.dpop_jkt !== undefined && pushed.dpop_jkt !== proof.jkt)
      throw oauthError('invalid_dpop_proof', "dpop_jkt is not the thumbprint of the DPoP proof's key.");
    pushed.dpop_jkt = proof.jkt;
  }
  if (pushed.client_id !== undefined && pushed.client_id !== client.clientId)
    throw oauthError('invalid_request', 'client_id does not match the authenticated client.');
  pushed.client_id = client.clientId;
  const { redirectUri } = await resolveClient(deps, pushed);
  parseAuthorizationRequest(pushed, client, redirectUri);
  return pushRequest(deps, client.clientId, pushed);
}
