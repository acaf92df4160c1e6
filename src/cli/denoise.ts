/** `latentlab denoise RUN [--noise SPEC] [--count N]`: rows of noisy / denoised / clean test images, PSNR before and after. */
import type { Command } from 'commander';
import { Rng } from '../engine/rng.js';
import { loadDataset } from '../lab/data/datasets.js';
import { DEFAULT_DENOISE_NOISE, formatNoise, parseNoise } from '../lab/data/noise.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W, toModelImages } from '../lab/data/image.js';
import { denoise, type DenoiseResult } from '../lab/analysis/denoise.js';
import { UsageError } from '../lab/run/errors.js';
import { sheetFigure, sheetFigureSize } from '../viz/figures.js';
import { renderPng } from '../viz/node.js';
import { int } from './options.js';
import { intInRange, openRunForPictures, parseFlag, writeOut } from './pictures.js';

interface DenoiseOpts { noise?: string; count?: string; seed?: string; out?: string; dataDir?: string }

/** The --noise of a denoise command: the flag, else the run's own training noise, else DEFAULT_DENOISE_NOISE (gaussian:0.5, the Keras tutorial's). */
export function denoiseSpec(flag: string | undefined, runNoise: unknown): string {
  if (flag !== undefined) return flag;
  return typeof runNoise === 'string' && runNoise !== 'none' ? runNoise : DEFAULT_DENOISE_NOISE;
}

export function register(program: Command): void {
  program.command('denoise')
    .description('corrupt test images, reconstruct them: rows of noisy / denoised / clean images, PSNR before and after')
    .argument('<run>', 'run folder')
    .option('--noise <spec>', `gaussian:SIGMA | saltpepper:P | mask:P (default: the run's --noise, else ${DEFAULT_DENOISE_NOISE})`)
    .option('--count <n>', 'test images, 1-40 (default 10)')
    .option('--seed <n>', 'seed of the corruption (default 0)')
    .option('--data-dir <dir>', 'folder with the IDX files')
    .option('--out <file>', 'output PNG (default RUN/denoise.png)')
    .action(async (dir: string, o: DenoiseOpts) => {
      const count = o.count === undefined ? 10 : parseFlag(intInRange('--count', 1, 40), o.count);
      const seed = o.seed === undefined ? 0 : parseFlag(int('--seed'), o.seed);
      let spec;
      try { spec = parseNoise(o.noise ?? 'none'); } catch (e) { throw new UsageError((e as Error).message); }
      const opened = await openRunForPictures(dir);
      try {
        const { run } = opened;
        spec = parseNoise(denoiseSpec(o.noise, run.config.noise), o.noise === undefined ? `${run.folder.file('config')}: key "noise"` : '--noise');
        const data = await loadDataset(run.config.dataset ?? 'mnist', { dataDir: o.dataDir ?? run.config.dataDir });
        const clean = toModelImages(data.test.images, new Float32Array(count * IMAGE_PIXELS), 0, count);
        const r = denoise(run.model, clean, count, spec, new Rng(seed));
        const bytes = await denoisePng(r, clean, count, `Denoising with ${run.name}: ${formatNoise(spec)}`);
        await writeOut(o.out ?? run.folder.picture('denoise.png'), bytes);
        process.stdout.write(formatDenoise(r, formatNoise(spec), count));
      } finally {
        opened.close();
      }
    });
}

export function formatDenoise(r: DenoiseResult, spec: string, count: number): string {
  return `noise ${spec} on ${count} test images: PSNR before ${r.before.psnr.toFixed(2)} dB (noisy vs clean), after ${r.after.psnr.toFixed(2)} dB (denoised vs clean); MSE on [-1, 1] ${r.before.mse.toFixed(4)} -> ${r.after.mse.toFixed(4)}\n`;
}

/** Three rows: the noisy inputs, the model's outputs, the clean images. */
export function denoisePng(r: DenoiseResult, clean: Float32Array, count: number, title: string): Promise<Buffer> {
  const images = new Float32Array(3 * count * IMAGE_PIXELS);
  images.set(r.noisy.subarray(0, count * IMAGE_PIXELS), 0);
  images.set(r.denoised.subarray(0, count * IMAGE_PIXELS), count * IMAGE_PIXELS);
  images.set(clean.subarray(0, count * IMAGE_PIXELS), 2 * count * IMAGE_PIXELS);
  const sheet = {
    images, rows: 3, cols: count, title, rowLabels: ['noisy', 'denoised', 'clean'],
    caption: `PSNR (on [0, 1] pixels): noisy ${r.before.psnr.toFixed(1)} dB, denoised ${r.after.psnr.toFixed(1)} dB`,
  };
  const size = sheetFigureSize(3, count, IMAGE_H, IMAGE_W, sheet);
  return renderPng(size.width, size.height, (ctx) => sheetFigure(ctx, sheet));
}
