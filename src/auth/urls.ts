import type { Config } from '../config';

/** An absolute URL on Gatehouse's public origin (from config, never from the request's Host). */
export function authUrl(config: Config, path: string, query: Record<string, string> = {}): string {
  const url = new URL(path, config.publicUrl);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * Where to go after signing in: only a path on this origin ("/x", not "//x" or "/\x"),
 * anything else falls back to the account page. Prevents open redirects.
 */
export function safeReturnTo(raw: string | undefined | null, fallback = '/auth/account'): string {
  if (!raw || raw.length > 8192 || !raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return fallback;
  if (/[\u0000-\u001f\\]/.test(raw)) return fallback;
  return raw;
}
