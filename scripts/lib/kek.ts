import { existsSync, readFileSync } from 'node:fs';
import { ROOT } from './wrangler';

/**
 * The key-encryption key a CLI seals or opens secrets with: KEY_ENCRYPTION_KEY from the environment
 * (required with --remote: the production secret), else the local one in .dev.vars. Never printed.
 */
export function keyEncryptionKey(remote: boolean, usage: (problem: string) => never): string {
  let kek = process.env.KEY_ENCRYPTION_KEY;
  if (kek === undefined) {
    if (remote) usage('--remote needs KEY_ENCRYPTION_KEY in the environment');
    const file = `${ROOT}.dev.vars`;
    const line = existsSync(file) ? /^KEY_ENCRYPTION_KEY=(.+)$/m.exec(readFileSync(file, 'utf8')) : null;
    if (!line) usage('no KEY_ENCRYPTION_KEY in .dev.vars (run npm run dev once, or pass --remote with it in the environment)');
    kek = line[1]!.trim();
  }
  if (!/^[A-Za-z0-9_-]{43}$/.test(kek)) usage('KEY_ENCRYPTION_KEY must be 32 random bytes, base64url');
  return kek;
}
