// One second-factor check per request (in an otherwise idle workerd, request time is CPU time):
// a passkey assertion verified by @simplewebauthn/server, a TOTP code checked as Gatehouse does
// (unseal the secret, RFC 6238 with ±1 step), and — for scale — an argon2id password verification.
import { verifyAuthenticationResponse } from '@simplewebauthn/server';
import { Secret, TOTP } from 'otpauth';
import { createPasswordHasher } from '../../src/auth/argon2';
import { loadArgon2 } from '../../src/auth/argon2-worker';
import { fromBase64url, seal, unseal } from '../../src/lib/crypto';
import { SoftAuthenticator } from '../../test/webauthn';

export { UserSessions } from '../../src/sessions/user-sessions';
export { Handoff } from '../../src/handoff/handoff-object';
export { RateLimiter } from '../../src/limits/rate-limiter';

const ORIGIN = 'https://gatehouse.bench';
const KEK = 'YmVuY2htYXJrLW9ubHkta2V5LWVuY3J5cHRpb24tayE';
const passwords = createPasswordHasher(loadArgon2);

// Built on the first request (workerd forbids random values at global scope).
async function makeFixtures() {
  const auth = await SoftAuthenticator.create();
  const challenge = 'YmVuY2htYXJrLWNoYWxsZW5nZS0wMDAwMDAwMDAwMDA';
  const registration = await auth.register(
    {
      challenge,
      rp: { id: 'gatehouse.bench', name: 'bench' },
      user: { id: 'dXNlcg', name: 'u', displayName: 'u' },
      pubKeyCredParams: [],
    } as never,
    { origin: ORIGIN },
  );
  const { decodeCBOR } = await import('@levischuck/tiny-cbor');
  const att = decodeCBOR(fromBase64url(registration.response.attestationObject)) as Map<string, Uint8Array>;
  const authData = att.get('authData')!;
  const idLength = (authData[53]! << 8) | authData[54]!;
  const publicKey = authData.slice(55 + idLength);
  const assertion = await auth.assert({ challenge, rpId: 'gatehouse.bench' } as never, { origin: ORIGIN, counter: 1 });
  const secret = new Secret({ size: 20 }).base32;
  return {
    credential: { id: auth.id, publicKey, counter: 0 },
    assertion,
    challenge,
    sealed: await seal(KEK, 'totp:bench', secret),
    hash: await passwords.hash('correct horse battery staple'),
  };
}
let fixtures: ReturnType<typeof makeFixtures> | undefined;

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const name = url.pathname.slice(1);
    // ?k=N runs the check N times in one request, so a sub-millisecond cost rises above the noise.
    const k = Math.max(1, Number(url.searchParams.get('k') ?? '1'));
    fixtures ??= makeFixtures();
    const f = await fixtures;
    if (name === 'noop') return new Response('ok');
    let last: Response = new Response('unknown', { status: 404 });
    for (let i = 0; i < k; i++) last = await check(name, f);
    return last;
  },
};

async function check(name: string, f: Awaited<ReturnType<typeof makeFixtures>>): Promise<Response> {
  if (name === 'passkey') {
    const result = await verifyAuthenticationResponse({
      response: f.assertion,
      expectedChallenge: f.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: 'gatehouse.bench',
      credential: f.credential,
      requireUserVerification: false,
    });
    return new Response(String(result.verified));
  }
  if (name === 'totp') {
    const base32 = await unseal(KEK, 'totp:bench', f.sealed);
    const totp = new TOTP({ secret: Secret.fromBase32(base32), algorithm: 'SHA1', digits: 6, period: 30 });
    const delta = totp.validate({ token: totp.generate(), window: 1 });
    return new Response(String(delta));
  }
  if (name === 'password') return new Response(String((await passwords.verify(f.hash, 'correct horse battery staple')).ok));
  return new Response('unknown', { status: 404 });
}
