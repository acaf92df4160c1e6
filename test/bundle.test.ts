/**
 * The browser-safe entry: `src/index.ts` bundles for the browser with nothing external and no
 * node: module anywhere in its import graph; the bundle runs (a tiny model forward pass).
 */
import { describe, expect, it } from 'vitest';
import * as esbuild from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

describe('browser bundle of src/index.ts', () => {
  it('bundles for platform browser without node: modules and runs', async () => {
    const r = await esbuild.build({
      entryPoints: ['src/index.ts'], bundle: true, platform: 'browser', format: 'esm',
      write: false, metafile: true, logLevel: 'silent', target: 'es2022',
    });
    expect(r.errors).toEqual([]);
    const inputs = Object.keys(r.metafile.inputs);
    const nodeish = inputs.filter((f) => f.startsWith('node:') || /(^|\/)(fs|path|os|crypto|zlib|worker_threads)$/.test(f));
    expect(nodeish).toEqual([]);
    // none of the Node-only modules are reachable
    for (const f of ['src/lab/data/idx.ts', 'src/lab/data/datasets.ts', 'src/lab/run/run.ts', 'src/lab/train/train.ts', 'src/viz/node.ts', 'src/node-backends.ts'])
      expect(inputs, f).not.toContain(f);
    const js = r.outputFiles[0]!.text;
    expect(js).not.toMatch(/from\s*["']node:/);
    expect(js).not.toMatch(/require\(["'](node:)?(fs|path|os|crypto|zlib|worker_threads)["']\)/);

    // and the bundle works
    const dir = mkdtempSync(path.join(os.tmpdir(), 'latentlab-bundle-'));
    try {
      const file = path.join(dir, 'latentlab.browser.mjs');
      writeFileSync(file, js);
      const m = await import(pathToFileURL(file).href);
      expect(Object.keys(m)).toEqual(expect.arrayContaining(['nn', 'optim', 'lr_scheduler', 'data', 'models', 'Tensor', 'mnistFromPixels', 'viz', 'projection', 'metrics']));
      const model = new m.models.AutoEncoder({ latent: 2 });
      const z = model.eval().encode(new Float32Array(2 * 784), 2);
      expect(z.length).toBe(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
