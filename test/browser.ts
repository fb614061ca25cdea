import { env, exports } from 'cloudflare:workers';
import { createApp } from '../src/app';
import { depsFor, type Deps } from '../src/deps';
import { ORIGIN, overridden, uniqueIp } from './helpers';

/**
 * A browser for Workers-runtime tests: keeps cookies per host (the Set-Cookie rules that matter
 * here — replace, delete on Max-Age=0 or empty value), sends Origin on form posts like Chrome does,
 * and fills in the CSRF token of Gatehouse's forms. `cf` is what Cloudflare would attach (country, ASN).
 */
export class TestBrowser {
  /** host → name → value. */
  readonly jar = new Map<string, Map<string, string>>();
  /** host → names of the cookies set SameSite=None (the only ones a cross-site POST carries). */
  readonly crossSiteCookies = new Map<string, Set<string>>();
  ip = uniqueIp();
  cf: { country?: string; asn?: number } | undefined;
  userAgent = 'Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0';
  /** The worker this browser talks to: the real one, or (`at`) one with some deps replaced. */
  private worker: (request: Request) => Promise<Response> = (request) => exports.default.fetch(request);

  constructor(opts: { cf?: { country?: string; asn?: number } } = {}) {
    this.cf = opts.cf;
  }

  /**
   * The same browser (same cookies) talking to the worker with some deps replaced — a frozen
   * clock, say — so a test can age a session and still follow redirects and keep cookies.
   */
  at(override: (deps: Deps) => Partial<Deps>): TestBrowser {
    const app = createApp(async (e) => overridden(await depsFor(e), override));
    const twin = Object.create(this) as TestBrowser;
    twin.worker = async (request) => app.fetch(request, env);
    return twin;
  }

  private cookiesOf(host: string): Map<string, string> {
    let cookies = this.jar.get(host);
    if (!cookies) {
      cookies = new Map();
      this.jar.set(host, cookies);
    }
    return cookies;
  }

  /** Gatehouse's own host's cookies (most tests need no other). */
  get cookies(): Map<string, string> {
    return this.cookiesOf(new URL(ORIGIN).host);
  }

  cookieHeaderFor(host: string): string {
    return [...this.cookiesOf(host)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get cookieHeader(): string {
    return this.cookieHeaderFor(new URL(ORIGIN).host);
  }

  cookie(name: string, host = new URL(ORIGIN).host): string | undefined {
    return this.cookiesOf(host).get(name);
  }

  private remember(host: string, res: Response): void {
    for (const header of res.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0$/i.test(a)) || value === '';
      if (expired) this.cookiesOf(host).delete(name);
      else this.cookiesOf(host).set(name, value);
      const none = this.crossSiteCookies.get(host) ?? new Set();
      this.crossSiteCookies.set(host, none);
      if (!expired && attrs.some((a) => /^\s*samesite=none$/i.test(a))) none.add(name);
      else none.delete(name);
    }
  }

  async fetch(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const url = new URL(path, ORIGIN);
    const headers = new Headers(init.headers);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    headers.set('cf-connecting-ip', this.ip);
    if (!headers.has('user-agent')) headers.set('user-agent', this.userAgent);
    if (this.cookiesOf(url.host).size) headers.set('cookie', this.cookieHeaderFor(url.host));
    const res = await this.worker(
      new Request(url.toString(), {
        ...init,
        headers,
        body: init.json !== undefined ? JSON.stringify(init.json) : (init.body ?? null),
        redirect: 'manual',
        ...(this.cf ? { cf: this.cf } : {}),
      } as RequestInit),
    );
    this.remember(url.host, res);
    return res;
  }

  /** GET a page as a navigation; returns the response and its HTML. */
  async open(path: string): Promise<{ res: Response; html: string }> {
    const res = await this.fetch(path, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    return { res, html: await res.text() };
  }

  /**
   * Navigates like a browser: follows redirects (across hosts: the host handshake) up to `hops`
   * times, re-sending the method only on 307/308. Returns the last response and the URLs visited.
   */
  async navigate(path: string, init: RequestInit = {}, hops = 10): Promise<{ res: Response; visited: string[] }> {
    const visited: string[] = [];
    let url = new URL(path, ORIGIN).toString();
    let request: RequestInit = {
      ...init,
      headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', ...(init.headers as Record<string, string>) },
    };
    for (let i = 0; ; i++) {
      visited.push(url);
      const res = await this.fetch(url, request);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location || i === hops) return { res, visited };
      url = new URL(location, url).toString();
      if (res.status !== 307 && res.status !== 308) request = { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } };
    }
  }

  /** Submits a form: the CSRF token comes from the page at `formPage` (default: the action's own page). */
  async submit(action: string, fields: Record<string, string>, formPage = action): Promise<Response> {
    const { html } = await this.open(formPage);
    const token = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
    if (!token) throw new Error(`no form with a CSRF token on ${formPage}`);
    return this.fetch(action, {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: token, ...fields }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, accept: 'text/html', 'sec-fetch-mode': 'navigate' },
    });
  }

  /**
   * A form another site's page posts to Gatehouse (Apple's form_post): the browser sends the
   * cross-site Origin and only the cookies set SameSite=None; the response's cookies are kept.
   */
  async crossSitePost(path: string, form: URLSearchParams, origin: string): Promise<Response> {
    const url = new URL(path, ORIGIN);
    const none = this.crossSiteCookies.get(url.host) ?? new Set();
    const cookie = [...this.cookiesOf(url.host)].filter(([k]) => none.has(k)).map(([k, v]) => `${k}=${v}`);
    const headers = new Headers({
      'content-type': 'application/x-www-form-urlencoded',
      origin,
      'sec-fetch-site': 'cross-site',
      'sec-fetch-mode': 'navigate',
      accept: 'text/html',
      'cf-connecting-ip': this.ip,
      'user-agent': this.userAgent,
      ...(cookie.length ? { cookie: cookie.join('; ') } : {}),
    });
    const res = await this.worker(new Request(url.toString(), { method: 'POST', headers, body: form.toString(), redirect: 'manual' }));
    this.remember(url.host, res);
    return res;
  }

  /** JSON POST to the API (same origin). */
  post(path: string, json: unknown): Promise<Response> {
    return this.fetch(path, { method: 'POST', json, headers: { origin: ORIGIN } });
  }
}
