/**
 * Packaging: `npm pack` of the built checkout gives a tarball that installs the way a user installs
 * it (its dependencies from the registry, whatever the npm cache holds) in an empty folder, whose
 * `latentlab` command (--version, summary, a 20-step train, plot) and both entry points work there,
 * type-checked by tsc against the installed declarations, without data, runs, fixtures or build
 * leftovers in the tarball.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.js';
import { buildDist } from './build-helper.js';
import { MNIST_DIR, need } from './requirements.js';

const exec = promisify(execFile);
const npm = (args: string[], cwd: string) => exec('npm', args, { cwd, maxBuffer: 64 << 20, env: { ...process.env, npm_config_update_notifier: 'false' } });

interface PackResult { filename: string; files: { path: string }[] }

describe('npm package', () => {
  let tmp = '', app = '';
  let packed: PackResult;

  beforeAll(async () => {
    buildDist();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'latentlab-pack-'));
    const { stdout } = await npm(['pack', '--json', '--pack-destination', tmp], ROOT);
    packed = (JSON.parse(stdout) as PackResult[])[0]!;
    app = path.join(tmp, 'app');
    await exec('mkdir', [app]);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    // as a user would: dependencies from the registry (an empty npm cache has only what `npm ci` of
    // this checkout fetched, not the packuments a range install needs); @types/node and typescript
    // for the type check of a user's file
    const dev = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies;
    await npm(['install', path.join(tmp, packed.filename), `@types/node@${dev['@types/node']}`, `typescript@${dev.typescript}`,
      '--no-audit', '--no-fund', '--loglevel=error'], app);
  }, 300_000);

  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('holds the entry points, declarations, CLI and wasm kernels, and nothing it should not', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts', 'dist/cli/bin.js', 'dist/cli/main.js', 'build/wasm/kernels.wasm'])
      expect(files, f).toContain(f);
    const bad = files.filter((f) =>
      /-ubyte/.test(f) || /^runs\//.test(f) || /^test\//.test(f) || /(^|\/)fixtures\//.test(f) || /\.tsbuildinfo$/.test(f) ||
      /^native\/build\//.test(f) || /\.(node|o|a)$/.test(f) || /^(src|examples|tools|test-output|node_modules)\//.test(f) || /\.(gz|safetensors)$/.test(f));
    expect(bad).toEqual([]);
    // the native addon ships as sources only and there is no install-time build
    expect(files).toContain('native/binding.gyp');
  });

  it('installs without scripts: no install hooks, the addon is optional', async () => {
    const pkg = JSON.parse((await exec('node', ['-p', 'JSON.stringify(require("./node_modules/latentlab/package.json"))'], { cwd: app })).stdout);
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts?.[s], s).toBeUndefined();
    expect(existsSync(path.join(app, 'node_modules/latentlab/native/build'))).toBe(false);
  });

  const bin = () => path.join(app, 'node_modules/.bin/latentlab');

  it('latentlab --version, --help and summary work from the install', async () => {
    const version = await exec(bin(), ['--version'], { cwd: app });
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
    const help = await exec(bin(), ['--help'], { cwd: app });
    expect(help.stdout).toMatch(/^Usage: latentlab/);
    for (const c of ['train', 'summary', 'encode']) expect(help.stdout).toContain(c);
    const summary = await exec(bin(), ['summary'], { cwd: app });
    expect(summary.stdout).toMatch(/Linear\s+\(-1, 2\)/);   // the study's default: a 2-D latent
    expect(summary.stdout).toMatch(/Total params: [\d,]+/);
  });

  it.skipIf(!need('mnist', 'package.test'))('a 20-step train and plot latent from the install', async () => {
    const r = await exec(bin(), ['train', '--max-steps', '20', '--data-dir', MNIST_DIR, '--out', 'runs/t', '--backend', 'wasm', '--threads', '1',
      '--test-limit', '500', '--no-pictures'], { cwd: app, env: { ...process.env, LATENTLAB_PLAIN_PROGRESS: '1' } });
    expect(r.stderr + r.stdout).toMatch(/test/i);
    const cfg = JSON.parse(readFileSync(path.join(app, 'runs/t/config.json'), 'utf8'));
    expect(cfg.latent).toBe(2);
    expect(statSync(path.join(app, 'runs/t/model.safetensors')).size).toBeGreaterThan(1000);
    await exec(bin(), ['plot', 'latent', 'runs/t', '--out', 'latent.png'], { cwd: app });
    const png = readFileSync(path.join(app, 'latent.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBeGreaterThan(200);   // width from the IHDR chunk
  });

  it('import { nn, models } from "latentlab"; import { train } from "latentlab/node": type-checked by tsc, then run', async () => {
    writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'], outDir: 'out' },
      files: ['use.ts'],
    }));
    writeFileSync(path.join(app, 'use.ts'), [
      "import { nn, models, optim, lr_scheduler, data, Tensor, mnistFromPixels } from 'latentlab';",
      "import { train, openRun, encodeImages, availableBackends, createBackend } from 'latentlab/node';",
      'const m: models.AutoEncoder = new models.AutoEncoder({ latent: 2 }).eval();',
      'const z: Float32Array = m.encode(new Float32Array(784), 1);',
      "const b = await createBackend('wasm', { threads: 1 }); b.dispose?.();",
      'const sgd = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });',
      'const sched = new lr_scheduler.CyclicLR(sgd, { baseLr: 1e-4, maxLr: 1e-2, stepSizeUp: 10 });',
      'console.log(JSON.stringify({ conv: typeof nn.Conv2d, sgd: typeof optim.SGD, lr: sched.getLastLr()[0], dl: typeof data.DataLoader,',
      '  t: typeof Tensor, pre: typeof mnistFromPixels, train: typeof train, open: typeof openRun, enc: typeof encodeImages,',
      '  z: z.length, backends: availableBackends() }));',
    ].join('\n'));
    // a type error in the user's file, or a declaration the file cannot resolve, fails here
    await exec(process.execPath, [path.join(app, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app });
    writeFileSync(path.join(app, 'out/package.json'), JSON.stringify({ type: 'module' }));
    const { stdout } = await exec('node', ['out/use.js'], { cwd: app });
    const r = JSON.parse(stdout);
    expect(r).toMatchObject({ conv: 'function', sgd: 'function', lr: 1e-4, dl: 'function', t: 'function', pre: 'function', train: 'function', open: 'function', enc: 'function', z: 2 });
    expect(r.backends).toEqual(expect.arrayContaining(['reference', 'wasm']));
  });

  it('tsc rejects a wrong use of the installed types (the check above can fail)', async () => {
    writeFileSync(path.join(app, 'bad.ts'), "import { models } from 'latentlab';\nconst n: string = new models.AutoEncoder({ latent: 2 }).encode(new Float32Array(784), 1);\nconsole.log(n);\n");
    writeFileSync(path.join(app, 'tsconfig.bad.json'), JSON.stringify({ extends: './tsconfig.json', files: ['bad.ts'], compilerOptions: { noEmit: true } }));
    const r = await exec(process.execPath, [path.join(app, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.bad.json'], { cwd: app }).then(() => null, (e: { stdout: string }) => e.stdout);
    expect(r).toMatch(/bad\.ts\(2,7\): error TS2322: Type 'Float32Array.*' is not assignable to type 'string'/);
  });

  it('type declarations resolve for both entry points', () => {
    expect(existsSync(path.join(app, 'node_modules/latentlab/dist/index.d.ts'))).toBe(true);
    expect(existsSync(path.join(app, 'node_modules/latentlab/dist/node.d.ts'))).toBe(true);
  });
});
