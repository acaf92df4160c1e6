/** Progress for long work: a bar with rate and ETA on a terminal, plain lines when not a TTY (both on stderr). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, fields: Record<string, string>): void;
  /** A line for humans that does not break the bar. */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Plain mode: a line at least every this many steps (default 5% of the total). */
  plainEvery?: number;
  /** Plain mode: and at least every this many seconds, however long the run (default 10). */
  plainSeconds?: number;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Milliseconds since some origin (default Date.now); for tests. */
  now?: () => number;
}

export function progress(total: number, label: string, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (stream.isTTY && process.env.LATENTLAB_PLAIN_PROGRESS !== '1') {
    const bar = new cliProgress.SingleBar({
      format: `${label} {bar} {percentage}% | {value}/{total} | {fields} | ETA {eta_formatted}`,
      stream: stream as NodeJS.WriteStream, hideCursor: true, etaBuffer: 50, fps: 10, clearOnComplete: false,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { fields: '' });
    return {
      update(done, fields) { bar.update(done, { fields: fmt(fields) }); },
      log(line) { bar.stop(); stream.write(`${line}\n`); bar.start(total, (bar as unknown as { value: number }).value, { fields: '' }); },
      stop() { bar.stop(); },
    };
  }
  // plain lines at a steady rate: every 5% of the work, and at least every plainSeconds, so that a
  // very long run still shows that it moves, and how long it has to go
  const every = opts.plainEvery ?? Math.max(1, Math.round(total / 20));
  const seconds = opts.plainSeconds ?? 10;
  const now = opts.now ?? Date.now;
  const t0 = now();
  let lastStep = -1, lastTime = t0;
  return {
    update(done, fields) {
      const t = now();
      const due = done === total || Math.floor(done / every) !== Math.floor(lastStep / every) || t - lastTime >= seconds * 1000;
      if (!due) return;
      lastStep = done;
      lastTime = t;
      const el = (t - t0) / 1000;
      const eta = done > 0 ? (el / done) * (total - done) : 0;
      stream.write(`${label} ${done}/${total} (${formatPercent(done, total)}) ${fmt(fields)} | ETA ${formatSeconds(eta)}\n`);
    },
    log(line) { stream.write(`${line}\n`); },
    stop() {},
  };
}

function formatPercent(done: number, total: number): string {
  const p = (100 * done) / total;
  return p > 0 && p < 1 ? `${p.toFixed(p < 0.01 ? 4 : 2)}%` : `${Math.round(p)}%`;
}

/** 42s, 12m05s, 3h02m, 1234d05h. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`;
}

function fmt(f: Record<string, string>): string {
  return Object.entries(f).map(([k, v]) => `${k} ${v}`).join(' | ');
}
