/**
 * The server's only reader of run folders. Every file is opened through `file()`: a name from a fixed
 * list, resolved with realpath, and used only when it is a regular file (or folder) whose real path
 * lies inside the runs folder, so a symlink cannot lead out. When the run-folder module of
 * src/lab/run/ lands, this is the one place to point at it.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { HttpError } from './http.js';

/** A run name: one path segment, no dot first (so no `..`, no hidden files). */
export const RUN_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

/** The files of a run folder that may be read over HTTP. */
export const RUN_FILE_RE = /^(config\.json|result\.json|metrics\.jsonl|model\.safetensors|latents\.safetensors|train-latents\.safetensors|[A-Za-z0-9_-]+\.(?:png|gif)|snapshots\/labels\.safetensors|snapshots\/step-\d{7}\.safetensors)$/;

export const METRICS_FILE = 'metrics.jsonl';
const SNAPSHOT_RE = /^step-(\d{7})\.safetensors$/;

/** Is `p` the folder `root` or inside it (both real paths)? */
export function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

export function realOrNull(p: string): string | null {
  try { return realpathSync(p); } catch { return null; }
}

/** One line from a metrics.jsonl, as the trainer writes it. */
export interface MetricLine { step: number; epoch?: number; loss?: number; testLoss?: number; [k: string]: unknown }

/** Complete, non-blank lines of `text` that parse as JSON (a line being written elsewhere is skipped). */
export function parseMetricLines(text: string): MetricLine[] {
  const out: MetricLine[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try { out.push(JSON.parse(l) as MetricLine); } catch { /* torn or broken: skip */ }
  }
  return out;
}

export class RunsFolder {
  /** The real path of the runs folder. */
  readonly root: string;

  constructor(dir: string) {
    const real = realOrNull(dir);
    if (!real || !statSync(real).isDirectory()) throw new Error(`${dir}: no such folder (expected a folder of run folders, e.g. runs/)`);
    this.root = real;
  }

  /** The folder a new run `name` gets (not checked: it may not exist yet). */
  newRunPath(name: string): string { return path.join(this.root, name); }

  exists(name: string): boolean { return existsSync(path.join(this.root, name)); }

  /**
   * The real folder of run `name`: a valid name and a folder inside the runs folder; null when it
   * does not exist. Throws 400 (bad name) or 403 (leads outside).
   */
  dir(name: string): string | null {
    if (!RUN_NAME_RE.test(name)) throw new HttpError(400, `bad run name ${JSON.stringify(name)}`);
    const real = realOrNull(path.join(this.root, name));
    if (!real) return null;
    if (!inside(this.root, real) || real === this.root) throw new HttpError(403, `run '${name}' leads outside the runs folder`);
    return statSync(real).isDirectory() ? real : null;
  }

  /** Names of the folders in the runs folder that look like runs (checked like dir()). */
  names(): string[] {
    const out: string[] = [];
    for (const e of readdirSync(this.root, { withFileTypes: true })) {
      if (!RUN_NAME_RE.test(e.name) || !(e.isDirectory() || e.isSymbolicLink())) continue;
      try { if (this.dir(e.name)) out.push(e.name); } catch { /* leads outside: not listed */ }
    }
    return out;
  }

  /**
   * The real path of `rel` in a run folder when it is a regular file (kind 'file') or a folder whose
   * real path lies inside the runs folder; null when missing. Throws 403 when it leads outside.
   */
  file(dir: string, rel: string, kind: 'file' | 'dir' = 'file'): string | null {
    const real = realOrNull(path.join(dir, rel));
    if (!real) return null;
    if (!inside(this.root, real)) throw new HttpError(403, `${path.basename(dir)}/${rel} leads outside the runs folder`);
    let st: Stats;
    try { st = statSync(real); } catch { return null; }
    return (kind === 'file' ? st.isFile() : st.isDirectory()) ? real : null;
  }

  /** Like file(), but null instead of throwing: for the files the server reads itself. */
  readable(dir: string, rel: string, kind: 'file' | 'dir' = 'file'): string | null {
    try { return this.file(dir, rel, kind); } catch { return null; }
  }

  has(dir: string, rel: string): boolean { return this.readable(dir, rel) !== null; }

  mtimeMs(dir: string, rel: string, kind: 'file' | 'dir' = 'file'): number {
    const f = this.readable(dir, rel, kind);
    try { return f ? statSync(f).mtimeMs : 0; } catch { return 0; }
  }

  readJson(dir: string, rel: string): Record<string, unknown> | null {
    const f = this.readable(dir, rel);
    if (!f) return null;
    try {
      const v = JSON.parse(readFileSync(f, 'utf8')) as unknown;
      return v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : null;
    } catch { return null; }
  }

  metrics(dir: string): MetricLine[] {
    const f = this.readable(dir, METRICS_FILE);
    if (!f) return [];
    try { return parseMetricLines(readFileSync(f, 'utf8')); } catch { return []; }
  }

  snapshotSteps(dir: string): number[] {
    const sd = this.readable(dir, 'snapshots', 'dir');
    if (!sd) return [];
    return readdirSync(sd).map((f) => SNAPSHOT_RE.exec(f)).filter((m): m is RegExpExecArray => !!m)
      .map((m) => Number(m[1])).sort((a, b) => a - b);
  }

  /** The step of the run's checkpoint, read from its safetensors header alone. */
  checkpointStep(dir: string): number | null {
    const f = this.readable(dir, 'checkpoint.safetensors');
    if (!f) return null;
    let fd: number | null = null;
    try {
      fd = openSync(f, 'r');
      const head = Buffer.alloc(8);
      if (readSync(fd, head, 0, 8, 0) !== 8) return null;
      const n = Number(head.readBigUInt64LE(0));
      if (n <= 0 || n > 50_000_000) return null;
      const json = Buffer.alloc(n);
      readSync(fd, json, 0, n, 8);
      const step = Number((JSON.parse(json.toString('utf8')) as { __metadata__?: { step?: unknown } }).__metadata__?.step);
      return Number.isInteger(step) ? step : null;
    } catch { return null; } finally { if (fd !== null) closeSync(fd); }
  }
}
