import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { clientProviders } from '../../src/db/schema';
import { TestBrowser } from '../browser';
import { appWith } from '../helpers';
import { newPerson, upstreamProvider, viaUpstream } from '../auth/upstream-helpers';
import { authorizeUrl, basic, pkce, REDIRECT, registerClient, tokenRequest } from './helpers';

/**
 * GET /auth/upstream-token: an app, with an access token Gatehouse issued it for the user, gets the
 * access token the user's upstream gave (a provider set to keep tokens, a client let to read them).
 */

type Provider = Awaited<ReturnType<typeof upstreamProvider>>;

/** A client's tokens for a browser signed in through the upstream: the authorization code flow, as the app runs it. */
async function appTokens(b: TestBrowser, client: { clientId: string; clientSecret: string }) {
  const { verifier, challenge } = await pkce();
  const res = await b.fetch(authorizeUrl(client.clientId, challenge, { scope: 'openid email offline_access', prompt: 'consent' }));
  expect(res.status).toBe(302);
  const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
  expect(code).toBeTruthy();
  const tokens = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    basic(client.clientId, client.clientSecret),
  );
  expect(tokens.status).toBe(200);
  return (await tokens.json()) as { access_token: string; refresh_token: string; id_token: string; expires_in: number };
}

/** The app's server asking, through a worker that reaches the fake upstream (and, when given, at another time). */
function ask(p: Provider, accessToken: string | null, o: { provider?: string; later?: number } = {}) {
  const app = appWith((deps) => ({ fetch: p.upstream.fetch, ...(o.later ? { now: () => deps.now() + o.later! } : {}) }));
  return app(`/auth/upstream-token?provider=${o.provider ?? p.id}`, {
    headers: accessToken ? { authorization: `Bearer ${accessToken}` } : {},
  });
}

const sealedTokensOf = async (subject: string) =>
  (
    await env.DB.prepare('SELECT tokens_encrypted AS t FROM linked_identities WHERE subject = ?')
      .bind(subject)
      .first<{ t: string | null }>()
  )?.t;

/** A provider that keeps tokens, a client it shares them with, and a person who signed in through it to that client. */
async function signedInThroughUpstream(share = true) {
  const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'], storeTokens: true });
  const client = await registerClient({ firstParty: true });
  await createDb(env.DB).insert(clientProviders).values({ clientId: client.clientId, providerId: p.id, shareTokens: share });
  const person = newPerson();
  const b = new TestBrowser();
  await viaUpstream(b, p, person);
  return { p, client, person, b, tokens: await appTokens(b, client) };
}

describe('an upstream’s kept access token, for an app', () => {
  it('gives the app the upstream’s access token for the user: only the access token, sealed at rest', async () => {
    const { p, person, tokens } = await signedInThroughUpstream();
    const res = await ask(p, tokens.access_token);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'openid email profile' });
    expect(body.expires_in).toBeGreaterThan(200);
    // A token the upstream issued, for this person.
    expect(p.upstream.holderOf(body.access_token as string)?.sub).toBe(person.sub);
    const sealed = await sealedTokensOf(person.sub);
    expect(sealed).toBeTruthy();
    expect(sealed).not.toContain(body.access_token as string);
  });

  it('renews an expired upstream token with the kept refresh token, and keeps the new one', async () => {
    const { p, person, tokens } = await signedInThroughUpstream();
    const first = (await (await ask(p, tokens.access_token)).json()) as { access_token: string };
    const before = await sealedTokensOf(person.sub);
    expect(tokens.expires_in).toBeGreaterThan(260);
    // Four and a half minutes on, the upstream's five-minute token is within a minute of expiring.
    const res = await ask(p, tokens.access_token, { later: 270_000 });
    expect(res.status).toBe(200);
    const renewed = (await res.json()) as { access_token: string; expires_in: number };
    expect(renewed.access_token).not.toBe(first.access_token);
    expect(p.upstream.holderOf(renewed.access_token)?.sub).toBe(person.sub);
    expect(renewed.expires_in).toBeGreaterThan(200);
    expect(await sealedTokensOf(person.sub)).not.toBe(before);
    expect(p.upstream.calls.filter((c) => c === 'POST /token')).toHaveLength(2);
  });

  it('an upstream that refuses the refresh token clears the kept tokens: the user must sign in with it again', async () => {
    const { p, person, tokens } = await signedInThroughUpstream();
    p.upstream.revokeRefreshTokens();
    const res = await ask(p, tokens.access_token, { later: 270_000 });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: 'upstream_reauth_required' });
    expect(await sealedTokensOf(person.sub)).toBeNull();
  });

  it('an upstream that is down while renewing is a 502, and the kept tokens stay', async () => {
    const { p, person, tokens } = await signedInThroughUpstream();
    const before = await sealedTokensOf(person.sub);
    p.upstream.setDown(true);
    const res = await ask(p, tokens.access_token, { later: 270_000 });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'upstream_unavailable' });
    expect(await sealedTokensOf(person.sub)).toBe(before);
  });

  it('refuses a client the operator did not let read the provider’s tokens, with insufficient_scope', async () => {
    for (const share of [false, null]) {
      const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'], storeTokens: true });
      const client = await registerClient({ firstParty: true });
      if (share !== null)
        await createDb(env.DB).insert(clientProviders).values({ clientId: client.clientId, providerId: p.id, shareTokens: share });
      const b = new TestBrowser();
      await viaUpstream(b, p, newPerson());
      const res = await ask(p, (await appTokens(b, client)).access_token);
      expect(res.status, String(share)).toBe(403);
      expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
      expect(JSON.stringify(await res.json())).not.toMatch(/access_token/);
    }
  });

  it('another client’s token for the same user does not reach tokens shared with the first', async () => {
    const { p, b } = await signedInThroughUpstream();
    const other = await registerClient({ firstParty: true });
    const res = await ask(p, (await appTokens(b, other)).access_token);
    expect(res.status).toBe(403);
  });

  it('keeps nothing for a provider not set to keep tokens, and says so', async () => {
    const p = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    const client = await registerClient({ firstParty: true });
    await createDb(env.DB).insert(clientProviders).values({ clientId: client.clientId, providerId: p.id, shareTokens: true });
    const person = newPerson();
    const b = new TestBrowser();
    await viaUpstream(b, p, person);
    expect(await sealedTokensOf(person.sub)).toBeNull();
    const res = await ask(p, (await appTokens(b, client)).access_token);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error_description: string }).error_description).toContain('keeps tokens');
  });

  it('a user with no identity at the provider is told to sign in with it', async () => {
    const { p, client } = await signedInThroughUpstream();
    const b = new TestBrowser();
    const q = await upstreamProvider({ trustedEmailDomains: ['acme.example'] });
    await viaUpstream(b, q, newPerson());
    const res = await ask(p, (await appTokens(b, client)).access_token);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: 'upstream_reauth_required' });
  });

  it('wants a live access token for Gatehouse: none, forged, revoked, or an ID token are refused', async () => {
    const { p, client, tokens } = await signedInThroughUpstream();
    const none = await ask(p, null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    expect((await ask(p, `${tokens.access_token.slice(0, -4)}AAAA`)).status).toBe(401);
    expect((await ask(p, tokens.id_token)).status).toBe(401);
    expect(decodeJwt(tokens.id_token).amr).toEqual(['fed']);
    // The app's grant revoked (RFC 7009): its access tokens die with it.
    const revoked = await appWith(() => ({}))('/auth/revoke', {
      method: 'POST',
      body: new URLSearchParams({ token: tokens.refresh_token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
    });
    expect(revoked.status).toBe(200);
    expect((await ask(p, tokens.access_token)).status).toBe(401);
    const missing = await appWith(() => ({}))('/auth/upstream-token', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(missing.status).toBe(400);
  });
});
