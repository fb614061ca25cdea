import { describe, expect, it } from 'vitest';
import { TestBrowser } from '../browser';
import { call, createVerifiedUser, ORIGIN, STRONG_PASSWORD, type Problem } from '../helpers';
import { form, registerClient } from '../oauth/helpers';
import { SoftAuthenticator } from '../webauthn';

/**
 * Every decoder of client-supplied base64, base64url, JSON and CBOR answers malformed input with a
 * 4xx naming the problem — never a 500. The attacker sends whatever bytes they like.
 */
const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const text = (s: string) => b64url(new TextEncoder().encode(s));

/** A user with a registered passkey, and a fresh assertion to corrupt. */
async function withPasskey() {
  const user = await createVerifiedUser();
  const browser = new TestBrowser();
  expect((await browser.post('/auth/api/sign-in', { email: user.email, password: STRONG_PASSWORD })).status).toBe(200);
  const auth = await SoftAuthenticator.create();
  const { challengeId, options } = await (await browser.post('/auth/api/passkeys/registration-options', {})).json<{
    challengeId: string;
    options: never;
  }>();
  expect(
    (await browser.post('/auth/api/passkeys', { challengeId, name: 'k', response: await auth.register(options, { origin: ORIGIN }) }))
      .status,
  ).toBe(201);
  const assertion = async () => {
    const { challengeId: id, options: o } = await (await browser.post('/auth/api/passkeys/authentication-options', {})).json<{
      challengeId: string;
      options: never;
    }>();
    return { challengeId: id, response: await auth.assert(o, { origin: ORIGIN }) };
  };
  return { user, browser, auth, assertion };
}

async function expectClientError(res: Response, what: string, field?: string) {
  expect(res.status, `${what}: ${await res.clone().text()}`).toBeGreaterThanOrEqual(400);
  expect(res.status, what).toBeLessThan(500);
  if (field && (res.headers.get('content-type') ?? '').includes('json')) expect(((await res.json()) as Problem).field, what).toBe(field);
}

describe('malformed input is a 400 naming the field, never a 500', () => {
  it('a passkey assertion with a malformed userHandle (the review’s 500), and every other malformed part', async () => {
    const { assertion } = await withPasskey();
    const handles = {
      'one character': 'A',
      'five characters (4n+1)': 'AAAAA',
      'not the alphabet': '!!!!',
      'padding inside': 'AA=A',
      'not UTF-8': b64url(new Uint8Array([0xff, 0xfe])),
      'lone surrogate bytes': b64url(new Uint8Array([0xed, 0xa0, 0x80])),
    };
    for (const [what, userHandle] of Object.entries(handles)) {
      const a = await assertion();
      const res = await new TestBrowser().post('/auth/api/passkeys/sign-in', {
        ...a,
        response: { ...a.response, response: { ...a.response.response, userHandle } },
      });
      await expectClientError(res, what, 'response.response.userHandle');
    }
    const parts: Record<string, (a: Awaited<ReturnType<typeof assertion>>) => unknown> = {
      'clientDataJSON not JSON': (a) => ({
        ...a,
        response: { ...a.response, response: { ...a.response.response, clientDataJSON: text('{not json') } },
      }),
      'clientDataJSON a JSON array': (a) => ({
        ...a,
        response: { ...a.response, response: { ...a.response.response, clientDataJSON: text('[1,2]') } },
      }),
      'authenticatorData too short': (a) => ({
        ...a,
        response: { ...a.response, response: { ...a.response.response, authenticatorData: 'AAAA' } },
      }),
      'signature not DER': (a) => ({
        ...a,
        response: { ...a.response, response: { ...a.response.response, signature: text('not a signature') } },
      }),
      'signature 4n+1': (a) => ({ ...a, response: { ...a.response, response: { ...a.response.response, signature: 'AAAAA' } } }),
      'id 4n+1': (a) => ({ ...a, response: { ...a.response, id: 'AAAAA', rawId: 'AAAAA' } }),
      'response not an object': (a) => ({ ...a, response: 'x' }),
      'challengeId not a string': (a) => ({ ...a, challengeId: 42 }),
    };
    for (const [what, corrupt] of Object.entries(parts))
      await expectClientError(await new TestBrowser().post('/auth/api/passkeys/sign-in', corrupt(await assertion())), what);
  });

  it('a passkey registration with malformed CBOR or base64url', async () => {
    const { browser } = await withPasskey();
    const bodies = {
      'attestationObject not CBOR': text('not cbor at all'),
      'attestationObject 4n+1': 'AAAAA',
      'attestationObject CBOR but not a map': b64url(new Uint8Array([0x83, 1, 2, 3])),
      'attestationObject truncated CBOR': b64url(new Uint8Array([0xa3, 0x63, 0x66])),
    };
    for (const [what, attestationObject] of Object.entries(bodies)) {
      const { challengeId } = await (await browser.post('/auth/api/passkeys/registration-options', {})).json<{ challengeId: string }>();
      const res = await browser.post('/auth/api/passkeys', {
        challengeId,
        name: 'x',
        response: { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON: text('{}'), attestationObject } },
      });
      await expectClientError(res, what);
    }
  });

  it('a proof with a malformed passkey assertion', async () => {
    const { browser, assertion } = await withPasskey();
    const a = await assertion();
    const res = await browser.post('/auth/api/recovery-codes', {
      proof: { passkey: { ...a, response: { ...a.response, response: { ...a.response.response, userHandle: 'A' } } } },
    });
    await expectClientError(res, 'proof passkey userHandle');
    await expectClientError(
      await browser.post('/auth/api/recovery-codes', { proof: { password: 'x', code: '1' } }),
      'two proofs at once',
      'proof',
    );
    await expectClientError(await browser.post('/auth/api/recovery-codes', { proof: 'password' }), 'proof a string', 'proof');
  });

  it('client authentication, tokens and codes the OAuth endpoints are sent', async () => {
    const { clientId } = await registerClient();
    const token = (fields: Record<string, string>, authorization?: string) =>
      call('/auth/token', { ...form(fields), headers: { ...form({}).headers, ...(authorization ? { authorization } : {}) } });
    const basics = [
      'Basic !!!!',
      'Basic ',
      `Basic ${btoa('no-colon')}`,
      `Basic ${btoa('%zz:%zz')}`,
      `Basic ${btoa('\u00ff\u00fe:x')}`,
      'Basic A',
      'Bearer x',
      'Basic ====',
      `Basic ${btoa(`${clientId}:`)}x`,
    ];
    for (const authorization of basics) {
      const res = await token({ grant_type: 'client_credentials' }, authorization);
      await expectClientError(res, authorization);
      expect((await res.json<{ error: string }>()).error, authorization).toMatch(/^invalid_(client|request)$/);
    }
    const assertions = [
      'x',
      'a.b',
      '..',
      'a.!!!.c',
      `e30.${text('not json')}.sig`,
      `e30.${text('[1]')}.sig`,
      `e30.${text('{"sub":42}')}.sig`,
      `e30.${text('{"sub":"nope"}')}.sig`,
    ];
    for (const client_assertion of assertions) {
      const res = await token({
        grant_type: 'client_credentials',
        client_assertion,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      });
      await expectClientError(res, client_assertion);
    }
    for (const [field, value] of [
      ['code', 'ac1.x.y'],
      ['code', `ac1.${crypto.randomUUID()}.${'!'.repeat(43)}`],
      ['refresh_token', 'rt1.a.b.c'],
      ['device_code', 'dc1.BBBB.x'],
    ] as const) {
      const grant =
        field === 'code'
          ? 'authorization_code'
          : field === 'refresh_token'
            ? 'refresh_token'
            : 'urn:ietf:params:oauth:grant-type:device_code';
      await expectClientError(
        await token({ grant_type: grant, client_id: clientId, [field]: value, redirect_uri: 'https://x', code_verifier: 'a'.repeat(43) }),
        field,
      );
    }
    for (const bearer of [
      'ot1.!!!!.x',
      `ot1.${text(`client:${'x'.repeat(300)}`)}.${'A'.repeat(43)}`,
      'a.b.c',
      `${text('{"alg":"none"}')}.e30.`,
    ]) {
      const res = await call('/auth/userinfo', { headers: { authorization: `Bearer ${bearer}` } });
      await expectClientError(res, bearer);
    }
  });

  it('bodies that are not what the content type says', async () => {
    for (const body of ['{', '[]', '"x"', 'null', '1', '{"email": {"$ne": 1}}', '\u0000']) {
      const res = await call('/auth/api/sign-in', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      await expectClientError(res, body);
    }
    const multipart = await call('/auth/sign-in', {
      method: 'POST',
      body: '--x\r\nnot a part',
      headers: { 'content-type': 'multipart/form-data; boundary=y' },
    });
    await expectClientError(multipart, 'broken multipart');
    for (const hint of ['x', 'a.b.c', `${text('{"alg":"RS256"}')}.${text('{"aud":[]}')}.x`]) {
      await expectClientError(await call(`/auth/logout?id_token_hint=${encodeURIComponent(hint)}`), `logout hint ${hint}`, 'id_token_hint');
    }
  });
});
