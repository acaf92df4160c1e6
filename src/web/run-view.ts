/** What the API says about a run: its status and its summary, from the run folder and this server's jobs. */
import type { Jobs } from './jobs.js';
import { METRICS_FILE, type RunsFolder } from './runs.js';

export type RunStatus = 'starting' | 'training' | 'finishing' | 'done' | 'stopped' | 'failed' | 'incomplete';

/** Statuses after which nothing changes any more. */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['done', 'stopped', 'failed', 'incomplete']);

export class RunView {
  constructor(private readonly runs: RunsFolder, private readonly jobs: Jobs) {}

  status(name: string, dir: string | null): RunStatus {
    const job = this.jobs.get(name);
    const has = (rel: string): boolean => !!dir && this.runs.has(dir, rel);
    if (job && job.state === 'running') return job.stopping ? 'finishing' : has('config.json') ? 'training' : 'starting';
    if (job && job.state === 'finishing') return 'finishing';
    if (has('result.json') && has('latents.safetensors')) return 'done';
    if (job && job.state === 'exited') return job.stopping ? 'stopped' : 'failed';
    if (!dir) return 'incomplete';
    // a run started elsewhere (the CLI): training while its files keep changing
    const recent = Math.max(this.runs.mtimeMs(dir, METRICS_FILE), this.runs.mtimeMs(dir, 'checkpoint.safetensors'), this.runs.mtimeMs(dir, 'config.json'), this.runs.mtimeMs(dir, 'snapshots', 'dir'));
    if (Date.now() - recent < 60_000) return 'training';
    return has('model.safetensors') ? 'stopped' : 'incomplete';
  }

  summary(name: string, dir: string | null): Record<string, unknown> {
    const job = this.jobs.get(name);
    if (!dir) return { name, status: this.status(name, null), config: null, result: null, ownJob: !!job && job.state !== 'exited', mtime: job?.startedAt ?? 0 };
    return {
      name, status: this.status(name, dir),
      config: this.runs.readJson(dir, 'config.json'),
      result: this.runs.readJson(dir, 'result.json'),
      hasModel: this.runs.has(dir, 'model.safetensors'),
      hasLatents: this.runs.has(dir, 'latents.safetensors'),
      ownJob: !!job && job.state !== 'exited',
      error: job && job.state === 'exited' && !job.stopping && job.exitCode ? job.stderr.trim().split('\n').slice(-3).join('\n') : undefined,
      mtime: Math.max(this.runs.mtimeMs(dir, 'config.json'), this.runs.mtimeMs(dir, METRICS_FILE), this.runs.mtimeMs(dir, 'result.json')),
    };
  }

  /** Every run folder with a config.json, and the runs this server started; newest first. */
  list(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const seen = new Set<string>();
    for (const name of this.runs.names()) {
      const dir = this.runs.dir(name);
      if (!dir || (!this.runs.has(dir, 'config.json') && !this.jobs.has(name))) continue;
      out.push(this.summary(name, dir));
      seen.add(name);
    }
    for (const j of this.jobs.all()) if (!seen.has(j.name)) out.push(this.summary(j.name, null));
    out.sort((a, b) => (b.mtime as number) - (a.mtime as number));
    return out;
  }
}
