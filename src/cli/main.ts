#!/usr/bin/env node
/**
 * The `latentlab` command: a thin layer over the library. Each command lives in its own file
 * under src/cli/ and exports `register(program)`.
 */
import './young-gen.js';   // first: before the modules load and allocate
import { Command, CommanderError } from 'commander';
import { loadCommands } from './commands.js';
import { VERSION } from '../version.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('latentlab')
    .description('Train, explore and generate from convolutional autoencoders (MNIST)')
    .version(VERSION)
    .showHelpAfterError(false)
    .exitOverride();
  for (const register of await loadCommands(argv)) register(program);
  try {
    await program.parseAsync(argv, { from: 'node' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (or the help/version text)
      return e.exitCode === 0 ? 0 : 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`latentlab: ${msg.split('\n')[0]}\n`);
    if (process.env.LATENTLAB_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    // usage errors (UsageError: 2) and runs stopped by a signal (130, 143) carry their exit code
    const code = (e as { exitCode?: unknown })?.exitCode;
    return typeof code === 'number' && Number.isInteger(code) && code > 0 ? code : 1;
  }
}

const invokedDirectly = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop() ?? '');
if (invokedDirectly || process.env.LATENTLAB_CLI === '1') {
  main(process.argv).then((code) => { process.exitCode = code; });
}
