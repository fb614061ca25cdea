/**
 * Signing keys without waiting for the cron:
 *   npm run keys -- list   [--remote | --persist-to DIR]
 *   npm run keys -- rotate [--alg ES256|RS256] [--remote | --persist-to DIR]
 * `rotate` adds, per algorithm, a new key that signs from now on; the keys it replaces stay in the
 * JWKS until every token they signed has expired (src/tokens/keys.ts). The private key is sealed
 * with KEY_ENCRYPTION_KEY: from the environment if set (required for --remote), else from
 * .dev.vars; it is checked against the stored keys before anything is written, and never printed.
 */
import { decryptPrivateJwk, newKeyRow, nextKeys, SIGNING_ALGS, type SigningAlg } from '../src/tokens/key-material';
import { keyEncryptionKey } from './lib/kek';
import { parseFlags, usageFor } from './lib/cli';
import { d1Query, sqlString, type Target } from './lib/wrangler';

const USAGE = `Usage: npm run keys -- list [--remote | --persist-to DIR]
       npm run keys -- rotate [--alg ES256|RS256] [--remote | --persist-to DIR]

'rotate' makes new signing keys that sign from now on; tokens signed by the old ones keep verifying
until they expire. For --remote, set KEY_ENCRYPTION_KEY in the environment (the production secret).

Options:
  --alg ALG         rotate only this algorithm (repeatable; default: ES256 and RS256)
  --remote          use the deployed D1 database instead of the local one
  --persist-to DIR  local D1 state directory (default: wrangler's .wrangler/state)`;

const usage: (problem: string) => never = usageFor(USAGE);

interface KeyRowOut {
  kid: string;
  alg: SigningAlg;
  generation: number;
  created_at: number;
  signs_from: number;
  public_jwk: string;
  private_jwk_encrypted: string;
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command !== 'list' && command !== 'rotate') usage(command ? `unknown command "${command}"` : 'missing command');
  const values = parseFlags(
    rest,
    { alg: { type: 'string', multiple: true }, remote: { type: 'boolean', default: false }, 'persist-to': { type: 'string' } },
    usage,
  );
  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  const rows = () =>
    d1Query<KeyRowOut>(
      target,
      'SELECT kid, alg, generation, created_at, signs_from, public_jwk, private_jwk_encrypted FROM signing_keys ORDER BY alg, generation',
    );
  const show = (list: KeyRowOut[]) =>
    list.map((r) => ({ kid: r.kid, alg: r.alg, generation: r.generation, createdAt: r.created_at, signsFrom: r.signs_from }));
  if (command === 'list') {
    console.log(JSON.stringify({ keys: show(rows()) }, null, 2));
    return;
  }
  const algs = (values.alg ?? [...SIGNING_ALGS]) as SigningAlg[];
  for (const alg of algs) if (!SIGNING_ALGS.includes(alg)) usage(`--alg must be ES256 or RS256`);
  const kek = keyEncryptionKey(values.remote, usage);
  const existing = rows();
  // A key sealed under the wrong KEK could never sign: prove this one opens a stored key first.
  const probe = existing[0];
  if (probe) {
    try {
      await decryptPrivateJwk(kek, probe.kid, probe.private_jwk_encrypted);
    } catch {
      console.error('error: KEY_ENCRYPTION_KEY does not open the stored signing keys; nothing was written');
      process.exit(1);
    }
  }
  const now = Date.now();
  const stored = existing.map((r) => ({
    kid: r.kid,
    alg: r.alg,
    generation: r.generation,
    publicJwk: JSON.parse(r.public_jwk),
    createdAt: r.created_at,
    signsFrom: r.signs_from,
  }));
  for (const next of nextKeys(stored, now, algs)) {
    const row = await newKeyRow(kek, next);
    d1Query(
      target,
      `INSERT OR IGNORE INTO signing_keys (kid, alg, generation, public_jwk, private_jwk_encrypted, created_at, signs_from)
       VALUES (${[row.kid, row.alg].map(sqlString).join(', ')}, ${row.generation}, ${sqlString(row.publicJwk)}, ${sqlString(row.privateJwkEncrypted)}, ${row.createdAt}, ${row.signsFrom})`,
    );
  }
  console.log(JSON.stringify({ rotated: algs, keys: show(rows()) }, null, 2));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}
