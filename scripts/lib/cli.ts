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

/**
 * Runs a CLI's `main` when its file is the script node was started with (not when imported, as
 * `npm run dev` imports them): an error that escapes it is printed as one line, exit 1.
 */
export function runAsScript(moduleUrl: string, main: (argv: string[]) => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}
