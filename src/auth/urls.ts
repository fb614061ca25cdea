import type { Config } from '../config';

/** An absolute URL on Gatehouse's public origin (from config, never from the request's Host). */
export function authUrl(config: Config, path: string, query: Record<string, string> = {}): string {
  const url = new URL(path, config.publicUrl);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * Where to go after signing in: only a path on this origin. Anything that is not plainly a path —
 * `//host`, `/\\host`, a scheme, control characters or whitespace that browsers strip, encoded
 * slashes or backslashes that some servers decode — falls back to the account page. The result is
 * re-serialised from a parse against a placeholder origin, so what is returned is what was checked.
 */
export function safeReturnTo(raw: string | undefined | null, fallback = '/auth/account'): string {
  if (!raw || raw.length > 8192 || !raw.startsWith('/') || raw.startsWith('//')) return fallback;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
  if (/[\u0000-\u0020\u007f-\u00a0\\]/.test(raw) || /%(00|09|0a|0d)/i.test(raw)) return fallback;
  // Encoded slashes or backslashes in the path (not the query, where encoded URLs belong).
  if (/%(2f|5c)/i.test(raw.split(/[?#]/)[0]!)) return fallback;
  let url: URL;
  try {
    url = new URL(raw, 'https://return-to.invalid');
  } catch {
    return fallback;
  }
  if (url.origin !== 'https://return-to.invalid' || url.username || url.password) return fallback;
  const path = `${url.pathname}${url.search}${url.hash}`;
  return path.startsWith('//') ? fallback : path;
}
