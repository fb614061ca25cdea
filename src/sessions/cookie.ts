/**
 * The session cookie (`COOKIES.session`, src/lib/cookies.ts) holds two things: the short-lived
 * signed session token (verified in the isolate, no I/O) and the session secret that proves
 * possession to the UserSessions object when the token needs refreshing.
 */
const SEPARATOR = '~';

export function formatSessionCookie(token: string, secret: string): string {
  return `${token}${SEPARATOR}${secret}`;
}

export function parseSessionCookie(value: string): { token: string; secret: string } | null {
  if (value.length > 4096) return null;
  const at = value.lastIndexOf(SEPARATOR);
  if (at <= 0) return null;
  const token = value.slice(0, at);
  const secret = value.slice(at + 1);
  if (!/^[A-Za-z0-9_-]{43}$/.test(secret) || !/^[A-Za-z0-9_.-]+$/.test(token)) return null;
  return { token, secret };
}
