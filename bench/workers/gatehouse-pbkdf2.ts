// Gatehouse exactly as deployed, except that passwords are hashed with PBKDF2-100k: the reference
// against which the real worker's sign-ins per second are compared.
import { createApp } from '../../src/app';
import { depsFor } from '../../src/deps';
import { pbkdf2Hasher } from './pbkdf2';

export { UserSessions } from '../../src/sessions/user-sessions';
export { Handoff } from '../../src/handoff/handoff-object';
export { RateLimiter } from '../../src/limits/rate-limiter';

const passwords = pbkdf2Hasher(100_000);
const app = createApp(async (env) => ({ ...(await depsFor(env)), passwords }));

export default { fetch: app.fetch };
