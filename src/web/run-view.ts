/**
 * What the API says about a run: its status and its summary. The status comes from status.json (the
 * run-folder module's), and from this server's jobs for the runs it started (starting, stopping);
 * never from file times. Every file that cannot be read is one line in `problems`.
 */
import type { Jobs } from './jobs.js';
import type { RunsFolder } from './runs.js';

export type RunStatus = 'starting' | 'training' | 'finishing' | 'done' | 'stopped' | 'failed' | 'incomplete';

/** Statuses after which nothing changes any more (until a Resume). */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['done', 'stopped', 'failed', 'incomplete']);

export interface Progress { step: number | null; totalSteps: number | null; checkpointStep: number | null; perEpoch: number | null }

export class RunView {
  constructor(private readonly runs: RunsFolder, private readonly jobs: Jobs, private readonly canTrain: () => boolean) {}

  status(name: string, dir: string | null): RunStatus {
    const job = this.jobs.get(name);
    if (job && job.state === 'running') return job.stopping ? 'finishing' : dir && this.runs.has(dir, 'status') && this.runs.status(dir).value?.state === 'running' ? 'training' : 'starting';
    if (!dir) return job && job.exitCode ? 'failed' : 'incomplete';
    const s = this.runs.status(dir).value;
    if (s) return s.state === 'running' ? 'training' : s.state === 'finished' ? 'done' : s.state;
    if (job && job.state === 'exited' && job.exitCode) return 'failed';
    // a run written before status.json existed
    return this.runs.has(dir, 'result') && this.runs.has(dir, 'latents') ? 'done' : 'incomplete';
  }

  /** Where the run is: status.json's step and plan, and the checkpoint's step. */
  progress(dir: string | null): Progress | null {
    if (!dir) return null;
    const s = this.runs.status(dir).value;
    if (!s) return null;
    const per = this.runs.config(dir).value?.batchesPerEpoch;
    return { step: s.step ?? null, totalSteps: s.totalSteps || null, checkpointStep: s.checkpointStep ?? null, perEpoch: typeof per === 'number' ? per : null };
  }

  /** The run's summary; `detail` also reads the whole metrics log and weights to find their problems. */
  summary(name: string, dir: string | null, detail = false): Record<string, unknown> {
    const job = this.jobs.get(name);
    const ownJob = !!job && job.state !== 'exited';
    if (!dir) return { name, status: this.status(name, null), config: null, result: null, ownJob, progress: null, problems: [], canResume: false, mtime: job?.startedAt ?? 0 };
    const runs = this.runs;
    const config = runs.config(dir), result = runs.result(dir), status = runs.status(dir), ckpt = runs.checkpointStep(dir);
    const problems = [config.problem, status.problem, result.problem].filter((p): p is string => !!p);
    if (detail) {
      for (const role of ['checkpoint', 'model'] as const) { const p = runs.weightsProblem(dir, role); if (p) problems.push(p); }
    } else if (ckpt.problem) problems.push(ckpt.problem);
    const st = this.status(name, dir);
    let error: string | undefined;
    if (job && job.state === 'exited' && job.exitCode && st === 'failed') error = job.stderr.trim().split('\n').slice(-3).join('\n');
    else if (st === 'failed' && status.value?.error) error = status.value.error;
    return {
      name, status: st,
      config: config.value,
      result: result.value,
      hasModel: runs.has(dir, 'model'),
      hasLatents: runs.has(dir, 'latents'),
      hasLive: runs.has(dir, 'live'),
      liveMtime: runs.mtimeMs(dir, 'live') || null,
      ownJob,
      error,
      progress: this.progress(dir),
      canResume: (st === 'stopped' || st === 'failed') && ckpt.value !== null && !ownJob && this.canTrain(),
      problems,
      mtime: status.value?.updated ?? Math.max(runs.mtimeMs(dir, 'config'), runs.mtimeMs(dir, 'result')),
    };
  }

  /** Every run folder with a config.json (readable or not), and the runs this server started; newest first. */
  list(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const seen = new Set<string>();
    for (const name of this.runs.names()) {
      const dir = this.runs.dir(name);
      if (!dir || (!this.runs.has(dir, 'config') && !this.jobs.has(name))) continue;
      out.push(this.summary(name, dir));
      seen.add(name);
    }
    for (const j of this.jobs.all()) if (!seen.has(j.name)) out.push(this.summary(j.name, null));
    out.sort((a, b) => (b.mtime as number) - (a.mtime as number));
    return out;
  }
}
