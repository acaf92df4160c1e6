// `npm run demo`: a short real training run that writes its run folder and pictures to runs/demo:
// one epoch of the study's supervised latent map (each digit pinned to a point of the plane), without
// the activation after the latent so that every target is reachable (about a minute on 2 cores).
// Data is found as latentlab always finds it; beside a checkout that has ../shared/data/mnist (as in
// this project's CI) that folder is used when $LATENTLAB_DATA is not set.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const env = { ...process.env };
const shared = path.resolve('../shared/data/mnist');
if (!env.LATENTLAB_DATA && existsSync(shared)) env.LATENTLAB_DATA = shared;
const args = ['dist/cli/main.js', 'train', '--supervised', '--latent-activation', 'none', '--epochs', '1', '--snapshot-every', '50',
  '--out', 'runs/demo', '--overwrite', ...process.argv.slice(2)];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', env });
process.exit(r.status ?? 1);
