#!/usr/bin/env node
// Builds the web explorer's browser code (src/web/app/*.ts) into dist/web/app/ with esbuild's JS API:
// main.js (ES module, the page), worker.js (a classic worker script with the engine and the model) and
// analysis-worker.js (UMAP and k-NN off the page's thread),
// plus index.html, style.css and the wasm kernels (build/wasm/*.wasm, when built). Works offline.
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'web', 'app');
const out = join(root, 'dist', 'web', 'app');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const common = {
  bundle: true, platform: 'browser', target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  sourcemap: true, minify: process.argv.includes('--minify'), logLevel: 'warning', absWorkingDir: root,
  // the engine reads process.env through globalThis when present; nothing Node-only may be bundled
  define: { 'process.env.NODE_ENV': '"production"' },
};
await build({ ...common, entryPoints: [join(src, 'main.ts')], outfile: join(out, 'main.js'), format: 'esm' });
await build({ ...common, entryPoints: [join(src, 'worker.ts')], outfile: join(out, 'worker.js'), format: 'iife' });
await build({ ...common, entryPoints: [join(src, 'analysis-worker.ts')], outfile: join(out, 'analysis-worker.js'), format: 'iife' });
for (const f of ['index.html', 'style.css']) copyFileSync(join(src, f), join(out, f));
const wasm = join(root, 'build', 'wasm');
let copied = 0;
if (existsSync(wasm)) for (const f of readdirSync(wasm)) if (/^kernels(-relaxed)?\.wasm$/.test(f)) { copyFileSync(join(wasm, f), join(out, f)); copied++; }
// "train in the tab" (src/web/app/tab/): a static folder of its own, dist/web/tab/, that needs no latentlab
// server (any static server with COOP/COEP headers, e.g. `latentlab serve --static dist/web/tab`)
const tabSrc = join(src, 'tab'), tabOut = join(root, 'dist', 'web', 'tab');
rmSync(tabOut, { recursive: true, force: true });
mkdirSync(tabOut, { recursive: true });
await build({ ...common, entryPoints: [join(tabSrc, 'main.ts')], outfile: join(tabOut, 'main.js'), format: 'esm' });
await build({ ...common, entryPoints: [join(tabSrc, 'worker.ts')], outfile: join(tabOut, 'worker.js'), format: 'iife' });
await build({ ...common, entryPoints: [join(tabSrc, 'bench.ts')], outfile: join(tabOut, 'bench.js'), format: 'esm' });
for (const f of ['index.html', 'tab.css', 'bench.html']) if (existsSync(join(tabSrc, f))) copyFileSync(join(tabSrc, f), join(tabOut, f));
if (existsSync(wasm)) for (const f of readdirSync(wasm)) if (/^kernels(-relaxed)?\.wasm$/.test(f)) copyFileSync(join(wasm, f), join(tabOut, f));
console.log(`build-web: wrote dist/web/app/ (main.js, worker.js, analysis-worker.js, index.html, style.css${copied ? `, ${copied} wasm file${copied > 1 ? 's' : ''}` : '; no wasm kernels yet: npm run build:wasm'}) and dist/web/tab/ (train in the tab)`);
