/**
 * The bench's command lines, parsed strictly by node:util's parseArgs: an unknown flag or a missing value is one
 * line on stderr naming it and exit 2 (no benchmark starts), `--help` prints the usage and exits 0.
 */
import { parseArgs } from 'node:util';

export type BenchOptions = Record<string, { type: 'string' | 'boolean' }>;
export type BenchValues = Record<string, string | boolean | undefined>;

export function parseBenchArgs(argv: string[], options: BenchOptions, prog: string, usage: string): BenchValues {
  let values: BenchValues;
  try {
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values as BenchValues;
  } catch (e) {
    // parseArgs's first sentence names the flag ("Unknown option '--x'.", "Option '--rounds <value>' argument missing")
    const first = (e as Error).message.split(/\.\s|\n/)[0].replace(/\.$/, '');
    process.stderr.write(`${prog}: ${first} (--help lists the options)\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return values;
}
