/**
 * Server-sent events of runs being trained. One watcher per run, shared by all its viewers: every
 * 300 ms, and at once when the folder says a file changed (fs.watch, so new live weights reach the
 * page within milliseconds), it asks the run-folder module's tail reader for what was appended to metrics.jsonl since the
 * last byte offset (never the whole file again), looks at the snapshots, the live weights and the
 * status, and sends the news to each viewer. The number of viewers is capped.
 *
 * Events: `status {status, progress}`, `metrics {from, lines}` (lines from index `from` on; from 0
 * when the file was rewritten), `snapshot {step}`, `weights {mtime}` (new live.safetensors, published
 * by the trainer at that time), `problem {message}` (a file that cannot be read), `end <summary>`,
 * `error {message}`.
 */
import { watch, type FSWatcher } from 'node:fs';
import type http from 'node:http';
import { HttpError, setHeaders } from './http.js';
import { FINAL_STATUSES, type Progress, type RunStatus, type RunView } from './run-view.js';
import type { MetricsLine, RunsFolder } from './runs.js';

interface Viewer { res: http.ServerResponse; snap: number; weights: number }

/** One run being watched for its viewers. */
class RunWatcher {
  readonly viewers = new Set<Viewer>();
  private status: RunStatus | '' = '';
  private progress = '';
  private snapMtime = -1;
  private snapSteps: number[] = [];
  private liveMtime = 0;
  private timer: NodeJS.Timeout | null = null;
  private beats = 0;
  /** Byte offset of the metrics log read so far, lines counted before `base`, and the lines read since. */
  private offset = 0;
  private base = 0;
  private lines: MetricsLine[] = [];
  private problem: string | null = null;
  private fsWatcher: FSWatcher | null = null;
  private soon = false;

  constructor(private readonly hub: EventHub, readonly name: string, private readonly dir: string) {
    const t = hub.runs.tailMetrics(dir, 0);
    if (t.value) { this.offset = t.value.offset; this.base = t.value.lines.length; }
    this.problem = t.problem;
    try {
      this.fsWatcher = watch(dir, { persistent: false }, (_ev, f) => { if (f === 'live.safetensors' || f === 'status.json' || f === 'metrics.jsonl') this.tickSoon(); });
      this.fsWatcher.on('error', () => { this.fsWatcher?.close(); this.fsWatcher = null; });
    } catch { /* polling alone */ }
  }

  /** A tick as soon as the event loop is free (once however many changes were reported). */
  private tickSoon(): void {
    if (this.soon || !this.timer) return;
    this.soon = true;
    setImmediate(() => { this.soon = false; if (this.timer) this.tick(); });
  }

  private get count(): number { return this.base + this.lines.length; }

  /** Lines from index `from` to the end: from memory, or (a viewer further behind) the whole log once. */
  private since(from: number): MetricsLine[] {
    if (from >= this.base) return this.lines.slice(from - this.base);
    return (this.hub.runs.metrics(this.dir).value ?? []).slice(from, this.count);
  }

  add(res: http.ServerResponse, from: number, snap: number, weights: number): void {
    const v: Viewer = { res, snap, weights };
    this.viewers.add(v);
    res.on('close', () => this.remove(v));
    if (this.status) send(res, 'status', { status: this.status, progress: JSON.parse(this.progress || 'null') as unknown });
    if (this.problem) send(res, 'problem', { message: this.problem });
    const start = Math.min(Math.max(0, from), this.count);
    const lines = this.since(start);
    if (lines.length) send(res, 'metrics', { from: start, lines });
    this.sendSnapshot(v);
    this.sendWeights(v);
    if (!this.timer) { this.timer = setInterval(() => this.tick(), this.hub.intervalMs); this.tick(); }
  }

  private remove(v: Viewer): void {
    this.viewers.delete(v);
    if (!this.viewers.size) this.dispose();
  }

  private sendSnapshot(v: Viewer): void {
    const newest = this.snapSteps.at(-1);
    if (newest !== undefined && newest !== v.snap) { v.snap = newest; send(v.res, 'snapshot', { step: newest }); }
  }

  private sendWeights(v: Viewer): void {
    if (this.liveMtime > v.weights) { v.weights = this.liveMtime; send(v.res, 'weights', { mtime: this.liveMtime }); }
  }

  private broadcast(event: string, data: unknown): void {
    for (const v of this.viewers) send(v.res, event, data);
  }

  private tickMetrics(): void {
    if (this.problem) return;
    const t = this.hub.runs.tailMetrics(this.dir, this.offset);
    if (t.problem) { this.problem = t.problem; this.broadcast('problem', { message: t.problem }); return; }
    if (!t.value) return;
    const { lines, offset, reset } = t.value;
    this.offset = offset;
    if (reset) { this.base = 0; this.lines = []; }
    if (!lines.length && !reset) return;
    const from = this.count;
    this.lines.push(...lines);
    this.broadcast('metrics', { from: reset ? 0 : from, lines });
  }

  private tick(): void {
    try {
      const runs = this.hub.runs, view = this.hub.view;
      const st = view.status(this.name, this.dir);
      const pr: Progress | null = view.progress(this.dir);
      const prText = JSON.stringify(pr);
      if (st !== this.status || prText !== this.progress) { this.status = st; this.progress = prText; this.broadcast('status', { status: st, progress: pr }); }
      this.tickMetrics();
      const sm = runs.mtimeMs(this.dir, 'snapshots');
      if (sm !== this.snapMtime) {
        this.snapMtime = sm;
        this.snapSteps = runs.snapshotSteps(this.dir);
        for (const v of this.viewers) this.sendSnapshot(v);
      }
      const lm = runs.mtimeMs(this.dir, 'live');
      if (lm > this.liveMtime) {
        this.liveMtime = lm;
        for (const v of this.viewers) this.sendWeights(v);
      }
      if (FINAL_STATUSES.has(st)) {
        this.broadcast('end', view.summary(this.name, this.dir));
        for (const v of this.viewers) v.res.end();
        this.dispose();
        return;
      }
      if (++this.beats % 50 === 0) for (const v of this.viewers) v.res.write(': keep-alive\n\n');
    } catch (e) {
      this.broadcast('error', { message: (e as Error).message });
      for (const v of this.viewers) v.res.end();
      this.dispose();
    }
  }

  dispose(): void {
    this.fsWatcher?.close();
    this.fsWatcher = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.viewers.clear();
    this.hub.forget(this);
  }
}

function send(res: http.ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The watchers of all runs, and the cap on viewers. */
export class EventHub {
  private readonly watchers = new Map<string, RunWatcher>();

  constructor(readonly runs: RunsFolder, readonly view: RunView, readonly maxViewers: number, readonly intervalMs = 300) {}

  viewerCount(): number {
    let n = 0;
    for (const w of this.watchers.values()) n += w.viewers.size;
    return n;
  }

  watcherCount(): number { return this.watchers.size; }

  /** Starts the event stream of run `name` (folder `dir`) on `res`; 503 over the cap. */
  open(req: http.IncomingMessage, res: http.ServerResponse, name: string, dir: string, query: URLSearchParams): void {
    if (this.viewerCount() >= this.maxViewers) throw new HttpError(503, `too many event streams open (at most ${this.maxViewers}): close a tab and retry`);
    setHeaders(res, 'text/event-stream; charset=utf-8', { 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.statusCode = 200;
    res.flushHeaders();
    let w = this.watchers.get(name);
    if (!w) { w = new RunWatcher(this, name, dir); this.watchers.set(name, w); }
    const from = Math.max(0, Number(query.get('from') ?? 0) || 0);
    const snap = Number(query.get('snap') ?? -1);
    const weights = Number(query.get('weights') ?? 0);
    w.add(res, from, Number.isFinite(snap) ? snap : -1, Number.isFinite(weights) ? weights : 0);
    req.on('close', () => res.end());
  }

  forget(w: RunWatcher): void {
    if (this.watchers.get(w.name) === w) this.watchers.delete(w.name);
  }

  closeAll(): void {
    for (const w of [...this.watchers.values()]) {
      for (const v of w.viewers) v.res.end();
      w.dispose();
    }
  }
}
