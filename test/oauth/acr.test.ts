import { decodeJwt } from 'jose';
import { ACR, factorsMeeting } from '../../src/auth/acr';
import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { call, createVerifiedUser, ORIGIN } from '../helpers';
import { codeAt, enrolled, passwordStep } from '../auth/helpers';
import { authorizeUrl, basic, pkce, REDIRECT, registerClient, tokenRequest } from './helpers';

const MFA = 'urn:gatehouse:acr:mfa';

async function exchange(clientId: string, clientSecret: string, code: string, verifier: string) {
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    basic(clientId, clientSecret),
  );
  expect(res.status).toBe(200);
  const tokens = (await res.json()) as { id_token: string; access_token: string };
  return { id: decodeJwt(tokens.id_token), at: decodeJwt(tokens.access_token) };
}

describe('acr and amr in the OpenID Provider', () => {
  it('advertises its acr values', async () => {
    const discovery = (await (await call('/.well-known/openid-configuration')).json()) as { acr_values_supported: string[] };
    expect(discovery.acr_values_supported).toEqual(['urn:gatehouse:acr:1fa', MFA, 'urn:gatehouse:acr:phr']);
  });

  it('acr_values=mfa steps a password-only session up, and the tokens carry acr and amr', async () => {
    const { browser, secret, email } = await enrolled();
    await passwordStep(browser, email);
    const { clientId, clientSecret } = await registerClient();
    const { verifier, challenge } = await pkce();
    const start = await browser.fetch(authorizeUrl(clientId, challenge, { acr_values: MFA }));
    expect(start.status).toBe(302);
    const stepUp = new URL(start.headers.get('location')!, ORIGIN);
    expect(stepUp.pathname).toBe('/auth/second-factor');
    expect(stepUp.searchParams.get('acr')).toBe(MFA);
    const back = stepUp.searchParams.get('return_to')!;
    const done = await browser.submit(
      '/auth/second-factor',
      { code: codeAt(secret), return_to: back },
      `${stepUp.pathname}${stepUp.search}`,
    );
    expect(done.status).toBe(200); // the Continue page towards /auth/authorize
    const again = await browser.fetch(back);
    expect(again.status).toBe(302);
    const code = new URL(again.headers.get('location')!).searchParams.get('code')!;
    const { id, at } = await exchange(clientId, clientSecret, code, verifier);
    expect(id).toMatchObject({ acr: MFA, amr: ['mfa', 'otp', 'pwd'] });
    expect(at).toMatchObject({ acr: MFA, amr: ['mfa', 'otp', 'pwd'] });
  });

  it('prompt=none with a weaker session answers interaction_required', async () => {
    const { browser, email } = await enrolled();
    await passwordStep(browser, email);
    const { clientId } = await registerClient();
    const { challenge } = await pkce();
    const res = await browser.fetch(authorizeUrl(clientId, challenge, { acr_values: MFA, prompt: 'none' }));
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe('interaction_required');
  });

  it('voluntary acr_values the account cannot meet go on with acr 1fa; a client that requires MFA does not', async () => {
    const user = await createVerifiedUser();
    const browser = new TestBrowser();
    await passwordStep(browser, user.email);
    const voluntary = await registerClient();
    const { verifier, challenge } = await pkce();
    const res = await browser.fetch(authorizeUrl(voluntary.clientId, challenge, { acr_values: MFA }));
    const code = new URL(res.headers.get('location')!).searchParams.get('code');
    expect(code).toBeTruthy();
    const { id } = await exchange(voluntary.clientId, voluntary.clientSecret, code!, verifier);
    expect(id.acr).toBe('urn:gatehouse:acr:1fa');

    const strict = await registerClient({ requireMfa: true });
    const blocked = await browser.fetch(authorizeUrl(strict.clientId, (await pkce()).challenge));
    const to = new URL(blocked.headers.get('location')!, ORIGIN);
    expect(to.pathname).toBe('/auth/second-factor');
    const page = await browser.open(`${to.pathname}${to.search}`);
    expect(page.res.status).toBe(403);
    expect(page.html).toContain('/auth/account/totp');
  });
});

describe('which second factors can meet an acr (factorsMeeting)', () => {
  const all = { totp: true, recoveryCodesLeft: 8, passkeys: 1 };
  it('a phishing-resistant sign-in offers passkeys only, and nothing to an account without one', () => {
    expect(factorsMeeting(all, ACR.phishingResistant)).toEqual({ totp: false, recoveryCodesLeft: 0, passkeys: 1 });
    expect(factorsMeeting({ ...all, passkeys: 0 }, ACR.phishingResistant)).toBeNull();
  });
  it('any other target offers every factor, given an authenticator app or a passkey', () => {
    for (const acr of [undefined, ACR.mfa, ACR.oneFactor]) {
      expect(factorsMeeting(all, acr)).toEqual(all);
      expect(factorsMeeting({ totp: false, recoveryCodesLeft: 0, passkeys: 2 }, acr)).toEqual({
        totp: false,
        recoveryCodesLeft: 0,
        passkeys: 2,
      });
      // Recovery codes alone are no second factor.
      expect(factorsMeeting({ totp: false, recoveryCodesLeft: 8, passkeys: 0 }, acr)).toBeNull();
    }
  });
});
