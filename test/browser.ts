import { exports } from 'cloudflare:workers';
import { ORIGIN, uniqueIp } from './helpers';

/**
 * A browser for Workers-runtime tests: keeps cookies (the Set-Cookie rules that matter here —
 * replace, delete on Max-Age=0 or empty value), sends Origin on form posts like Chrome does, and
 * fills in the CSRF token of Gatehouse's forms. `cf` is what Cloudflare would attach (country, ASN).
 */
export class TestBrowser {
  readonly cookies = new Map<string, string>();
  ip = uniqueIp();
  cf: { country?: string; asn?: number } | undefined;
  userAgent = 'Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0';

  constructor(opts: { cf?: { country?: string; asn?: number } } = {}) {
    this.cf = opts.cf;
  }

  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  private remember(res: Response): void {
    for (const header of res.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0$/i.test(a)) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async fetch(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    headers.set('cf-connecting-ip', this.ip);
    if (!headers.has('user-agent')) headers.set('user-agent', this.userAgent);
    if (this.cookies.size) headers.set('cookie', this.cookieHeader);
    const res = await exports.default.fetch(path.startsWith('http') ? path : `${ORIGIN}${path}`, {
      ...init,
      headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
      redirect: 'manual',
      ...(this.cf ? { cf: this.cf } : {}),
    } as RequestInit);
    this.remember(res);
    return res;
  }

  /** GET a page as a navigation; returns the response and its HTML. */
  async open(path: string): Promise<{ res: Response; html: string }> {
    const res = await this.fetch(path, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
    return { res, html: await res.text() };
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

  /** JSON POST to the API (same origin). */
  post(path: string, json: unknown): Promise<Response> {
    return this.fetch(path, { method: 'POST', json, headers: { origin: ORIGIN } });
  }
}
