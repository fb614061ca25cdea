import { fromBase64url } from '../lib/crypto';
import { GatehouseError } from '../lib/errors';
import { decodeRiceSet, includesSorted } from '../lib/rice-set';
import { commonPasswordKey } from './common-passwords';
import { COMMON_PASSWORDS } from './common-passwords.generated';

/** Upper bound so a request cannot ask for unbounded work; far above any real passphrase. */
export const PASSWORD_MAX_LENGTH = 1024;

let keys: Uint32Array | undefined;

/**
 * Whether the password (case-insensitive) is on zxcvbn-ts's list of ~49,000 common passwords.
 * The list ships as the Rice-coded set of its keys (src/auth/common-passwords.generated.ts, about
 * 18 bits a password), decoded once per isolate; a password that is not on it is refused anyway
 * with probability ~1e-5 (docs/security.md).
 */
export function isCommonPassword(password: string): boolean {
  keys ??= decodeRiceSet(fromBase64url(COMMON_PASSWORDS.keys), COMMON_PASSWORDS.count, COMMON_PASSWORDS.riceParameter);
  return includesSorted(keys, commonPasswordKey(password));
}

/** Length in code points, so emoji and CJK count as one character each. */
const length = (s: string) => [...s.normalize('NFC')].length;

/**
 * NIST SP 800-63B: a minimum length, a generous maximum, a blocklist of common passwords,
 * and no composition rules. Throws a 400 naming the field.
 */
export function checkNewPassword(password: string, minLength: number, field = 'password'): void {
  const n = length(password);
  if (n < minLength) throw new GatehouseError('weak_password', `Password must be at least ${minLength} characters.`, { field });
  if (n > PASSWORD_MAX_LENGTH)
    throw new GatehouseError('weak_password', `Password must be at most ${PASSWORD_MAX_LENGTH} characters.`, { field });
  if (isCommonPassword(password)) throw new GatehouseError('weak_password', 'This password is too common; choose another.', { field });
}
