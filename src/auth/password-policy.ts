import { dictionary } from '@zxcvbn-ts/language-common';
import { GatehouseError } from '../lib/errors';

/** Upper bound so a request cannot ask for unbounded work; far above any real passphrase. */
export const PASSWORD_MAX_LENGTH = 1024;

let common: Set<string> | undefined;

/** The shipped list of common passwords (zxcvbn-ts, ~49,000 entries), loaded once per isolate. */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(dictionary['passwords-common'] as string[]);
  return common.has(password.normalize('NFC').toLowerCase());
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
