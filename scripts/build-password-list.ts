/**
 * Writes the common-password list: zxcvbn-ts's ~49,000 common passwords as the Rice-coded set of
 * their 32-bit keys, a static asset (generated/assets/common-passwords.bin, read by the worker
 * through its ASSETS binding), and src/auth/common-passwords.generated.ts, the asset's size and
 * SHA-256 that the worker checks it against. Run by `npm run build:passwords` after upgrading
 * @zxcvbn-ts/language-common; test/auth/common-passwords.test.ts fails while either is out of date.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dictionary } from '@zxcvbn-ts/language-common';
import { ASSETS_DIRECTORY, COMMON_PASSWORDS_ASSET, encodeCommonPasswords, renderCommonPasswordsModule } from '../src/auth/common-passwords';
import { ROOT } from './lib/wrangler';

const MODULE = 'src/auth/common-passwords.generated.ts';
const ASSET = `${ASSETS_DIRECTORY}${COMMON_PASSWORDS_ASSET}`;
const passwords = dictionary['passwords-common'] as string[];
const { asset, manifest } = await encodeCommonPasswords(passwords);
mkdirSync(`${ROOT}${ASSETS_DIRECTORY}`, { recursive: true });
writeFileSync(`${ROOT}${ASSET}`, asset);
writeFileSync(`${ROOT}${MODULE}`, renderCommonPasswordsModule(passwords, manifest));

console.log(
  `${ASSET}: ${passwords.length} passwords, ${manifest.count} distinct keys, Rice k = ${manifest.riceParameter}, ${manifest.bytes} bytes ` +
    `(${((manifest.bytes * 8) / manifest.count).toFixed(2)} bits a key), false-positive rate ≈ ${(manifest.count / 2 ** 32).toExponential(2)}; ${MODULE}`,
);
