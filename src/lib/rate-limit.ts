import type { Hono } from 'hono';
import type { AppEnv } from '../deps';
import { GatehouseError } from './errors';
import { requestMeta } from './request-meta';

/**
 * The key a client address is limited under. An IPv6 client controls at least a /64 (one customer
 * site gets 2^64 addresses), so IPv6 counts per /64; an IPv4-mapped or -compatible IPv6 address
 * counts as its IPv4 address. Anything unparseable shares one key.
 */
export function ipKey(ip: string | null): string {
  if (!ip) return 'ip:unknown';
  const v4 = /^(?:::ffff:|::)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip.trim());
  if (v4) return v4[1]!.split('.').every((n) => Number(n) <= 255) ? `ip:${v4[1]}` : 'ip:unknown';
  const groups = expandIpv6(ip.trim());
  return groups ? `ip6:${groups.slice(0, 4).join(':')}::/64` : 'ip:unknown';
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped, embedded IPv4 folded), or null. */
function expandIpv6(ip: string): string[] | null {
  let text = ip
    .toLowerCase()
    .replace(/%.*$/, '')
    .replace(/^\[|\]$/g, '');
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    if ([a, b, c, d].some((n) => n > 255)) return null;
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  if (!/^[0-9a-f:]+$/.test(text) || (text.match(/::/g) ?? []).length > 1) return null;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? left.length !== 8 : missing < 1) return null;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => g.replace(/^0+(?=.)/, ''));
}

/**
 * Per-client limit on credential endpoints through the Workers Rate Limiting binding (limit and
 * period in wrangler.toml), keyed by ipKey. The binding is approximate and per location; the exact
 * per-account counters in auth/throttle.ts back it up.
 */
export async function enforceIpLimit(limit: (key: string) => Promise<boolean>, ip: string | null): Promise<void> {
  if (!(await limit(ipKey(ip))))
    throw new GatehouseError('rate_limited', 'Too many requests from this address; wait a minute and try again.', {
      retryAfter: 60,
    });
}

/** Hono middleware: the per-IP limit on POSTs (or GETs) to each of `paths` of `router`, before any work. */
export function limitPostsPerIp(router: Hono<AppEnv>, paths: readonly string[], method: 'post' | 'get' = 'post'): void {
  for (const path of paths)
    router[method](path, async (c, next) => {
      await enforceIpLimit(c.var.deps.rateLimit, requestMeta(c).ip);
      await next();
    });
}
