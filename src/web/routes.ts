/**
 * The server's routes, one function each, and the table that maps a method and a path to them.
 *
 *   GET  /                              the app (dist/web/app/index.html)
 *   GET  /app/<file>                    the app's own assets (bundles, CSS, the wasm kernels)
 *   GET  /api/info                      version, training defaults, whether training can be started
 *   GET  /api/runs                      the runs: name, status, settings (config.json), figures (result.json)
 *   GET  /api/runs/<name>               one run, with its metrics lines and snapshot steps
 *   GET  /api/runs/<name>/events        server-sent events while it trains (see events.ts)
 *   GET  /api/runs/<name>/test-images   the test images its latents encode, n x IMAGE_PIXELS bytes (see test-images.ts)
 *   POST /api/runs/<name>/stop          stops a run this server started (SIGTERM: a checkpoint at that step, status stopped)
 *   POST /api/runs/<name>/resume        continues a stopped run from its checkpoint (`latentlab train --resume`)
 *   POST /api/train                     starts `latentlab train --out RUNS_DIR/<name> ...` (see train-request.ts)
 *   GET  /runs/<name>/<file>            a run's public files (the run-folder module's list: JSON, metrics, weights, live weights, latents, snapshots, pictures)
 */
import { existsSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { DEFAULT_TRAIN, OPTIMIZERS, SCHEDULERS } from '../lab/run/config.js';
import { VERSION } from '../version.js';
import type { EventHub } from './events.js';
import { HttpError, readJsonBody, sendFile, sendJson, setHeaders } from './http.js';
import type { Jobs } from './jobs.js';
import type { RunView } from './run-view.js';
import { inside, isRunFile, realOrNull, type RunsFolder } from './runs.js';
import { checkOrigin } from './security.js';
import { sendImages, type TestImages } from './test-images.js';
import { parseTrainRequest, type TrainRequest } from './train-request.js';

/** What every route may use. */
export interface Ctx {
  runs: RunsFolder;
  view: RunView;
  jobs: Jobs;
  events: EventHub;
  appDir: string;
  wasmDir: string | null;
  cliPath: string;
  maxJobs: number;
  maxBody: number;
  cores: number;
  testImages: TestImages;
}

/** One request: the path's segments (decoded one by one) and what the route's pattern captured. */
export interface Req {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** `:name` parameters, and `*` as the rest of the path joined by '/'. */
  params: Record<string, string>;
  /** The rest of the path matched by `*`, as segments. */
  rest: string[];
  query: URLSearchParams;
}

type Handler = (c: Ctx, r: Req) => void | Promise<void>;
interface Route { method: 'GET' | 'POST'; pattern: string[]; handler: Handler }

const APP_FILE_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** The real folder of an existing run (or of one this server has just started, before its folder exists). */
function runDir(c: Ctx, name: string): string | null {
  const dir = c.runs.dir(name);
  if (!dir && !c.jobs.has(name)) throw new HttpError(404, `no run '${name}'`);
  return dir;
}

// -------------------------------------------------------------------------------------------- routes

function getIndex(c: Ctx, r: Req): void {
  sendFile(r.req, r.res, path.join(c.appDir, 'index.html'), 'no-cache');
}

function getFavicon(_c: Ctx, r: Req): void {
  setHeaders(r.res, 'image/x-icon', { 'Cache-Control': 'max-age=86400' });
  r.res.statusCode = 204;
  r.res.end();
}

function getAppFile(c: Ctx, r: Req): void {
  const f = r.params.file;
  if (!APP_FILE_RE.test(f)) throw new HttpError(400, 'bad file name');
  let file = realOrNull(path.join(c.appDir, f));
  if (file && !inside(c.appDir, file)) throw new HttpError(403, 'outside the app');
  if (!file && /^kernels(-relaxed)?\.wasm$/.test(f) && c.wasmDir) {
    file = realOrNull(path.join(c.wasmDir, f));
    if (file && !inside(c.wasmDir, file)) throw new HttpError(403, 'outside the app');
  }
  if (!file) throw new HttpError(404, `no file /app/${f}`);
  sendFile(r.req, r.res, file, 'no-cache');
}

function getRunFile(c: Ctx, r: Req): void {
  const name = r.params.name;
  const dir = runDir(c, name);
  const rel = r.rest.join('/');
  if (!isRunFile(rel)) throw new HttpError(404, `not a run file: ${rel}`);
  const file = dir ? c.runs.file(dir, rel) : null;
  if (!file) throw new HttpError(404, `${name}/${rel}: not found`);
  sendFile(r.req, r.res, file, 'no-store');
}

function getInfo(c: Ctx, r: Req): void {
  const d = DEFAULT_TRAIN;
  sendJson(r.res, 200, {
    version: VERSION, runsDir: c.runs.root, canTrain: existsSync(c.cliPath), maxJobs: c.maxJobs, cores: c.cores,
    optimizers: OPTIMIZERS, schedulers: SCHEDULERS,
    defaults: { model: d.model, latent: d.latent, optimizer: d.optimizer, scheduler: d.scheduler, lr: d.lr, baseLr: d.baseLr, maxLr: d.maxLr, epochs: d.epochs, batchSize: d.batchSize, seed: d.seed, momentum: d.momentum },
  });
}

function getRuns(c: Ctx, r: Req): void {
  sendJson(r.res, 200, { runs: c.view.list() });
}

function getRun(c: Ctx, r: Req): void {
  const name = r.params.name;
  const dir = runDir(c, name);
  const summary = c.view.summary(name, dir, true);
  const metrics = dir ? c.runs.metrics(dir) : { value: [], problem: null };
  sendJson(r.res, 200, {
    ...summary,
    problems: [...summary.problems as string[], ...(metrics.problem ? [metrics.problem] : [])],
    metrics: metrics.value ?? [],
    snapshotSteps: dir ? c.runs.snapshotSteps(dir) : [],
    hasSnapshotLabels: !!dir && c.runs.readable(dir, 'snapshots/labels.safetensors') !== null,
  });
}

function getEvents(c: Ctx, r: Req): void {
  const name = r.params.name;
  // a run this server has just started may not have its folder yet: watch where it will be
  const dir = runDir(c, name) ?? c.runs.newRunPath(name);
  c.events.open(r.req, r.res, name, dir, r.query);
}

function getTestImages(c: Ctx, r: Req): void {
  const name = r.params.name;
  const dir = runDir(c, name);
  if (!dir) throw new HttpError(404, `${name}: no run folder yet`);
  const { bytes, n } = c.testImages.images(name, dir);
  sendImages(r.res, bytes, n);
}

async function postStop(c: Ctx, r: Req): Promise<void> {
  const name = r.params.name;
  runDir(c, name);
  await readJsonBody(r.req, c.maxBody);
  if (!c.jobs.stop(name)) throw new HttpError(409, `run '${name}' is not a training run started here (runs started from the CLI stop with Ctrl-C there)`);
  sendJson(r.res, 202, { name, status: 'finishing' });
}

async function postResume(c: Ctx, r: Req): Promise<void> {
  const name = r.params.name;
  const dir = runDir(c, name);
  await readJsonBody(r.req, c.maxBody);
  if (!dir) throw new HttpError(409, `run '${name}' has no folder yet`);
  if (!existsSync(c.cliPath)) throw new HttpError(503, `${c.cliPath} not found: build the CLI first (npm run build)`);
  const status = c.view.status(name, dir);
  if (status !== 'stopped' && status !== 'failed') throw new HttpError(409, `run '${name}' is ${status}: only a stopped run is resumed`);
  const ckpt = c.runs.checkpointStep(dir);
  if (ckpt.value === null) throw new HttpError(409, ckpt.problem ?? `run '${name}' has no checkpoint to resume from`);
  const running = c.jobs.active();
  if (running >= c.maxJobs) throw new HttpError(409, `${running} training run${running > 1 ? 's are' : ' is'} going on already (at most ${c.maxJobs} at once)`);
  c.jobs.resume(name, dir);
  sendJson(r.res, 202, { name, status: 'starting', fromStep: ckpt.value });
}

async function postTrain(c: Ctx, r: Req): Promise<void> {
  const body = await readJsonBody(r.req, c.maxBody);
  if (!existsSync(c.cliPath)) throw new HttpError(503, `${c.cliPath} not found: build the CLI first (npm run build)`);
  const running = c.jobs.active();
  if (running >= c.maxJobs) throw new HttpError(409, `${running} training run${running > 1 ? 's are' : ' is'} going on already (at most ${c.maxJobs} at once)`);
  let treq: TrainRequest;
  try { treq = parseTrainRequest(body, { runsDir: c.runs.root, cores: c.cores }); } catch (e) { throw new HttpError(400, (e as Error).message); }
  if (c.jobs.has(treq.name)) throw new HttpError(400, `name: a run called '${treq.name}' already exists`);
  c.jobs.start(treq);
  sendJson(r.res, 201, { name: treq.name, status: 'starting' });
}

// -------------------------------------------------------------------------------------------- router

const route = (method: Route['method'], p: string, handler: Handler): Route => ({ method, pattern: p.split('/').slice(1), handler });

export const ROUTES: readonly Route[] = [
  route('GET', '/', getIndex),
  route('GET', '/index.html', getIndex),
  route('GET', '/favicon.ico', getFavicon),
  route('GET', '/app/:file', getAppFile),
  route('GET', '/runs/:name/*', getRunFile),
  route('GET', '/api/info', getInfo),
  route('GET', '/api/runs', getRuns),
  route('GET', '/api/runs/:name', getRun),
  route('GET', '/api/runs/:name/events', getEvents),
  route('GET', '/api/runs/:name/test-images', getTestImages),
  route('POST', '/api/runs/:name/stop', postStop),
  route('POST', '/api/runs/:name/resume', postResume),
  route('POST', '/api/train', postTrain),
];

function match(pattern: string[], seg: string[]): { params: Record<string, string>; rest: string[] } | null {
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '*') return i < seg.length ? { params, rest: seg.slice(i) } : null;
    if (i >= seg.length) return null;
    if (p.startsWith(':')) params[p.slice(1)] = seg[i];
    else if (p !== seg[i]) return null;
  }
  return pattern.length === seg.length ? { params, rest: [] } : null;
}

/** The path's segments, each decoded on its own: an encoded '/' or '..' stays inside its segment and fails. */
function segments(rawPath: string): string[] {
  const seg = rawPath.split('/').slice(1).map((s) => {
    try { return decodeURIComponent(s); } catch { throw new HttpError(400, 'bad URL encoding'); }
  });
  if (seg.some((s) => s === '..' || s === '.' || s.includes('\0') || s.includes('\\') || s.includes('/'))) throw new HttpError(400, 'bad path');
  return seg;
}

/** Finds the route of a request and runs it (writes need a same-origin request); 404/405 otherwise. */
export async function dispatch(c: Ctx, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q >= 0 ? url.slice(0, q) : url;
  const query = new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
  const method = req.method === 'HEAD' ? 'GET' : req.method ?? 'GET';
  if (method !== 'GET') checkOrigin(req);
  const seg = segments(rawPath);
  let pathMatched = false;
  for (const r of ROUTES) {
    const m = match(r.pattern, seg);
    if (!m) continue;
    pathMatched = true;
    if (r.method !== method) continue;
    await r.handler(c, { req, res, params: m.params, rest: m.rest, query });
    return;
  }
  throw new HttpError(pathMatched ? 405 : 404, `${pathMatched ? 'method not allowed' : 'not found'}: ${req.method} ${rawPath}`);
}
