/**
 * Server-sent events of runs being trained. One watcher per run, shared by all its viewers: every
 * 300 ms it reads what was appended to metrics.jsonl since the last byte offset (never the whole file
 * again), looks at the snapshots and the status, and sends the news to each viewer. The number of
 * viewers is capped.
 *
 * Events: `status {status}`, `metrics {from, lines}` (lines from index `from` on; from 0 when the file
 * was rewritten), `snapshot {step}`, `end <summary>`, `error {message}`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type http from 'node:http';
import { HttpError, setHeaders } from './http.js';
import { FINAL_STATUSES, type RunStatus, type RunView } from './run-view.js';
import { METRICS_FILE, type MetricLine, type RunsFolder } from './runs.js';

const CHUNK = 1 << 20;

/** Follows a metrics.jsonl that grows at the end: the byte offset of each counted line and of the end. */
export class MetricsTail {
  /** Byte offset of each complete line that parsed (line i of the API is starts[i]). */
  private starts: number[] = [];
  /** Bytes read so far (the end of the last complete line). */
  private offset = 0;

  get count(): number { return this.starts.length; }

  /**
   * Reads what was appended since the last call. Returns the new lines and where they start, or
   * `reset` when the file shrank (rewritten): everything is read again from 0.
   */
  poll(file: string | null): { from: number; lines: MetricLine[]; reset: boolean } | null {
    if (!file) return null;
    let fd: number;
    try { fd = openSync(file, 'r'); } catch { return null; }
    try {
      const size = fstatSync(fd).size;
      let reset = false;
      if (size < this.offset) { this.starts = []; this.offset = 0; reset = true; }
      if (size === this.offset) return reset ? { from: 0, lines: [], reset } : null;
      const from = this.starts.length;
      const lines: MetricLine[] = [];
      let pos = this.offset;
      let carry = Buffer.alloc(0);
      while (pos < size) {
        const buf = Buffer.alloc(Math.min(CHUNK, size - pos));
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n <= 0) break;
        const data = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
        const base = pos - carry.length;
        let start = 0;
        for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, start)) {
          const text = data.toString('utf8', start, i);
          if (text.trim()) {
            try { lines.push(JSON.parse(text) as MetricLine); this.starts.push(base + start); } catch { /* broken line: skipped, as by the API */ }
          }
          start = i + 1;
          this.offset = base + start;
        }
        carry = Buffer.from(data.subarray(start));
        pos += n;
      }
      // a torn last line (no newline yet) is read again next time
      return lines.length || reset ? { from, lines, reset } : null;
    } finally { closeSync(fd); }
  }

  /** The lines from index `from` to the current end, read again from the file (a viewer catching up). */
  since(file: string | null, from: number): MetricLine[] {
    if (!file || from >= this.starts.length) return [];
    const begin = this.starts[Math.max(0, from)];
    let fd: number;
    try { fd = openSync(file, 'r'); } catch { return []; }
    try {
      const buf = Buffer.alloc(this.offset - begin);
      const n = readSync(fd, buf, 0, buf.length, begin);
      const out: MetricLine[] = [];
      for (const l of buf.toString('utf8', 0, n).split('\n')) {
        if (!l.trim()) continue;
        try { out.push(JSON.parse(l) as MetricLine); } catch { /* skipped, as when counted */ }
      }
      return out;
    } finally { closeSync(fd); }
  }
}

interface Viewer { res: http.ServerResponse; snap: number }

/** One run being watched for its viewers. */
class RunWatcher {
  readonly viewers = new Set<Viewer>();
  private readonly tail = new MetricsTail();
  private status: RunStatus | '' = '';
  private snapMtime = -1;
  private snapSteps: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private beats = 0;

  constructor(private readonly hub: EventHub, readonly name: string, private readonly dir: string) {
    this.tail.poll(this.metricsFile());
  }

  private metricsFile(): string | null { return this.hub.runs.readable(this.dir, METRICS_FILE); }

  add(res: http.ServerResponse, from: number, snap: number): void {
    const v: Viewer = { res, snap };
    this.viewers.add(v);
    res.on('close', () => this.remove(v));
    if (this.status) send(res, 'status', { status: this.status });
    const start = Math.min(Math.max(0, from), this.tail.count);
    const lines = this.tail.since(this.metricsFile(), start);
    if (lines.length) send(res, 'metrics', { from: start, lines });
    this.sendSnapshot(v);
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

  private broadcast(event: string, data: unknown): void {
    for (const v of this.viewers) send(v.res, event, data);
  }

  private tick(): void {
    try {
      const runs = this.hub.runs;
      const st = this.hub.view.status(this.name, this.dir);
      if (st !== this.status) { this.status = st; this.broadcast('status', { status: st }); }
      const news = this.tail.poll(this.metricsFile());
      if (news) this.broadcast('metrics', { from: news.from, lines: news.lines });
      const sm = runs.mtimeMs(this.dir, 'snapshots', 'dir');
      if (sm !== this.snapMtime) {
        this.snapMtime = sm;
        this.snapSteps = runs.snapshotSteps(this.dir);
        for (const v of this.viewers) this.sendSnapshot(v);
      }
      if (FINAL_STATUSES.has(st)) {
        this.broadcast('end', this.hub.view.summary(this.name, this.dir));
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
    w.add(res, from, Number.isFinite(snap) ? snap : -1);
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
