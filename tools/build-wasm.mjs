#!/usr/bin/env node
// Builds the AssemblyScript kernels into build/wasm/kernels.wasm (SIMD128) and
// build/wasm/kernels-relaxed.wasm (SIMD128 + relaxed-SIMD FMA). Needs only the npm `assemblyscript` package.
// First writes assembly/kernel-table.ts from the kernel table (tools/gen-kernel-table.mjs).
import { main } from 'assemblyscript/asc';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKernelTable, writeGeneratedFiles } from './gen-kernel-table.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'build', 'wasm');
mkdirSync(outDir, { recursive: true });

await writeGeneratedFiles(root);
const { KERNEL_TABLE } = await loadKernelTable(root);
const MAX_PAGES = KERNEL_TABLE.wasmMaxPages;

const common = [
  'assembly/kernels.ts',
  '--runtime', 'stub',
  '-O3', '--noAssert',
  '--importMemory', '--sharedMemory',
  '--initialMemory', '1', '--maximumMemory', String(MAX_PAGES),
  '--enable', 'simd', '--enable', 'threads',
  '--baseDir', root,
];

const variants = [
  { out: 'kernels.wasm', extra: [] },
  { out: 'kernels-relaxed.wasm', extra: ['--enable', 'relaxed-simd'] },
];

for (const v of variants) {
  const args = [...common, ...v.extra, '--outFile', join(outDir, v.out)];
  if (process.argv.includes('--wat')) args.push('--textFile', join(outDir, v.out.replace('.wasm', '.wat')));
  const { error, stderr } = await main(args);
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: ${v.out} failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`build-wasm: wrote build/wasm/${v.out}`);
}
