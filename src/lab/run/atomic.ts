/**
 * Files written so that a crash or a kill never leaves a half-written one: a temporary file beside
 * the target (its name carries the writer's pid), fsync, rename, fsync the folder. The one
 * `writeFileAtomic` of the project; file-system faults become one line naming the path.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

import { UsageError } from './errors.js';

export { UsageError };

/** Temporary files of `writeFileAtomic`: `.<name>.tmp-<pid>-<random>`. */
const TMP_RE = /^\..+\.tmp-(\d+)-[a-z0-9]+$/;

/** What an errno means, for one line naming the path. */
const ERRNO_MEANING: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder, not a file',
  ENOENT: 'no such file or folder',
  EEXIST: 'already exists',
  EIO: 'input/output error of the device',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
};

/** One line for a file-system error at `file`: "<file>: cannot <verb>: <meaning> (<CODE>)". */
export function fsError(e: unknown, file: string, verb = 'write'): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!code) return e instanceof Error ? e : new Error(String(e));
  const meaning = ERRNO_MEANING[code] ?? ((e as Error).message.split(',')[0] ?? code);
  const err = new Error(`${file}: cannot ${verb}: ${meaning} (${code})`);
  (err as NodeJS.ErrnoException).code = code;
  return err;
}

/** Creates a folder (and its parents), with one line naming the path for every fault. */
export function makeDir(dir: string, what = 'folder'): void {
  const abs = path.resolve(dir);
  // the kernel's virtual file systems: mkdir -p under /proc spins forever
  for (const v of ['/proc', '/sys', '/dev']) {
    if (abs === v || abs.startsWith(`${v}/`)) throw new UsageError(`${dir}: under ${v}, a virtual file system of the kernel, not a place for a ${what} (choose a folder on disk)`);
  }
  let st;
  try { st = statSync(abs); } catch { st = null; }
  if (st && !st.isDirectory()) throw new UsageError(`${dir}: is a file, not a folder (expected a ${what})`);
  if (st) return;
  // one level at a time: a recursive mkdir reports a read-only file system as ENOENT
  const missing: string[] = [];
  for (let p = abs; !existsSync(p); p = path.dirname(p)) {
    missing.unshift(p);
    if (path.dirname(p) === p) break;
  }
  try {
    for (const p of missing) mkdirSync(p);
  } catch (e) {
    const err = fsError(e, dir, `create the ${what}`);
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR' || (e as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(err.message);
    throw err;
  }
}

function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch { /* some file systems cannot fsync a folder */ } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Writes a file atomically: temp file, fsync, rename, fsync the folder. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  if (!existsSync(dir)) makeDir(dir);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) try { closeSync(fd); } catch { /* already failing */ }
    rmSync(tmp, { force: true });
    throw fsError(e, file);
  }
  fsyncDir(dir);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** True while a process with this pid exists (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary files left in `dir` by killed writes (writers whose pid is gone, or this process). Returns their names. */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const removed: string[] = [];
  for (const f of names) {
    const m = TMP_RE.exec(f);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && pidAlive(pid)) continue;
    rmSync(path.join(dir, f), { force: true });
    removed.push(f);
  }
  return removed;
}

/** Reads a JSON file; errors name the file and what was wrong. */
export function readJson<T>(file: string, what = 'a JSON file'): T {
  if (!existsSync(file)) throw new Error(`${file}: not found (expected ${what})`);
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw fsError(e, file, 'read'); }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`, { cause: e });
  }
}

/** Reads a JSON file that must hold an object (not null, not an array); errors name the file. */
export function readJsonObject(file: string, what = 'a JSON object'): Record<string, unknown> {
  const v = readJson<unknown>(file, what);
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new Error(`${file}: expected ${what}, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  return v as Record<string, unknown>;
}
