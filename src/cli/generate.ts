/** `latentlab generate RUN --digit D`: new images of a digit, decoded from latents near where it lives. */
import path from 'node:path';
import type { Command } from 'commander';
import { Rng } from '../engine/rng.js';
import { digitLatents, type DigitLatentsInfo } from '../lab/analysis/generate.js';
import { sheetFigure, sheetFigureSize } from '../viz/figures.js';
import { toGrey } from '../viz/grid.js';
import { labelNamer } from '../viz/palette.js';
import { renderPng } from '../viz/node.js';
import { int, num } from './options.js';
import { isVae } from '../lab/models/family.js';
import { UsageError } from '../lab/run/errors.js';
import { intInRange, openRunForPictures, parseFlag, writeOut } from './pictures.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W } from '../lab/data/image.js';

interface GenerateOpts { digit?: string; prior?: boolean; count?: string; spread?: string; seed?: string; out?: string }

const fmt = (v: number) => String(Number(v.toPrecision(3)));

/** One 28 × 28 greyscale PNG of an image with values in [-1, 1]. */
export function imagePng(img: Float32Array, h = IMAGE_H, w = IMAGE_W): Promise<Buffer> {
  return renderPng(w, h, (ctx) => {
    const d = ctx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      const g = toGrey(img[i]);
      d.data[4 * i] = g; d.data[4 * i + 1] = g; d.data[4 * i + 2] = g; d.data[4 * i + 3] = 255;
    }
    ctx.putImageData(d, 0, 0);
  });
}

export function register(program: Command): void {
  program.command('generate')
    .description('decode new images of a digit from latent points near it (its centroid, or its target in a supervised run)')
    .argument('<run>', 'run folder')
    .option('--digit <d>', 'the digit, 0-9')
    .option('--prior', 'a VAE: decode draws from the prior N(0, I) instead of points near a digit')
    .option('--count <n>', 'how many images, 1-100 (default 10)')
    .option('--spread <s>', 'noise: times the per-dimension std of the digit (std itself in a supervised run) (default 0.5)')
    .option('--seed <n>', 'random seed (default 0)')
    .option('--out <dir>', 'output folder (default RUN/generate)')
    .action(async (dir: string, o: GenerateOpts) => {
      if (!o.prior && o.digit === undefined) throw new UsageError("generate: give --digit D (or --prior for a VAE)");
      if (o.prior && o.digit !== undefined) throw new UsageError('--digit: not with --prior (the prior holds every digit)');
      const digit = o.prior ? -1 : parseFlag(intInRange('--digit', 0, 9), o.digit!);
      const count = o.count === undefined ? 10 : parseFlag(intInRange('--count', 1, 100), o.count);
      const spread = o.spread === undefined ? 0.5 : parseFlag(num('--spread'), o.spread);
      if (spread < 0) throw new Error(`--spread: expected a number >= 0, got '${o.spread}'`);
      const seed = o.seed === undefined ? 0 : parseFlag(int('--seed'), o.seed);
      const opened = await openRunForPictures(dir);
      const outDir = o.out ?? opened.run.folder.picture('generate');
      try {
        const { run } = opened;
        if (o.prior) {
          if (!isVae(run.model)) throw new UsageError(`--prior: ${run.dir} is a plain autoencoder (its latent has no prior): use a VAE run, or --digit`);
          const { images } = run.model.sample(count, new Rng(seed));
          const cols = Math.min(count, 10), rows = Math.ceil(count / cols);
          const sheet = { images, rows, cols, title: `Generated from the prior N(0, I) (${run.name})`, caption: `${count} draws z ~ N(0, I), decoded; seed ${seed}` };
          const size = sheetFigureSize(rows, cols, IMAGE_H, IMAGE_W, sheet);
          await writeOut(path.join(outDir, 'prior-sheet.png'), await renderPng(size.width, size.height, (ctx) => sheetFigure(ctx, sheet)));
          return;
        }
        const info: Partial<DigitLatentsInfo> = {};
        const z = digitLatents(run, digit, count, spread, new Rng(seed), info);
        const images = run.model.decode(z, count);
        const names = labelNamer(run.config.dataset);
        for (let i = 0; i < count; i++)
          await writeOut(path.join(outDir, `digit-${digit}-${String(i).padStart(2, '0')}.png`), await imagePng(images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS)));
        const cols = Math.min(count, 10), rows = Math.ceil(count / cols);
        const where = info.source === 'supervised'
          ? `around its target (${info.center!.map(fmt).join(', ')}) of the latent map, noise σ = ${fmt(spread)}`
          : `around its centroid in the ${info.source} latents, noise ${fmt(spread)} × its per-dimension std`;
        const caption = `${count} × ${names(digit)} ${where}, seed ${seed}`;
        const sheet = { images, rows, cols, title: `Generated: ${names(digit)} (${run.name})`, caption };
        const size = sheetFigureSize(rows, cols, IMAGE_H, IMAGE_W, sheet);
        const bytes = await renderPng(size.width, size.height, (ctx) => sheetFigure(ctx, sheet));
        await writeOut(path.join(outDir, `digit-${digit}-sheet.png`), bytes);
      } finally {
        opened.close();
      }
    });
}
