// Verifies one access token `n` times per request through the isolate's KeyRing (keys cached after
// the first call), so request time ÷ n is the in-isolate verify cost.
import type { Env } from '../../src/config';
import { createDb } from '../../src/db/client';
import { KeyRing } from '../../src/tokens/key-ring';
import { signToken, verifyToken } from '../../src/tokens/jwt';

export { UserSessions } from '../../src/sessions/user-sessions';
export { Handoff } from '../../src/handoff/handoff-object';
export { RateLimiter } from '../../src/limits/rate-limiter';

const ISS = 'https://gatehouse.bench';
let ring: KeyRing | undefined;
const tokens: Partial<Record<'ES256' | 'RS256', string>> = {};

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const alg = url.searchParams.get('alg') === 'RS256' ? 'RS256' : 'ES256';
    const n = Number(url.searchParams.get('n') ?? '1');
    const now = Date.now();
    ring ??= new KeyRing(createDb(env.DB), env.KEY_ENCRYPTION_KEY!, {
      rotationMs: 30 * 86400_000,
      publishLeadMs: 3600_000,
      maxTokenTtlMs: 3600_000,
    });
    tokens[alg] ??= (
      await signToken(ring, { kind: 'access', alg, claims: { sub: 'bench', scope: 'openid' }, issuer: ISS, audience: ISS, ttl: 3600, now })
    ).token;
    for (let i = 0; i < n; i++) await verifyToken(ring, tokens[alg]!, { kind: 'access', issuer: ISS, audience: ISS, now });
    return new Response(`verified ${n}`);
  },
};
