/**
 * The run folder: the one module that names its files and reads and writes them.
 *
 *   config.json               the resolved settings (the one schema), version, backend, threads, data identity
 *   status.json               {state: running|finished|failed|stopped, pid, step, totalSteps, checkpointStep, error}
 *   metrics.jsonl             append-only, one JSON line per logged step {step, epoch, loss, lr, elapsed, samplesPerSec}
 *                             and per epoch {testLoss}; readers skip a torn last line
 *   checkpoint.safetensors    weights + optimiser + scheduler + data order: what --resume needs
 *   model.safetensors         the weights, with the study's PyTorch state-dict names
 *   live.safetensors          the latest weights while training (every few seconds)
 *   latents.safetensors       the test set's latents `z` [N, D] and `labels` [N]
 *   train-latents.safetensors latents of a fixed subset of the training set (centroids, k-NN)
 *   result.json               steps, test MSE, throughput
 *   snapshots/                step-NNNNNNN.safetensors (latents of a fixed test subset + a decoded grid), labels.safetensors
 *   latent.png, sample.png, loss.png, training.gif, ...: the pictures
 *   .lock                     the pid of the one process writing the folder
 *
 * Every write is atomic (writeFileAtomic) except the metrics log, which is appended to.
 */
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeSync, fstatSync } from 'node:fs';
import path from 'node:path';
import { loadSafetensors, type Safetensors } from '../../engine/state.js';
import { fsError, makeDir, pidAlive, readJsonObject, removeStaleTemps, UsageError, writeFileAtomic, writeJsonAtomic } from './atomic.js';
import { parseRunConfig, type TrainConfig } from './config.js';

/** The files of a run folder, by role. */
export const RUN_FILES = {
  config: 'config.json',
  status: 'status.json',
  metrics: 'metrics.jsonl',
  checkpoint: 'checkpoint.safetensors',
  model: 'model.safetensors',
  live: 'live.safetensors',
  latents: 'latents.safetensors',
  trainLatents: 'train-latents.safetensors',
  result: 'result.json',
  snapshots: 'snapshots',
  lock: '.lock',
  /** Written by `latentlab study` beside a run's own files. */
  studyEval: 'study-eval.json',
  workerLog: 'worker.log',
} as const;
export type RunFileRole = keyof typeof RUN_FILES;

/** The pictures `latentlab train` draws into a run folder. */
export const RUN_PICTURES = ['latent.png', 'sample.png', 'loss.png', 'training.gif'] as const;

const SNAPSHOT_RE = /^step-(\d+)\.safetensors$/;
export const snapshotName = (step: number): string => `step-${String(step).padStart(7, '0')}.safetensors`;

/**
 * The files of a run a server may hand out (relative paths): the run's own files, its pictures and
 * its snapshots. Not the lock, the checkpoint or temporary files.
 */
export function isPublicRunFile(rel: string): boolean {
  return /^(config\.json|status\.json|result\.json|metrics\.jsonl|model\.safetensors|live\.safetensors|latents\.safetensors|train-latents\.safetensors|[A-Za-z0-9_-]+\.(?:png|gif)|snapshots\/labels\.safetensors|snapshots\/step-\d{7}\.safetensors)$/.test(rel);
}

export type RunState = 'running' | 'finished' | 'failed' | 'stopped';
export interface RunStatus {
  state: RunState;
  pid: number;
  step: number;
  totalSteps: number;
  /** The step of checkpoint.safetensors (null: none yet). */
  checkpointStep: number | null;
  /** The error line of a failed run, or how a stopped run was stopped. */
  error: string | null;
  /** When this status was written (ms since the epoch). */
  updated: number;
}

export interface MetricsLine { step: number; epoch: number; loss?: number; recon?: number; latent?: number; lr?: number; elapsed?: number; samplesPerSec?: number; testLoss?: number }

export interface RunResult {
  steps: number; epochs: number; testMse: number; finalLoss: number; samplesPerSec: number; seconds: number;
  backend: string; threads: number; stopped: boolean; [k: string]: unknown;
}

/** The data a run trained on: the data set's name and the MD5 of each file's uncompressed content as read. */
export interface DataIdentity {
  dataset: string;
  /** The known data set these checksums belong to (null: none of the known ones). */
  known: string | null;
  md5: Record<string, string>;
}

/** Lock files held by this process (a second writer in the same process is refused too). */
const HELD = new Set<string>();
let exitHook = false;

/** Metrics lines from text; a torn last line (no newline yet) is skipped, a broken line before it is an error. */
export function parseMetricsText(text: string, file: string, firstLine = 1): { lines: MetricsLine[]; consumed: number } {
  const end = text.lastIndexOf('\n');
  if (end < 0) return { lines: [], consumed: 0 };
  const body = text.slice(0, end);
  const lines: MetricsLine[] = [];
  body.split('\n').forEach((l, i) => {
    if (!l.trim()) return;
    let v: unknown;
    try { v = JSON.parse(l); } catch { throw new Error(`${file}: line ${firstLine + i} is not JSON`); }
    if (!v || typeof v !== 'object' || Array.isArray(v) || typeof (v as MetricsLine).step !== 'number')
      throw new Error(`${file}: line ${firstLine + i}: expected an object with a numeric "step"`);
    lines.push(v as MetricsLine);
  });
  return { lines, consumed: Buffer.byteLength(text.slice(0, end + 1), 'utf8') };
}

export class RunFolder {
  readonly dir: string;
  readonly name: string;
  private metricsFd: number | null = null;
  private metricsBytes = 0;
  private statusNow: RunStatus | null = null;
  private configCache: Record<string, unknown> | null = null;

  private constructor(dir: string) {
    this.dir = dir;
    this.name = path.basename(path.resolve(dir));
  }

  /** A handle on a folder that may or may not hold a run (to ask which files exist); touches nothing. */
  static at(dir: string): RunFolder { return new RunFolder(dir); }

  /** Removes temporary files left by killed writes (done on every open). */
  private clean(): this {
    removeStaleTemps(this.dir);
    removeStaleTemps(path.join(this.dir, RUN_FILES.snapshots));
    return this;
  }

  /** Opens an existing run folder (any command reading a run). */
  static open(dir: string): RunFolder {
    let st;
    try { st = statSync(dir); } catch { throw new Error(`${dir}: no such run folder`); }
    if (!st.isDirectory()) throw new Error(`${dir}: not a run folder (a file; expected the --out folder of latentlab train)`);
    const f = new RunFolder(dir).clean();
    if (!f.has('config')) throw new Error(`${dir}: not a run folder (no ${RUN_FILES.config}; expected the --out folder of latentlab train)`);
    return f;
  }

  /**
   * Opens (creating it) a folder to train into, and takes its lock. A folder that holds a run is
   * refused unless `resume` (continue it) or `overwrite` (replace it). `flag` names the folder's flag in errors.
   */
  static forTraining(dir: string, opts: { resume?: boolean; overwrite?: boolean; flag?: string } = {}): RunFolder {
    const flag = opts.flag ?? (opts.resume ? '--resume' : '--out');
    try {
      makeDir(dir, 'run folder');
    } catch (e) {
      throw Object.assign(new (e instanceof UsageError ? UsageError : Error)(`${flag} ${(e as Error).message}`), { code: (e as NodeJS.ErrnoException).code });
    }
    const f = new RunFolder(dir);
    f.lock();
    f.clean();
    try {
      if (opts.resume) {
        if (!f.has('checkpoint')) throw new UsageError(`--resume: ${f.file('checkpoint')} not found (expected a run folder with a checkpoint)`);
        if (!f.has('config')) throw new UsageError(`--resume: ${f.file('config')} not found (expected a run folder made by latentlab train)`);
      } else if (f.holdsRun() && !opts.overwrite) {
        throw new UsageError(`${flag} ${dir}: holds a run (${f.describe()}); continue it with --resume ${dir}, or pass --overwrite to replace it`);
      }
    } catch (e) {
      f.unlock();
      throw e;
    }
    return f;
  }

  /** The path of one of the run's files. */
  file(role: RunFileRole): string { return path.join(this.dir, RUN_FILES[role]); }
  has(role: RunFileRole): boolean { return existsSync(this.file(role)); }
  /** The path of a picture (or another file named by the caller) in the folder. */
  picture(name: string): string { return path.join(this.dir, name); }

  /** True when the folder holds (part of) a run. */
  holdsRun(): boolean {
    return (['config', 'checkpoint', 'model', 'metrics', 'result'] as const).some((r) => this.has(r));
  }

  private describe(): string {
    const s = this.readStatus();
    if (s) return `${s.state} at step ${s.step} of ${s.totalSteps}`;
    const r = this.has('result') ? 'finished' : this.has('checkpoint') ? 'with a checkpoint' : 'partly written';
    return r;
  }

  // -------------------------------------------------------------------------------- the lock

  /** Takes the folder's lock: refused (one line naming the pid) while another live process holds it; a dead holder's lock is taken over. */
  lock(): void {
    const f = path.resolve(this.file('lock'));
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fd = openSync(f, 'wx');
        try { writeSync(fd, `${process.pid}\n`); } finally { closeSync(fd); }
        HELD.add(f);
        if (!exitHook) {
          exitHook = true;
          process.on('exit', () => { for (const l of HELD) try { if (readFileSync(l, 'utf8').trim() === String(process.pid)) rmSync(l, { force: true }); } catch { /* gone */ } });
        }
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, f, 'create the lock');
      }
      let text: string;
      try { text = readFileSync(f, 'utf8'); } catch { continue; } // released meanwhile
      const pid = Number(text.trim());
      const ours = pid === process.pid && HELD.has(f);
      if (ours || (pid !== process.pid && pidAlive(pid)))
        throw new UsageError(`${this.dir}: in use by latentlab process ${pid} (a run folder has one writer; wait for it to end or stop it)`);
      // the holder is gone (killed): take the lock over, unless another process just did
      try { if (readFileSync(f, 'utf8') === text) rmSync(f, { force: true }); } catch { /* removed meanwhile */ }
    }
    throw new Error(`${f}: could not take the lock`);
  }

  unlock(): void {
    const f = path.resolve(this.file('lock'));
    if (!HELD.has(f)) return;
    HELD.delete(f);
    try { if (readFileSync(f, 'utf8').trim() === String(process.pid)) rmSync(f, { force: true }); } catch { /* gone */ }
  }

  // -------------------------------------------------------------------------------- config.json

  /** config.json as recorded (an object; errors name the file). */
  readConfigRecord(): Record<string, unknown> {
    if (!this.configCache) this.configCache = readJsonObject(this.file('config'), "a run's settings (a JSON object)");
    return this.configCache;
  }

  /** The run's training settings, checked by the schema (errors name the file and the key). */
  readConfig(): TrainConfig {
    return parseRunConfig(this.readConfigRecord(), this.file('config'));
  }

  /** The data identity recorded in config.json (null for runs made before it was recorded). */
  readDataIdentity(): DataIdentity | null {
    const d = this.readConfigRecord().data;
    if (d === undefined) return null;
    const ok = d && typeof d === 'object' && !Array.isArray(d) && typeof (d as DataIdentity).dataset === 'string'
      && (d as DataIdentity).md5 && typeof (d as DataIdentity).md5 === 'object';
    if (!ok) throw new Error(`${this.file('config')}: key "data": expected {dataset, known, md5}, got ${JSON.stringify(d)}`);
    return d as DataIdentity;
  }

  writeConfig(record: Record<string, unknown>): void {
    writeJsonAtomic(this.file('config'), record);
    this.configCache = record;
  }

  // -------------------------------------------------------------------------------- status.json

  readStatus(): RunStatus | null {
    if (!this.has('status')) return null;
    const s = readJsonObject(this.file('status'), "a run's status");
    if (!['running', 'finished', 'failed', 'stopped'].includes(s.state as string))
      throw new Error(`${this.file('status')}: key "state": expected running, finished, failed or stopped, got ${JSON.stringify(s.state)}`);
    return s as unknown as RunStatus;
  }

  /** The status, with "running" of a process that is gone read as "failed" (killed). */
  status(): RunStatus | null {
    const s = this.readStatus();
    if (s && s.state === 'running' && s.pid !== process.pid && !pidAlive(s.pid))
      return { ...s, state: 'failed', error: s.error ?? `process ${s.pid} ended without a word (killed?)` };
    return s;
  }

  /** Writes status.json atomically with the fields changed. */
  writeStatus(patch: Partial<RunStatus>): RunStatus {
    const base: RunStatus = this.statusNow ?? { state: 'running', pid: process.pid, step: 0, totalSteps: 0, checkpointStep: null, error: null, updated: 0 };
    this.statusNow = { ...base, ...patch, pid: process.pid, updated: Date.now() };
    writeJsonAtomic(this.file('status'), this.statusNow);
    return this.statusNow;
  }

  // -------------------------------------------------------------------------------- result.json

  readResult(): RunResult | null {
    if (!this.has('result')) return null;
    const file = this.file('result');
    const r = readJsonObject(file, "a run's result (a JSON object)");
    for (const k of ['steps', 'testMse'] as const)
      if (r[k] !== undefined && typeof r[k] !== 'number') throw new Error(`${file}: key ${JSON.stringify(k)}: expected a number, got ${JSON.stringify(r[k])}`);
    return r as RunResult;
  }

  writeResult(r: RunResult): void { writeJsonAtomic(this.file('result'), r); }

  // -------------------------------------------------------------------------------- metrics.jsonl

  /** Every complete metrics line (a torn last line is skipped). */
  readMetrics(): MetricsLine[] {
    const f = this.file('metrics');
    if (!existsSync(f)) return [];
    return parseMetricsText(readFileSync(f, 'utf8'), f).lines;
  }

  /**
   * The complete lines written after byte `offset`, and the offset to ask from next time. A file
   * shorter than `offset` (a resumed run rewound it) is read from the start: `reset` says so.
   */
  tailMetrics(offset = 0): { lines: MetricsLine[]; offset: number; reset: boolean } {
    const f = this.file('metrics');
    let fd: number;
    try { fd = openSync(f, 'r'); } catch { return { lines: [], offset: 0, reset: offset > 0 }; }
    try {
      const size = fstatSync(fd).size;
      const reset = size < offset;
      const from = reset ? 0 : offset;
      const buf = Buffer.alloc(size - from);
      let got = 0;
      while (got < buf.length) { const n = readSync(fd, buf, got, buf.length - got, from + got); if (n <= 0) break; got += n; }
      const { lines, consumed } = parseMetricsText(buf.subarray(0, got).toString('utf8'), f);
      return { lines, offset: from + consumed, reset };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Opens the metrics log for appending. `keepBytes`: a resumed run keeps the lines up to its
   * checkpoint (the bytes written by then) and drops the rest; null: a new, empty log.
   */
  openMetrics(keepBytes: number | null): void {
    const f = this.file('metrics');
    try {
      this.metricsFd = openSync(f, keepBytes === null ? 'w' : 'a');
      const size = fstatSync(this.metricsFd).size;
      if (keepBytes !== null && size > keepBytes) ftruncateSync(this.metricsFd, keepBytes);
      this.metricsBytes = keepBytes === null ? 0 : Math.min(size, keepBytes);
    } catch (e) {
      throw fsError(e, f, 'open');
    }
  }

  /** Appends one line (one write of a small buffer). */
  appendMetrics(line: object): void {
    if (this.metricsFd === null) throw new Error(`${this.file('metrics')}: not open for writing`);
    const buf = Buffer.from(`${JSON.stringify(line)}\n`, 'utf8');
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.metricsFd, buf, off, buf.length - off);
    } catch (e) {
      throw fsError(e, this.file('metrics'), 'append to');
    }
    this.metricsBytes += buf.length;
  }

  /** Bytes of the metrics log written so far (recorded in checkpoints). */
  get metricsSize(): number { return this.metricsBytes; }

  closeMetrics(): void {
    if (this.metricsFd !== null) { try { closeSync(this.metricsFd); } catch { /* closed */ } this.metricsFd = null; }
  }

  // -------------------------------------------------------------------------------- weights and latents

  private readSafetensors(role: RunFileRole, what: string): Safetensors {
    const f = this.file(role);
    if (!existsSync(f)) throw new Error(`${f}: not found (${what})`);
    let bytes: Uint8Array;
    try { bytes = readFileSync(f); } catch (e) { throw fsError(e, f, 'read'); }
    return loadSafetensors(bytes, f);
  }

  readCheckpoint(): Safetensors { return this.readSafetensors('checkpoint', 'no checkpoint: the run has not reached its first one'); }

  /** The step of the checkpoint, from its header alone (null: none, or unreadable). */
  checkpointStep(): number | null {
    let fd: number | null = null;
    try {
      fd = openSync(this.file('checkpoint'), 'r');
      const head = Buffer.alloc(8);
      if (readSync(fd, head, 0, 8, 0) !== 8) return null;
      const n = Number(head.readBigUInt64LE(0));
      if (n <= 0 || n > 50_000_000) return null;
      const json = Buffer.alloc(n);
      if (readSync(fd, json, 0, n, 8) !== n) return null;
      const step = Number(JSON.parse(json.toString('utf8')).__metadata__?.step);
      return Number.isInteger(step) ? step : null;
    } catch { return null; } finally { if (fd !== null) closeSync(fd); }
  }

  writeCheckpoint(bytes: Uint8Array): void { writeFileAtomic(this.file('checkpoint'), bytes); }
  writeModel(bytes: Uint8Array): void { writeFileAtomic(this.file('model'), bytes); }
  writeLive(bytes: Uint8Array): void { writeFileAtomic(this.file('live'), bytes); }
  writeLatents(which: 'test' | 'train', bytes: Uint8Array): void { writeFileAtomic(this.file(which === 'test' ? 'latents' : 'trainLatents'), bytes); }
  latentsFile(which: 'test' | 'train'): string { return this.file(which === 'test' ? 'latents' : 'trainLatents'); }

  // -------------------------------------------------------------------------------- snapshots

  snapshotSteps(): number[] {
    const d = this.file('snapshots');
    if (!existsSync(d)) return [];
    return readdirSync(d).map((f) => SNAPSHOT_RE.exec(f)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1])).sort((a, b) => a - b);
  }

  snapshotFile(step: number): string { return path.join(this.file('snapshots'), snapshotName(step)); }
  snapshotLabelsFile(): string { return path.join(this.file('snapshots'), 'labels.safetensors'); }
  writeSnapshot(step: number, bytes: Uint8Array): void { writeFileAtomic(this.snapshotFile(step), bytes); }
  writeSnapshotLabels(bytes: Uint8Array): void { writeFileAtomic(this.snapshotLabelsFile(), bytes); }

  /** Drops snapshots recorded after `step` (a resumed run records them again). */
  removeSnapshotsAfter(step: number): void {
    for (const s of this.snapshotSteps()) if (s > step) rmSync(this.snapshotFile(s), { force: true });
  }

  // -------------------------------------------------------------------------------- pictures

  writePicture(name: string, bytes: Uint8Array): string {
    const f = this.picture(name);
    writeFileAtomic(f, bytes);
    return f;
  }

  /** Removes what a new run replaces (overwrite): every file of the run and its pictures. */
  clearOutputs(): void {
    for (const r of ['config', 'status', 'metrics', 'checkpoint', 'model', 'live', 'latents', 'trainLatents', 'result', 'snapshots', 'studyEval'] as const)
      rmSync(this.file(r), { recursive: true, force: true });
    for (const p of RUN_PICTURES) rmSync(this.picture(p), { force: true });
    this.configCache = null;
  }
}
