import { env, exports } from 'cloudflare:workers';
import { expect } from 'vitest';
import { createApp } from '../src/app';
import { depsFor, type Deps } from '../src/deps';
import type { D1Queries } from '../src/db/client';
import type { UserSessions } from '../src/sessions/user-sessions';

/** Gatehouse's own host (PUBLIC_URL), and the app host the test routes live on (vitest.config.ts). */
export const ORIGIN = 'https://gatehouse.test';
export const APP = 'https://app.gatehouse.test';

let counter = 0;
/** A unique address per call, so tests sharing storage never collide. */
export const uniqueEmail = (tag = 'user') => `${tag}-${Date.now().toString(36)}-${++counter}@example.com`;
/**
 * A unique client IP per call: an IPv6 documentation address in a random /64 (the rate limiter
 * counts per /64), so the per-IP limit of one test never trips another — test files share the
 * limiter and run in parallel.
 */
export const uniqueIp = () => {
  const [a, b, c] = crypto.getRandomValues(new Uint16Array(3));
  return `2001:db8:${a!.toString(16)}:${b!.toString(16)}:${c!.toString(16)}::1`;
};

export const STRONG_PASSWORD = 'correct horse battery staple 42';

export function call(path: string, init: RequestInit & { json?: unknown; ip?: string; cookie?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.json !== undefined) headers.set('content-type', 'application/json');
  headers.set('cf-connecting-ip', init.ip ?? uniqueIp());
  if (init.cookie) headers.set('cookie', init.cookie);
  return exports.default.fetch(path.startsWith('https://') ? path : `${ORIGIN}${path}`, {
    ...init,
    headers,
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
    redirect: 'manual',
  });
}

/** The `name=value` of a Set-Cookie for `name`, or undefined. */
export function cookieFrom(res: Response, name: string): { pair: string; header: string } | undefined {
  const header = res.headers.getSetCookie().find((h) => h.startsWith(`${name}=`));
  return header ? { pair: header.split(';')[0]!, header } : undefined;
}

export const SESSION = '__Host-gatehouse_session';
export const CSRF = '__Host-gatehouse_csrf';

export interface Mail {
  id: number;
  to: string;
  subject: string;
  text: string;
  links: string[];
}

/** Newest dev-mailbox message to `to`, waiting briefly for mail sent after the response. */
export async function lastMailTo(to: string, after = 0): Promise<Mail> {
  for (let attempt = 0; ; attempt++) {
    const res = await call(`/auth/dev/mailbox?format=json&to=${encodeURIComponent(to)}`);
    expect(res.status).toBe(200);
    const { messages } = (await res.json()) as { messages: Mail[] };
    if (messages.length > 0 && messages[0]!.id > after) return messages[0]!;
    if (attempt === 40) throw new Error(`no new mail to ${to}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const tokenFrom = (mail: Mail) => new URL(mail.links[0]!).searchParams.get('token')!;

/** Signs up through the API, opens the verification link, returns the new user's id. */
export async function createVerifiedUser(email = uniqueEmail(), password = STRONG_PASSWORD) {
  const up = await call('/auth/api/sign-up', { method: 'POST', json: { email, password } });
  expect(up.status).toBe(202);
  const token = tokenFrom(await lastMailTo(email));
  const verified = await call('/auth/api/verify-email', { method: 'POST', json: { token } });
  expect(verified.status).toBe(200);
  const row = await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first<{ id: string }>();
  return { email, password, userId: row!.id };
}

/**
 * The host handshake (gateway/app-session.ts) as a browser runs it: from an app host to Gatehouse's
 * `/auth/connect` and back. Returns the app host's session cookie pair.
 */
export async function appSession(authCookie: string, host = new URL(APP).host): Promise<string> {
  // A signed-out navigation to a protected page starts the handshake.
  const begin = await call(`https://${host}/demo/me/handshake`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  expect(begin.status, await begin.clone().text()).toBe(302);
  const state = cookieFrom(begin, '__Host-gatehouse_connect')!.pair;
  const connect = await call(new URL(begin.headers.get('location')!).pathname + new URL(begin.headers.get('location')!).search, {
    cookie: authCookie,
  });
  expect(connect.status, await connect.clone().text()).toBe(302);
  const back = await call(connect.headers.get('location')!, { cookie: state });
  expect(back.status, await back.clone().text()).toBe(303);
  return cookieFrom(back, SESSION)!.pair;
}

/** Signs in through the API; returns the session cookie pair and the response body. */
export async function signIn(email: string, password = STRONG_PASSWORD, ip?: string) {
  const res = await call('/auth/api/sign-in', { method: 'POST', json: { email, password }, ...(ip ? { ip } : {}) });
  expect(res.status).toBe(200);
  const cookie = cookieFrom(res, SESSION)!;
  return { cookie: cookie.pair, setCookie: cookie.header, body: (await res.json()) as { user: { id: string }; session: { sid: string } } };
}

export const auditOf = (userId: string) =>
  env.DB.prepare('SELECT type, detail FROM audit_events WHERE user_id = ? ORDER BY id')
    .bind(userId)
    .all<{ type: string; detail: string | null }>();

/**
 * The worker's app with some deps replaced (a frozen clock, a failing D1 or Durable Object), driven
 * through its own fetch with the real bindings.
 */
/** The isolate's deps with a test's replacements; a test that brings its own database keeps it for every query (no per-request session over the binding). */
export function overridden(deps: Deps, override: (deps: Deps) => Partial<Deps>): Deps {
  const own = override(deps);
  return own.db || own.d1 ? { ...deps, primary: own.db ?? deps.primary, ...own, openSession: undefined } : { ...deps, ...own };
}

export function appWith(override: (deps: Deps) => Partial<Deps>) {
  const app = createApp(async (e) => overridden(await depsFor(e), override));
  return (path: string, init: RequestInit & { json?: unknown; ip?: string; cookie?: string } = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    headers.set('cf-connecting-ip', init.ip ?? uniqueIp());
    if (init.cookie) headers.set('cookie', init.cookie);
    const request = new Request(path.startsWith('https://') ? path : `${ORIGIN}${path}`, {
      ...init,
      headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : (init.body ?? null),
      redirect: 'manual',
    });
    return Promise.resolve(app.fetch(request, env));
  };
}

/** A D1 binding that fails as during an outage: every statement, or only batches (writes). */
export function failingD1<T extends D1Queries>(real: T, failOn: 'all' | 'batch' = 'all'): T {
  const fail = () => Promise.reject(new Error('D1_ERROR: simulated outage'));
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'batch' || prop === 'exec') return fail;
      if (prop === 'prepare' && failOn === 'all')
        return (sql: string) => {
          const stmt = target.prepare(sql);
          return new Proxy(stmt, {
            get(s, p) {
              if (p === 'bind') return (...args: unknown[]) => failingStatement(s.bind(...args));
              if (['first', 'run', 'all', 'raw'].includes(String(p))) return fail;
              return Reflect.get(s, p, s);
            },
          });
        };
      return Reflect.get(target, prop, target);
    },
  });
}

function failingStatement(stmt: D1PreparedStatement): D1PreparedStatement {
  const fail = () => Promise.reject(new Error('D1_ERROR: simulated outage'));
  return new Proxy(stmt, {
    get(s, p) {
      if (['first', 'run', 'all', 'raw'].includes(String(p))) return fail;
      return Reflect.get(s, p, s);
    },
  });
}

/** A UserSessions namespace whose objects all fail, as when an object is reset or unreachable. */
export function brokenSessionsNamespace(onlyFor?: string): DurableObjectNamespace<UserSessions> {
  const fail = () => Promise.reject(new Error('Durable Object reset because its code was updated.'));
  const broken = onlyFor === undefined ? null : env.USER_SESSIONS.idFromName(onlyFor);
  return {
    idFromName: (name: string) => env.USER_SESSIONS.idFromName(name),
    get: (id: DurableObjectId) => (broken && !broken.equals(id) ? env.USER_SESSIONS.get(id) : new Proxy({}, { get: () => fail })),
  } as unknown as DurableObjectNamespace<UserSessions>;
}

/** An RFC 9457 body as Gatehouse renders it. */
export interface Problem {
  type: string;
  status: number;
  detail: string;
  code: string;
  field?: string;
}

/** Where a Continue page (meta refresh) leads, HTML entities decoded. */
export function continueTarget(html: string): string {
  const m = /<meta http-equiv="refresh" content="0;url=([^"]+)"/.exec(html);
  if (!m) throw new Error('not a Continue page');
  return m[1]!
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'");
}

/** D1 as the app sees it, recording every statement's SQL. */
export function recordingD1<T extends D1Queries>(real: T, log: string[]): T {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'prepare')
        return (sql: string) => {
          log.push(sql);
          return target.prepare(sql);
        };
      const value = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Waits, when needed, until at least 15 s of the current wall-clock minute are left: the Workers
 * rate limiter (60 s windows aligned to the clock, in Miniflare as in production) would otherwise
 * start a new window in the middle of a test that counts to its limit.
 */
export async function withinOneLimiterWindow(): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 15_000) await new Promise((r) => setTimeout(r, left + 100));
}
