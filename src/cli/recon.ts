/** `latentlab recon RUN`: test images beside their reconstructions, a few per digit. */
import type { Command } from 'commander';
import { loadDataset } from '../lab/data/index.js';
import type { Run } from '../lab/run/run.js';
import { reconFigure, reconFigureSize, type ReconFigureOptions } from '../viz/figures.js';
import { labelNamer } from '../viz/palette.js';
import { renderPng } from '../viz/node.js';
import { intInRange, openRunForPictures, parseFlag, writeOut, type Picture } from './pictures.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W, toModel } from '../lab/data/image.js';

interface ReconOpts { perDigit?: string; dataDir?: string; out?: string }

/** The first `perDigit` test images of each class 0-9, their reconstructions and the figure. */
export async function reconPicture(run: Run, opts: { perDigit?: number; dataDir?: string } = {}): Promise<Picture & { originals: Float32Array; recons: Float32Array; mse: number }> {
  const perDigit = opts.perDigit ?? 8;
  const data = await loadDataset(run.config.dataset ?? 'mnist', { dataDir: opts.dataDir ?? run.config.dataDir });
  const t = data.test;
  const rows = 10, n = rows * perDigit;
  const originals = new Float32Array(n * IMAGE_PIXELS);
  const filled = new Int32Array(rows);
  for (let i = 0; i < t.n; i++) {
    const l = t.labels[i];
    if (l >= rows || filled[l] >= perDigit) continue;
    const k = l * perDigit + filled[l]++;
    for (let j = 0; j < IMAGE_PIXELS; j++) originals[k * IMAGE_PIXELS + j] = toModel(t.images[i * IMAGE_PIXELS + j]);
    if (filled.every((f) => f === perDigit)) break;
  }
  const missing = [...filled].findIndex((f) => f < perDigit);
  if (missing >= 0) throw new Error(`--per-digit: the test set has only ${filled[missing]} images of class ${missing}, asked for ${perDigit}`);
  const recons = run.model.reconstruct(originals, n);
  let se = 0;
  for (let i = 0; i < n * IMAGE_PIXELS; i++) se += (recons[i] - originals[i]) ** 2;
  const mse = se / (n * IMAGE_PIXELS);
  const fig: ReconFigureOptions = {
    originals, recons, perDigit, title: `Reconstructions by ${run.name} (test set)`, labelName: labelNamer(run.config.dataset),
    caption: `the first ${perDigit} test images of each class; MSE of these ${n} on [-1, 1]: ${mse.toFixed(4)}`,
  };
  const size = reconFigureSize(perDigit, rows, IMAGE_H, IMAGE_W, fig);
  const bytes = await renderPng(size.width, size.height, (ctx) => reconFigure(ctx, fig));
  return { bytes, ...size, originals, recons, mse };
}

export function register(program: Command): void {
  program.command('recon')
    .description('test images (left) beside their reconstructions (right), N per digit')
    .argument('<run>', 'run folder')
    .option('--per-digit <n>', 'images per digit, 1-20 (default 8)')
    .option('--data-dir <dir>', 'folder with the IDX files (default: where the run found them)')
    .option('--out <file>', 'output PNG (default RUN/recon.png)')
    .action(async (dir: string, o: ReconOpts) => {
      const perDigit = o.perDigit === undefined ? 8 : parseFlag(intInRange('--per-digit', 1, 20), o.perDigit);
      const opened = await openRunForPictures(dir);
      try {
        const pic = await reconPicture(opened.run, { perDigit, dataDir: o.dataDir });
        await writeOut(o.out ?? opened.run.folder.picture('recon.png'), pic.bytes);
      } finally {
        opened.close();
      }
    });
}
