/**
 * Downloads dataset files from a list of mirrors with node's global fetch.
 *
 * Each file is streamed into a temporary file in the destination folder and renamed into place
 * only once its uncompressed MD5 matches (so a folder never holds a partial or corrupt file under
 * its real name). A mirror that answers with an HTTP error, fails on the network, sends a
 * truncated body, stalls, or serves content with the wrong MD5 is skipped for the next one; when
 * all fail the error is one line saying what each mirror did.
 *
 * Mirrors: the `mirrors` option, else `$LATENTLAB_MIRRORS` (comma-separated base URLs), else the
 * descriptor's list.
 */
import { mkdirSync, renameSync, rmSync, statSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, maybeGunzip, md5Hex, oneLine } from './idx.js';
import type { DatasetDescriptor, DatasetFile, FileKey } from './descriptor.js';

export type ProgressCallback = (bytes: number, total: number | null, info: { file: string; url: string }) => void;

export type DownloadEvent =
  | { type: 'connecting'; file: string; url: string }
  | { type: 'start'; file: string; url: string; total: number | null }
  | { type: 'done'; file: string; url: string; path: string; bytes: number }
  | { type: 'failed'; file: string; url: string; reason: string }
  | { type: 'present'; file: string; path: string };

export interface DownloadOptions {
  /** Base URLs to try in order (overrides $LATENTLAB_MIRRORS and the descriptor's). */
  mirrors?: readonly string[];
  /** Environment for $LATENTLAB_MIRRORS (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Called as bytes arrive (total is null when the server sends no Content-Length). */
  onProgress?: ProgressCallback;
  /** Called when an attempt starts, succeeds or fails, and for files already present. */
  onEvent?: (ev: DownloadEvent) => void;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
  /** Give up on a mirror that has not answered (status and headers) within this long (default 10 s). */
  connectTimeoutMs?: number;
  /** Give up on a mirror when no byte arrives for this long once it has answered (default 10 s). */
  idleTimeoutMs?: number;
}

/** How long a silent mirror is waited for before the next one is tried. */
export const DOWNLOAD_TIMEOUTS = { connectMs: 10_000, idleMs: 10_000 } as const;

/** The mirrors to use: the option, else $LATENTLAB_MIRRORS, else the descriptor's. */
export function resolveMirrors(desc: DatasetDescriptor, opts: Pick<DownloadOptions, 'mirrors' | 'env'> = {}): string[] {
  if (opts.mirrors && opts.mirrors.length) return [...opts.mirrors];
  const env = (opts.env ?? process.env).LATENTLAB_MIRRORS;
  if (env && env.trim() !== '') {
    const list = env.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (list.length) return list;
  }
  return [...desc.mirrors];
}

/** URL of a file on a mirror (the mirror is a base folder URL; a missing trailing slash is added). */
export function mirrorUrl(mirror: string, fileName: string): string {
  return new URL(fileName, mirror.endsWith('/') ? mirror : mirror + '/').toString();
}

class AttemptError extends Error {}

function describeFetchError(e: unknown): string {
  if (e instanceof AttemptError) return e.message;
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const detail = cause?.code ?? cause?.message ?? oneLine(e);
  return `network error (${detail})`;
}

let tmpCounter = 0;

/** One attempt at one URL; resolves with the final path or throws an AttemptError-like error. */
async function attempt(file: DatasetFile, url: string, dest: string, opts: DownloadOptions): Promise<number> {
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const connectMs = opts.connectTimeoutMs ?? DOWNLOAD_TIMEOUTS.connectMs;
  const idleMs = opts.idleTimeoutMs ?? DOWNLOAD_TIMEOUTS.idleMs;
  const ctrl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, why: string) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(new AttemptError(why)), ms);
  };
  const idle = () => arm(idleMs, `stalled (no data for ${idleMs / 1000} s)`);
  const tmp = `${dest}.${process.pid}.${++tmpCounter}.part`;
  let bytes = 0;
  let total: number | null;
  try {
    opts.onEvent?.({ type: 'connecting', file: file.name, url });
    arm(connectMs, `no answer within ${connectMs / 1000} s`);
    let res: Response;
    try {
      res = await fetchFn(url, { signal: ctrl.signal, redirect: 'follow' });
    } catch (e) {
      if (ctrl.signal.aborted && ctrl.signal.reason instanceof AttemptError) throw ctrl.signal.reason;
      throw new AttemptError(describeFetchError(e));
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new AttemptError(`HTTP ${res.status}${res.statusText ? ' ' + res.statusText : ''}`);
    }
    const len = res.headers.get('content-length');
    // A gzip-encoded response would be decoded by fetch, making Content-Length meaningless.
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    total = len !== null && !encoded && /^\d+$/.test(len) ? Number(len) : null;
    opts.onEvent?.({ type: 'start', file: file.name, url, total });
    opts.onProgress?.(0, total, { file: file.name, url });
    if (!res.body) throw new AttemptError('empty response body');
    idle();

    const fh = await open(tmp, 'w');
    try {
      const reader = res.body.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (ctrl.signal.aborted && ctrl.signal.reason instanceof AttemptError) throw ctrl.signal.reason;
          const what = total !== null ? `truncated body (${bytes} of ${total} bytes` : `network error during body (${bytes} bytes`;
          throw new AttemptError(`${what}: ${describeFetchError(e).replace(/^network error \((.*)\)$/, '$1')})`);
        }
        if (chunk.done) break;
        idle();
        await fh.write(chunk.value);
        bytes += chunk.value.length;
        opts.onProgress?.(bytes, total, { file: file.name, url });
      }
    } finally {
      await fh.close();
    }
    if (total !== null && bytes !== total) throw new AttemptError(`truncated body (${bytes} of ${total} bytes)`);

    let content: Uint8Array;
    try {
      content = maybeGunzip(readFileSync(tmp), file.name);
    } catch (e) {
      throw new AttemptError(`corrupt download (${oneLine(e).replace(/^[^:]*: /, '')})`);
    }
    const md5 = md5Hex(content);
    if (md5 !== file.md5) throw new AttemptError(`checksum mismatch (MD5 ${md5}, expected ${file.md5})`);
    renameSync(tmp, dest);
    return bytes;
  } finally {
    if (timer) clearTimeout(timer);
    rmSync(tmp, { force: true });
  }
}

/**
 * Downloads one file into `destDir` (created if needed), trying the mirrors in order. Returns the
 * path of the verified file. Throws a one-line DataError listing what each mirror did.
 */
export async function downloadFile(file: DatasetFile, destDir: string, mirrors: readonly string[], opts: DownloadOptions = {}): Promise<string> {
  mkdirSync(destDir, { recursive: true });
  const dest = join(destDir, file.name);
  const failures: string[] = [];
  for (const mirror of mirrors) {
    const url = mirrorUrl(mirror, file.name);
    try {
      const bytes = await attempt(file, url, dest, opts);
      opts.onEvent?.({ type: 'done', file: file.name, url, path: dest, bytes });
      return dest;
    } catch (e) {
      const reason = e instanceof AttemptError ? e.message : oneLine(e);
      opts.onEvent?.({ type: 'failed', file: file.name, url, reason });
      failures.push(`${url} -> ${reason}`);
    }
  }
  if (!failures.length) throw new DataError(`${file.name}: no mirrors to download from`);
  throw new DataError(`${file.name}: download failed from every mirror: ${failures.join('; ')}`);
}

function existingVerified(destDir: string, file: DatasetFile): string | null {
  const cands = [join(destDir, file.name)];
  if (file.name.endsWith('.gz')) cands.push(join(destDir, file.name.slice(0, -3)));
  for (const p of cands) {
    try {
      if (!statSync(p).isFile()) continue;
      if (md5Hex(maybeGunzip(readFileSync(p), file.name)) === file.md5) return p;
    } catch { /* unreadable or corrupt: download again */ }
  }
  return null;
}

/**
 * Makes sure `destDir` holds the dataset's four files: files already there with the right MD5 are
 * kept, the others are downloaded. Returns the four paths.
 */
export async function downloadDataset(desc: DatasetDescriptor, destDir: string, opts: DownloadOptions = {}): Promise<Record<FileKey, string>> {
  const mirrors = resolveMirrors(desc, opts);
  const out: Partial<Record<FileKey, string>> = {};
  for (const key of Object.keys(desc.files) as FileKey[]) {
    const file = desc.files[key];
    const have = existingVerified(destDir, file);
    if (have) {
      opts.onEvent?.({ type: 'present', file: file.name, path: have });
      out[key] = have;
      continue;
    }
    out[key] = await downloadFile(file, destDir, mirrors, opts);
  }
  return out as Record<FileKey, string>;
}
