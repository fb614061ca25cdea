import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type AccountClaims } from 'oidc-provider';
import type { Page } from 'playwright-core';
import { listenOnFreePort } from './harness';

/** What an upstream says of one of its accounts: each test sets the address and whether it was verified. */
export interface UpstreamAccount {
  email?: string;
  emailVerified?: boolean;
  name?: string;
}

/**
 * panva's oidc-provider as an upstream OpenID Provider on loopback (http://127.0.0.1:PORT, which
 * Gatehouse allows for upstreams; another site than Gatehouse's localhost), with its development interactions: a login form that takes any
 * login name (the account's subject here) and password, then a consent form. Its one client is
 * Gatehouse (client_secret_basic, the callback as the only redirect URI). The accounts are the
 * test's: `account()` adds one and returns its login name.
 *
 * Two steps, as Gatehouse and the upstream each need the other's address: `startUpstream` listens
 * (the issuer is known), `serve` sets up the provider once Gatehouse's callback URL is known.
 * Each upstream's cookies have names of their own: cookies ignore ports, so the upstreams share one
 * host's cookie jar in the browser.
 */
export class LocalUpstream {
  readonly clientId = 'gatehouse';
  readonly clientSecret = randomBytes(32).toString('base64url');
  private readonly accounts = new Map<string, UpstreamAccount>();
  private count = 0;

  constructor(
    /** Short, for login names and cookie names. */
    readonly tag: string,
    readonly issuer: string,
    private readonly server: Server,
  ) {}

  /** A new account at the upstream; its login name (and subject). */
  account(a: UpstreamAccount): string {
    const login = `${this.tag}-${++this.count}-${randomBytes(4).toString('hex')}`;
    this.accounts.set(login, a);
    return login;
  }

  /** Changes what the upstream says of an account from now on. */
  update(login: string, a: UpstreamAccount): void {
    this.accounts.set(login, { ...this.accounts.get(login), ...a });
  }

  /** Answers as an OpenID Provider whose one client (Gatehouse) comes back to `redirectUri`. */
  async serve(redirectUri: string): Promise<void> {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const provider = new Provider(this.issuer, {
      clients: [
        {
          client_id: this.clientId,
          client_secret: this.clientSecret,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: `${this.tag}-1` }] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      cookies: {
        names: { session: `${this.tag}_session`, interaction: `${this.tag}_interaction`, resume: `${this.tag}_resume` },
        keys: [randomBytes(32).toString('base64url')],
      },
      features: { devInteractions: { enabled: true } },
      ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
      findAccount: (_ctx, sub) => {
        const a = this.accounts.get(sub);
        if (!a) return undefined;
        const claims: AccountClaims = { sub };
        if (a.email !== undefined) {
          claims.email = a.email;
          claims.email_verified = a.emailVerified ?? false;
        }
        if (a.name !== undefined) claims.name = a.name;
        return { accountId: sub, claims: () => claims };
      },
    });
    this.server.removeAllListeners('request');
    this.server.on('request', provider.callback());
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Listens on a loopback port the system picks; the upstream answers 503 until `serve`. */
export async function startUpstream(tag: string): Promise<LocalUpstream> {
  const server = createServer((_req, res) => res.writeHead(503).end());
  const port = await listenOnFreePort(server);
  // 127.0.0.1, not localhost: another site than Gatehouse (http://localhost:PORT), as a real upstream
  // is, so the browser treats the way back as the cross-site navigation it is (SameSite cookies).
  return new LocalUpstream(tag, `http://127.0.0.1:${port}`, server);
}

/**
 * In the browser, at the upstream (after a "Continue with" button): signs in as `login` on its
 * development login form (any password), then consents.
 */
export async function signInAtUpstream(page: Page, upstream: LocalUpstream, login: string): Promise<void> {
  const interaction = (u: URL) => u.href.startsWith(`${upstream.issuer}/interaction/`);
  await page.waitForURL(interaction);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password will do');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
}
