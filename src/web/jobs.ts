/** Training runs this server started: `latentlab train` child processes, Stop, and keeping a stopped run. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { writeJsonAtomic } from '../lab/run/atomic.js';
import type { RunsFolder } from './runs.js';
import type { TrainRequest } from './train-request.js';

export interface Job {
  name: string;
  proc: ChildProcess | null;
  state: 'running' | 'finishing' | 'exited';
  stopping: boolean;
  exitCode: number | null;
  stderr: string;
  testLimit?: number;
  startedAt: number;
}

export interface JobsOptions {
  runs: RunsFolder;
  /** The CLI script runs are started with. */
  cliPath: string;
  /** Passed as --data-dir. */
  dataDir?: string;
  log: (line: string) => void;
}

export class Jobs {
  private readonly jobs = new Map<string, Job>();
  constructor(private readonly o: JobsOptions) {}

  get(name: string): Job | undefined { return this.jobs.get(name); }
  has(name: string): boolean { return this.jobs.has(name); }
  all(): IterableIterator<Job> { return this.jobs.values(); }
  /** Jobs still running or finishing. */
  active(): number { return [...this.jobs.values()].filter((j) => j.state !== 'exited').length; }

  private spawnCli(args: string[]): ChildProcess {
    return spawn(process.execPath, [this.o.cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LATENTLAB_CLI: '1' } });
  }

  private keepStderr(job: Job, proc: ChildProcess): void {
    proc.stderr?.on('data', (d: Buffer) => { job.stderr = (job.stderr + d.toString()).slice(-4000); });
    proc.stdout?.on('data', () => {});
  }

  start(req: TrainRequest): Job {
    const out = this.o.runs.newRunPath(req.name);
    const args = ['train', '--out', out, ...req.args, '--no-pictures'];
    if (this.o.dataDir) args.push('--data-dir', this.o.dataDir);
    const job: Job = { name: req.name, proc: null, state: 'running', stopping: false, exitCode: null, stderr: '', testLimit: req.testLimit, startedAt: Date.now() };
    const proc = this.spawnCli(args);
    job.proc = proc;
    this.keepStderr(job, proc);
    proc.on('error', (e) => { job.stderr += `\n${e.message}`; });
    proc.on('exit', (code, signal) => {
      job.exitCode = code ?? (signal ? 128 : 1);
      job.proc = null;
      this.o.log(`run ${req.name}: training ${job.stopping ? 'stopped' : code === 0 ? 'finished' : `failed (exit ${code ?? signal})`}`);
      if (job.stopping) this.finishStopped(job, out); else job.state = 'exited';
    });
    this.jobs.set(req.name, job);
    this.o.log(`run ${req.name}: started node ${path.relative(process.cwd(), this.o.cliPath)} ${args.join(' ')}`);
    return job;
  }

  /** After Stop: the last checkpoint becomes a finished run (latents, result) by resuming it for zero steps. */
  private finishStopped(job: Job, out: string): void {
    const dir = this.o.runs.readable(path.dirname(out), path.basename(out), 'dir');
    const step = dir ? this.o.runs.checkpointStep(dir) : null;
    if (!dir || step === null || step < 1 || this.o.runs.has(dir, 'result.json')) { job.state = 'exited'; return; }
    job.state = 'finishing';
    const args = ['train', '--resume', out, '--max-steps', String(step), '--no-pictures'];
    if (job.testLimit) args.push('--test-limit', String(job.testLimit));
    if (this.o.dataDir) args.push('--data-dir', this.o.dataDir);
    const proc = this.spawnCli(args);
    job.proc = proc;
    this.keepStderr(job, proc);
    proc.on('exit', () => {
      job.proc = null;
      const r = this.o.runs.readJson(dir, 'result.json');
      const rf = this.o.runs.readable(dir, 'result.json');
      if (r && rf) writeJsonAtomic(rf, { ...r, stopped: true });
      job.state = 'exited';
      this.o.log(`run ${job.name}: kept as stopped at step ${step}`);
    });
  }

  /** Sends SIGTERM to a run this server started; false when there is none running. */
  stop(name: string): boolean {
    const job = this.jobs.get(name);
    if (!job || job.state !== 'running' || !job.proc) return false;
    job.stopping = true;
    job.proc.kill('SIGTERM');
    return true;
  }

  killAll(): void {
    for (const j of this.jobs.values()) if (j.proc) j.proc.kill('SIGTERM');
  }
}
