/**
 * The session cookie holds two things: the short-lived signed session token (verified in the
 * isolate, no I/O) and the session secret that proves possession to the UserSessions object when
 * the token needs refreshing. `__Host-` pins it to this host, path / and Secure.
 */
export const SESSION_COOKIE = '__Host-gatehouse_session';
export const CSRF_COOKIE = '__Host-gatehouse_csrf';
/** A random id per browser, so sign-ins from a device seen before can be told from new ones (a year). */
export const DEVICE_COOKIE = '__Host-gatehouse_device';
export const DEVICE_COOKIE_MAX_AGE = 365 * 86400;

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

export const sessionCookieAttributes = (maxAge: number) => ({
  path: '/' as const,
  secure: true as const,
  httpOnly: true,
  sameSite: 'Lax' as const,
  maxAge: Math.max(0, Math.floor(maxAge)),
});
