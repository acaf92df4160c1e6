/**
 * The kernel table (src/engine/kernels/table.ts) is the one declaration of the numbers TypeScript shares with
 * the AssemblyScript and C++ kernels. These tests fail when any of the three drifts from it: the generated
 * files differ from what the generator writes now, a hand-written copy reappears, or a built kernel carries
 * another table's hash.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KERNEL_TABLE, kernelTableHash } from '../src/engine/kernels/table.js';
import { nativeAvailable, loadNativeAddon } from '../src/engine/kernels/native/addon.js';
import { ROOT } from './helpers.js';

interface Gen {
  TABLE_FILE: string;
  generatedFiles(root?: string): Promise<Record<string, string>>;
  staleFiles(root?: string): Promise<string[]>;
}
const gen = (await import(path.join(ROOT, 'tools', 'gen-kernel-table.mjs'))) as Gen;

const read = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

describe('kernel table', () => {
  it('the committed assembly/kernel-table.ts and native/kernel_table.h are what the generator writes from the table', async () => {
    expect(await gen.staleFiles()).toEqual([]);
    const files = await gen.generatedFiles();
    expect(files['assembly/kernel-table.ts']).toContain(`export const ACT_LEAKY: i32 = ${KERNEL_TABLE.act.leaky};`);
    expect(files['assembly/kernel-table.ts']).toContain(`export const OP_BN_TRAIN: i32 = ${KERNEL_TABLE.wasmOp.bnTrain};`);
    expect(files['native/kernel_table.h']).toContain(`A_SIGMOID = ${KERNEL_TABLE.act.sigmoid}`);
    expect(files['native/kernel_table.h']).toContain(`constexpr int kChannelBlock = ${KERNEL_TABLE.nativeChannelBlock};`);
  });

  it('a change to the table makes both generated files stale (the check can fail)', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'kt-'));
    try {
      for (const rel of [gen.TABLE_FILE, 'assembly/kernel-table.ts', 'native/kernel_table.h']) {
        mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
        copyFileSync(path.join(ROOT, rel), path.join(tmp, rel));
      }
      expect(await gen.staleFiles(tmp)).toEqual([]);
      const table = read(gen.TABLE_FILE);
      const changed = table.replace('tanh: 3, sigmoid: 4', 'tanh: 4, sigmoid: 3');
      expect(changed).not.toBe(table);
      writeFileSync(path.join(tmp, gen.TABLE_FILE), changed);
      expect(await gen.staleFiles(tmp)).toEqual(['assembly/kernel-table.ts', 'native/kernel_table.h']);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('no hand-written copy of the table is left in the kernels or their TypeScript sides', () => {
    const as = read('assembly/kernels.ts');
    expect(as).not.toMatch(/const\s+(OP|ACT|CTRL|ERR)_\w+\s*:\s*i32\s*=/);
    expect(as).toMatch(/from '\.\/kernel-table'/);
    const cc = read('native/latentlab.cc');
    expect(cc).not.toMatch(/\b(A_NONE|A_RELU|CONV_FWD|LAYOUT_ANY|ADAM_SIGN)\s*=\s*\d/);
    expect(cc).not.toMatch(/kB\s*=\s*16/);
    expect(cc).toContain('#include "kernel_table.h"');
    const dir = path.join(ROOT, 'src', 'engine', 'kernels');
    const tsFiles = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && f !== 'table.ts');
    for (const f of tsFiles) {
      const src = readFileSync(path.join(dir, f), 'utf8');
      expect(src, f).not.toMatch(/none:\s*0\s*,\s*relu:\s*1/);
      expect(src, f).not.toMatch(/OP_\w+\s*=\s*\d/);
      expect(src, f).not.toMatch(/channelBlock\s*=\s*\d/);
      expect(src, f).not.toMatch(/MEMORY_MAX_PAGES\s*=\s*\d/);
    }
    expect(read('tools/build-wasm.mjs')).not.toMatch(/MAX_PAGES\s*=\s*\d/);
  });

  it('the built wasm module carries the table hash', async () => {
    const bytes = readFileSync(path.join(ROOT, 'build', 'wasm', 'kernels.wasm'));
    const memory = new WebAssembly.Memory({ initial: 2, maximum: KERNEL_TABLE.wasmMaxPages, shared: true });
    const inst = await WebAssembly.instantiate(bytes, { env: { memory, abort: () => { throw new Error('abort'); } } });
    const hash = (inst.instance.exports.tableHash as () => number)() >>> 0;
    expect(hash).toBe(kernelTableHash());
  });

  it.runIf(nativeAvailable())('the built native addon carries the table hash', () => {
    expect(loadNativeAddon().info().tableHash).toBe(kernelTableHash());
  });

  it('the hash changes with any entry', () => {
    const h = kernelTableHash();
    expect(kernelTableHash({ ...KERNEL_TABLE, nativeChannelBlock: 8 })).not.toBe(h);
    expect(kernelTableHash({ ...KERNEL_TABLE, act: { ...KERNEL_TABLE.act, relu: 5 } })).not.toBe(h);
  });
});
