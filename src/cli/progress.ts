/** Progress for long work: a bar with rate and ETA on a terminal, plain lines when not a TTY (both on stderr). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, fields: Record<string, string>): void;
  /** A line for humans that does not break the bar. */
  log(line: string): void;
  stop(): void;
}

export function progress(total: number, label: string, opts: { plainEvery?: number; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (stream.isTTY && process.env.LATENTLAB_PLAIN_PROGRESS !== '1') {
    const bar = new cliProgress.SingleBar({
      format: `${label} {bar} {percentage}% | {value}/{total} | {fields} | ETA {eta_formatted}`,
      stream, hideCursor: true, etaBuffer: 50, fps: 10, clearOnComplete: false,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { fields: '' });
    return {
      update(done, fields) { bar.update(done, { fields: fmt(fields) }); },
      log(line) { bar.stop(); stream.write(`${line}\n`); bar.start(total, (bar as unknown as { value: number }).value, { fields: '' }); },
      stop() { bar.stop(); },
    };
  }
  const every = opts.plainEvery ?? Math.max(1, Math.round(total / 20));
  const t0 = Date.now();
  let last = -1;
  return {
    update(done, fields) {
      if (done !== total && Math.floor(done / every) === Math.floor(last / every)) return;
      last = done;
      const el = (Date.now() - t0) / 1000;
      const eta = done > 0 ? (el / done) * (total - done) : 0;
      stream.write(`${label} ${done}/${total} (${Math.round((100 * done) / total)}%) ${fmt(fields)} | ETA ${eta.toFixed(0)}s\n`);
    },
    log(line) { stream.write(`${line}\n`); },
    stop() {},
  };
}

function fmt(f: Record<string, string>): string {
  return Object.entries(f).map(([k, v]) => `${k} ${v}`).join(' | ');
}
