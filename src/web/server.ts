/**
 * The web explorer's server (`latentlab serve`): plain node:http, everything served from this machine.
 *
 *   GET  /                              the app (dist/web/app/index.html)
 *   GET  /app/<file>                    the app's own assets (bundles, CSS, the wasm kernels)
 *   GET  /api/info                      version, training defaults, whether training can be started
 *   GET  /api/runs                      the runs: name, status, settings (config.json), figures (result.json)
 *   GET  /api/runs/<name>               one run, with its metrics lines and snapshot steps
 *   GET  /api/runs/<name>/events        server-sent events while it trains: metrics lines, new snapshots, the end
 *   POST /api/runs/<name>/stop          stops a run this server started (it keeps its last checkpoint)
 *   POST /api/train                     starts `latentlab train --out RUNS_DIR/<name> ...` (validated like the CLI)
 *   GET  /runs/<name>/<file>            a run's data files (safetensors, JSON, metrics, pictures), nothing else
 *
 * Security: binds to 127.0.0.1 unless told otherwise; run names are one path segment of [A-Za-z0-9._-]
 * (no `..`), and every file is resolved with realpath and must stay inside the runs folder (or the
 * app's folder), so symlinks cannot lead out; request bodies are limited; POSTs must be JSON from the
 * same origin; the Host header must name this server (no DNS rebinding); pages carry COOP/COEP (the
 * wasm backend's shared memory needs cross-origin isolation), CORP, a CSP and nosniff.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, readdirSync, realpathSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TRAIN, OPTIMIZERS, SCHEDULERS, STUDY_LATENT_MAP, flagOf, resolveTrainConfig, type TrainConfig } from '../lab/run/config.js';
import { writeJsonAtomic } from '../lab/run/atomic.js';
import { parseLatent } from '../lab/models/autoencoder.js';
import { VERSION } from '../version.js';

export interface ServeOptions {
  /** The folder holding run folders (each one the --out of `latentlab train`). */
  runsDir: string;
  /** Default 5173; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The built app (default <package>/dist/web/app). */
  appDir?: string;
  /** The wasm kernels (default <package>/build/wasm). */
  wasmDir?: string;
  /** The CLI script training runs are started with (default <package>/dist/cli/main.js). */
  cliPath?: string;
  /** Passed to training runs as --data-dir (the browser cannot choose a data folder). */
  dataDir?: string;
  /** Training runs at once (default 1). */
  maxJobs?: number;
  /** Largest request body in bytes (default 64 KiB). */
  maxBody?: number;
  /** Called with one line for humans (requests that failed, runs started/stopped). */
  log?: (line: string) => void;
}

export interface WebServer {
  url: string;
  port: number;
  host: string;
  server: http.Server;
  /** Stops the server and every training run it started. */
  close(): Promise<void>;
}

/** A run name: one path segment, no dot first (so no `..`, no hidden files). */
export const RUN_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

/** The files of a run folder that may be read over HTTP. */
const RUN_FILE_RE = /^(config\.json|result\.json|metrics\.jsonl|model\.safetensors|latents\.safetensors|train-latents\.safetensors|[A-Za-z0-9_-]+\.(?:png|gif)|snapshots\/labels\.safetensors|snapshots\/step-\d{7}\.safetensors)$/;
const APP_FILE_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.jsonl': 'application/x-ndjson; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', '.png': 'image/png', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.safetensors': 'application/octet-stream',
};

const CSP = [
  "default-src 'self'", "script-src 'self' blob: 'wasm-unsafe-eval'", "worker-src 'self' blob:", "style-src 'self'",
  "img-src 'self' data: blob:", "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
].join('; ');

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

/** Is `p` the folder `root` or inside it (both real paths)? */
function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function realOrNull(p: string): string | null {
  try { return realpathSync(p); } catch { return null; }
}

/** The settings the training form may send, with how each is read. */
const WEB_TRAIN_KEYS: Record<string, 'num' | 'int' | 'str' | 'bool' | 'latent'> = {
  dataset: 'str', model: 'str', latent: 'latent', activation: 'str', latentActivation: 'str', optimizer: 'str', lr: 'num',
  momentum: 'num', weightDecay: 'num', nesterov: 'bool', scheduler: 'str', baseLr: 'num', maxLr: 'num', stepSizeUp: 'int',
  stepSizeDown: 'int', mode: 'str', gamma: 'num', pctStart: 'num', stepSize: 'int', tMax: 'int', etaMin: 'num',
  epochs: 'int', maxSteps: 'int', batchSize: 'int', seed: 'int', threads: 'int', backend: 'str', loss: 'str',
  checkpointEvery: 'int', snapshotEvery: 'int', logEvery: 'int', latentWeight: 'num', supervised: 'bool',
};

export interface TrainRequest { name: string; config: TrainConfig; args: string[]; testLimit?: number }

/**
 * Checks a training request from the browser ({name?, settings: {...}, testLimit?}) the way the CLI
 * checks its flags (resolveTrainConfig → checkTrainConfig); returns the CLI arguments. Throws one line.
 */
export function parseTrainRequest(body: unknown, runsDir: string): TrainRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('expected a JSON object {name, settings, testLimit}');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!['name', 'settings', 'testLimit'].includes(k)) throw new Error(`unknown field '${k}'`);
  const name = b.name === undefined || b.name === '' ? `web-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}` : b.name;
  if (typeof name !== 'string' || !RUN_NAME_RE.test(name)) throw new Error(`name: expected letters, digits, '.', '_' or '-' (at most 100, not starting with '.' or '-'), got ${JSON.stringify(b.name)}`);
  if (existsSync(path.join(runsDir, name))) throw new Error(`name: a run called '${name}' already exists`);
  const s = b.settings ?? {};
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw new Error('settings: expected an object');
  const flags: Partial<TrainConfig> = {};
  const args: string[] = [];
  for (const [k, raw] of Object.entries(s as Record<string, unknown>)) {
    const kind = WEB_TRAIN_KEYS[k];
    if (!kind) throw new Error(`settings: unknown or not allowed setting '${k}'`);
    if (raw === undefined || raw === null || raw === '') continue;
    let v: unknown;
    if (kind === 'bool') {
      if (typeof raw !== 'boolean') throw new Error(`${flagOf(k)}: expected true or false, got ${JSON.stringify(raw)}`);
      if (!raw) continue;
      v = k === 'supervised' ? STUDY_LATENT_MAP : true;
      args.push(flagOf(k));
    } else if (kind === 'str') {
      if (typeof raw !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(raw)) throw new Error(`${flagOf(k)}: expected a name, got ${JSON.stringify(raw)}`);
      v = raw;
    } else if (kind === 'latent') {
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new Error(`--latent: expected a positive integer or 'conv', got ${JSON.stringify(raw)}`);
      v = parseLatent(typeof raw === 'string' ? raw.trim() : raw);
    } else {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) throw new Error(`${flagOf(k)}: expected a number, got ${JSON.stringify(raw)}`);
      if (kind === 'int' && !Number.isInteger(n)) throw new Error(`${flagOf(k)}: expected an integer, got ${JSON.stringify(raw)}`);
      v = n;
    }
    (flags as Record<string, unknown>)[k] = v;
    if (kind !== 'bool') args.push(flagOf(k), String(v));
  }
  const config = resolveTrainConfig({}, flags);
  // the web form trains at most this much at once: a machine-sized guard, not a CLI rule
  const perEpoch = Math.floor(60000 / config.batchSize);
  const steps = Math.min(config.maxSteps ?? Infinity, config.epochs * perEpoch);
  if (steps > 2_000_000) throw new Error(`--epochs/--max-steps: at most 2,000,000 steps from the web form, got ${steps}`);
  let testLimit: number | undefined;
  if (b.testLimit !== undefined && b.testLimit !== null && b.testLimit !== '') {
    const n = Number(b.testLimit);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--test-limit: expected a positive integer, got ${JSON.stringify(b.testLimit)}`);
    testLimit = n;
    args.push('--test-limit', String(n));
  }
  return { name, config, args, testLimit };
}

type RunStatus = 'starting' | 'training' | 'finishing' | 'done' | 'stopped' | 'failed' | 'incomplete';

interface Job {
  name: string;
  proc: ChildProcess | null;
  state: 'running' | 'finishing' | 'exited';
  stopping: boolean;
  exitCode: number | null;
  stderr: string;
  testLimit?: number;
  startedAt: number;
}

/** The step of a checkpoint, read from its safetensors header alone. */
function checkpointStep(file: string): number | null {
  let fd: number | null = null;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(8);
    if (readSync(fd, head, 0, 8, 0) !== 8) return null;
    const n = Number(head.readBigUInt64LE(0));
    if (n <= 0 || n > 50_000_000) return null;
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    const step = Number(JSON.parse(json.toString('utf8')).__metadata__?.step);
    return Number.isInteger(step) ? step : null;
  } catch { return null; } finally { if (fd !== null) closeSync(fd); }
}

function readJsonOrNull(file: string): Record<string, unknown> | null {
  try { return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>; } catch { return null; }
}

function mtimeMs(file: string): number {
  try { return statSync(file).mtimeMs; } catch { return 0; }
}

function snapshotSteps(dir: string): number[] {
  const sd = path.join(dir, 'snapshots');
  if (!existsSync(sd)) return [];
  return readdirSync(sd).map((f) => /^step-(\d{7})\.safetensors$/.exec(f)).filter((m): m is RegExpExecArray => !!m)
    .map((m) => Number(m[1])).sort((a, b) => a - b);
}

function metricsLines(dir: string): unknown[] {
  let text: string;
  try { text = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8'); } catch { return []; }
  const out: unknown[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try { out.push(JSON.parse(l)); } catch { /* a line being written elsewhere: skip */ }
  }
  return out;
}

/** Starts the explorer's server; resolves once it listens. */
export async function startServer(opts: ServeOptions): Promise<WebServer> {
  const root = packageRoot();
  const runsReal = realOrNull(opts.runsDir);
  if (!runsReal || !statSync(runsReal).isDirectory()) throw new Error(`${opts.runsDir}: no such folder (expected a folder of run folders, e.g. runs/)`);
  const appDir = realOrNull(opts.appDir ?? path.join(root, 'dist', 'web', 'app'));
  if (!appDir || !existsSync(path.join(appDir, 'index.html')))
    throw new Error(`${opts.appDir ?? path.join(root, 'dist', 'web', 'app')}: the web app is not built (run npm run build, or node tools/build-web.mjs)`);
  const wasmDir = realOrNull(opts.wasmDir ?? path.join(root, 'build', 'wasm'));
  const cliPath = opts.cliPath ?? path.join(root, 'dist', 'cli', 'main.js');
  const host = opts.host ?? '127.0.0.1';
  const maxBody = opts.maxBody ?? 64 * 1024;
  const maxJobs = opts.maxJobs ?? 1;
  const log = opts.log ?? (() => {});
  const jobs = new Map<string, Job>();
  const sseClients = new Set<http.ServerResponse>();
  let port = 0;

  /** The real folder of a run, checked: a valid name, a directory inside the runs folder. */
  function runDir(name: string, mustExist = true): string {
    if (!RUN_NAME_RE.test(name)) throw new HttpError(400, `bad run name ${JSON.stringify(name)}`);
    const p = path.join(runsReal!, name);
    const real = realOrNull(p);
    if (!real) {
      // a run this server has just started may not have its folder yet
      if (mustExist && !jobs.has(name)) throw new HttpError(404, `no run '${name}'`);
      return p;
    }
    if (!inside(runsReal!, real) || real === runsReal) throw new HttpError(403, `run '${name}' leads outside the runs folder`);
    if (!statSync(real).isDirectory()) throw new HttpError(404, `no run '${name}'`);
    return real;
  }

  function statusOf(name: string, dir: string): RunStatus {
    const job = jobs.get(name);
    const hasResult = existsSync(path.join(dir, 'result.json')) && existsSync(path.join(dir, 'latents.safetensors'));
    if (job && job.state === 'running') return job.stopping ? 'finishing' : existsSync(path.join(dir, 'config.json')) ? 'training' : 'starting';
    if (job && job.state === 'finishing') return 'finishing';
    if (hasResult) return 'done';
    if (job && job.state === 'exited') return job.stopping ? 'stopped' : 'failed';
    // a run started elsewhere (the CLI): training while its files keep changing
    const recent = Math.max(mtimeMs(path.join(dir, 'metrics.jsonl')), mtimeMs(path.join(dir, 'checkpoint.safetensors')), mtimeMs(path.join(dir, 'config.json')), mtimeMs(path.join(dir, 'snapshots')));
    if (Date.now() - recent < 60_000) return 'training';
    return existsSync(path.join(dir, 'model.safetensors')) ? 'stopped' : 'incomplete';
  }

  function summary(name: string, dir: string): Record<string, unknown> {
    const job = jobs.get(name);
    return {
      name, status: statusOf(name, dir),
      config: readJsonOrNull(path.join(dir, 'config.json')),
      result: readJsonOrNull(path.join(dir, 'result.json')),
      hasModel: existsSync(path.join(dir, 'model.safetensors')),
      hasLatents: existsSync(path.join(dir, 'latents.safetensors')),
      ownJob: !!job && job.state !== 'exited',
      error: job && job.state === 'exited' && !job.stopping && job.exitCode ? job.stderr.trim().split('\n').slice(-3).join('\n') : undefined,
      mtime: Math.max(mtimeMs(path.join(dir, 'config.json')), mtimeMs(path.join(dir, 'metrics.jsonl')), mtimeMs(path.join(dir, 'result.json'))),
    };
  }

  function listRuns(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const seen = new Set<string>();
    for (const e of readdirSync(runsReal!, { withFileTypes: true })) {
      if (!RUN_NAME_RE.test(e.name) || !(e.isDirectory() || e.isSymbolicLink())) continue;
      let dir: string;
      try { dir = runDir(e.name); } catch { continue; }
      if (!existsSync(path.join(dir, 'config.json')) && !jobs.has(e.name)) continue;
      out.push(summary(e.name, dir));
      seen.add(e.name);
    }
    for (const j of jobs.values()) if (!seen.has(j.name)) out.push({ name: j.name, status: statusOf(j.name, path.join(runsReal!, j.name)), config: null, result: null, ownJob: j.state !== 'exited', mtime: j.startedAt });
    out.sort((a, b) => (b.mtime as number) - (a.mtime as number));
    return out;
  }

  // ------------------------------------------------------------------------------------- training jobs

  function spawnCli(args: string[]): ChildProcess {
    return spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LATENTLAB_CLI: '1' } });
  }

  function startJob(req: TrainRequest): Job {
    const out = path.join(runsReal!, req.name);
    const args = ['train', '--out', out, ...req.args, '--no-pictures'];
    if (opts.dataDir) args.push('--data-dir', opts.dataDir);
    const job: Job = { name: req.name, proc: null, state: 'running', stopping: false, exitCode: null, stderr: '', testLimit: req.testLimit, startedAt: Date.now() };
    const proc = spawnCli(args);
    job.proc = proc;
    const keep = (d: Buffer): void => { job.stderr = (job.stderr + d.toString()).slice(-4000); };
    proc.stderr?.on('data', keep);
    proc.stdout?.on('data', () => {});
    proc.on('error', (e) => { job.stderr += `\n${e.message}`; });
    proc.on('exit', (code, signal) => {
      job.exitCode = code ?? (signal ? 128 : 1);
      job.proc = null;
      log(`run ${req.name}: training ${job.stopping ? 'stopped' : code === 0 ? 'finished' : `failed (exit ${code ?? signal})`}`);
      if (job.stopping) finishStopped(job, out); else job.state = 'exited';
    });
    jobs.set(req.name, job);
    log(`run ${req.name}: started node ${path.relative(process.cwd(), cliPath)} ${args.join(' ')}`);
    return job;
  }

  /** After Stop: the last checkpoint becomes a finished run (latents, result) by resuming it for zero steps. */
  function finishStopped(job: Job, out: string): void {
    const step = checkpointStep(path.join(out, 'checkpoint.safetensors'));
    if (step === null || step < 1 || existsSync(path.join(out, 'result.json'))) { job.state = 'exited'; return; }
    job.state = 'finishing';
    const args = ['train', '--resume', out, '--max-steps', String(step), '--no-pictures'];
    if (job.testLimit) args.push('--test-limit', String(job.testLimit));
    if (opts.dataDir) args.push('--data-dir', opts.dataDir);
    const proc = spawnCli(args);
    job.proc = proc;
    proc.stderr?.on('data', (d: Buffer) => { job.stderr = (job.stderr + d.toString()).slice(-4000); });
    proc.stdout?.on('data', () => {});
    proc.on('exit', () => {
      job.proc = null;
      const rf = path.join(out, 'result.json');
      const r = readJsonOrNull(rf);
      if (r) writeJsonAtomic(rf, { ...r, stopped: true });
      job.state = 'exited';
      log(`run ${job.name}: kept as stopped at step ${step}`);
    });
  }

  function stopJob(name: string): boolean {
    const job = jobs.get(name);
    if (!job || job.state !== 'running' || !job.proc) return false;
    job.stopping = true;
    job.proc.kill('SIGTERM');
    return true;
  }

  // ------------------------------------------------------------------------------------------ HTTP

  function headers(res: http.ServerResponse, type: string, extra: Record<string, string> = {}): void {
    res.setHeader('Content-Type', type);
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Content-Security-Policy', CSP);
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  }

  function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
    const s = JSON.stringify(body);
    headers(res, 'application/json; charset=utf-8', { 'Cache-Control': 'no-store' });
    res.statusCode = status;
    res.end(s);
  }

  function sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, cache: string): void {
    const st = statSync(file);
    if (!st.isFile()) throw new HttpError(404, 'not found');
    headers(res, TYPES[path.extname(file)] ?? 'application/octet-stream', { 'Cache-Control': cache, 'Content-Length': String(st.size) });
    res.statusCode = 200;
    if (req.method === 'HEAD') { res.end(); return; }
    const s = createReadStream(file);
    s.on('error', () => res.destroy());
    s.pipe(res);
  }

  function readBody(req: http.IncomingMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const type = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\b/i.test(type)) { reject(new HttpError(415, 'expected Content-Type: application/json')); req.resume(); return; }
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBody) { reject(new HttpError(413, `request body over ${maxBody} bytes`)); req.resume(); return; }
      const chunks: Buffer[] = [];
      let size = 0, failed = false;
      req.on('data', (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > maxBody) { failed = true; reject(new HttpError(413, `request body over ${maxBody} bytes`)); return; }
        chunks.push(c);
      });
      req.on('end', () => {
        if (failed) return;
        const text = Buffer.concat(chunks).toString('utf8');
        if (!text.trim()) { resolve({}); return; }
        try { resolve(JSON.parse(text)); } catch { reject(new HttpError(400, 'the request body is not JSON')); }
      });
      req.on('error', reject);
    });
  }

  /** Host (no DNS rebinding) and, for writes, Origin must name this server. */
  function checkOrigin(req: http.IncomingMessage, write: boolean): void {
    const hostHeader = String(req.headers.host ?? '');
    const hostname = hostHeader.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
    const loopbackBound = ['127.0.0.1', 'localhost', '::1'].includes(host);
    const okHosts = new Set(['127.0.0.1', 'localhost', '::1', host.toLowerCase()]);
    if (loopbackBound && !okHosts.has(hostname)) throw new HttpError(421, `unexpected Host '${hostHeader}'`);
    if (write) {
      const origin = req.headers.origin;
      if (origin !== undefined) {
        let oh = '';
        try { oh = new URL(origin).host; } catch { /* keep empty */ }
        if (oh !== hostHeader) throw new HttpError(403, 'cross-origin request refused');
      }
      if (req.headers['sec-fetch-site'] && !['same-origin', 'none'].includes(String(req.headers['sec-fetch-site'])))
        throw new HttpError(403, 'cross-site request refused');
    }
  }

  function events(req: http.IncomingMessage, res: http.ServerResponse, name: string, dir: string, query: URLSearchParams): void {
    headers(res, 'text/event-stream; charset=utf-8', { 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.statusCode = 200;
    res.flushHeaders();
    sseClients.add(res);
    let sentLines = Math.max(0, Number(query.get('from') ?? 0) || 0);
    let lastSnap = Number(query.get('snap') ?? -1);
    if (!Number.isFinite(lastSnap)) lastSnap = -1;
    let lastStatus = '', lastMetricsM = -1, lastSnapM = -1, beat = 0;
    const send = (event: string, data: unknown): void => { res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`); };
    const tick = (): void => {
      try {
        const st = statusOf(name, dir);
        if (st !== lastStatus) { lastStatus = st; send('status', { status: st }); }
        const mm = mtimeMs(path.join(dir, 'metrics.jsonl'));
        if (mm !== lastMetricsM) {
          lastMetricsM = mm;
          const lines = metricsLines(dir);
          if (lines.length < sentLines) sentLines = 0; // rewritten (a resumed run): start over
          if (lines.length > sentLines) { send('metrics', { from: sentLines, lines: lines.slice(sentLines) }); sentLines = lines.length; }
        }
        const sm = mtimeMs(path.join(dir, 'snapshots'));
        if (sm !== lastSnapM) {
          lastSnapM = sm;
          const steps = snapshotSteps(dir);
          const newest = steps.at(-1);
          if (newest !== undefined && newest !== lastSnap) { lastSnap = newest; send('snapshot', { step: newest }); }
        }
        if (st === 'done' || st === 'stopped' || st === 'failed' || st === 'incomplete') {
          send('end', summary(name, dir));
          finish();
          return;
        }
        if (++beat % 50 === 0) res.write(': keep-alive\n\n');
      } catch (e) {
        send('error', { message: (e as Error).message });
        finish();
      }
    };
    const timer = setInterval(tick, 300);
    const finish = (): void => { clearInterval(timer); sseClients.delete(res); res.end(); };
    req.on('close', () => { clearInterval(timer); sseClients.delete(res); });
    tick();
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const rawPath = (req.url ?? '/').split('?')[0];
    const query = new URLSearchParams((req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?') + 1) : '');
    checkOrigin(req, method !== 'GET' && method !== 'HEAD');
    // segments decoded one by one: an encoded '/' or '..' stays inside its segment and fails the name check
    const seg = rawPath.split('/').slice(1).map((s) => {
      try { return decodeURIComponent(s); } catch { throw new HttpError(400, 'bad URL encoding'); }
    });
    if (seg.some((s) => s === '..' || s === '.' || s.includes('\0') || s.includes('\\') || s.includes('/'))) throw new HttpError(400, 'bad path');
    const isGet = method === 'GET' || method === 'HEAD';

    if (isGet && (rawPath === '/' || rawPath === '/index.html')) return sendFile(req, res, path.join(appDir!, 'index.html'), 'no-cache');
    if (isGet && rawPath === '/favicon.ico') { headers(res, 'image/x-icon', { 'Cache-Control': 'max-age=86400' }); res.statusCode = 204; res.end(); return; }
    if (isGet && seg[0] === 'app' && seg.length === 2) {
      const f = seg[1];
      if (!APP_FILE_RE.test(f)) throw new HttpError(400, 'bad file name');
      let file = realOrNull(path.join(appDir!, f));
      if (file && !inside(appDir!, file)) throw new HttpError(403, 'outside the app');
      if (!file && /^kernels(-relaxed)?\.wasm$/.test(f) && wasmDir) {
        file = realOrNull(path.join(wasmDir, f));
        if (file && !inside(wasmDir, file)) throw new HttpError(403, 'outside the app');
      }
      if (!file) throw new HttpError(404, `no file /app/${f}`);
      return sendFile(req, res, file, 'no-cache');
    }
    if (isGet && seg[0] === 'runs' && seg.length >= 3) {
      const dir = runDir(seg[1]);
      const rel = seg.slice(2).join('/');
      if (!RUN_FILE_RE.test(rel)) throw new HttpError(404, `not a run file: ${rel}`);
      const file = realOrNull(path.join(dir, ...seg.slice(2)));
      if (!file) throw new HttpError(404, `${seg[1]}/${rel}: not found`);
      if (!inside(dir, file)) throw new HttpError(403, 'outside the run folder');
      return sendFile(req, res, file, 'no-store');
    }
    if (seg[0] === 'api') {
      if (isGet && seg[1] === 'info' && seg.length === 2) {
        const d = DEFAULT_TRAIN;
        return sendJson(res, 200, {
          version: VERSION, runsDir: runsReal, canTrain: existsSync(cliPath), maxJobs,
          optimizers: OPTIMIZERS, schedulers: SCHEDULERS,
          defaults: { model: d.model, latent: d.latent, optimizer: d.optimizer, scheduler: d.scheduler, lr: d.lr, baseLr: d.baseLr, maxLr: d.maxLr, epochs: d.epochs, batchSize: d.batchSize, seed: d.seed, momentum: d.momentum },
        });
      }
      if (isGet && seg[1] === 'runs' && seg.length === 2) return sendJson(res, 200, { runs: listRuns() });
      if (seg[1] === 'runs' && seg.length >= 3) {
        const name = seg[2];
        const dir = runDir(name);
        if (isGet && seg.length === 3) {
          return sendJson(res, 200, { ...summary(name, dir), metrics: metricsLines(dir), snapshotSteps: snapshotSteps(dir), hasSnapshotLabels: existsSync(path.join(dir, 'snapshots', 'labels.safetensors')) });
        }
        if (isGet && seg.length === 4 && seg[3] === 'events') return events(req, res, name, dir, query);
        if (method === 'POST' && seg.length === 4 && seg[3] === 'stop') {
          await readBody(req);
          if (!stopJob(name)) throw new HttpError(409, `run '${name}' is not a training run started here (runs started from the CLI stop with Ctrl-C there)`);
          return sendJson(res, 202, { name, status: 'finishing' });
        }
      }
      if (method === 'POST' && seg[1] === 'train' && seg.length === 2) {
        const body = await readBody(req);
        if (!existsSync(cliPath)) throw new HttpError(503, `${cliPath} not found: build the CLI first (npm run build)`);
        const running = [...jobs.values()].filter((j) => j.state !== 'exited').length;
        if (running >= maxJobs) throw new HttpError(409, `${running} training run${running > 1 ? 's are' : ' is'} going on already (at most ${maxJobs} at once)`);
        let treq: TrainRequest;
        try { treq = parseTrainRequest(body, runsReal!); } catch (e) { throw new HttpError(400, (e as Error).message); }
        if (jobs.has(treq.name)) throw new HttpError(400, `name: a run called '${treq.name}' already exists`);
        startJob(treq);
        return sendJson(res, 201, { name: treq.name, status: 'starting' });
      }
      throw new HttpError(isGet || method === 'POST' ? 404 : 405, `no such API: ${method} ${rawPath}`);
    }
    throw new HttpError(isGet ? 404 : 405, `not found: ${rawPath}`);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) log(`error on ${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
      if (res.headersSent) { res.destroy(); return; }
      sendJson(res, status, { error: (e as Error).message });
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 5173, host, () => { server.off('error', reject); resolve(); });
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${port}/`, port, host, server,
    close: async () => {
      for (const j of jobs.values()) if (j.proc) j.proc.kill('SIGTERM');
      for (const r of sseClients) r.end();
      sseClients.clear();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
