/**
 * The web explorer's server (`latentlab serve`): plain node:http, everything served from this machine.
 * The routes are listed in routes.ts; this file puts the parts together:
 *
 *   routes.ts         one function per route, and the table that maps requests to them
 *   runs.ts           the only way to run folders: checks each file (regular, inside the runs folder), then
 *                     reads it through the run-folder module (src/lab/run/folder.ts); unreadable files are problems
 *   run-view.ts       a run's status (status.json, and this server's jobs), progress and summary
 *   events.ts         server-sent events: one watcher per run, the module's metrics tail from the last offset,
 *                     new snapshots, new live weights
 *   jobs.ts           training runs started here (spawn, --resume, Stop)
 *   train-request.ts  the one check of a training request (the CLI's validator plus this machine's bounds)
 *   security.ts       Host (no DNS rebinding, on every bind) and Origin (POSTs from this server's pages)
 *   http.ts           headers (COOP/COEP for the wasm backend's shared memory, CSP, CORP, nosniff), bodies
 *
 * Security: binds to 127.0.0.1 unless told otherwise; run names are one path segment of [A-Za-z0-9._-]
 * (no `..`); every file is resolved with realpath and must be a regular file inside the runs folder
 * (or the app's folder), so symlinks cannot lead out; request bodies are limited and parsed into
 * null-prototype objects; POSTs must be JSON from the same origin; the Host header must name this server.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventHub } from './events.js';
import { HttpError, sendJson } from './http.js';
import { Jobs } from './jobs.js';
import { dispatch, type Ctx } from './routes.js';
import { RunView } from './run-view.js';
import { RunsFolder, realOrNull } from './runs.js';
import { allowedHosts, checkHost } from './security.js';
import { TestImages } from './test-images.js';

export { RUN_NAME_RE } from './runs.js';
export { parseTrainRequest, type TrainRequest } from './train-request.js';

export interface ServeOptions {
  /** The folder holding run folders (each one the --out of `latentlab train`). */
  runsDir: string;
  /** Default 5173; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** More names the Host header may carry (besides the bound address and the loopback names). */
  allowedHosts?: string[];
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
  /** Event streams open at once, all runs together (default 32). */
  maxViewers?: number;
  /** Largest request body in bytes (default 64 KiB). */
  maxBody?: number;
  /** Threads a training run may use (default os.availableParallelism()). */
  cores?: number;
  /** Called with one line for humans (requests that failed, runs started/stopped). */
  log?: (line: string) => void;
}

export interface WebServer {
  url: string;
  port: number;
  host: string;
  server: http.Server;
  /** Event streams open and runs watched for them (one watcher per run, shared by its viewers). */
  stats(): { viewers: number; watchers: number };
  /** Stops the server and every training run it started. */
  close(): Promise<void>;
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** Starts the explorer's server; resolves once it listens. */
export async function startServer(opts: ServeOptions): Promise<WebServer> {
  const root = packageRoot();
  const runs = new RunsFolder(opts.runsDir);
  const appDirWanted = opts.appDir ?? path.join(root, 'dist', 'web', 'app');
  const appDir = realOrNull(appDirWanted);
  if (!appDir || !existsSync(path.join(appDir, 'index.html'))) throw new Error(`${appDirWanted}: the web app is not built (run npm run build, or node tools/build-web.mjs)`);
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => {});
  const cliPath = opts.cliPath ?? path.join(root, 'dist', 'cli', 'main.js');
  const jobs = new Jobs({ runs, cliPath, dataDir: opts.dataDir, log });
  const view = new RunView(runs, jobs, () => existsSync(cliPath));
  const events = new EventHub(runs, view, opts.maxViewers ?? 32);
  const ctx: Ctx = {
    runs, view, jobs, events, appDir, cliPath,
    wasmDir: realOrNull(opts.wasmDir ?? path.join(root, 'build', 'wasm')),
    maxJobs: opts.maxJobs ?? 1, maxBody: opts.maxBody ?? 64 * 1024, cores: opts.cores ?? os.availableParallelism(),
    testImages: new TestImages(runs, opts.dataDir),
  };
  const hosts = allowedHosts(host, opts.allowedHosts);

  const server = http.createServer((req, res) => {
    Promise.resolve().then(() => { checkHost(req, hosts); return dispatch(ctx, req, res); }).catch((e: unknown) => {
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
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `http://${shownHost}:${port}/`, port, host, server,
    stats: () => ({ viewers: events.viewerCount(), watchers: events.watcherCount() }),
    close: async () => {
      jobs.killAll();
      events.closeAll();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
