/**
 * What the gateway removes from a request before it adds anything (DESIGN.md §3): every header
 * with the identity prefix in any case and in `_` / `.` spellings, the assertion header, every
 * header the client's `Connection` names (and the hop-by-hop ones), client-supplied forwarding
 * headers (Gatehouse sets its own), and Gatehouse's own cookies.
 */
export interface HeaderPolicy {
  /** e.g. `X-Auth-`. */
  prefix: string;
  /** e.g. `X-Auth-Assertion` (removed even if the prefix were changed). */
  assertionHeader: string;
  /** Cookie names that never leave Gatehouse. */
  ownCookies: readonly string[];
}

/** Hop-by-hop headers (RFC 9110 §7.6.1). `upgrade` is kept for WebSocket pass-through. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'proxy-authorization', 'proxy-authenticate'];
/** Set by Gatehouse from what it knows, never copied from the client. */
const FORWARDING = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x-original-url', 'x-rewrite-url'];

/** Header names compared the way lenient servers compare them: lower case, `_` and `.` as `-`. */
export const canonicalName = (name: string) => name.toLowerCase().replace(/[_.]/g, '-');

export function sanitizeRequestHeaders(incoming: Headers, policy: HeaderPolicy): Headers {
  const prefix = canonicalName(policy.prefix);
  const assertion = canonicalName(policy.assertionHeader);
  const nominated = new Set(
    (incoming.get('connection') ?? '')
      .split(',')
      .map((t) => canonicalName(t.trim()))
      .filter((t) => t && t !== 'upgrade'),
  );
  const out = new Headers();
  for (const [name, value] of incoming) {
    const n = canonicalName(name);
    if (n.startsWith(prefix) || n === assertion || nominated.has(n) || HOP_BY_HOP.includes(n) || FORWARDING.includes(n)) continue;
    if (n === 'cookie') {
      const kept = stripCookies(value, policy.ownCookies);
      if (kept) out.append('cookie', kept);
      continue;
    }
    out.append(name, value);
  }
  return out;
}

/** The Cookie header without Gatehouse's own cookies (or '' when nothing is left). */
export function stripCookies(cookieHeader: string, own: readonly string[]): string {
  return cookieHeader
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && !own.includes(c.slice(0, c.indexOf('=') < 0 ? c.length : c.indexOf('=')).trim()))
    .join('; ');
}
