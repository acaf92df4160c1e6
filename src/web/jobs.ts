/** Training runs this server started: `latentlab train` child processes (new or --resume), and Stop (SIGTERM: the trainer checkpoints and marks the run stopped). */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { RunsFolder } from './runs.js';
import type { TrainRequest } from './train-request.js';

export interface Job {
  name: string;
  proc: ChildProcess | null;
  state: 'running' | 'exited';
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

  private launch(name: string, args: string[], testLimit: number | undefined, what: string): Job {
    if (this.o.dataDir) args.push('--data-dir', this.o.dataDir);
    const job: Job = { name, proc: null, state: 'running', stopping: false, exitCode: null, stderr: '', testLimit, startedAt: Date.now() };
    const proc = this.spawnCli(args);
    job.proc = proc;
    this.keepStderr(job, proc);
    proc.on('error', (e) => { job.stderr += `\n${e.message}`; });
    proc.on('exit', (code, signal) => {
      job.exitCode = job.stopping ? 0 : code ?? (signal ? 128 : 1);
      job.proc = null;
      job.state = 'exited';
      // a stopped run keeps its checkpoint at the step it reached (status.json: stopped); Resume continues it
      this.o.log(`run ${name}: ${what} ${job.stopping ? 'stopped (its checkpoint is kept; resume it from the page or with latentlab train --resume)' : code === 0 ? 'finished' : `failed (exit ${code ?? signal})`}`);
    });
    this.jobs.set(name, job);
    this.o.log(`run ${name}: started node ${path.relative(process.cwd(), this.o.cliPath)} ${args.join(' ')}`);
    return job;
  }

  /** Starts `latentlab train --out RUNS/<name> ...`. */
  start(req: TrainRequest): Job {
    return this.launch(req.name, ['train', '--out', this.o.runs.newRunPath(req.name), ...req.args, '--no-pictures'], req.testLimit, 'training');
  }

  /** Continues a stopped run from its checkpoint: `latentlab train --resume DIR` (as from the CLI). */
  resume(name: string, dir: string): Job {
    const before = this.jobs.get(name);
    const args = ['train', '--resume', dir, '--no-pictures'];
    if (before?.testLimit) args.push('--test-limit', String(before.testLimit));
    return this.launch(name, args, before?.testLimit, 'resumed training');
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
