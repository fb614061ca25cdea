/**
 * RFC 9700 §2.1 / RFC 6749 §3.1.2: the redirect URI must equal a registered one exactly — compared
 * as strings, with no normalisation, no pattern, no prefix. The one exception (RFC 8252 §7.3): a
 * native (public) client registered with an `http` loopback IP literal may use any port.
 */
export function matchRedirectUri(registered: readonly string[], requested: string, allowLoopbackPort: boolean): boolean {
  if (registered.includes(requested)) return true;
  if (!allowLoopbackPort) return false;
  const loopback = /^http:\/\/(127\.0\.0\.1|\[::1\]):([1-9][0-9]{0,4})(\/[^#]*)?$/.exec(requested);
  if (!loopback || Number(loopback[2]) > 65535) return false;
  const withoutPort = `http://${loopback[1]}${loopback[3] ?? ''}`;
  return registered.includes(withoutPort);
}

/**
 * Checks a URI a client asks to register: absolute, canonical, no wildcard, no fragment, https (or
 * http loopback, or a private-use scheme for native apps). The answer never quotes the URI: it may
 * be shown to whoever sent it (RFC 7591 error_description).
 */
export function redirectUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not an absolute URI';
  }
  // Matching is exact (RFC 9700 §2.1): a `*` is a pattern someone meant, never a host they own.
  if (uri.includes('*')) return 'must not contain a wildcard (*): redirect URIs are matched exactly';
  if (url.toString() !== uri) return 'is not in canonical form (lower-case scheme and host, no default port, a path of at least /)';
  if (url.hash || uri.includes('#')) return 'must not contain a fragment';
  if (url.username || url.password) return 'must not contain user information';
  if (['javascript:', 'data:', 'vbscript:', 'file:'].includes(url.protocol)) return `must not use ${url.protocol}`;
  if (url.protocol === 'http:' && !['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname))
    return 'must use https (http only for loopback)';
  return undefined;
}
