import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { serialize } from 'hono/utils/cookie';

/**
 * Every cookie Gatehouse sets is named here, under one prefix, and written through this module
 * (DESIGN.md §3). The gateway strips every one of them from requests to origins and drops any
 * `Set-Cookie` from an origin that names one — matched by the reserved `gatehouse` namespace, not
 * by this list, so a cookie added later is covered without touching the gateway.
 */
const PREFIX = '__Host-gatehouse_';

export const COOKIES = {
  /** The session token and its secret (sessions/cookie.ts). */
  session: `${PREFIX}session`,
  /** The CSRF nonce of the hosted forms. */
  csrf: `${PREFIX}csrf`,
  /** A random id per browser, for adaptive sign-in (a year). */
  device: `${PREFIX}device`,
  /** A sign-in waiting for its second factor (five minutes). */
  secondFactor: `${PREFIX}2fa`,
  /** A sign-in waiting for the person to accept what they must (consent purposes; ten minutes). */
  purposes: `${PREFIX}purposes`,
  /** Binds an email sign-in code to the browser that asked for it (ten minutes). */
  emailSignIn: `${PREFIX}email_signin`,
  /** The device that a handoff will sign in (QR, continue). */
  handoffWait: `${PREFIX}handoff_wait`,
  /** The original device of a continue handoff. */
  handoffOwn: `${PREFIX}handoff_own`,
  /** On an app host: the state of a session handshake with the auth host (gateway/app-session.ts). */
  connect: `${PREFIX}connect`,
  /** Binds a sign-in at an upstream identity provider to the browser that started it (ten minutes). */
  upstream: `${PREFIX}upstream`,
  /** An upstream identity waiting for the person to prove the account it will be linked to (ten minutes). */
  pendingLink: `${PREFIX}pending_link`,
  /** Binds a sign-up through an upstream, confirmed by mail, to the browser that started it: only there is the identity linked. */
  upstreamSignUp: `${PREFIX}upstream_sign_up`,
  /** The D1 bookmark after a write of this person's, so their next reads include it (five minutes; db/replication.ts). */
  bookmark: `${PREFIX}d1_bookmark`,
  /** Binds an address change, confirmed by mail, to the browser that asked for it (thirty minutes; Lax: the link comes from a mail client). */
  emailChange: `${PREFIX}email_change`,
} as const;

export type CookieName = (typeof COOKIES)[keyof typeof COOKIES];

/** SameSite per cookie: Strict for the short-lived step state that no cross-site navigation needs. */
const STRICT = new Set<CookieName>([COOKIES.secondFactor, COOKIES.purposes, COOKIES.emailSignIn, COOKIES.handoffWait, COOKIES.handoffOwn]);

/** `__Host-`: Secure, Path=/, no Domain; HttpOnly always. `maxAge` in seconds; omitted: a browser-session cookie. */
export function cookieAttributes(name: CookieName, maxAge?: number) {
  return {
    path: '/' as const,
    secure: true as const,
    httpOnly: true,
    sameSite: STRICT.has(name) ? ('Strict' as const) : ('Lax' as const),
    ...(maxAge === undefined ? {} : { maxAge: Math.max(0, Math.floor(maxAge)) }),
  };
}

export const readCookie = (c: Context, name: CookieName): string | undefined => getCookie(c, name);

export function writeCookie(c: Context, name: CookieName, value: string, maxAge?: number): void {
  setCookie(c, name, value, cookieAttributes(name, maxAge));
}

export function clearCookie(c: Context, name: CookieName): void {
  deleteCookie(c, name, cookieAttributes(name));
}

/** A Set-Cookie value for `name` (where there is no Hono context to set it on, e.g. the gateway). */
export const serializeCookie = (name: CookieName, value: string, maxAge?: number) => serialize(name, value, cookieAttributes(name, maxAge));

// ── The boundary with origins ───────────────────────────────────────────────────────────────

/**
 * Whether a cookie name falls in Gatehouse's namespace, however it is spelled: any case, URL- or
 * Unicode-escaped (NFKC folds full-width letters), with or without `__Host-`/`__Secure-`/`__Http-`
 * style prefixes, surrounded by whitespace. Deliberately broad: an origin's own cookie named
 * `gatehouse_…` is treated as ours (the namespace is reserved; docs/origin.md).
 */
export function isGatehouseCookieName(name: string): boolean {
  let n = name;
  try {
    n = decodeURIComponent(n);
  } catch {
    // a malformed escape: judge the raw text
  }
  n = n.normalize('NFKC').trim().toLowerCase();
  return /^[\s_.-]*(?:[a-z]+-)*gatehouse(?:$|[\s_.-])/.test(n);
}

/**
 * Every name a cookie-pair string could be read as, by some parser: each piece between `,` (two
 * folded fields) and `=` (a nameless cookie `=name=value`, or a value that is itself a pair).
 */
const candidateNames = (pair: string) => pair.split(/[,=]/);

/**
 * The Cookie field without any Gatehouse cookie, or null when nothing is left. Browsers separate
 * pairs with `; `, but two Cookie fields reach a worker joined with `, `, and some clients use `;`
 * alone: every pair is split on `;` and checked under each `,` reading too. A pair that could be
 * ours under any reading is dropped whole (with whatever shared it), never half-forwarded.
 */
export function stripGatehouseCookies(field: string): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters (but tab) are what this refuses.
  if (field.length > 16 * 1024 || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(field)) return null;
  const kept = field
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => pair !== '' && !candidateNames(pair).some(isGatehouseCookieName));
  return kept.length ? kept.join('; ') : null;
}

/**
 * Whether an origin's `Set-Cookie` would set (or shadow) a Gatehouse cookie: by its name, or by a
 * name its value would be read as — a nameless cookie (`=name=value`, or no `=` at all) is sent
 * back by browsers as its bare value.
 */
export function setsGatehouseCookie(setCookie: string): boolean {
  return candidateNames(setCookie.split(';')[0] ?? '').some(isGatehouseCookieName);
}
