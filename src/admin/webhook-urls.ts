import type { Config } from '../config';
import { GatehouseError } from '../lib/errors';

/**
 * Where webhooks may go (SSRF: an operator's URL must not make Gatehouse call into a network it
 * sits in). In production a URL must be https, and its host must be neither an IP literal in a
 * range that is not the public internet (private, loopback, link-local, CGNAT, unique-local,
 * multicast…; IPv4, IPv6, and IPv4 inside IPv6) nor a name that only resolves locally (localhost,
 * *.localhost, *.local, *.internal, *.home.arpa, a name without a dot). Development and test may
 * use http and any host (the local receiver). Checked when an endpoint is saved and again before
 * every delivery. Names are not resolved (Workers cannot): a public name pointing at a private
 * address reaches only what Cloudflare's network reaches, never the operator's own network.
 */

const V4_REFUSED: [string, number, string][] = [
  ['0.0.0.0', 8, '"this network"'],
  ['10.0.0.0', 8, 'a private range'],
  ['100.64.0.0', 10, 'the CGNAT range'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'a private range'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.168.0.0', 16, 'a private range'],
  ['198.18.0.0', 15, 'the benchmarking range'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved (and broadcast)'],
];

const LOCAL_NAMES = ['localhost', 'local', 'internal', 'home.arpa'];

function v4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function v4Problem(address: number): string | null {
  for (const [base, bits, what] of V4_REFUSED) {
    const size = 2 ** (32 - bits);
    if (Math.floor(address / size) === Math.floor(v4(base)! / size)) return what;
  }
  return null;
}

/** An IPv6 address (without brackets) as eight 16-bit groups; null when it is not one. */
function v6(text: string): number[] | null {
  let tail: number[] = [];
  let head = text;
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = v4(dotted[2]!);
    if (n === null) return null;
    tail = [Math.floor(n / 65536), n % 65536];
    head = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const group = (s: string) => (s === '' ? [] : s.split(':'));
  const [left, right] = [group(halves[0]!), halves.length === 2 ? group(halves[1]!) : null];
  if ([...left, ...(right ?? [])].some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return null;
  const known = [...left, ...(right ?? [])].map((g) => parseInt(g, 16));
  const missing = 8 - known.length - tail.length;
  if (right === null ? missing !== 0 : missing < 1) return null;
  return [
    ...left.map((g) => parseInt(g, 16)),
    ...Array(right === null ? 0 : missing).fill(0),
    ...(right ?? []).map((g) => parseInt(g, 16)),
    ...tail,
  ];
}

function v6Problem(g: number[]): string | null {
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  const embedded = (i: number) => g[i]! * 65536 + g[i + 1]!;
  if (zeros(8)) return 'the unspecified address';
  if (zeros(7) && g[7] === 1) return 'loopback';
  if (zeros(5) && g[5] === 0xffff) return v4Problem(embedded(6)) && `IPv4-mapped ${v4Problem(embedded(6))}`;
  if (zeros(6)) return 'IPv4-compatible (deprecated)';
  // ::ffff:0:0/96 (IPv4-translated, RFC 2765) and Teredo 2001::/32 (its client address, inverted, in the last 32 bits).
  if (zeros(4) && g[4] === 0xffff && g[5] === 0) return v4Problem(embedded(6)) && `IPv4-translated ${v4Problem(embedded(6))}`;
  if (g[0] === 0x2001 && g[1] === 0)
    return v4Problem((embedded(6) ^ 0xffffffff) >>> 0) && `Teredo of ${v4Problem((embedded(6) ^ 0xffffffff) >>> 0)}`;
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0))
    return v4Problem(embedded(6)) && `NAT64 of ${v4Problem(embedded(6))}`;
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'local-use NAT64';
  if (g[0] === 0x2002) return v4Problem(embedded(1)) && `6to4 of ${v4Problem(embedded(1))}`;
  if (g[0] === 0x100 && g.slice(1, 4).every((x) => x === 0)) return 'discard-only';
  if ((g[0]! & 0xfe00) === 0xfc00) return 'unique-local';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0]! & 0xffc0) === 0xfec0) return 'site-local';
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
  return null;
}

/** Why `raw` may not receive webhooks in `environment`, or null when it may. */
export function webhookUrlProblem(raw: string, environment: Config['environment']): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not an absolute URL';
  }
  const production = environment === 'production';
  if (url.protocol !== 'https:' && (production || url.protocol !== 'http:')) return production ? 'must be https' : 'must be http or https';
  if (url.username || url.password) return 'must not carry credentials (user:password@)';
  if (url.hash) return 'must not have a fragment (#…)';
  if (!production) return null;
  // Every trailing dot: `localhost..` is the same name to a resolver that forgives empty labels.
  const host = url.hostname.replace(/\.+$/, '');
  if (host.startsWith('[')) {
    const groups = v6(host.slice(1, -1));
    const problem = groups ? v6Problem(groups) : 'is not an IPv6 address';
    return problem && `must not be ${problem} (${host})`;
  }
  const address = v4(host);
  if (address !== null) {
    const problem = v4Problem(address);
    return problem && `must not be ${problem} (${host})`;
  }
  if (!host.includes('.') || LOCAL_NAMES.some((n) => host === n || host.endsWith(`.${n}`)))
    return `must be a public name, not ${host} (resolved only locally)`;
  return null;
}

/** The URL, normalised, when it may receive webhooks; a 400 naming `url` and the rule otherwise. */
export function checkWebhookUrl(raw: string, environment: Config['environment']): string {
  const problem = webhookUrlProblem(raw, environment);
  if (problem) throw new GatehouseError('invalid_request', `url ${problem}.`, { field: 'url' });
  return new URL(raw).href;
}
