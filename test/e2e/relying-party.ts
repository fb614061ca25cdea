import * as oidc from 'openid-client';
import { expect } from 'vitest';

/** A minimal cookie jar so plain fetch can act as a browser on the hosted pages. */
export class Jar {
  private cookies = new Map<string, string>();
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(res: Response) {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const [name, value] = [pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1)];
      if (/Max-Age=0/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  async fetch(url: string, init: RequestInit = {}) {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), cookie: this.header() },
      signal: AbortSignal.timeout(15_000),
    });
    this.take(res);
    return res;
  }
}

/** Who signs in, and where the relying party waits for the response. */
export interface Party {
  /** Gatehouse's base URL. */
  base: string;
  /** The relying party's redirect URI. */
  redirect: string;
  email: string;
  password: string;
}

/**
 * Follows redirects through Gatehouse (signing in on the hosted form when asked) until the RP's
 * redirect URI, and returns it.
 */
export async function runAuthorization(jar: Jar, url: URL, party: Party): Promise<URL> {
  let next = url.toString();
  for (let hops = 0; hops < 10; hops++) {
    if (next.startsWith(party.redirect)) return new URL(next);
    const res = await jar.fetch(next);
    if (res.status === 200 && new URL(next).pathname === '/auth/sign-in') {
      const html = await res.text();
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
      const returnTo = /name="return_to" value="([^"]+)"/.exec(html)![1]!.replace(/&amp;/g, '&');
      const post = await jar.fetch(`${party.base}/auth/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: party.base },
        body: new URLSearchParams({ email: party.email, password: party.password, csrf_token: csrf, return_to: returnTo }).toString(),
      });
      // The form ends on a Continue page (meta refresh), as CSP form-action 'self' requires.
      expect(post.status).toBe(200);
      const target = /<meta http-equiv="refresh" content="0;url=([^"]+)"/.exec(await post.text())![1]!.replace(/&amp;/g, '&');
      next = new URL(target, party.base).toString();
      continue;
    }
    expect([302, 303], `${next} → ${res.status}`).toContain(res.status);
    next = new URL(res.headers.get('location')!, party.base).toString();
  }
  throw new Error('too many redirects');
}

/** A code + PKCE (S256) authorization request of `config`'s client, with the verifier and state to redeem its answer. */
export async function codeRequest(config: oidc.Configuration, redirect: string, params: Record<string, string>) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { url, verifier, state };
}
