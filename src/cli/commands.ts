/**
 * The CLI commands; each module registers itself on the program. A run of one command loads only
 * that command's module (`latentlab train` does not carry the web server, the study, ...: a few MB
 * of a training run's peak); help, an unknown command or none load them all, in this order.
 */
import type { Command } from 'commander';

export type Register = (program: Command) => void;

type Loader = () => Promise<{ register: Register }>;

export const COMMAND_MODULES: readonly (readonly [name: string, load: Loader])[] = [
  ['train', () => import('./train.js')],
  ['eval', () => import('./eval.js')],
  ['summary', () => import('./summary.js')],
  ['data', () => import('./data.js')],
  ['encode', () => import('./encode.js')],
  ['plot', () => import('./plot.js')],
  ['sample', () => import('./sample.js')],
  ['generate', () => import('./generate.js')],
  ['recon', () => import('./recon.js')],
  ['denoise', () => import('./denoise.js')],
  ['gif', () => import('./gif.js')],
  ['serve', () => import('./serve.js')],
  ['study', () => import('./study.js')],
];

/** The commands to register for `argv` (node, script, args...): the one named first, else all of them. */
export async function loadCommands(argv: readonly string[]): Promise<Register[]> {
  const name = argv.slice(2).find((a) => !a.startsWith('-'));
  const one = COMMAND_MODULES.filter(([n]) => n === name);
  return (await Promise.all((one.length ? one : COMMAND_MODULES).map(([, load]) => load()))).map((m) => m.register);
}
