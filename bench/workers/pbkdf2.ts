import type { PasswordHasher } from '../../src/auth/argon2';
import { timingSafeEqual } from '../../src/lib/crypto';

/**
 * Benchmark reference only: PBKDF2-HMAC-SHA-256 at 100,000 iterations, the most production Workers
 * allow. Gatehouse itself stores argon2id; this exists so the two can be compared in one run.
 */
export function pbkdf2Hasher(iterations = 100_000): PasswordHasher {
  const derive = async (password: string, salt: Uint8Array<ArrayBuffer>) => {
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveBits']);
    return new Uint8Array(await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, key, 256));
  };
  const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b)).replace(/=+$/, '');
  const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  return {
    params: { m: 0, t: iterations, p: 1 },
    async hash(password) {
      const salt = crypto.getRandomValues(new Uint8Array(16));
      return `$pbkdf2-sha256$i=${iterations}$${b64(salt)}$${b64(await derive(password, salt))}`;
    },
    async verify(stored, password) {
      const [, , , salt, hash] = stored.split('$');
      if (!salt || !hash) return { ok: false, needsRehash: false };
      return { ok: timingSafeEqual(await derive(password, unb64(salt)), unb64(hash)), needsRehash: false };
    },
    async verifyDummy(password) {
      await derive(password, new Uint8Array(16));
    },
  };
}
