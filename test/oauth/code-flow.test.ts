import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { call } from '../helpers';
import { basic, getCode, REDIRECT, registerClient, signedInUser, tokenRequest } from './helpers';

interface Tokens {
  access_token: string;
  id_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

describe('discovery', () => {
  it('names only endpoints that are served, with accurate metadata', async () => {
    const res = await call('/.well-known/openid-configuration');
    expect(res.status).toBe(200);
    const meta = await res.json<Record<string, unknown>>();
    expect(meta).toMatchObject({
      issuer: 'https://gatehouse.test',
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'],
    });
    expect(await (await call('/.well-known/oauth-authorization-server')).json()).toEqual(meta);
    for (const key of [
      'authorization_endpoint',
      'token_endpoint',
      'userinfo_endpoint',
      'jwks_uri',
      'revocation_endpoint',
      'introspection_endpoint',
      'end_session_endpoint',
      'device_authorization_endpoint',
    ]) {
      const url = new URL(meta[key] as string);
      expect(url.origin).toBe('https://gatehouse.test');
      const probe = await call(url.pathname, {
        method:
          key === 'authorization_endpoint' || key === 'jwks_uri' || key === 'end_session_endpoint' || key === 'userinfo_endpoint'
            ? 'GET'
            : 'POST',
      });
      expect(probe.status, key).not.toBe(404);
    }
  });
});

describe('authorization code flow with PKCE', () => {
  it('issues a code with state and iss, then access, ID and refresh tokens', async () => {
    const { clientId, clientSecret } = await registerClient();
    const user = await signedInUser();
    const { code, verifier, location } = await getCode(clientId, user.cookie, {
      state: 'xyz',
      nonce: 'nonce-1',
      acr_values: 'urn:example:mfa',
    });
    const { auditOf } = await import('../helpers');
    const granted = (await auditOf(user.userId)).results.find((r) => r.type === 'authorization_granted')!;
    expect(JSON.parse(granted.detail!)).toMatchObject({ clientId, scope: ['openid', 'email', 'profile'], acrValues: ['urn:example:mfa'] });
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('state')).toBe('xyz');
    expect(location.searchParams.get('iss')).toBe('https://gatehouse.test');
    expect(code).toMatch(/^ac1\./);

    const res = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(clientId, clientSecret),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const tokens = await res.json<Tokens>();
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'openid email profile' });
    expect(tokens.refresh_token).toMatch(/^rt1\./);

    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    const at = decodeJwt(tokens.access_token);
    expect(at).toMatchObject({
      iss: 'https://gatehouse.test',
      aud: 'https://gatehouse.test',
      sub: user.userId,
      client_id: clientId,
      scope: 'openid email profile',
      gty: 'authorization_code',
    });
    expect(at.jti).toBeTruthy();
    expect(at.gid).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // Roles and tier ride only with the `roles` scope.
    expect(at.roles).toBeUndefined();
    expect(at.tier).toBeUndefined();

    expect(decodeProtectedHeader(tokens.id_token)).toMatchObject({ typ: 'JWT', alg: 'RS256' });
    const id = decodeJwt(tokens.id_token);
    expect(id).toMatchObject({ iss: 'https://gatehouse.test', aud: clientId, sub: user.userId, nonce: 'nonce-1', amr: ['pwd'] });
    // OIDC Core §5.4: with an access token issued, the scopes' claims are at userinfo, not in the ID token.
    expect(id.email).toBeUndefined();
    expect(typeof id.auth_time).toBe('number');
    expect(typeof id.sid).toBe('string');

    const info = await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(info.status).toBe(200);
    const claims = await info.json<Record<string, unknown>>();
    expect(claims).toMatchObject({ sub: user.userId, email: user.email, email_verified: true });
    expect(claims.roles).toBeUndefined();

    // With the `roles` scope: roles and tier in the access token and at userinfo.
    const withRoles = await getCode(clientId, user.cookie, { scope: 'openid roles' });
    const t2 = await (
      await tokenRequest(
        { grant_type: 'authorization_code', code: withRoles.code, redirect_uri: REDIRECT, code_verifier: withRoles.verifier },
        basic(clientId, clientSecret),
      )
    ).json<Tokens>();
    expect(decodeJwt(t2.access_token)).toMatchObject({ roles: [], tier: 'free' });
    expect(await (await call('/auth/userinfo', { headers: { authorization: `Bearer ${t2.access_token}` } })).json()).toMatchObject({
      roles: [],
      tier: 'free',
    });
  });

  it('refuses every PKCE shortcut', async () => {
    const { clientId, clientSecret } = await registerClient();
    const user = await signedInUser();
    for (const [over, expected] of [
      [{ code_challenge: undefined, code_challenge_method: undefined }, 'code_challenge is required (PKCE).'],
      [{ code_challenge_method: 'plain' }, 'code_challenge_method must be S256.'],
      [{ code_challenge_method: undefined }, 'code_challenge_method must be S256.'],
      [{ code_challenge: 'too-short' }, 'code_challenge is not a valid S256 challenge.'],
    ] as const) {
      const { authorizeUrl, pkce } = await import('./helpers');
      const { challenge } = await pkce();
      const res = await call(authorizeUrl(clientId, challenge, over as Record<string, string | undefined>), { cookie: user.cookie });
      const location = new URL(res.headers.get('location')!);
      expect(location.searchParams.get('error')).toBe('invalid_request');
      expect(location.searchParams.get('error_description')).toBe(expected);
      expect(location.searchParams.has('code')).toBe(false);
    }
    const { code } = await getCode(clientId, user.cookie);
    const wrong = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: 'x'.repeat(43) },
      basic(clientId, clientSecret),
    );
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_grant' });
    // RFC 7636 §4.6: a code issued with a challenge, redeemed without the verifier, is invalid_grant.
    const missing = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, basic(clientId, clientSecret));
    expect(await missing.json()).toMatchObject({
      error: 'invalid_grant',
      error_description: 'The authorization code is not valid: code_verifier is required for this code.',
    });
  });

  it('lets exactly one of 20 concurrent redemptions of a code win, and a reuse revokes what it issued', async () => {
    const { clientId, clientSecret } = await registerClient();
    const user = await signedInUser();
    const { code, verifier } = await getCode(clientId, user.cookie);
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
    const results = await Promise.all(Array.from({ length: 20 }, () => tokenRequest(fields, basic(clientId, clientSecret))));
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expect(await r.json()).toMatchObject({ error: 'invalid_grant' });
    const { refresh_token } = await ok[0]!.json<Tokens>();
    // The family issued from the code was revoked by the replays.
    const refreshed = await tokenRequest({ grant_type: 'refresh_token', refresh_token }, basic(clientId, clientSecret));
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('binds the code to its client and redirect URI', async () => {
    const a = await registerClient();
    const b = await registerClient();
    const user = await signedInUser();
    const { code, verifier } = await getCode(a.clientId, user.cookie);
    const stolen = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(b.clientId, b.clientSecret),
    );
    expect(await stolen.json()).toMatchObject({ error: 'invalid_grant' });
    const otherUri = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: `${REDIRECT}/`, code_verifier: verifier },
      basic(a.clientId, a.clientSecret),
    );
    expect(await otherUri.json()).toMatchObject({ error: 'invalid_grant' });
    // Neither failed attempt consumed it.
    const good = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(a.clientId, a.clientSecret),
    );
    expect(good.status).toBe(200);
  });

  it('expires codes after a minute', async () => {
    const { clientId, clientSecret } = await registerClient();
    const user = await signedInUser();
    const { code, verifier } = await getCode(clientId, user.cookie);
    const { appWith } = await import('../helpers');
    const later = appWith(() => ({ now: () => Date.now() + 61_000 }));
    const { form } = await import('./helpers');
    const init = form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    const res = await later('/auth/token', { ...init, headers: { ...init.headers, authorization: basic(clientId, clientSecret) } });
    expect(await res.json()).toMatchObject({
      error: 'invalid_grant',
      error_description: 'The authorization code is not valid: the code has expired.',
    });
    // Only the minute made the difference: on the real clock the same code, not consumed by that attempt, still redeems.
    const now = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
      basic(clientId, clientSecret),
    );
    expect(now.status).toBe(200);
  });
});
