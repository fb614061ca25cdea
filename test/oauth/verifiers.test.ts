import { describe, expect, it } from 'vitest';
import { call } from '../helpers';
import { attackTokens, ISS, signedByUs } from '../tokens/attacks';
import { authorizeUrl, basic, form, pkce, registerClient, signedInUser } from './helpers';

describe('the JWT rejection matrix at every verifier', () => {
  it('userinfo refuses every forged or misused access token with 401', async () => {
    const user = await signedInUser();
    for (const [name, token] of Object.entries(await attackTokens('at+jwt', ISS, user.userId))) {
      const res = await call('/auth/userinfo', { headers: { authorization: `Bearer ${token}` } });
      expect(res.status, name).toBe(401);
      expect(res.headers.get('www-authenticate'), name).toContain('error="invalid_token"');
    }
  });

  it('introspection reports every one of them inactive', async () => {
    const client = await registerClient();
    for (const [name, token] of Object.entries(await attackTokens('at+jwt', ISS))) {
      const res = await call('/auth/introspect', {
        ...form({ token }),
        headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
      });
      expect(await res.json(), name).toEqual({ active: false });
    }
  });

  it('authorize refuses them as id_token_hint, at the redirect URI', async () => {
    const { clientId } = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    for (const [name, token] of Object.entries(await attackTokens('JWT', clientId, user.userId))) {
      if (name === 'expired') continue; // an expired hint is still a valid hint (OIDC Core §3.1.2.1)
      const res = await call(authorizeUrl(clientId, challenge, { id_token_hint: token }), { cookie: user.cookie });
      const location = new URL(res.headers.get('location')!);
      expect(location.searchParams.get('error'), name).toBe('invalid_request');
      expect(location.searchParams.has('code'), name).toBe(false);
    }
  });

  it('logout refuses them as id_token_hint and signs nobody out', async () => {
    const { clientId } = await registerClient({ postLogoutRedirectUris: ['https://app.example.com/out'] });
    const user = await signedInUser();
    for (const [name, token] of Object.entries(await attackTokens('JWT', clientId, user.userId))) {
      if (name === 'expired') continue;
      const res = await call(
        `/auth/logout?${new URLSearchParams({ id_token_hint: token, post_logout_redirect_uri: 'https://app.example.com/out' })}`,
        { cookie: user.cookie },
      );
      expect(res.status, name).toBe(400);
      expect(res.headers.get('location'), name).toBeNull();
    }
    expect((await call('/auth/api/sessions', { cookie: user.cookie })).status).toBe(200);

    // A genuine hint that has merely expired is still honoured.
    const iat = Math.floor(Date.now() / 1000) - 7200;
    const expired = await signedByUs({ typ: 'JWT' }, { aud: clientId, sub: user.userId, iat, exp: iat + 3600 }, 'RS256');
    const res = await call(
      `/auth/logout?${new URLSearchParams({ id_token_hint: expired, post_logout_redirect_uri: 'https://app.example.com/out' })}`,
      { cookie: user.cookie },
    );
    expect(res.status).toBe(302);
    expect((await call('/auth/api/sessions', { cookie: user.cookie })).status).toBe(401);
  });
});
