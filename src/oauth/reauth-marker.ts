import type { Deps } from '../deps';
import { hmac, sha256, timingSafeEqualString } from '../lib/crypto';
import type { SessionClaims } from '../sessions/session-token';

/** How long a re-authentication marker stays usable: the time it takes to sign in again. */
const REAUTH_MARKER_MS = 10 * 60_000;

/** The parameter that carries the marker through the sign-in page and back to /authorize. */
export const REAUTH_PARAM = 'gh_reauth';

/** A request's identity for the marker: every parameter but the marker, in a fixed order. */
async function requestDigest(params: Record<string, string | undefined>): Promise<string> {
  const entries = Object.entries(params)
    .filter((e): e is [string, string] => e[0] !== REAUTH_PARAM && e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sha256(JSON.stringify(entries));
}

/**
 * A signed marker carried through the sign-in page when an authorization request demands a fresh
 * sign-in (prompt=login, max_age): when it was demanded, by which client, for exactly which request
 * (`params`, the ones that will come back), and which session did not count ("-" for none). Only a
 * session signed in after that moment — not the stale one, not a handoff's (which keeps an older
 * sign-in) — satisfies it, only for that request, and only for ten minutes.
 */
export async function reauthMarker(
  deps: Deps,
  m: { staleSid: string | null; clientId: string; params: Record<string, string | undefined>; now: number },
): Promise<string> {
  const body = `${m.now}.${m.staleSid ?? '-'}`;
  return `${body}.${await hmac(deps.keys.csrf, `reauth:${body}:${m.clientId}:${await requestDigest(m.params)}`)}`;
}

/** The marker a request carries, if it is genuine and for this request: when and for whom the fresh sign-in was demanded. */
export async function readReauthMarker(
  deps: Deps,
  r: { clientId: string; params: Record<string, string | undefined>; now: number },
): Promise<{ demandedAt: number; staleSid: string } | null> {
  const marker = r.params[REAUTH_PARAM];
  const m = marker ? /^(\d{13})\.([A-Za-z0-9_-]{22}|-)\.([A-Za-z0-9_-]{43})$/.exec(marker) : null;
  if (!m || r.now - Number(m[1]) > REAUTH_MARKER_MS || Number(m[1]) > r.now) return null;
  const expected = await hmac(deps.keys.csrf, `reauth:${m[1]}.${m[2]}:${r.clientId}:${await requestDigest(r.params)}`);
  return timingSafeEqualString(expected, m[3]!) ? { demandedAt: Number(m[1]), staleSid: m[2]! } : null;
}

/** Whether `session` is a sign-in made after the marker demanded one. */
export const signedInSince = (marker: { demandedAt: number; staleSid: string }, session: SessionClaims) =>
  session.sid !== marker.staleSid && session.authTime >= Math.floor(marker.demandedAt / 1000);
