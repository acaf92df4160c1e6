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

/** The kernels' builds: the plain SIMD128 one and the relaxed-SIMD one. */
export const VARIANTS = [
  { out: 'kernels.wasm', extra: [] },
  { out: 'kernels-relaxed.wasm', extra: ['--enable', 'relaxed-simd'] },
];

/**
 * Compiles assembly/kernels.ts into `outDir` (each variant of VARIANTS, or those named in `only`), with the
 * WebAssembly text beside each when `wat`; first writes the generated kernel-table files unless `generate` is false
 * (a test compiling beside other tests that read them). Throws with the compiler's message on an error.
 * @param {{ outDir?: string, wat?: boolean, only?: string[] | null, generate?: boolean }} [opts]
 * @returns {Promise<string[]>} the files written
 */
export async function buildWasm({ outDir = join(root, 'build', 'wasm'), wat = false, only = null, generate = true } = {}) {
  mkdirSync(outDir, { recursive: true });
  if (generate) await writeGeneratedFiles(root);
  const { KERNEL_TABLE } = await loadKernelTable(root);
  const common = [
    'assembly/kernels.ts',
    '--runtime', 'stub',
    '-O3', '--noAssert',
    '--importMemory', '--sharedMemory',
    '--initialMemory', '1', '--maximumMemory', String(KERNEL_TABLE.wasmMaxPages),
    '--enable', 'simd', '--enable', 'threads',
    '--baseDir', root,
  ];
  const written = [];
  for (const v of VARIANTS) {
    if (only && !only.includes(v.out)) continue;
    const args = [...common, ...v.extra, '--outFile', join(outDir, v.out)];
    if (wat) args.push('--textFile', join(outDir, v.out.replace('.wasm', '.wat')));
    const { error, stderr } = await main(args);
    if (error) throw new Error(`build-wasm: ${v.out} failed: ${error.message}\n${stderr.toString()}`);
    written.push(join(outDir, v.out));
  }
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    for (const f of await buildWasm({ wat: process.argv.includes('--wat') })) console.log(`build-wasm: wrote ${f.slice(root.length + 1)}`);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
