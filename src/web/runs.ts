/**
 * The server's only way to run folders. A run's files are read through the run-folder module
 * (src/lab/run/folder.ts: config.json, status.json, metrics.jsonl and its tail reader, checkpoint,
 * snapshots), and only after this file has checked them: a name from the module's list, resolved
 * with realpath, used only when it is a regular file (or folder) whose real path lies inside the runs
 * folder, so a symlink cannot lead out. What cannot be read becomes one line naming the file and
 * what is wrong (a "problem"), never a silent gap.
 */
import { readFileSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { loadSafetensors } from '../engine/state.js';
import { parseRunConfig } from '../lab/run/config.js';
import { RUN_FILES, RunFolder, isPublicRunFile, type MetricsLine, type RunFileRole, type RunResult, type RunStatus as FolderStatus } from '../lab/run/folder.js';
import { HttpError } from './http.js';

/** A run name: one path segment, no dot first (so no `..`, no hidden files). */
export const RUN_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

/** May `rel` be served over HTTP (the run-folder module's list of public files)? */
export const isRunFile = isPublicRunFile;

export type { MetricsLine };

/** Is `p` the folder `root` or inside it (both real paths)? */
export function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

export function realOrNull(p: string): string | null {
  try { return realpathSync(p); } catch { return null; }
}

/** A value read from a run file, or the one line saying why it could not be. */
export interface Read<T> { value: T | null; problem: string | null }

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

  /** Does the run have this file (a checked regular file)? */
  has(dir: string, role: RunFileRole): boolean { return this.readable(dir, RUN_FILES[role], role === 'snapshots' ? 'dir' : 'file') !== null; }

  /** The mtime of a run file (0: none); used to notice new live weights and to sort runs, never for a status. */
  mtimeMs(dir: string, role: RunFileRole): number {
    const f = this.readable(dir, RUN_FILES[role], role === 'snapshots' ? 'dir' : 'file');
    try { return f ? statSync(f).mtimeMs : 0; } catch { return 0; }
  }

  /** The run-folder module's handle on a checked run folder. */
  folder(dir: string): RunFolder { return RunFolder.at(dir); }

  /** One line about a run file, with the run folder's path taken out of the module's message. */
  private problem(dir: string, role: RunFileRole, e: unknown): string {
    const name = RUN_FILES[role];
    let msg = ((e as Error).message ?? String(e)).split('\n')[0];
    msg = msg.split(dir + path.sep).join('');
    return msg.startsWith(name) ? msg : `${name}: ${msg}`;
  }

  /**
   * Reads one file through the module after the checks above: missing is no problem (value null), a
   * file that leads outside the runs folder or that the module refuses is one.
   */
  private via<T>(dir: string, role: RunFileRole, read: (f: RunFolder) => T | null): Read<T> {
    const name = RUN_FILES[role];
    try {
      if (!this.file(dir, name, role === 'snapshots' ? 'dir' : 'file')) return { value: null, problem: null };
    } catch {
      return { value: null, problem: `${name}: leads outside the runs folder (not read)` };
    }
    try { return { value: read(this.folder(dir)), problem: null }; } catch (e) { return { value: null, problem: this.problem(dir, role, e) }; }
  }

  /** config.json as recorded, checked by the training schema (errors name the key). */
  config(dir: string): Read<Record<string, unknown>> {
    return this.via(dir, 'config', (f) => {
      const rec = f.readConfigRecord();
      parseRunConfig(rec, f.file('config'));
      return rec;
    });
  }

  /** status.json (a "running" run whose process is gone reads as failed). */
  status(dir: string): Read<FolderStatus> { return this.via(dir, 'status', (f) => f.status()); }

  result(dir: string): Read<RunResult> { return this.via(dir, 'result', (f) => f.readResult()); }

  /** Every complete metrics line; a broken line is a problem (and no lines). */
  metrics(dir: string): Read<MetricsLine[]> { return this.via(dir, 'metrics', (f) => f.readMetrics()); }

  /** The metrics lines appended after byte `offset` (the module's tail reader). */
  tailMetrics(dir: string, offset: number): Read<{ lines: MetricsLine[]; offset: number; reset: boolean }> {
    return this.via(dir, 'metrics', (f) => f.tailMetrics(offset));
  }

  snapshotSteps(dir: string): number[] { return this.via(dir, 'snapshots', (f) => f.snapshotSteps()).value ?? []; }

  /** The checkpoint's step from its header; a checkpoint whose header cannot be read is a problem. */
  checkpointStep(dir: string): Read<number> {
    const r = this.via(dir, 'checkpoint', (f) => f.checkpointStep());
    if (r.problem || !this.has(dir, 'checkpoint')) return r;
    return r.value === null ? { value: null, problem: `${RUN_FILES.checkpoint}: its header cannot be read (not a whole safetensors file, or no step)` } : r;
  }

  /** Reads a whole weights file (the checkpoint through the module, the model as safetensors): null or its problem. */
  weightsProblem(dir: string, role: 'checkpoint' | 'model'): string | null {
    return this.via(dir, role, (f) => (role === 'checkpoint' ? f.readCheckpoint() : loadSafetensors(readFileSync(f.file('model')), f.file('model')))).problem;
  }
}
