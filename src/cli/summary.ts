/** `latentlab summary [--model M --latent L | RUN]`: the study's model table. */
import type { Command } from 'commander';
import { AutoEncoder, parseLatent } from '../lab/models/autoencoder.js';
import { formatSummary, summarize } from '../lab/models/summary.js';
import { oneOf } from './options.js';
import type { TrainConfig } from '../lab/run/config.js';
import { RunFolder } from '../lab/run/folder.js';

export function register(program: Command): void {
  program.command('summary [run]')
    .description("the model's layer table (Layer, Type, Output Shape, Param #) as in the study")
    .option('--model <variant>', 'bn or simple', oneOf('--model', ['bn', 'simple'] as const))
    .option('--latent <n|conv>', "latent size or 'conv'", parseLatent)
    .option('--activation <a>', 'leaky or relu', oneOf('--activation', ['leaky', 'relu'] as const))
    .option('--latent-activation <a>', 'leaky, relu or none', oneOf('--latent-activation', ['leaky', 'relu', 'none'] as const))
    .option('--json', 'machine-readable output')
    .action((run: string | undefined, o: Record<string, unknown>) => {
      let cfg: Partial<TrainConfig> = {};
      if (run) {
        cfg = RunFolder.open(run).readConfig();
      }
      for (const k of ['model', 'latent', 'activation', 'latentActivation'] as const) if (o[k] !== undefined) (cfg as Record<string, unknown>)[k] = o[k];
      // only the settings given: an unset one keeps the model's default (the study's)
      const given = Object.fromEntries((['model', 'latent', 'activation', 'latentActivation'] as const)
        .filter((k) => cfg[k] !== undefined).map((k) => [k, cfg[k]]));
      const model = new AutoEncoder(given);
      const s = summarize(model);
      process.stdout.write(o.json ? `${JSON.stringify(s)}\n` : `${formatSummary(s)}\n`);
    });
}
