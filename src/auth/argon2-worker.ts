// Workers refuse to compile WebAssembly from bytes at run time, so the modules are imported
// (wrangler bundles them as compiled modules) and only instantiated here.
import simd from 'argon2id/dist/simd.wasm';
import noSimd from 'argon2id/dist/no-simd.wasm';
import setupWasm from 'argon2id/lib/setup.js';
import type { Argon2Compute } from './argon2';

const instantiate = (module: WebAssembly.Module) => async (imports: WebAssembly.Imports) => ({
  module,
  instance: await WebAssembly.instantiate(module, imports),
});

export const loadArgon2 = (): Promise<Argon2Compute> => setupWasm(instantiate(simd), instantiate(noSimd));
