/** `latentlab serve [RUNS_DIR]`: the web explorer of runs (see src/web/server.ts). */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { isLoopbackHost } from '../web/security.js';
import { startServer } from '../web/server.js';
import { startStaticServer } from '../web/static-server.js';
import { int } from './options.js';

export function register(program: Command): void {
  program.command('serve')
    .description('the web explorer: runs, the latent plane (decoded in the browser), a draw pad, live training (default runs/ on 127.0.0.1:5173)')
    .argument('[runs_dir]', 'folder of run folders', 'runs')
    .option('--port <n>', 'port (0: any free port)', int('--port'), 5173)
    .option('--host <addr>', 'address to listen on (127.0.0.1: this machine only)', '127.0.0.1')
    .option('--allowed-host <name>', 'a host name the page may be reached by, besides the address and localhost (repeatable)', (v: string, acc: string[]) => acc.concat(v), [] as string[])
    .option('--data-dir <dir>', 'MNIST folder for runs started from the page (else $LATENTLAB_DATA, the cache, ...)')
    .option('--max-jobs <n>', 'training runs at once', int('--max-jobs'), 1)
    .option('--static <dir>', 'serve a built static page instead (e.g. dist/web/tab, train in the tab) with COOP/COEP headers')
    .action(async (runsDir: string, o: { port: number; host: string; allowedHost: string[]; dataDir?: string; maxJobs: number; static?: string }) => {
      if (o.port < 0 || o.port > 65535) throw new Error(`--port: expected 0-65535, got ${o.port}`);
      if (o.static !== undefined) {
        const st = await startStaticServer({ dir: o.static, port: o.port, host: o.host });
        process.stdout.write(`latentlab static page: ${st.url} (${path.resolve(o.static)}); Ctrl-C stops\n`);
        await new Promise<void>((resolve) => {
          const stop = (): void => { void st.close().then(resolve); };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        return;
      }
      if (o.maxJobs < 1) throw new Error(`--max-jobs: expected a positive integer, got ${o.maxJobs}`);
      for (const h of o.allowedHost) if (!/^[A-Za-z0-9.:[\]-]+$/.test(h)) throw new Error(`--allowed-host: expected a host name or address, got '${h}'`);
      mkdirSync(runsDir, { recursive: true });
      const s = await startServer({
        runsDir, port: o.port, host: o.host, allowedHosts: o.allowedHost, maxJobs: o.maxJobs,
        dataDir: o.dataDir ? path.resolve(o.dataDir) : undefined,
        log: (l) => process.stderr.write(`${l}\n`),
      });
      if (!isLoopbackHost(o.host))
        process.stderr.write(`warning: listening on ${o.host}: anyone who can reach it can read the runs and start training\n`);
      process.stdout.write(`latentlab explorer: ${s.url} (runs in ${path.resolve(runsDir)}); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => { void s.close().then(resolve); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
