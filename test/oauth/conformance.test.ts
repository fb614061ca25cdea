import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { codeAt, enrolled, passwordStep } from '../auth/helpers';
import { call, ORIGIN } from '../helpers';
import { authorizeUrl, basic, pkce, REDIRECT, registerClient, signedInUser, tokenRequest } from './helpers';

/**
 * Requests shaped the way the OpenID Foundation's conformance suite sends them (oidcc-basic,
 * oidcc-config): no PKCE but a nonce, unknown scopes, the claims parameter, hostile parameter
 * values echoed into error descriptions.
 */
const locationOf = (res: Response) => new URL(res.headers.get('location')!, ORIGIN);
/** RFC 6749 §4.1.2.1 / §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E. */
const RFC6749_TEXT = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

/** An authorization request without PKCE (the suite's shape), returning the redirect. */
function suiteAuthorize(clientId: string, over: Record<string, string | undefined>, cookie: string) {
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    scope: 'openid',
    state: 's',
    nonce: 'n-1',
  });
  for (const [k, v] of Object.entries(over)) v === undefined ? params.delete(k) : params.set(k, v);
  return call(`/auth/authorize?${params}`, { cookie });
}

describe('PKCE policy per client', () => {
  it('a confidential client set to allow it may send a nonce instead of PKCE (the suite’s request shape)', async () => {
    const client = await registerClient({ requirePkce: false });
    const user = await signedInUser();
    const res = await suiteAuthorize(client.clientId, {}, user.cookie);
    const code = locationOf(res).searchParams.get('code')!;
    expect(code).toMatch(/^ac1\./);
    const tokens = await (
      await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, basic(client.clientId, client.clientSecret))
    ).json<{ id_token: string }>();
    expect(decodeJwt(tokens.id_token)).toMatchObject({ nonce: 'n-1', aud: client.clientId });
    // Without the nonce, or without openid, it is refused; with a challenge, PKCE applies as usual.
    for (const over of [{ nonce: undefined }, { scope: 'profile' }]) {
      const refused = locationOf(await suiteAuthorize(client.clientId, over, user.cookie));
      expect(refused.searchParams.get('error'), JSON.stringify(over)).toBe('invalid_request');
    }
    // A verifier sent for a code issued without a challenge is a downgrade attempt: refused.
    const again = locationOf(await suiteAuthorize(client.clientId, {}, user.cookie)).searchParams.get('code')!;
    const downgraded = await tokenRequest(
      { grant_type: 'authorization_code', code: again, redirect_uri: REDIRECT, code_verifier: 'v'.repeat(43) },
      basic(client.clientId, client.clientSecret),
    );
    expect(await downgraded.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('is required by default, and always for public clients', async () => {
    const user = await signedInUser();
    const client = await registerClient();
    expect(locationOf(await suiteAuthorize(client.clientId, {}, user.cookie)).searchParams.get('error_description')).toBe(
      'code_challenge is required (PKCE).',
    );
    await expect(registerClient({ public: true, requirePkce: false })).rejects.toThrow(/a public client always uses PKCE/);
  });

  it('a missing code_verifier for a code issued with a challenge is invalid_grant (RFC 7636 §4.6)', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    const code = locationOf(await call(authorizeUrl(client.clientId, challenge), { cookie: user.cookie })).searchParams.get('code')!;
    const res = await tokenRequest(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT },
      basic(client.clientId, client.clientSecret),
    );
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('error descriptions (RFC 6749 §4.1.2.1, §5.2)', () => {
  it('stay in the RFC’s character set and never echo the caller’s input', async () => {
    const client = await registerClient();
    const user = await signedInUser();
    const hostile = 'Zq"é\\§<script>';
    const { challenge } = await pkce();
    const descriptions: string[] = [];
    for (const over of [
      { prompt: hostile },
      { response_type: hostile },
      { max_age: hostile },
      { code_challenge_method: hostile },
      { claims: hostile },
      { resource: hostile },
    ]) {
      const loc = locationOf(await call(authorizeUrl(client.clientId, challenge, over), { cookie: user.cookie }));
      descriptions.push(loc.searchParams.get('error_description') ?? '');
    }
    const tokenRequests: Record<string, string>[] = [
      { grant_type: hostile },
      { grant_type: 'authorization_code', code: hostile, redirect_uri: REDIRECT },
      { grant_type: 'refresh_token', refresh_token: hostile },
      { grant_type: 'client_credentials', scope: hostile },
    ];
    for (const fields of tokenRequests) {
      descriptions.push(
        (await (await tokenRequest(fields, basic(client.clientId, client.clientSecret))).json<{ error_description: string }>())
          .error_description,
      );
    }
    descriptions.push(
      (
        await (
          await tokenRequest(
            { grant_type: 'client_credentials', [`${hostile}`]: '1', [`${hostile}x`]: '2' },
            basic(client.clientId, 'wrong'),
          )
        ).json<{ error_description: string }>()
      ).error_description,
    );
    const userinfo = await call('/auth/userinfo', { headers: { authorization: 'Bearer Zq"é' } });
    descriptions.push(/error_description="([^"]*)"/.exec(userinfo.headers.get('www-authenticate') ?? '')![1]!);
    for (const d of descriptions) {
      expect(d, d).toMatch(RFC6749_TEXT);
      expect(d).not.toContain('script');
      expect(d).not.toContain('Zq');
    }
  });
});

describe('scopes and claims (OIDC Core §3.1.2.1, §5.4, §5.5)', () => {
  async function withProfile(userId: string) {
    await env.DB.prepare(
      `UPDATE users SET name = 'Ada Lovelace', given_name = 'Ada', family_name = 'Lovelace', locale = 'en-GB', phone_number = '+442071234567',
       phone_number_verified_at = 1, address = '{"locality":"London","country":"GB"}' WHERE id = ?`,
    )
      .bind(userId)
      .run();
  }

  it('ignores unknown scopes, drops ones the client may not have, and says what was granted', async () => {
    const client = await registerClient({ scopes: ['openid', 'profile', 'email'], requirePkce: false });
    const user = await signedInUser();
    await withProfile(user.userId);
    const code = locationOf(
      await suiteAuthorize(client.clientId, { scope: 'openid email phone address profile frobnicate' }, user.cookie),
    ).searchParams.get('code')!;
    const tokens = await (
      await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, basic(client.clientId, client.clientSecret))
    ).json<{ scope: string; access_token: string }>();
    expect(tokens.scope).toBe('openid email profile');
    const info = await (await call('/auth/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } })).json<
      Record<string, unknown>
    >();
    expect(info).toMatchObject({
      sub: user.userId,
      email: user.email,
      name: 'Ada Lovelace',
      given_name: 'Ada',
      family_name: 'Lovelace',
      locale: 'en-GB',
    });
    expect(info.phone_number).toBeUndefined();
    expect(info.address).toBeUndefined();
    expect(info.nickname).toBeUndefined(); // not held: omitted, never empty
  });

  it('releases address and phone at userinfo, and in the ID token only for a client that wants them there', async () => {
    const user = await signedInUser();
    await withProfile(user.userId);
    const scopes = ['openid', 'profile', 'email', 'address', 'phone'] as const;
    for (const idTokenClaims of [false, true]) {
      const client = await registerClient({ scopes: [...scopes], idTokenClaims, requirePkce: false });
      const code = locationOf(await suiteAuthorize(client.clientId, { scope: scopes.join(' ') }, user.cookie)).searchParams.get('code')!;
      const t = await (
        await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, basic(client.clientId, client.clientSecret))
      ).json<{ id_token: string; access_token: string }>();
      const info = await (await call('/auth/userinfo', { headers: { authorization: `Bearer ${t.access_token}` } })).json<
        Record<string, unknown>
      >();
      expect(info).toMatchObject({
        phone_number: '+442071234567',
        phone_number_verified: true,
        address: { locality: 'London', country: 'GB' },
      });
      const id = decodeJwt(t.id_token);
      if (idTokenClaims) expect(id).toMatchObject({ name: 'Ada Lovelace', email: user.email, phone_number: '+442071234567' });
      else expect([id.name, id.email, id.phone_number]).toEqual([undefined, undefined, undefined]);
    }
  });

  it('honours the claims parameter: claims for the ID token and for userinfo, and an essential acr', async () => {
    const client = await registerClient({ requirePkce: false, scopes: ['openid', 'profile', 'email', 'phone'] });
    const u = await enrolled();
    await withProfile(u.userId);
    await passwordStep(u.browser, u.email); // a one-factor session on a known device
    const claims = JSON.stringify({
      id_token: { email: { essential: true }, acr: { essential: true, values: ['urn:gatehouse:acr:mfa'] } },
      userinfo: { phone_number: null, given_name: null },
    });
    const url = `/auth/authorize?${new URLSearchParams({ response_type: 'code', client_id: client.clientId, redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', claims })}`;
    const first = await u.browser.fetch(url, { headers: { accept: 'text/html' } });
    const stepUp = locationOf(first);
    expect(stepUp.pathname).toBe('/auth/second-factor');
    expect(stepUp.searchParams.get('acr')).toBe('urn:gatehouse:acr:mfa');
    await u.browser.submit(
      '/auth/second-factor',
      { code: codeAt(u.secret), return_to: stepUp.searchParams.get('return_to')! },
      `${stepUp.pathname}${stepUp.search}`,
    );
    const code = locationOf(await u.browser.fetch(url, { headers: { accept: 'text/html' } })).searchParams.get('code')!;
    const t = await (
      await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, basic(client.clientId, client.clientSecret))
    ).json<{ id_token: string; access_token: string }>();
    const id = decodeJwt(t.id_token);
    expect(id).toMatchObject({ email: u.email, acr: 'urn:gatehouse:acr:mfa' });
    expect(id.phone_number).toBeUndefined();
    const info = await (await call('/auth/userinfo', { headers: { authorization: `Bearer ${t.access_token}` } })).json<
      Record<string, unknown>
    >();
    expect(info).toMatchObject({ sub: u.userId, phone_number: '+442071234567', given_name: 'Ada' });
    expect(info.email).toBeUndefined(); // asked for the ID token only, and scope is openid alone
  });

  it('refuses a claims parameter that is not the JSON object §5.5 describes, and a sub that is someone else', async () => {
    const client = await registerClient({ requirePkce: false });
    const user = await signedInUser();
    for (const claims of [
      '{',
      '[]',
      '"x"',
      '{"id_token":[]}',
      '{"userinfo":{"name":1}}',
      JSON.stringify({ id_token: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`c${i}`, null])) }),
    ]) {
      const loc = locationOf(await suiteAuthorize(client.clientId, { claims }, user.cookie));
      expect(loc.searchParams.get('error'), claims).toBe('invalid_request');
    }
    const other = locationOf(
      await suiteAuthorize(client.clientId, { claims: JSON.stringify({ id_token: { sub: { value: crypto.randomUUID() } } }) }, user.cookie),
    );
    expect(other.pathname).toBe('/auth/sign-in');
  });

  it('discovery advertises what is served', async () => {
    const d = await (await call('/.well-known/openid-configuration')).json<Record<string, unknown>>();
    expect(d.claims_parameter_supported).toBe(true);
    expect(d.scopes_supported).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'address', 'phone']));
    expect(d.claims_supported).toEqual(expect.arrayContaining(['name', 'given_name', 'phone_number', 'address', 'email_verified']));
  });
});

describe('the error_description filter', () => {
  it('spells typography in ASCII and drops what RFC 6749 does not allow', async () => {
    const { oauthText } = await import('../../src/lib/errors');
    expect(oauthText('RFC 9700 §2.1: “exact” — it’s C:\\path…')).toBe("RFC 9700 section 2.1: 'exact' - it's C:/path...");
    expect(oauthText('café naïve 日本 \u0000\u007f\ttab')).toBe('cafe naive tab');
    for (let c = 0; c < 0x3000; c++) expect(oauthText(`a${String.fromCharCode(c)}b`)).toMatch(RFC6749_TEXT);
  });
});

describe('oidcc-basic modules as the suite sends them', () => {
  const suiteCode = async (clientId: string, over: Record<string, string | undefined>, cookie: string) => {
    const res = await suiteAuthorize(clientId, over, cookie);
    expect(res.status).toBe(302);
    return locationOf(res);
  };

  it('oidcc-display-page/-popup, oidcc-ui-locales, oidcc-claims-locales: accepted, answered with a code', async () => {
    const client = await registerClient({ requirePkce: false });
    const user = await signedInUser();
    for (const over of [
      { display: 'page' },
      { display: 'popup' },
      { ui_locales: 'se' },
      { claims_locales: 'se' },
      { display: 'popup', ui_locales: 'fr-CA fr en' },
    ]) {
      const back = await suiteCode(client.clientId, over, user.cookie);
      expect(back.searchParams.get('code'), JSON.stringify(over)).toMatch(/^ac1\./);
      expect(back.searchParams.get('state')).toBe('s');
    }
  });

  it('oidcc-userinfo-get, -post-header, -post-body: the same claims three ways; a token in the query is not taken', async () => {
    const client = await registerClient({ requirePkce: false });
    const user = await signedInUser();
    const code = (await suiteCode(client.clientId, { scope: 'openid email' }, user.cookie)).searchParams.get('code')!;
    const { access_token } = await (
      await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, basic(client.clientId, client.clientSecret))
    ).json<{ access_token: string }>();
    const expected = { sub: user.userId, email: user.email, email_verified: true };
    const get = await call('/auth/userinfo', { headers: { authorization: `Bearer ${access_token}` } });
    const postHeader = await call('/auth/userinfo', { method: 'POST', headers: { authorization: `Bearer ${access_token}` } });
    const postBody = await call('/auth/userinfo', {
      method: 'POST',
      body: new URLSearchParams({ access_token }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    for (const res of [get, postHeader, postBody]) {
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject(expected);
    }
    // RFC 6750 §2.3 (URI query) is not supported: it leaks into logs.
    const query = await call(`/auth/userinfo?${new URLSearchParams({ access_token })}`);
    expect(query.status).toBe(401);
  });
});
