// One password hash per request, so that request time in an otherwise idle workerd is CPU time.
import { createPasswordHasher } from '../../src/auth/argon2';
import { loadArgon2 } from '../../src/auth/argon2-worker';
import { pbkdf2Hasher } from './pbkdf2';

// wrangler.toml binds this class; the bundle must export it even though this worker never uses it.
export { UserSessions } from '../../src/sessions/user-sessions';
export { Handoff } from '../../src/handoff/handoff-object';
export { RateLimiter } from '../../src/limits/rate-limiter';

const hashers = { argon2id: createPasswordHasher(loadArgon2), pbkdf2: pbkdf2Hasher(100_000) };

export default {
  async fetch(request: Request): Promise<Response> {
    const name = new URL(request.url).pathname.slice(1);
    if (name === 'noop') return new Response('ok');
    const hasher = hashers[name as keyof typeof hashers];
    if (!hasher) return new Response('unknown hasher', { status: 404 });
    return new Response(await hasher.hash('correct horse battery staple'));
  },
};
