import { describe, expect, it } from 'vitest';
import { APP, call, createVerifiedUser, signIn } from '../helpers';
import { API_SCOPES, basic, form, getCode, REDIRECT, registerClient, tokenRequest } from './helpers';

/**
 * What a token is worth after its grant is gone, and who may ask about it. The attackers: another
 * client asking introspection about tokens it did not get, a thief replaying an intercepted
 * authorization code (RFC 6749 §4.1.2), and a client holding a token it was told is revoked.
 */
const API = 'https://api.gatehouse.test';

const introspect = (client: { clientId: string; clientSecret: string }, token: string) =>
  call('/auth/introspect', {
    ...form({ token }),
    headers: { ...form({}).headers, authorization: basic(client.clientId, client.clientSecret) },
  }).then((r) => r.json<Record<string, unknown>>());
const userinfo = (token: string) => call('/auth/userinfo', { headers: { authorization: `Bearer ${token}` } });

async function tokensFor(client: { clientId: string; clientSecret: string }, resource?: string) {
  const user = await createVerifiedUser();
  const { cookie } = await signIn(user.email);
  const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid profile offline_access' });
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...(resource ? { resource } : {}) },
    basic(client.clientId, client.clientSecret),
  );
  return { user, code, verifier, ...(await res.json<{ access_token: string; refresh_token: string }>()) };
}

describe('introspection answers only the token’s own client or audience (RFC 7662 §4)', () => {
  it('another client learns nothing — access or refresh token — and the audience’s own client learns all', async () => {
    const issuedTo = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] });
    const other = await registerClient();
    const t = await tokensFor(issuedTo, API);
    expect(await introspect(other, t.access_token)).toEqual({ active: false });
    expect(await introspect(other, t.refresh_token)).toEqual({ active: false });
    const own = await introspect(issuedTo, t.access_token);
    expect(own).toMatchObject({ active: true, client_id: issuedTo.clientId, sub: t.user.userId, aud: API });
    // The API itself (a client that `serves` the token's audience) may introspect it; another API may not.
    const api = await registerClient({ serves: [API] });
    const otherApi = await registerClient({ serves: ['https://billing.gatehouse.test'] });
    expect(await introspect(api, t.access_token)).toMatchObject({ active: true, aud: API, client_id: issuedTo.clientId });
    expect(await introspect(otherApi, t.access_token)).toEqual({ active: false });
  });
});

describe('a replayed authorization code takes its tokens down (RFC 6749 §4.1.2)', () => {
  it('the first access token stops working at userinfo, introspection and fresh gateway routes at once', async () => {
    const client = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] });
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid profile' });
    const redeem = () =>
      tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
        basic(client.clientId, client.clientSecret),
      );
    const first = await (await redeem()).json<{ access_token: string; refresh_token: string }>();
    expect((await userinfo(first.access_token)).status).toBe(200);
    // The thief replays the code: refused, and what it issued is revoked.
    expect(await (await redeem()).json()).toMatchObject({ error: 'invalid_grant' });
    const gone = await userinfo(first.access_token);
    expect(gone.status).toBe(401);
    expect(gone.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(await introspect(client, first.access_token)).toEqual({ active: false });
    expect(
      (await tokenRequest({ grant_type: 'refresh_token', refresh_token: first.refresh_token }, basic(client.clientId, client.clientSecret)))
        .status,
    ).toBe(400);
  });

  it('a token for an API: refused at once on the API’s fresh route, until expiry elsewhere (the documented bound)', async () => {
    const client = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] });
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    const { code, verifier } = await getCode(client.clientId, cookie, { scope: 'openid profile' });
    const redeem = () =>
      tokenRequest(
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API },
        basic(client.clientId, client.clientSecret),
      );
    const { access_token } = await (await redeem()).json<{ access_token: string }>();
    const at = (path: string) => call(`${APP}${path}`, { headers: { authorization: `Bearer ${access_token}` } });
    expect((await at('/demo/api-fresh/x')).status).toBe(200);
    await redeem();
    expect((await at('/demo/api-fresh/x')).status).toBe(401);
    expect((await at('/demo/api/x')).status).toBe(200); // verified in the isolate: valid until it expires
  });
});

describe('revoking a signed access token (RFC 7009) revokes it', () => {
  it('userinfo, introspection and fresh routes refuse it at once; only its own client may revoke it', async () => {
    const client = await registerClient({ resources: [{ resource: API, scopes: API_SCOPES }] });
    const stranger = await registerClient();
    const t = await tokensFor(client);
    const revoke = (by: typeof client) =>
      call('/auth/revoke', {
        ...form({ token: t.access_token }),
        headers: { ...form({}).headers, authorization: basic(by.clientId, by.clientSecret) },
      });
    expect((await revoke(stranger)).status).toBe(200); // RFC 7009 §2.2: success either way…
    expect((await userinfo(t.access_token)).status).toBe(200); // …but another client's revocation does nothing
    expect((await revoke(client)).status).toBe(200);
    expect((await userinfo(t.access_token)).status).toBe(401);
    expect(await introspect(client, t.access_token)).toEqual({ active: false });
    // The grant itself lives on: the refresh token still works and its new access token is good.
    const refreshed = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: t.refresh_token },
      basic(client.clientId, client.clientSecret),
    );
    expect(refreshed.status).toBe(200);
    expect((await userinfo((await refreshed.json<{ access_token: string }>()).access_token)).status).toBe(200);
  });

  it('signing out revokes the access tokens of that session’s grants (not offline_access ones)', async () => {
    const client = await registerClient();
    const user = await createVerifiedUser();
    const { cookie } = await signIn(user.email);
    const grant = async (scope: string) => {
      const { code, verifier } = await getCode(client.clientId, cookie, { scope });
      return (
        await (
          await tokenRequest(
            { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
            basic(client.clientId, client.clientSecret),
          )
        ).json<{ access_token: string }>()
      ).access_token;
    };
    const online = await grant('openid profile');
    const offline = await grant('openid profile offline_access');
    expect((await call('/auth/api/sign-out', { method: 'POST', cookie, json: {} })).status).toBe(204);
    expect((await userinfo(online)).status).toBe(401);
    expect((await userinfo(offline)).status).toBe(200);
  });
});
