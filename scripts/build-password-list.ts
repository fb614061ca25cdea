/**
 * Writes src/auth/common-passwords.generated.ts: zxcvbn-ts's ~49,000 common passwords as the
 * Rice-coded set of their 32-bit keys (src/auth/common-passwords.ts). Run by `npm run build:passwords`
 * after upgrading @zxcvbn-ts/language-common; test/auth/common-passwords.test.ts fails while the
 * committed module is out of date.
 */
import { writeFileSync } from 'node:fs';
import { dictionary } from '@zxcvbn-ts/language-common';
import { encodeCommonPasswords, renderCommonPasswordsModule } from '../src/auth/common-passwords';
import { ROOT } from './lib/wrangler';

const FILE = 'src/auth/common-passwords.generated.ts';
const passwords = dictionary['passwords-common'] as string[];
writeFileSync(`${ROOT}${FILE}`, renderCommonPasswordsModule(passwords));

const { count, riceParameter, keys } = encodeCommonPasswords(passwords);
const bytes = Math.floor((keys.length * 3) / 4);
console.log(
  `${FILE}: ${passwords.length} passwords, ${count} distinct keys, Rice k = ${riceParameter}, ${bytes} bytes ` +
    `(${((bytes * 8) / count).toFixed(2)} bits a key), false-positive rate ≈ ${(count / 2 ** 32).toExponential(2)}`,
);
