/**
 * `npm run bench [-- --rounds 3] [-- --threads 1,2] [-- --configs native,native-bf16,native-bf16-timed,wasm] [-- --no-torch]
 * [-- --json] [-- --quick]` (`-- --train`: one-epoch `train` runs against the targets instead, ./train.ts): training throughput of the study's model (bn, z=2, batch 64) on this
 * machine, against the machine's own fp32 FMA peak (src/bench/peak.ts) and against PyTorch.
 *
 * Every configuration runs in its own process (step.js, tools/bench_torch.py), in alternating rounds
 * (latentlab configurations, then PyTorch, then again ...), and the figures are medians over the rounds, so
 * that a machine whose load changes affects both sides alike. PyTorch is looked for in $LATENTLAB_PYTHON,
 * ./.venv/bin/python, ./.venv-torch/bin/python, then /usr/bin/python3 (Debian's torch 1.13 runs on the
 * reference BLAS: its ratio says little); the report names the version and BLAS that ran.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativePeak, wasmPeak, type PeakResult } from './peak.js';
import { convGflopPerStep, outsideConv, type ConvTiming, type OutsideConv, type StepBenchResult } from './step.js';
import { parseBenchArgs } from './args.js';
import { median } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const argv = process.argv.slice(2);
if (argv.includes('--train')) {
  // the targets in real one-epoch `train` runs (./train.ts)
  const r = spawnSync(process.execPath, [path.join(here, 'train.js'), ...argv.filter((a) => a !== '--train')], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const opts = parseBenchArgs(argv, {
  rounds: { type: 'string' }, threads: { type: 'string' }, configs: { type: 'string' },
  quick: { type: 'boolean' }, json: { type: 'boolean' }, 'no-torch': { type: 'boolean' }, train: { type: 'boolean' },
}, 'bench', [
  'usage: npm run bench -- [--rounds 3] [--threads 1,2] [--configs native,native-bf16,native-bf16-timed,wasm] [--no-torch] [--quick] [--json]',
  '       npm run bench -- --train [--rounds 3] [--threads 2] [--configs native,native-bf16,wasm] [--seeds 0,1,2] [--json]',
  'Training steps of the study\'s model on each configuration against the machine\'s FMA peak and PyTorch (--train: one-epoch',
  '`latentlab train` runs against the speed and memory targets).',
].join('\n'));
const json = opts.json === true;
const quick = opts.quick === true;
const arg = (n: '--rounds' | '--threads' | '--configs'): string | undefined => opts[n.slice(2)] as string | undefined;
const windows = quick ? '3' : '5';
const log = (s: string): void => { if (!json) process.stdout.write(`${s}\n`); };
function fail(msg: string): never { process.stderr.write(`bench: ${msg}\n`); process.exit(2); }

const rounds = Number(arg('--rounds') ?? (quick ? '1' : '3'));
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds: expected a positive integer, got ${arg('--rounds')}`);
const threadList = (arg('--threads') ?? '2').split(',').map(Number);
if (threadList.some((t) => !Number.isInteger(t) || t < 1)) fail(`--threads: expected a comma-separated list of positive integers, got ${arg('--threads')}`);
const nativeBuilt = existsSync(path.join(root, 'native', 'build', 'Release', 'latentlab.node'));
const KNOWN = ['native', 'native-bf16', 'native-bf16-timed', 'wasm', 'reference'];
const configNames = (arg('--configs') ?? (nativeBuilt ? 'native,native-bf16,wasm' : 'wasm')).split(',');
for (const c of configNames) if (!KNOWN.includes(c)) fail(`--configs: unknown configuration '${c}', expected some of ${KNOWN.join(', ')}`);

interface TorchInfo { version: string; blas: string; mkldnn: boolean; libs: string[]; python: string }
interface Row extends Partial<StepBenchResult> {
  backend: string; threads: number; precision?: string; samplesPerSec: number; peakRssMB: number; windows: number[];
  convs?: ConvTiming[]; torch?: TorchInfo; error?: string;
}
type TorchConv = { layer: string; dir: 'fwd' | 'bwd'; ms: number };

/** The first Python that imports torch, in the documented order. */
function findTorchPython(): string | null {
  const candidates = [process.env.LATENTLAB_PYTHON, path.join(root, '.venv', 'bin', 'python'),
    path.join(root, '.venv-torch', 'bin', 'python'), '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const py of candidates) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch { /* next */ }
  }
  return null;
}

function lastJson<T>(stdout: string): T { return JSON.parse(stdout.trim().split('\n').pop()!) as T; }

function runNode(config: string, threads: number): Row {
  const backend = config.startsWith('native') ? 'native' : config;
  const precision = config.includes('-bf16') ? 'bf16' : 'fp32';
  const r = spawnSync(process.execPath, [path.join(here, 'step.js'), '--backend', backend, '--threads', String(threads), '--precision', precision, '--windows', windows,
    ...(config.endsWith('-timed') ? ['--bf16-timed'] : [])],
    { encoding: 'utf8' });
  if (r.status !== 0) return { backend, threads, precision, samplesPerSec: NaN, peakRssMB: NaN, windows: [], error: (r.stderr || '').trim().split('\n').pop() };
  return lastJson<Row>(r.stdout);
}

// PyTorch's libgomp spins ~300k iterations after each parallel region by default; latentlab's native backend
// sets GOMP_SPINCOUNT=10000 for itself (src/engine/kernels/native/addon.ts). On a loaded machine the long
// spin costs PyTorch several times its speed; on a quiet one it gains PyTorch ~7%. So that the ratio is
// against PyTorch at its best, each round runs it both ways and keeps the faster (unless the user chose a
// spin policy, then only that).
const userSpin = process.env.OMP_WAIT_POLICY !== undefined || process.env.GOMP_SPINCOUNT !== undefined;
const torchSpins: { label: string; env: Record<string, string> }[] = userSpin ? [{ label: 'your spin policy', env: {} }]
  : [{ label: 'default spin', env: {} }, { label: 'GOMP_SPINCOUNT=10000', env: { GOMP_SPINCOUNT: '10000' } }];

function runTorch(py: string, threads: number, spinEnv: Record<string, string>): Row {
  const env: NodeJS.ProcessEnv = { ...process.env, ...spinEnv, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  if (!userSpin && !spinEnv.GOMP_SPINCOUNT) delete env.GOMP_SPINCOUNT;
  const r = spawnSync(py, [path.join(root, 'tools', 'bench_torch.py'), '--threads', String(threads), '--windows', windows], { encoding: 'utf8', env });
  if (r.status !== 0) return { backend: 'pytorch', threads, samplesPerSec: NaN, peakRssMB: NaN, windows: [], error: (r.stderr || '').trim().split('\n').pop() };
  return lastJson<Row>(r.stdout);
}

/** PyTorch at its best this round: every spin policy in turn, the faster run kept (a failed run loses). */
function runTorchBest(py: string, threads: number, round: number): Row {
  const runs = torchSpins.map((s) => ({ s, r: runTorch(py, threads, s.env) }));
  if (runs.length > 1) log(`  round ${round}: pytorch ${runs.map(({ s, r }) => `${s.label} ${f(r.samplesPerSec)}`).join(', ')} samples/s`);
  const ok = runs.filter(({ r }) => !r.error);
  return (ok.length ? ok : runs).reduce((a, b) => (b.r.samplesPerSec > a.r.samplesPerSec ? b : a)).r;
}

const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : '-');

// ------------------------------------------------------------------------------------------------ peak
const maxThreads = Math.max(...threadList);
const peaks: Record<string, PeakResult | null> = { native: null, wasm: null };
log(`latentlab bench: the study's model (bn, z=2), batch 64, SGD momentum + CyclicLR; each run: median of ${windows} windows of 10 steps after 5 warm-up steps; ${rounds} alternating round(s)`);
log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores; load average at start ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
if (nativeBuilt) {
  try { peaks.native = nativePeak(maxThreads); } catch (e) { log(`(native FMA peak: ${(e as Error).message})`); }
} else log('(native backend not built: apt-get install libdnnl-dev, then npm run build:native)');
peaks.wasm = await wasmPeak(maxThreads);
for (const [k, p] of Object.entries(peaks)) if (p)
  log(`fp32 FMA peak, ${k} (${p.isa}), ${p.threads} thread${p.threads > 1 ? 's' : ''}: ${f(p.gflops)} GFLOP/s (best of 7 probes; median ${f(p.medianGflops)}; probed again after every round, the best is used)`);
async function reprobePeaks(): Promise<void> {
  if (peaks.native) { const n = nativePeak(maxThreads); if (n.gflops > peaks.native.gflops) peaks.native = n; }
  if (peaks.wasm) { const w = await wasmPeak(maxThreads); if (w.gflops > peaks.wasm.gflops) peaks.wasm = w; }
}
const peakOf = (config: string, threads: number): number => {
  const p = config.startsWith('native') || config === 'pytorch' ? peaks.native : config === 'wasm' ? peaks.wasm : null;
  return p ? (p.gflops * threads) / p.threads : NaN; // per-thread peak times the thread count
};

// ------------------------------------------------------------------------------------------------ rounds
const py = opts['no-torch'] ? null : findTorchPython();
let torchInfo: TorchInfo | null = null;
if (py) {
  try { torchInfo = lastJson<TorchInfo>(execFileSync(py, [path.join(root, 'tools', 'bench_torch.py'), '--info'], { encoding: 'utf8' })); } catch { /* reported as failed runs */ }
  if (torchInfo) log(`PyTorch: ${torchInfo.version} (${torchInfo.python}; BLAS ${torchInfo.blas}${torchInfo.libs.length ? `, loaded ${torchInfo.libs.join(', ')}` : ''}; oneDNN ${torchInfo.mkldnn ? 'on' : 'off'})` +
    `; ${userSpin ? 'run with your spin policy' : "run with libgomp's default spin and with GOMP_SPINCOUNT=10000 (as latentlab) in every round, the faster kept"}` +
    (torchInfo.python === '/usr/bin/python3' ? ' - Debian\'s build on the reference BLAS, far below pip\'s PyTorch: the ratio overstates latentlab' : ''));
} else log(opts['no-torch'] ? '(PyTorch not run: --no-torch)' : '(PyTorch not found: set $LATENTLAB_PYTHON, or python3 -m venv .venv && .venv/bin/pip install torch numpy)');

const results = new Map<string, Row[]>(); // key `${config}/${threads}`
const push = (k: string, r: Row) => results.set(k, [...(results.get(k) ?? []), r]);
for (const t of threadList) {
  for (let round = 0; round < rounds; round++) {
    for (const c of configNames) {
      const r = runNode(c, t);
      push(`${c}/${t}`, r);
      if (r.error) log(`  round ${round + 1}: ${c} ${t}t failed: ${r.error}`);
    }
    if (py) {
      const r = runTorchBest(py, t, round + 1);
      push(`pytorch/${t}`, r);
      if (r.error) log(`  round ${round + 1}: pytorch ${t}t failed: ${r.error}`);
    }
    // probe the peak again after each round and keep the best: under load a probe sees what it got
    await reprobePeaks();
  }
}
for (const [k, p] of Object.entries(peaks)) if (p)
  log(`fp32 FMA peak after the rounds, ${k}: ${f(p.gflops)} GFLOP/s (best of all probes)`);
const loadEnd = os.loadavg();

// ------------------------------------------------------------------------------------------------ report
const allConfigs = [...configNames, ...(py ? ['pytorch'] : [])];
const stepGflop = convGflopPerStep([...results.values()].flat());
const summary: Record<string, unknown>[] = [];
for (const t of threadList) {
  log('');
  log(`training step, ${t} thread${t > 1 ? 's' : ''} (convolutions: ${f(stepGflop, 2)} GFLOP per step); medians of ${rounds} round(s), every round in brackets:`);
  log(`  ${'config'.padEnd(12)} ${'samples/s'.padStart(9)}  ${'ms/step'.padStart(7)} ${'conv GFLOP/s'.padStart(12)} ${'of peak'.padStart(7)} ${'outside conv'.padStart(12)} ${'vs PyTorch'.padStart(10)}  rounds`);
  const torchRate = median((results.get(`pytorch/${t}`) ?? []).map((r) => r.samplesPerSec));
  for (const c of allConfigs) {
    const rows = results.get(`${c}/${t}`) ?? [];
    const rate = median(rows.map((r) => r.samplesPerSec)), ms = 64_000 / rate;
    const gf = stepGflop / (ms / 1e3);
    const outside = median(rows.map((r) => (r.profiledStepMs && r.convMs !== undefined ? 1 - r.convMs / r.profiledStepMs : NaN)));
    const outsideMs = median(rows.map((r) => (r.profiledStepMs && r.convMs !== undefined ? r.profiledStepMs - r.convMs : NaN)));
    const ratio = c === 'pytorch' ? NaN : rate / torchRate;
    log(`  ${c.padEnd(12)} ${f(rate).padStart(9)}  ${f(ms, 2).padStart(7)} ${f(gf).padStart(12)} ${pct(gf / peakOf(c, t)).padStart(7)} ` +
        `${(Number.isFinite(outside) ? `${pct(outside)} ${f(outsideMs, 1)}ms` : '-').padStart(12)} ${(Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-').padStart(10)}  ` +
        `[${rows.map((r) => f(r.samplesPerSec)).join(', ')}]`);
    summary.push({ config: c, threads: t, samplesPerSec: rate, msPerStep: ms, convGflops: gf, shareOfPeak: gf / peakOf(c, t),
      outsideConvShare: outside, outsideConvMs: outsideMs, ratioToPytorch: ratio, rounds: rows.map((r) => r.samplesPerSec) });
  }
  // per layer and direction
  const layerRows = new Map<string, { layer: string; dir: string; gflop: number }>();
  for (const c of configNames) for (const r of results.get(`${c}/${t}`) ?? []) for (const cv of r.convs ?? [])
    layerRows.set(`${cv.layer}|${cv.dir}`, { layer: cv.layer, dir: cv.dir, gflop: cv.gflop });
  if (!layerRows.size) continue;
  log('');
  log(`per convolution and direction, ${t} thread${t > 1 ? 's' : ''}, timed inside profiled training steps (ms per step, GFLOP/s, share of the peak; median over rounds).`);
  log('  PyTorch: one autograd node computes input and weight gradients together, shown on the bwd-data row as "bwd"; the first layer\'s backward is not separable there.');
  log('  "+bn": one kernel computes the convolution and a batch-norm next to it (native: encoder.0 with encoder.1 after it, both');
  log('  directions, its backward the weight gradient only (a first layer); decoder.9 with decoder.7 before it, both directions);');
  log('  its GFLOP are the convolution\'s (bwd+bn: the gradients it computes), its time includes the batch-norm\'s work.');
  const head = configNames.map((c) => `${c.padStart(21)}`).join(' ');
  log(`  ${'layer'.padEnd(27)} ${'dir'.padEnd(10)} ${'GFLOP'.padStart(5)} ${head}${py ? `  ${'pytorch ms'.padStart(12)}` : ''}`);
  const torchConvs = (results.get(`pytorch/${t}`) ?? []).map((r) => (r.convs ?? []) as unknown as TorchConv[]);
  const torchMs = (layer: string, dir: string): number => median(torchConvs.map((cs) => cs.find((x) => x.layer === layer && x.dir === dir)?.ms ?? NaN));
  for (const { layer, dir, gflop } of layerRows.values()) {
    const cols = configNames.map((c) => {
      const ms = median((results.get(`${c}/${t}`) ?? []).map((r) => r.convs?.find((x) => x.layer === layer && x.dir === dir)?.ms ?? NaN));
      const g = gflop / (ms / 1e3);
      return `${f(ms, 2).padStart(6)} ${f(g).padStart(5)} ${pct(g / peakOf(c, t)).padStart(4)}`.padStart(21);
    });
    let tcol = '';
    if (py) {
      const tms = dir === 'fwd' ? torchMs(layer, 'fwd') : dir === 'bwd-data' ? torchMs(layer, 'bwd') : NaN;
      tcol = `  ${(dir === 'bwd-data' && layer.startsWith('encoder.0') || dir.endsWith('+bn') ? '-' : dir === 'bwd-data' ? `${f(tms, 2)} bwd` : f(tms, 2)).padStart(12)}`;
    }
    log(`  ${layer.padEnd(27)} ${dir.padEnd(10)} ${gflop.toFixed(3).padStart(5)} ${cols.join(' ')}${tcol}`);
  }
  // rest of the step, per layer (Sequential.profiler), first latentlab config
  const first = (results.get(`${configNames[0]}/${t}`) ?? []).filter((r) => r.layers);
  if (first.length) {
    log('');
    log(`whole layers, ${configNames[0]} ${t} thread${t > 1 ? 's' : ''} (ms per step, forward / backward, median over rounds; Conv rows include their kernels above):`);
    for (const l of first[0].layers!) {
      const fw = median(first.map((r) => r.layers!.find((x) => x.name === l.name)?.forwardMs ?? NaN));
      const bw = median(first.map((r) => r.layers!.find((x) => x.name === l.name)?.backwardMs ?? NaN));
      log(`  ${l.name.padEnd(40)} ${f(fw, 2).padStart(7)} / ${f(bw, 2).padStart(7)}`);
    }
  }
  // where the time outside the convolution kernels goes, per configuration
  const parts = configNames.map((c) => {
    const rows = (results.get(`${c}/${t}`) ?? []).filter((r) => r.layers && r.convMs !== undefined && r.profiledStepMs);
    const o = rows.map((r) => outsideConv(r as StepBenchResult));
    const m = (k: keyof OutsideConv): number => median(o.map((x) => x[k]));
    return { config: c, total: m('total'), fused: m('fused'), batchNorm: m('batchNorm'), otherLayers: m('otherLayers'), aroundKernels: m('aroundKernels'),
             between: m('between') };
  }).filter((p) => Number.isFinite(p.total));
  if (parts.length) {
    log('');
    log(`outside the convolution kernels, ${t} thread${t > 1 ? 's' : ''} (ms per step, median over rounds of each part):`);
    log(`  ${'config'.padEnd(12)} ${'total'.padStart(6)} ${'batch-norm'.padStart(10)} ${'other layers'.padStart(12)} ${'around kernels'.padStart(14)} ${'between layers'.padStart(14)}   ${'(in conv+bn kernels)'.padStart(20)}`);
    for (const p of parts)
      log(`  ${p.config.padEnd(12)} ${f(p.total, 2).padStart(6)} ${f(p.batchNorm, 2).padStart(10)} ${f(p.otherLayers, 2).padStart(12)} ${f(p.aroundKernels, 2).padStart(14)} ${f(p.between, 2).padStart(14)}   ${f(p.fused, 2).padStart(20)}`);
    log('  (other layers: Linear, activations, Flatten, Unflatten; around kernels: inside the convolution layers, outside their kernels;');
    log('   between layers: zeroing, loss, optimizer, scheduler, reorders, the containers;');
    log('   in conv+bn kernels: not in the total, counted as convolution kernels: the kernels that compute a convolution and a batch-norm together)');
    for (const p of parts) Object.assign(summary.find((x) => x.config === p.config && x.threads === t) ?? {}, { outsideConvParts: p });
  }
}
log('');
log(`load average at the end ${loadEnd.map((x) => x.toFixed(2)).join(' ')}; "outside conv" = the profiled step's time outside the convolution kernels (batch-norm, activations, linear layers, loss, optimizer, bookkeeping; a kernel that computes a convolution with a batch-norm counts as a convolution kernel: see the table above for its time)`);
spawnSync(process.execPath, [path.join(here, 'tab.js')], { stdio: ['ignore', 'ignore', 'inherit'] }); // train in the tab: Chromium's wasm against Node's
spawnSync(process.execPath, [path.join(here, 'grid.js')], { stdio: ['ignore', 'ignore', 'inherit'] }); // the explorer's 10x10 grid decode in Chromium
if (json) process.stdout.write(`${JSON.stringify({ peaks, torch: torchInfo, summary, runs: Object.fromEntries(results) })}\n`);
