import { safeReturnTo } from '../auth/urls';
import type { Deps } from '../deps';
import type { RequestMeta } from '../identity/audit';
import { findUserView } from '../identity/users';
import { hmac, randomToken, sha256, timingSafeEqualString } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import type { SessionClaims } from '../sessions/session-token';
import { cookieFor } from '../sessions/session-lifecycle';

/**
 * App hosts (docs/security.md, "Hosts"): Gatehouse's pages and APIs live on PUBLIC_URL's host; the
 * gateway fronts other hosts, and each gets a session of its own through a redirect handshake —
 * so no origin ever runs script on the host where credentials are managed. On an app host:
 *
 *   1. a browser without a session is sent to `/auth/connect` on Gatehouse's host, carrying a
 *      random `state` that the app host also keeps in a cookie;
 *   2. signed in there (or after signing in), Gatehouse's host mints a single-use code for that
 *      host, bound to the Gatehouse session and to the state, and sends the browser back;
 *   3. the app host redeems it at `/.gatehouse/session`: state cookie and code must agree (so an
 *      attacker's code cannot be planted on someone else's browser), and the new session takes
 *      the Gatehouse session's sign-in, ends with it, and is refused on any other host.
 */
export const APP_PATH = '/.gatehouse';
const CODE_TTL_MS = 60_000;
/** How long an app host waits (the state cookie) for the browser to come back from signing in. */
export const HANDSHAKE_TTL = 15 * 60;

const CODE = /^cx1\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;
/** `<random>.<expiry, seconds>.<HMAC>`: a state only an app host's own start can make (see signState). */
const STATE = /^([A-Za-z0-9_-]{43})\.(\d{10})\.([A-Za-z0-9_-]{43})$/;

/**
 * The handshake state, minted by the app host's start and signed for that host: /auth/connect
 * takes no state a script made up, so a code can only ever be minted for a handshake the gateway
 * began (whose state cookie it set, HttpOnly, itself).
 */
async function signState(deps: Deps, host: string, nonce: string, exp: number): Promise<string> {
  return `${nonce}.${exp}.${await hmac(deps.keys.csrf, `connect-state:${host}:${nonce}:${exp}`)}`;
}

async function stateIsGenuine(deps: Deps, host: string, state: string): Promise<boolean> {
  const m = STATE.exec(state);
  if (!m || Number(m[2]) * 1000 < deps.now()) return false;
  return timingSafeEqualString(await signState(deps, host, m[1]!, Number(m[2])), state);
}

const badLink = () =>
  new GatehouseError(
    'invalid_request',
    'This sign-in link is not valid (expired, used, or started in another browser). Go back and try again.',
  );

/**
 * The app host's first step: the state to keep in its cookie and where to send the browser —
 * `/auth/connect`, or first through `via` (a sign-in or step-up page whose `return_to` it becomes).
 */
export async function beginHandshake(deps: Deps, host: string, returnTo: string, via?: { path: string; query?: Record<string, string> }) {
  const state = await signState(deps, host, randomToken(32), Math.floor(deps.now() / 1000) + HANDSHAKE_TTL);
  const connect = `/auth/connect?${new URLSearchParams({ host, state, return_to: returnTo })}`;
  const auth = deps.config.publicUrl.origin;
  const location = via ? `${auth}${via.path}?${new URLSearchParams({ ...via.query, return_to: connect })}` : `${auth}${connect}`;
  return { state, location };
}

/** Gatehouse's host, second step: a code for the app host, and the address that takes it there. */
export async function issueHandshake(
  deps: Deps,
  session: SessionClaims,
  q: { host?: string; state?: string; returnTo?: string },
): Promise<string> {
  if (!q.host || !deps.config.gateway.appHosts.includes(q.host))
    throw new GatehouseError('invalid_request', 'host is not a host Gatehouse fronts.', { field: 'host' });
  if (!q.state || !(await stateIsGenuine(deps, q.host, q.state)))
    throw new GatehouseError('invalid_request', 'state is missing, expired or was not made by that host.', { field: 'state' });
  const secret = randomToken(32);
  const [hash, stateHash] = await Promise.all([sha256(secret), sha256(q.state)]);
  const now = deps.now();
  const returnTo = safeReturnTo(q.returnTo ?? null, '/');
  const issued = await deps.sessions.issueConnect(session.sub, hash, {
    sid: session.sid,
    host: q.host,
    stateHash,
    returnTo,
    now,
    ttlMs: CODE_TTL_MS,
  });
  if (!issued) throw new GatehouseError('unauthenticated', 'This session has ended. Sign in again.');
  const back = new URL(`${APP_PATH}/session`, `${deps.config.publicUrl.protocol}//${q.host}`);
  back.searchParams.set('code', `cx1.${session.sub}.${secret}`);
  return back.toString();
}

/** The app host's last step: the code and the state cookie become this host's session cookie. */
export async function finishHandshake(
  deps: Deps,
  r: { code: string | undefined; state: string | undefined; host: string; meta: RequestMeta },
): Promise<{ cookie: { value: string; maxAge: number }; returnTo: string; userId: string; sid: string }> {
  const m = r.code ? CODE.exec(r.code) : null;
  if (!m) throw badLink();
  const now = deps.now();
  // Every attempt spends the code — a failed one too (a missing or wrong state cookie): a code read
  // off a failed page is worth nothing.
  const { idleTtl, absoluteTtl } = deps.config.session;
  const result = await deps.sessions.redeemConnect(m[1]!, {
    secret: m[2]!,
    host: r.host,
    state: r.state ?? '',
    now,
    idleTtl,
    absoluteTtl,
    ip: r.meta.ip,
    userAgent: r.meta.userAgent,
  });
  if (result.status !== 'ok') throw badLink();
  const { secret, ...record } = result.session;
  const user = await failClosed('the database', () => findUserView(deps.db, record.userId));
  if (!user) throw badLink();
  const { cookie } = await cookieFor(deps, record, secret, user, now);
  return { cookie, returnTo: safeReturnTo(result.returnTo, '/'), userId: record.userId, sid: record.sid };
}
