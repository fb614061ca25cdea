/**
 * npm run bench:factors — CPU cost of one passkey verification and one TOTP check, each against
 * an argon2id password verification, in one run, through Miniflare (workerd, no logging). A
 * sequential request runs the check 50 times (the password once); its time minus an empty
 * request's, divided by 50, is the isolate's CPU time for one check.
 *
 * Options: --n N requests per measurement (default 200).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { bundle, fmt, median, startWorker } from './harness';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200' } } });
const N = Number(values.n);
const COMMAND = `npm run bench:factors -- --n ${N}`;

const worker = await startWorker(bundle('factors', 'bench/workers/factors.ts'), { gatehouse: false });
try {
  const time = async (path: string, n: number) => {
    const times: number[] = [];
    for (let i = 0; i < n + 5; i++) {
      const t = performance.now();
      const res = await worker.fetch(path);
      const body = await res.text();
      if (!res.ok || body === 'false' || body === 'null') throw new Error(`${path}: ${res.status} ${body}`);
      if (i >= 5) times.push(performance.now() - t);
    }
    return times;
  };
  const K = 50;
  const noop = median(await time('/noop', N));
  const passkey = (median(await time(`/passkey?k=${K}`, N)) - noop) / K;
  const totp = (median(await time(`/totp?k=${K}`, N)) - noop) / K;
  const password = median(await time('/password', Math.max(20, Math.floor(N / 10)))) - noop;
  console.log(`
Second-factor checks through Miniflare (workerd), Node ${process.version}, ${cpus().length} cores (CPU ms per check, median)

  passkey assertion (ES256, @simplewebauthn/server)   ${fmt(passkey, 2)}
  TOTP code (AES-GCM unseal + RFC 6238, ±1 step)      ${fmt(totp, 2)}
  argon2id password verification                      ${fmt(password, 2)}
  ratio passkey / password ${fmt(passkey / password, 3)}x   TOTP / password ${fmt(totp / password, 3)}x   passkey / TOTP ${fmt(passkey / totp, 2)}x
  empty request                                       ${fmt(noop, 2)}

Reproduce: ${COMMAND}
`);
} finally {
  await worker.stop();
}
