/**
 * `npm run bench -- --train [--rounds 3] [--configs native,native-bf16,wasm] [--threads 2] [--seeds 0,1,2] [--json]`:
 * the speed and memory targets as a user meets them, in real one-epoch `latentlab train` runs (MNIST, the
 * study's recipe, each run in its own process, configurations alternating round by round):
 *   - training samples/s as the run reports it (result.json: the median of its one-second windows),
 *   - the whole process's peak RSS (data loaded, training, evaluation, latents, weights), from /usr/bin/time,
 *   - test MSE; then bf16 against fp32 test MSE for each seed (the first round's seed-0 runs are reused);
 *   - beside each run, in the same round, the training-step bench of the same configuration (dist/bench/step.js,
 *     random data, no loader, no logging), and the ratio: how close a real run comes to the bench.
 * Data is found as `train` finds it (beside a checkout with ../shared/data/mnist that folder is used, as
 * `npm run demo` does).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './args.js';
import { median } from './util.js';

/** The targets of issue #19, declared once: samples/s in `train`, peak RSS, bf16's test MSE against fp32. */
export const TARGETS = {
  samplesPerSec: { native: 3300, 'native-bf16': 4500, wasm: 1100 } as Record<string, number>,
  peakRssMB: 200,
  bf16MseRel: 0.02,
};

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const stepBench = path.join(root, 'dist', 'bench', 'step.js');
const TIME = '/usr/bin/time';

interface RunResult {
  config: string; seed: number; samplesPerSec: number; peakRssMB: number; testMse: number; seconds: number; error?: string;
  /** The step bench of the same configuration, run right after (samples/s). */
  benchSamplesPerSec?: number;
}

function fail(msg: string): never { process.stderr.write(`bench --train: ${msg}\n`); process.exit(2); }
const opts = parseBenchArgs(process.argv.slice(2), {
  rounds: { type: 'string' }, threads: { type: 'string' }, configs: { type: 'string' }, seeds: { type: 'string' }, json: { type: 'boolean' },
}, 'bench --train', [
  'usage: npm run bench -- --train [--rounds 3] [--threads 2] [--configs native,native-bf16,wasm] [--seeds 0,1,2] [--json]',
  'One-epoch `latentlab train` runs, configurations alternating round by round: samples/s, peak RSS and test MSE against',
  'the targets, then bf16 against fp32 test MSE for each seed.',
].join('\n'));
const arg = (n: '--rounds' | '--threads' | '--configs' | '--seeds'): string | undefined => opts[n.slice(2)] as string | undefined;
const json = opts.json === true;
const log = (s: string): void => { if (!json) process.stdout.write(`${s}\n`); };
const rounds = Number(arg('--rounds') ?? '3');
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds: expected a positive integer, got ${arg('--rounds')}`);
const threads = Number(arg('--threads') ?? '2');
if (!Number.isInteger(threads) || threads < 1) fail(`--threads: expected a positive integer, got ${arg('--threads')}`);
const configs = (arg('--configs') ?? 'native,native-bf16,wasm').split(',');
for (const c of configs) if (!['native', 'native-bf16', 'wasm', 'reference'].includes(c)) fail(`--configs: unknown configuration '${c}'`);
const seeds = (arg('--seeds') ?? '0,1,2').split(',').map(Number);
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) fail(`--seeds: expected non-negative integers, got ${arg('--seeds')}`);

const env = { ...process.env };
const shared = path.resolve(root, '..', 'shared', 'data', 'mnist');
if (!env.LATENTLAB_DATA && existsSync(shared)) env.LATENTLAB_DATA = shared;
const hasTime = existsSync(TIME);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-bench-train-'));

/** A configuration's flags, as `train` and the step bench take them: backend, threads, precision. */
function configArgs(config: string): string[] {
  return ['--backend', config.startsWith('native') ? 'native' : config, '--threads', String(threads),
    '--precision', config.endsWith('-bf16') ? 'bf16' : 'fp32'];
}

/** One one-epoch training run in its own process. */
function trainRun(config: string, seed: number): RunResult {
  const out = path.join(tmp, `${config}-${seed}`);
  const args = [cli, 'train', ...configArgs(config), '--epochs', '1', '--seed', String(seed), '--out', out, '--overwrite'];
  const cmd = hasTime ? TIME : process.execPath;
  const r = spawnSync(cmd, hasTime ? ['-f', 'maxrss_kb=%M', process.execPath, ...args] : args, { encoding: 'utf8', env });
  const empty = { config, seed, samplesPerSec: NaN, peakRssMB: NaN, testMse: NaN, seconds: NaN };
  if (r.status !== 0) return { ...empty, error: (r.stderr || '').trim().split('\n').filter((l) => !l.startsWith('maxrss_kb=')).pop() ?? `exit ${r.status}` };
  const res = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')) as { samplesPerSec: number; testMse: number; seconds: number };
  const rss = /maxrss_kb=(\d+)/.exec(r.stderr ?? '');
  rmSync(out, { recursive: true, force: true });
  return { config, seed, samplesPerSec: res.samplesPerSec, testMse: res.testMse, seconds: res.seconds, peakRssMB: rss ? Number(rss[1]) / 1024 : NaN };
}

/** The training-step bench of a configuration in its own process (10 windows of 20 steps): samples/s, NaN if it failed. */
function benchRun(config: string): number {
  const r = spawnSync(process.execPath, [stepBench, ...configArgs(config), '--windows', '10', '--steps', '20'], { encoding: 'utf8', env });
  if (r.status !== 0) return NaN;
  try { return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { samplesPerSec: number }).samplesPerSec; } catch { return NaN; }
}

const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
log(`latentlab bench --train: one-epoch \`latentlab train\` runs (MNIST, the study's recipe), ${threads} thread(s), ${rounds} alternating round(s); ` +
    `load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}${hasTime ? '' : ` (no ${TIME}: peak RSS not measured)`}`);
const runs: RunResult[] = [];
try {
  for (let round = 0; round < rounds; round++)
    for (const c of configs) {
      const r = trainRun(c, 0);
      if (!r.error) r.benchSamplesPerSec = benchRun(c);
      runs.push(r);
      log(`  round ${round + 1} ${c.padEnd(12)} ${r.error ? `failed: ${r.error}` : `${f(r.samplesPerSec)} samples/s, peak RSS ${f(r.peakRssMB)} MB, test MSE ${f(r.testMse, 4)}; ` +
        `step bench ${f(r.benchSamplesPerSec ?? NaN)} samples/s`}`);
    }
  // bf16 against fp32, per seed (seed 0 from the first round)
  const mse: { seed: number; fp32: number; bf16: number }[] = [];
  if (configs.includes('native') && configs.includes('native-bf16')) {
    for (const s of seeds) {
      const get = (c: string): number => runs.find((r) => r.config === c && r.seed === s)?.testMse ?? (() => { const r = trainRun(c, s); runs.push(r); return r.testMse; })();
      mse.push({ seed: s, fp32: get('native'), bf16: get('native-bf16') });
    }
  }
  log('');
  log(`config        samples/s (target)    peak RSS MB (target ${TARGETS.peakRssMB})   train/bench   rounds`);
  const summary = configs.map((c) => {
    const rs = runs.filter((r) => r.config === c && r.seed === 0).slice(0, rounds);
    const sps = median(rs.map((r) => r.samplesPerSec)), rss = median(rs.map((r) => r.peakRssMB));
    // each round's run against the bench made right after it, then the median of those ratios
    const vsBench = median(rs.map((r) => r.samplesPerSec / (r.benchSamplesPerSec ?? NaN)));
    const target = TARGETS.samplesPerSec[c];
    log(`${c.padEnd(12)} ${f(sps).padStart(6)} (${target ? `${target}, ${sps >= target ? 'met' : 'not met'}` : '-'})`.padEnd(36) +
        `${f(rss).padStart(4)} (${rss <= TARGETS.peakRssMB ? 'met' : 'not met'})`.padEnd(24) + `${f(100 * vsBench)}%`.padStart(11) + '   ' +
        `[${rs.map((r) => `${f(r.samplesPerSec)}/${f(r.benchSamplesPerSec ?? NaN)}/${f(r.peakRssMB)}MB`).join(', ')}]`);
    return { config: c, samplesPerSec: sps, target, peakRssMB: rss, trainVsBench: vsBench, rounds: rs };
  });
  if (mse.length) {
    log('');
    log(`bf16 against fp32, one epoch (target: within ${100 * TARGETS.bf16MseRel}%):`);
    for (const m of mse) {
      const rel = m.bf16 / m.fp32 - 1;
      log(`  seed ${m.seed}: fp32 ${f(m.fp32, 4)}, bf16 ${f(m.bf16, 4)}, ${rel >= 0 ? '+' : ''}${f(100 * rel, 2)}% (${Math.abs(rel) <= TARGETS.bf16MseRel ? 'met' : 'not met'})`);
    }
  }
  log('(train/bench: each round\'s run against the step bench of the same configuration run right after it, median over rounds;');
  log(' rounds: train samples/s / bench samples/s / peak RSS)');
  log(`load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (json) process.stdout.write(`${JSON.stringify({ threads, rounds, summary, bf16: mse, runs })}\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
