import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A usage printer for one CLI: the problem, then the usage text, on stderr; exit 2. */
export const usageFor =
  (text: string) =>
  (problem: string): never => {
    console.error(`error: ${problem}\n\n${text}`);
    process.exit(2);
  };

/** Strict flag parsing (no positionals, no unknown flags); any mistake prints the usage. */
export function parseFlags<const O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: O,
  usage: (problem: string) => never,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    return usage((e as Error).message);
  }
}
