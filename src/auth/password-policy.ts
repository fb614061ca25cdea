import { GatehouseError, unavailable } from '../lib/errors';
import { includesSorted } from '../lib/rice-set';
import { commonPasswordKey, decodeCommonPasswords } from './common-passwords';
import { COMMON_PASSWORDS } from './common-passwords.generated';

/** Upper bound so a request cannot ask for unbounded work; far above any real passphrase. */
export const PASSWORD_MAX_LENGTH = 1024;

/** zxcvbn-ts's ~49,000 common passwords, case-insensitive (docs/security.md "Blocklist"). */
export interface CommonPasswords {
  /** Whether the password is on the list; rejects with a 503 (never false) while the list cannot be read. */
  includes(password: string): Promise<boolean>;
}

/**
 * The list, read with `read` (the worker's ASSETS binding, a file in Node) on the first check and
 * kept: decoded once into a sorted array, then one binary search a check. The bytes must be the
 * asset this build made (length and SHA-256 in src/auth/common-passwords.generated.ts); a read that
 * fails or returns anything else refuses the check as temporarily unavailable, and the next check
 * reads again. A password that is not on the list is refused anyway with probability ~1e-5.
 */
export function createCommonPasswords(read: () => Promise<Uint8Array<ArrayBuffer>>): CommonPasswords {
  let keys: Promise<Uint32Array> | undefined;
  const load = async () => decodeCommonPasswords(await read(), COMMON_PASSWORDS);
  return {
    async includes(password) {
      keys ??= load().catch((cause: unknown) => {
        keys = undefined;
        throw unavailable('The password check', cause);
      });
      return includesSorted(await keys, commonPasswordKey(password));
    },
  };
}

/** Reads the list through the worker's static-assets binding (wrangler.toml `[assets]`, a Fetcher). */
export function commonPasswordsFromAssets(assets: { fetch(request: Request): Promise<Response> }, path: string): CommonPasswords {
  return createCommonPasswords(async () => {
    const res = await assets.fetch(new Request(`https://assets.invalid${path}`));
    if (!res.ok) throw new Error(`static asset ${path}: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  });
}

/** Length in code points, so emoji and CJK count as one character each. */
const length = (s: string) => [...s.normalize('NFC')].length;

/**
 * NIST SP 800-63B: a minimum length, a generous maximum, a blocklist of common passwords,
 * and no composition rules. Throws a 400 naming the field (a 503 if the blocklist cannot be read).
 */
export async function checkNewPassword(list: CommonPasswords, password: string, minLength: number, field = 'password'): Promise<void> {
  const n = length(password);
  if (n < minLength) throw new GatehouseError('weak_password', `Password must be at least ${minLength} characters.`, { field });
  if (n > PASSWORD_MAX_LENGTH)
    throw new GatehouseError('weak_password', `Password must be at most ${PASSWORD_MAX_LENGTH} characters.`, { field });
  if (await list.includes(password)) throw new GatehouseError('weak_password', 'This password is too common; choose another.', { field });
}
