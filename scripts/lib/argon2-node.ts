import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import setupWasm from 'argon2id/lib/setup.js';
import type { Argon2Compute } from '../../src/auth/argon2';

const require = createRequire(import.meta.url);
const wasm = (file: string) => readFileSync(require.resolve(`argon2id/dist/${file}`));

/** The same Argon2id WebAssembly the worker runs, loaded from the package files (Node may compile bytes). */
export const loadArgon2Node = (): Promise<Argon2Compute> =>
  setupWasm(
    (imports) => WebAssembly.instantiate(wasm('simd.wasm'), imports),
    (imports) => WebAssembly.instantiate(wasm('no-simd.wasm'), imports),
  );
