import { decodeJwt } from 'jose';
import type { Deps } from '../deps';
import { failClosed, GatehouseError } from '../lib/errors';
import type { SessionClaims } from '../sessions/session-token';
import { verifyToken } from '../tokens/jwt';
import { findClient, type Client } from './clients';
import { issuerOf } from './issue';

type Params = Record<string, string | undefined>;

export interface LogoutRequest {
  client: Client | null;
  /** Where to send the browser afterwards (exactly a registered post-logout URI, with `state`). */
  redirect: string | null;
  /** The ID token hint was valid and names the signed-in user (or nobody is signed in): no need to ask. */
  confirmed: boolean;
}

const bad = (message: string, field: string) => new GatehouseError('invalid_request', message, { field });

/**
 * RP-initiated logout (OIDC RP-Initiated Logout 1.0). post_logout_redirect_uri must exactly match
 * one the client registered, and the client must be known (from id_token_hint or client_id).
 * Without a valid hint for the current user, the person is asked to confirm first.
 */
export async function parseLogoutRequest(deps: Deps, params: Params, session: SessionClaims | null): Promise<LogoutRequest> {
  let client: Client | null = null;
  let hintedSub: string | undefined;
  if (params.id_token_hint) {
    let aud: unknown;
    try {
      aud = decodeJwt(params.id_token_hint).aud;
    } catch {
      throw bad('id_token_hint is not a JWT.', 'id_token_hint');
    }
    const clientId = Array.isArray(aud) ? aud[0] : aud;
    if (typeof clientId !== 'string') throw bad('id_token_hint has no audience.', 'id_token_hint');
    client = (await failClosed('the database', () => findClient(deps.db, clientId, deps.now()))) ?? null;
    if (!client) throw bad('id_token_hint was issued to an unknown client.', 'id_token_hint');
    const claims = await verifyToken(deps.signingKeys, params.id_token_hint, {
      kind: 'id',
      issuer: issuerOf(deps),
      audience: client.clientId,
      now: deps.now(),
      allowExpired: true,
    }).catch(() => null);
    if (!claims) throw bad('id_token_hint is not a valid ID token from this issuer.', 'id_token_hint');
    hintedSub = claims.sub;
  }
  if (params.client_id) {
    if (client && client.clientId !== params.client_id) throw bad('client_id does not match id_token_hint.', 'client_id');
    client ??= (await failClosed('the database', () => findClient(deps.db, params.client_id!, deps.now()))) ?? null;
    if (!client) throw bad('Unknown client_id.', 'client_id');
  }
  let redirect: string | null = null;
  if (params.post_logout_redirect_uri) {
    if (!client) throw bad('post_logout_redirect_uri needs id_token_hint or client_id.', 'post_logout_redirect_uri');
    if (!client.postLogoutRedirectUris.includes(params.post_logout_redirect_uri))
      throw bad('post_logout_redirect_uri is not registered for this client.', 'post_logout_redirect_uri');
    const url = new URL(params.post_logout_redirect_uri);
    if (params.state !== undefined) url.searchParams.set('state', params.state.slice(0, 2048));
    redirect = url.toString();
  }
  const confirmed = !session || (hintedSub !== undefined && hintedSub === session.sub);
  return { client, redirect, confirmed };
}
