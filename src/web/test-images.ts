/**
 * The test images behind a run's latents (GET /api/runs/<name>/test-images): the bytes of the images
 * that latents.safetensors encodes (src/lab/run/test-latents.ts says which: the first n of the run's
 * test split), n x IMAGE_PIXELS bytes (data/image.ts), row-major, with the count in `X-Images`. The page shows
 * them beside the decoded point (the nearest real images).
 *
 * The files are found like the trainer finds them, without downloading: the server's --data-dir, the
 * run's own data folder when it is an absolute path, then $LATENTLAB_DATA, the cache and the system
 * folder. They must be the run's data: the test images' MD5 is checked against config.json's record.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { loadSafetensors } from '../engine/state.js';
import { locateDataset, type LocatedDataset } from '../lab/data/datasets.js';
import { readIdxSplit, type Split } from '../lab/data/idx.js';
import { IMAGE_H, IMAGE_PIXELS, IMAGE_W } from '../lab/data/image.js';
import { md5Images } from '../lab/run/data-identity.js';
import { RUN_FILES } from '../lab/run/folder.js';
import { latentsTestImages } from '../lab/run/test-latents.js';
import { HttpError, setHeaders } from './http.js';
import type { RunsFolder } from './runs.js';

interface TestSplit { split: Split; md5: string }

/** Where the run's data may be, in order (explicit folders first); each tried without downloading. */
function candidates(dataset: string, serverDir: string | undefined, runDir: unknown): (LocatedDataset | null)[] {
  const dirs = [serverDir, typeof runDir === 'string' && path.isAbsolute(runDir) ? runDir : undefined].filter((d): d is string => !!d);
  const out: (LocatedDataset | null)[] = [];
  for (const d of dirs) { try { out.push(locateDataset(dataset, { dataDir: d })); } catch { /* not there */ } }
  try { out.push(locateDataset(dataset)); } catch { /* not there */ }
  return out;
}

export class TestImages {
  /** Test splits read so far, by their images file (a server serves a few data sets at most). */
  private readonly cache = new Map<string, TestSplit>();

  constructor(private readonly runs: RunsFolder, private readonly dataDir?: string) {}

  private read(loc: LocatedDataset): TestSplit {
    const key = loc.files.testImages;
    let t = this.cache.get(key);
    if (!t) {
      const split = readIdxSplit(loc.files.testImages, loc.files.testLabels, { rows: IMAGE_H, cols: IMAGE_W });
      t = { split, md5: md5Images(split) };
      this.cache.set(key, t);
    }
    return t;
  }

  /** The rows of the run's latents file (its `z` is [n, D]). */
  private latentRows(dir: string, name: string): number {
    const f = this.runs.file(dir, RUN_FILES.latents);
    if (!f) throw new HttpError(404, `${name}: no ${RUN_FILES.latents} yet (written at the end of training)`);
    let tensors;
    try { ({ tensors } = loadSafetensors(readFileSync(f), RUN_FILES.latents)); } catch (e) { throw new HttpError(409, `${name}/${(e as Error).message.split('\n')[0]}`); }
    const t = tensors.get('z');
    if (!t || t.shape.length !== 2) throw new HttpError(409, `${name}/${RUN_FILES.latents}: expected z [N, D]`);
    return t.shape[0];
  }

  /** The bytes of the test images of run `name` (in folder `dir`) that its latents encode. */
  images(name: string, dir: string): { bytes: Uint8Array; n: number } {
    const config = this.runs.config(dir);
    if (!config.value) throw new HttpError(409, `${name}: ${config.problem ?? 'no config.json'}`);
    const dataset = String(config.value.dataset ?? 'mnist');
    const want = (config.value.data as { md5?: { testImages?: string } } | undefined)?.md5?.testImages;
    const n = this.latentRows(dir, name);
    let found: TestSplit | null = null, other = false;
    for (const loc of candidates(dataset, this.dataDir, config.value.dataDir)) {
      if (!loc) continue;
      const t = this.read(loc);
      if (want && t.md5 !== want) { other = true; continue; }
      found = t;
      break;
    }
    if (!found) throw new HttpError(404, other
      ? `${name}: the ${dataset} test images found on this server are not the ones the run was trained on (MD5 differs from config.json); start the server with --data-dir holding the run's data`
      : `${name}: the ${dataset} test images are not on this server (start it with --data-dir, or set $LATENTLAB_DATA)`);
    const s = latentsTestImages(found.split, n);
    if (s.n < n) throw new HttpError(409, `${name}: its latents have ${n} rows, the test split only ${s.n} images`);
    return { bytes: s.images, n: s.n };
  }
}

/** Sends the images as bytes, n x IMAGE_PIXELS, with their count and shape in headers. */
export function sendImages(res: http.ServerResponse, bytes: Uint8Array, n: number): void {
  setHeaders(res, 'application/octet-stream', { 'Cache-Control': 'no-store', 'Content-Length': String(bytes.length), 'X-Images': String(n), 'X-Image-Pixels': String(IMAGE_PIXELS) });
  res.statusCode = 200;
  res.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}
