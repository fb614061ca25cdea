/**
 * Argon2id password hashing in PHC string form, independent of how the WebAssembly is loaded
 * (the worker imports the .wasm modules; Node scripts read the files). See argon2-worker.ts.
 */
import { timingSafeEqual } from '../lib/crypto';

export type Argon2Compute = (params: {
  password: Uint8Array;
  salt: Uint8Array;
  parallelism: number;
  passes: number;
  memorySize: number;
  tagLength: number;
}) => Uint8Array;

export interface Argon2Params {
  /** Memory in KiB. */
  m: number;
  /** Passes. */
  t: number;
  /** Lanes. */
  p: number;
}

/** OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1. */
export const OWASP_ARGON2ID: Argon2Params = { m: 19456, t: 2, p: 1 };

const SALT_BYTES = 16;
const TAG_BYTES = 32;
/** The wasm implementation refuses inputs under 8 bytes; our policy never stores one that short. */
const MIN_INPUT_BYTES = 8;
const PHC = /^\$argon2id\$v=19\$m=(\d{1,7}),t=(\d{1,3}),p=(\d{1,2})\$([A-Za-z0-9+/]{11,})\$([A-Za-z0-9+/]{22,})$/;

const b64 = (bytes: Uint8Array) => {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/=+$/, '');
};
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** Passwords are hashed as UTF-8 of their NFC form, every character kept: no truncation, no trimming. */
export function passwordBytes(password: string): Uint8Array {
  return new TextEncoder().encode(password.normalize('NFC'));
}

export interface PasswordVerdict {
  ok: boolean;
  /** The stored hash used other parameters than today's: hash the password again and store it. */
  needsRehash: boolean;
}

export interface PasswordHasher {
  readonly params: Argon2Params;
  hash(password: string): Promise<string>;
  verify(stored: string, password: string): Promise<PasswordVerdict>;
  /** Spends the same work as a real verify, for unknown accounts (no timing oracle). */
  verifyDummy(password: string): Promise<void>;
}

export function createPasswordHasher(load: () => Promise<Argon2Compute>, params: Argon2Params = OWASP_ARGON2ID): PasswordHasher {
  let compute: Promise<Argon2Compute> | undefined;
  const run = async (input: Uint8Array, salt: Uint8Array, p: Argon2Params, tagLength = TAG_BYTES) => {
    compute ??= load();
    const fn = await compute;
    return fn({ password: input, salt, parallelism: p.p, passes: p.t, memorySize: p.m, tagLength });
  };
  // Made on first use: Workers forbid random values at module scope.
  let dummy: { input: Uint8Array; salt: Uint8Array } | undefined;
  const runDummy = () => {
    dummy ??= {
      input: crypto.getRandomValues(new Uint8Array(MIN_INPUT_BYTES)),
      salt: crypto.getRandomValues(new Uint8Array(SALT_BYTES)),
    };
    return run(dummy.input, dummy.salt, params);
  };

  return {
    params,
    async hash(password) {
      const input = passwordBytes(password);
      if (input.length < MIN_INPUT_BYTES) throw new RangeError('password shorter than 8 bytes');
      const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
      const tag = await run(input, salt, params);
      return `$argon2id$v=19$m=${params.m},t=${params.t},p=${params.p}$${b64(salt)}$${b64(tag)}`;
    },
    async verify(stored, password) {
      const match = PHC.exec(stored);
      const input = passwordBytes(password);
      if (!match || input.length < MIN_INPUT_BYTES) {
        await runDummy();
        return { ok: false, needsRehash: false };
      }
      const used = { m: Number(match[1]), t: Number(match[2]), p: Number(match[3]) };
      const expected = unb64(match[5]!);
      const tag = await run(input, unb64(match[4]!), used, expected.length);
      const ok = timingSafeEqual(tag, expected);
      const needsRehash = used.m !== params.m || used.t !== params.t || used.p !== params.p;
      return { ok, needsRehash: ok && needsRehash };
    },
    async verifyDummy() {
      await runDummy();
    },
  };
}
