/**
 * `latentlab data download` and `latentlab data info`.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import {
  DATASET_NAMES, cacheDir, downloadDataset, findDataset, getDataset, locateDataset, readDataset,
  SYSTEM_DATA_DIR, type DatasetDescriptor, type DownloadEvent, type DownloadOptions, type LocatedDataset,
} from '../lab/data/index.js';

interface DownloadCliOptions { dataset: string; dataDir?: string; mirrors?: string; force?: boolean }
interface InfoCliOptions { dataset?: string; dataDir?: string; verify?: boolean; json?: boolean }

function datasetsOf(name: string | undefined): DatasetDescriptor[] {
  if (name === undefined || name === 'all') return DATASET_NAMES.map((n) => getDataset(n));
  return [getDataset(name)];
}

function kib(n: number): string { return (n / 1024).toFixed(0); }

/** Progress reporting: a cli-progress bar on a TTY, plain lines otherwise (on stderr). */
function progressReporter(): { opts: Pick<DownloadOptions, 'onEvent' | 'onProgress'>; stop(): void } {
  const err = process.stderr;
  if (err.isTTY) {
    let bar: cliProgress.SingleBar | null = null;
    const stop = () => { if (bar) { bar.stop(); bar = null; } };
    return {
      stop,
      opts: {
        onEvent(ev: DownloadEvent) {
          if (ev.type === 'connecting') {
            stop();
            err.write(`connecting to ${ev.url}\n`);
          } else if (ev.type === 'start') {
            stop();
            bar = new cliProgress.SingleBar({
              format: `${ev.file} [{bar}] {percentage}% | {kb}/{totalkb} KiB`,
              stream: err, hideCursor: true, clearOnComplete: false,
            }, cliProgress.Presets.shades_classic);
            bar.start(ev.total ?? 0, 0, { kb: '0', totalkb: ev.total !== null ? kib(ev.total) : '?' });
          } else if (ev.type === 'done') {
            stop();
          } else if (ev.type === 'failed') {
            stop();
            err.write(`  ${ev.url}: ${ev.reason}\n`);
          } else if (ev.type === 'present') {
            err.write(`${ev.file}: already present, checksum ok\n`);
          }
        },
        onProgress(bytes, total) {
          if (!bar) return;
          if (total === null) bar.setTotal(Math.max(bytes, 1));
          bar.update(bytes, { kb: kib(bytes) });
        },
      },
    };
  }
  return {
    stop() {},
    opts: {
      onEvent(ev: DownloadEvent) {
        if (ev.type === 'connecting') err.write(`downloading ${ev.url}\n`);
        else if (ev.type === 'start') err.write(`  ${ev.total !== null ? `${kib(ev.total)} KiB` : 'size unknown'}\n`);
        else if (ev.type === 'done') err.write(`  saved ${ev.path} (${kib(ev.bytes)} KiB, checksum ok)\n`);
        else if (ev.type === 'failed') err.write(`  ${ev.url}: ${ev.reason}; trying the next mirror\n`);
        else if (ev.type === 'present') err.write(`${ev.file}: already present, checksum ok\n`);
      },
    },
  };
}

async function downloadCommand(o: DownloadCliOptions): Promise<void> {
  const mirrors = o.mirrors ? o.mirrors.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  for (const d of datasetsOf(o.dataset)) {
    const rep = progressReporter();
    try {
      let dir: string;
      let how: string;
      if (o.dataDir !== undefined) {
        // One subfolder per dataset: MNIST and Fashion-MNIST have the same file names.
        dir = resolve(o.dataDir, d.name);
        await downloadDataset(d, dir, { ...rep.opts, mirrors });
        how = 'data-dir';
      } else if (o.force) {
        dir = cacheDir(d);
        await downloadDataset(d, dir, { ...rep.opts, mirrors });
        how = 'cache';
      } else {
        const loc = await findDataset(d, { ...rep.opts, mirrors });
        dir = loc.dir;
        how = loc.source === 'download' ? 'downloaded to the cache' : loc.source;
      }
      rep.stop();
      process.stdout.write(`${d.name}: ${dir} (${how})\n`);
    } finally {
      rep.stop();
    }
  }
}

interface InfoRow {
  dataset: string;
  found: boolean;
  dir?: string;
  source?: string;
  train?: number;
  test?: number;
  shape?: string;
  md5?: 'ok';
  error?: string;
}

function infoOne(d: DatasetDescriptor, o: InfoCliOptions): InfoRow {
  let loc: LocatedDataset | null;
  try {
    loc = locateDataset(d, { dataDir: o.dataDir });
  } catch (e) {
    return { dataset: d.name, found: false, error: (e as Error).message };
  }
  if (!loc) {
    return {
      dataset: d.name, found: false,
      error: `not found in ${process.env.LATENTLAB_DATA ? '$LATENTLAB_DATA, ' : ''}${cacheDir(d)} or ${join(SYSTEM_DATA_DIR, d.name)} (run: latentlab data download --dataset ${d.name})`,
    };
  }
  try {
    const ds = readDataset(loc, { verify: o.verify });
    return {
      dataset: d.name, found: true, dir: loc.dir, source: loc.source, train: ds.train.n, test: ds.test.n,
      shape: `${ds.train.rows}x${ds.train.cols}`, ...(o.verify ? { md5: 'ok' as const } : {}),
    };
  } catch (e) {
    return { dataset: d.name, found: true, dir: loc.dir, source: loc.source, error: (e as Error).message };
  }
}

function infoCommand(o: InfoCliOptions): void {
  const rows = datasetsOf(o.dataset).map((d) => infoOne(d, o));
  // An explicitly asked-for dataset that is missing or broken is a failure (a one-line error).
  if (o.dataset !== undefined && o.dataset !== 'all' && rows[0].error) {
    const r = rows[0];
    throw new Error(`${r.dataset}: ${r.found ? `${r.dir} (${r.source}): ` : ''}${r.error}`);
  }
  // So is a --data-dir where no dataset could be read.
  if (o.dataDir !== undefined && rows.every((r) => r.error)) {
    const r = rows[0];
    throw new Error(`${r.dataset}: ${r.found ? `${r.dir} (${r.source}): ` : ''}${r.error}`);
  }
  if (o.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  for (const r of rows) {
    if (r.error) process.stdout.write(`${r.dataset}: ${r.found ? `${r.dir} (${r.source}): ` : ''}${r.error}\n`);
    else process.stdout.write(`${r.dataset}: ${r.dir} (${r.source}) train ${r.train}, test ${r.test}, ${r.shape}${r.md5 ? ', MD5 ok' : ''}\n`);
  }
}

export function register(program: Command): void {
  const data = program.command('data').description('Find, download and inspect the datasets (MNIST, Fashion-MNIST)');
  const names = [...DATASET_NAMES, 'all'].join('|');

  data.command('download')
    .description('Download a dataset (into the cache, or DIR/<dataset>/ with --data-dir) unless it is already present; prints where the files are')
    .option('--dataset <name>', `dataset: ${names}`, 'mnist')
    .option('--data-dir <dir>', 'download into DIR/<dataset>/')
    .option('--mirrors <urls>', 'comma-separated mirror base URLs (default $LATENTLAB_MIRRORS, then the built-in list)')
    .option('--force', 'download into the cache even when found elsewhere')
    .action(async (o: DownloadCliOptions) => { await downloadCommand(o); });

  data.command('info')
    .description('Show where each dataset is found and its sample counts')
    .option('--dataset <name>', `dataset: ${names} (default all)`)
    .option('--data-dir <dir>', 'look in this folder (or its <dataset>/ subfolder) only')
    .option('--verify', 'check the MD5 of each file')
    .option('--json', 'print JSON')
    .action((o: InfoCliOptions) => { infoCommand(o); });
}
