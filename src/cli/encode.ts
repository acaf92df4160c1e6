/** `latentlab encode RUN IMAGE... [--plot] [--out DIR]`: your own pictures of digits in a run's latent space. */
import type { Command } from 'commander';
import { createBackend } from '../engine/kernels/select.js';
import { openRun } from '../lab/run/run.js';
import path from 'node:path';
import { encodeImages, expandImageArgs, formatLatent, worstEncoded, writeEncodeOutputs } from '../lab/analysis/encode.js';
import { writeFileAtomic } from '../lab/run/atomic.js';
import { UsageError } from '../lab/run/errors.js';
import { int } from './options.js';
import '../node-backends.js';

interface EncodeOpts { plot?: boolean; out?: string; json?: boolean; worst?: number }

export function register(program: Command): void {
  program.command('encode')
    .description('encode PNG/JPEG pictures of digits (any size; preprocessed MNIST-style): print their latent points, write the 28x28 inputs and reconstructions')
    .argument('<run>', 'run folder')
    .argument('<images...>', 'PNG or JPEG files, or folders of them')
    .option('--plot', 'also write encode-latent.png: the latent scatter with the pictures marked')
    .option('--out <dir>', 'output folder (default RUN/encode)')
    .option('--json', 'print the latent points as JSON lines instead of text')
    .option('--worst <n>', 'anomaly search: the n pictures reconstructed worst, with their error and file name (worst.png in the output folder)', int('--worst'))
    .action(async (dir: string, args: string[], o: EncodeOpts) => {
      if (o.worst !== undefined && !(o.worst >= 1)) throw new UsageError(`--worst: expected a whole number >= 1, got ${o.worst}`);
      let files: string[];
      try { files = expandImageArgs(args); } catch (e) { throw new UsageError((e as Error).message); }
      const backend = await createBackend();
      try {
        const run = await openRun(dir, { backend });
        const encoded = await encodeImages(run, files);
        for (const e of encoded)
          process.stdout.write(o.json ? `${JSON.stringify({ file: e.file, z: [...e.z] })}\n` : `${formatLatent(e)}\n`);
        const out = await writeEncodeOutputs(run, encoded, o.out ?? run.folder.picture('encode'), { plot: !!o.plot });
        for (const f of [...out.inputs, ...out.recons, ...(out.plot ? [out.plot] : [])])
          process.stdout.write(o.json ? '' : `wrote ${f}\n`);
        if (o.worst !== undefined) {
          const { worst, png } = await worstEncoded(encoded, o.worst, run.name);
          const file = path.join(o.out ?? run.folder.picture('encode'), 'worst.png');
          writeFileAtomic(file, png);
          process.stdout.write(o.json
            ? `${JSON.stringify({ worst: worst.map((w) => ({ file: w.file, mse: w.error })) })}\n`
            : `worst reconstructed: ${worst.map((w) => `${w.file} (MSE ${w.error.toFixed(4)})`).join(', ')}\nwrote ${file}\n`);
        }
      } finally {
        backend.dispose?.();
      }
    });
}
