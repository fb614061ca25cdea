import { describe, expect, it } from 'vitest';
import { matchRedirectUri } from '../../src/oauth/redirect-uri';
import { call } from '../helpers';
import { authorizeUrl, pkce, REDIRECT, registerClient, signedInUser } from './helpers';

// Variants of https://app.example.com/callback that must never be redirected to.
const VARIANTS = [
  'https://app.example.com/callback/',
  'https://app.example.com/Callback',
  'https://APP.example.com/callback',
  'HTTPS://app.example.com/callback',
  'http://app.example.com/callback',
  'https://app.example.com/callback?x=1',
  'https://app.example.com/callback?',
  'https://app.example.com/callback#',
  'https://app.example.com/callback#frag',
  'https://app.example.com:443/callback',
  'https://app.example.com:8443/callback',
  'https://user@app.example.com/callback',
  'https://app.example.com@evil.example/callback',
  'https://evil.example/callback',
  'https://app.example.com.evil.example/callback',
  'https://evil.example/https://app.example.com/callback',
  'https://app.example.com/callback/../callback',
  'https://app.example.com/./callback',
  'https://app.example.com//callback',
  'https://app.example.com/%63allback',
  'https://app.example.com/callback%2F',
  'https://app.example.com/callback%00',
  'https://app.example.com%2Fcallback',
  'https://xn--pp-ula.example.com/callback',
  'https://äpp.example.com/callback',
  'https://app.example.com./callback',
  'https://app.example.com/callback;x',
  'https://app.example.com/callback\\',
  '//app.example.com/callback',
  '/callback',
  'javascript:alert(1)//https://app.example.com/callback',
  'data:text/html,https://app.example.com/callback',
  'https://app.example.com/callback ',
  ' https://app.example.com/callback',
  'https://app.example.com/callback\t',
  'https://[::1]/callback',
];

describe('redirect_uri is matched exactly', () => {
  it(`refuses ${VARIANTS.length} variants of a registered URI with an error page and no redirect`, async () => {
    expect(VARIANTS.length).toBeGreaterThanOrEqual(30);
    const { clientId } = await registerClient();
    const user = await signedInUser();
    const { challenge } = await pkce();
    for (const variant of VARIANTS) {
      const res = await call(authorizeUrl(clientId, challenge, { redirect_uri: variant }), { cookie: user.cookie });
      expect(res.status, variant).toBe(400);
      expect(res.headers.get('location'), variant).toBeNull();
      expect(await res.text(), variant).toContain('redirect_uri is not registered for this client.');
    }
    // The registered one works.
    const ok = await call(authorizeUrl(clientId, challenge, { redirect_uri: REDIRECT }), { cookie: user.cookie });
    expect(ok.status).toBe(302);
  });

  it('shows an error page, never a redirect, for an unknown client or a missing redirect_uri', async () => {
    const { challenge } = await pkce();
    const unknown = await call(authorizeUrl('no-such-client', challenge));
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get('location')).toBeNull();
    expect(await unknown.text()).toContain('Unknown client_id.');
    const { clientId } = await registerClient();
    const missing = await call(authorizeUrl(clientId, challenge, { redirect_uri: undefined }));
    expect(missing.status).toBe(400);
    expect(missing.headers.get('location')).toBeNull();
  });

  it('allows any port on a loopback redirect URI for public (native) clients only', () => {
    const registered = ['http://127.0.0.1/callback', 'http://[::1]/cb'];
    expect(matchRedirectUri(registered, 'http://127.0.0.1:51234/callback', true)).toBe(true);
    expect(matchRedirectUri(registered, 'http://[::1]:8080/cb', true)).toBe(true);
    expect(matchRedirectUri(registered, 'http://127.0.0.1:51234/callback', false)).toBe(false);
    for (const bad of [
      'http://127.0.0.1:51234/callback/',
      'http://127.0.0.1:51234/other',
      'http://127.0.0.1:99999/callback',
      'http://127.0.0.1:0/callback',
      'http://localhost:51234/callback',
      'https://127.0.0.1:51234/callback',
      'http://127.0.0.1:51234/callback#x',
      'http://127.0.0.1:51234/callback?x=1',
      'http://127.0.0.2:51234/callback',
    ])
      expect(matchRedirectUri(registered, bad, true), bad).toBe(false);
  });
});
