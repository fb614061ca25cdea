import type { Deps } from '../deps';
import { GatehouseError } from '../lib/errors';
import type { ResumedSession } from '../sessions/session-lifecycle';
import { isAccessTokenLive, phantomCache, verifyAccessToken } from '../tokens/access-token';
import { checkSenderConstraint, DpopError, parseAuthorization } from '../tokens/dpop';
import { looksLikeApiKey } from '../oauth/api-keys';
import { verifyApiKey } from './api-key-auth';
import { identityFromAccessToken, identityFromSession, type Identity } from './identity';
import type { Route } from './routes-config';

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

/** How the request presents its credentials (the headers that can carry one), and what a key check needs. */
export interface Presented {
  authorization: string | undefined;
  /** `X-API-Key`. */
  apiKey: string | undefined;
  dpop: string | undefined;
  method: string;
  url: string;
  session: ResumedSession;
  ip: string | null;
  /** Runs work after the response (an API key's last-used time). */
  defer: (task: Promise<void>) => void;
}

/**
 * Who is asking, verified in the isolate: an API key (`Authorization: Bearer gk_…` or `X-API-Key`,
 * where the route takes it), else an access token (RFC 6750 Bearer, or RFC 9449 DPoP with its
 * proof) if there is one — either accepted only when the route names its audience (RFC 8707: a
 * credential for one API is not a key to another) — or else this host's session cookie (already
 * read by resumeSession). On a `fresh` route the Durable Object (or, for a key, D1) is asked too,
 * so revocation takes effect at once.
 */
export async function authenticate(deps: Deps, req: Presented, route: Route): Promise<Authentication> {
  const accepts = route.policy.apiKeys ?? [];
  // X-API-Key is Gatehouse's where the route takes keys there, and wherever it holds one of ours;
  // elsewhere it is the origin's own header, none of our business.
  const headerKey = req.apiKey !== undefined && (accepts.includes('x-api-key') || looksLikeApiKey(req.apiKey)) ? req.apiKey : undefined;
  const bearer = parseAuthorization(req.authorization);
  const bearerKey = bearer?.scheme === 'Bearer' && looksLikeApiKey(bearer.token) ? bearer.token : undefined;
  if (headerKey !== undefined && req.authorization !== undefined)
    return {
      status: 'rejected',
      error: 'invalid_request',
      reason: 'Send one credential: an API key or an Authorization header, not both.',
    };
  const key = headerKey ?? bearerKey;
  if (key !== undefined) {
    const where = headerKey !== undefined ? 'x-api-key' : 'authorization';
    if (!accepts.includes(where))
      return {
        status: 'rejected',
        error: 'invalid_token',
        reason: accepts.length
          ? `This route takes API keys only in ${accepts.includes('x-api-key') ? 'X-API-Key' : 'Authorization'}.`
          : 'This route does not accept API keys.',
      };
    const checked = await verifyApiKey(deps, key, {
      audiences: route.policy.audiences ?? [],
      fresh: route.policy.fresh,
      ip: req.ip,
      defer: req.defer,
    });
    if (checked.status === 'rejected') return { status: 'rejected', error: 'invalid_token', reason: checked.reason };
    return { status: 'ok', who: checked.who, bearer: true, cookie: null };
  }
  if (req.authorization) {
    const presented = bearer;
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
