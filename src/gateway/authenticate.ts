import type { Deps } from '../deps';
import { GatehouseError } from '../lib/errors';
import type { ResumedSession } from '../sessions/session-lifecycle';
import { isAccessTokenLive, verifyAccessToken, type PhantomCache } from '../tokens/access-token';
import { checkSenderConstraint, DpopError, parseAuthorization } from '../tokens/dpop';
import { identityFromAccessToken, identityFromSession, type Identity } from './identity';
import type { Route } from './routes-config';

/** Opaque access token → its JWT, per isolate, until the JWT expires (the phantom-token pattern). */
const phantomCache: PhantomCache = new Map();

export type Authentication =
  | { status: 'ok'; who: Identity | null; bearer: boolean; cookie: SessionCookieChange }
  /** A presented credential that is no good here: 401 with the RFC 6750 (or RFC 9449) error. */
  | {
      status: 'rejected';
      error: 'invalid_token' | 'invalid_request' | 'invalid_dpop_proof' | 'use_dpop_nonce';
      reason: string;
      nonce?: string;
    };

/** What the response must do with the session cookie: re-set it (refreshed), clear it, or nothing. */
export type SessionCookieChange = { value: string; maxAge: number } | 'clear' | null;

/**
 * Who is asking, verified in the isolate: an access token (RFC 6750 Bearer, or RFC 9449 DPoP with
 * its proof) if there is one — accepted only when the route names the token's audience (RFC 8707: a
 * token for one API is not a key to another) — or else this host's session cookie (already read by resumeSession). On a
 * `fresh` route the Durable Object is asked too (the session, or the token's grant), so revocation
 * takes effect at once.
 */
export async function authenticate(
  deps: Deps,
  req: { authorization: string | undefined; dpop: string | undefined; method: string; url: string; session: ResumedSession },
  route: Route,
): Promise<Authentication> {
  if (req.authorization) {
    const presented = parseAuthorization(req.authorization);
    if (!presented)
      return { status: 'rejected', error: 'invalid_request', reason: 'The Authorization header is not a Bearer or DPoP access token.' };
    const audiences = route.policy.audiences;
    if (!audiences) return { status: 'rejected', error: 'invalid_token', reason: 'This route does not accept access tokens.' };
    let who: Identity;
    try {
      const claims = await verifyAccessToken(deps, presented.token, { audience: audiences, cache: phantomCache });
      // A DPoP-bound token is nothing without a proof by its key for this very request (RFC 9449 §7).
      await checkSenderConstraint(deps, {
        ...presented,
        claims,
        proof: req.dpop,
        method: req.method,
        url: req.url,
        dpopRequired: route.policy.dpop,
      });
      if (route.policy.fresh && !(await isAccessTokenLive(deps, claims)))
        return { status: 'rejected', error: 'invalid_token', reason: 'The access token has been revoked.' };
      who = identityFromAccessToken(claims);
    } catch (e) {
      if (e instanceof DpopError)
        return { status: 'rejected', error: e.code as 'invalid_dpop_proof', reason: e.message, ...(e.nonce ? { nonce: e.nonce } : {}) };
      if (e instanceof GatehouseError && e.code === 'invalid_token')
        return { status: 'rejected', error: 'invalid_token', reason: e.message };
      throw e;
    }
    return { status: 'ok', who, bearer: true, cookie: null };
  }
  const session = req.session;
  if (session.status !== 'valid') return { status: 'ok', who: null, bearer: false, cookie: session.status === 'ended' ? 'clear' : null };
  // A `fresh` route asks the session's Durable Object on every request: revocation is immediate.
  if (route.policy.fresh && !(await deps.sessions.get(session.claims.sub, session.claims.sid, deps.now())))
    return { status: 'ok', who: null, bearer: false, cookie: 'clear' };
  return { status: 'ok', who: identityFromSession(session.claims), bearer: false, cookie: session.refreshed ?? null };
}
