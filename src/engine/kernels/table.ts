/**
 * The kernel table: every number that the TypeScript side shares with the compiled kernels, declared once.
 *
 * `node tools/gen-kernel-table.mjs` writes assembly/kernel-table.ts (AssemblyScript) and
 * native/kernel_table.h (C++) from this object; `npm run build:wasm` and `npm run build:native` run it
 * first, and test/kernel-table.test.ts fails when the committed files differ from what it writes. Each built
 * kernel also reports the table's hash (wasm export `tableHash`, native `info().tableHash`), and the backends
 * refuse a binary built from another table.
 *
 * This file imports nothing: the generator loads it on its own.
 */
export const KERNEL_TABLE = {
  /** Activation kinds (Act['kind']) as the kernels number them. */
  act: { none: 0, relu: 1, leaky: 2, tanh: 3, sigmoid: 4 },
  /** wasm: the op codes of `run(ctrl, tid)`; workers leave their loop on `exit`. */
  wasmOp: {
    gemm: 1, convFwd: 2, convBwdData: 3, convBwdWeight: 4, reduceDw: 5,
    bnTrain: 6, affine: 7, bnBwd: 8, act: 9, actBwd: 10, channelSums: 11, sgdMomentum: 12, adam: 13, mse: 14, exit: -1,
  },
  /**
   * wasm: the control block, in 32-bit words. generation (bumped to wake the workers), pending (workers
   * still running), op, threads of this call, scratch base and per-thread stride (bytes), the op's
   * arguments from `arg0` on, the next image of a loop the threads share (`next`, zeroed before every
   * call: a thread takes images one at a time, so a descheduled thread does not hold the others up),
   * an error flag, and the block's size.
   */
  wasmCtrl: { generation: 0, pending: 1, op: 2, threads: 3, scratchBase: 4, scratchStride: 5, arg0: 6, next: 62, error: 63, words: 64 },
  /** wasm: error codes a kernel writes into the control block's error word. */
  wasmError: { none: 0, workerFailed: 1, scratchOverflow: 2 },
  /** wasm: the most 64 KiB pages the shared memory may grow to (2 GiB). */
  wasmMaxPages: 32768,
  /** native: the Context's convolution layout policy (NativeLayout). */
  nativeLayout: { any: 0, plain: 1, tuned: 2, auto: 3 },
  /** native: convImpl's convolution kinds. */
  nativeConvKind: { fwd: 0, bwdData: 1, bwdWeight: 2 },
  /** native: channels per block of the blocked activation layout nChw16c (Backend.channelBlock). */
  nativeChannelBlock: 16,
  /**
   * Products of fewer multiply-adds than this run on the calling thread, on every backend: the model's
   * Linear(3136, 2) / Linear(2, 3136) and their gradients (0.4 MFLOP) took 0.01-0.07 ms on one native
   * thread and 0.2-0.3 ms on two on a loaded machine (the parallel region waits for the second thread),
   * 0.1-0.4 ms on one wasm thread and 0.5-0.9 ms on two.
   */
  gemmSerialMacs: 1048576,
  /** native and wasm: the order of adamStep's float32 scalars (AdamStepScalars). */
  adamScalars: ['sign', 'beta1', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'eps', 'weightDecay', 'decay', 'negStepSize', 'bc2Sqrt'],
} as const;

/**
 * 32-bit FNV-1a of the table's JSON: the version the built kernels carry. The generator computes it with
 * this same function.
 */
export function kernelTableHash(table: unknown = KERNEL_TABLE): number {
  const s = JSON.stringify(table);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
