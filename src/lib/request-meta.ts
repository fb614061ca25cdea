import type { Context } from 'hono';

/** Who is acting, as seen at the edge; recorded with sessions and audit events. */
export interface RequestMeta {
  ip: string | null;
  userAgent: string | null;
}

/** The client's address (Cloudflare's cf-connecting-ip) and User-Agent, as the request states them. */
export function requestMeta(c: Context): RequestMeta {
  return {
    ip: c.req.header('cf-connecting-ip') ?? null,
    userAgent: c.req.header('user-agent') ?? null,
  };
}

/**
 * The request's id for logs and problem bodies: Cloudflare's `cf-ray` when there is one, else a
 * UUID made the first time one is needed (most requests never need one).
 */
export function requestIdOf(c: Context): string {
  let id = c.get('requestId') as string | undefined;
  if (!id) {
    id = crypto.randomUUID();
    c.set('requestId', id);
  }
  return id;
}

/** "Chrome on Linux" from a User-Agent, for people (never for decisions). */
export function describeDevice(userAgent: string): string {
  const browser = /Edg\//.test(userAgent)
    ? 'Edge'
    : /Firefox\//.test(userAgent)
      ? 'Firefox'
      : /Chrome\//.test(userAgent)
        ? 'Chrome'
        : /Safari\//.test(userAgent)
          ? 'Safari'
          : 'a browser';
  const os = /Android/.test(userAgent)
    ? 'Android'
    : /iPhone|iPad/.test(userAgent)
      ? 'iOS'
      : /Mac OS X/.test(userAgent)
        ? 'macOS'
        : /Windows/.test(userAgent)
          ? 'Windows'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : 'an unknown system';
  return `${browser} on ${os}`;
}
