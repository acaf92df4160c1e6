/**
 * The wasm backend: AssemblyScript SIMD128 kernels (assembly/kernels.ts) on a shared WebAssembly.Memory,
 * multithreaded over workers that wait on a control block in that memory (Atomics.wait/notify, no message
 * per call). This file has no `node:` imports: it is the browser-friendly loader; node.ts wires it up for Node.
 */
import { checkBnInPlace, type Act, type AdamStepScalars, type Backend, type ConvGeom, type Layout } from '../index.js';
import { KERNEL_TABLE, kernelTableHash } from '../table.js';
import { WORKER_SOURCE } from './worker-source.js';

/** The most pages the shared memory may grow to (the kernel table's; tools/build-wasm.mjs builds with it). */
export const MEMORY_MAX_PAGES = KERNEL_TABLE.wasmMaxPages;
const PAGE = 65536;
/** Below this the module's static data lives (AssemblyScript puts it at 1024). */
const HEAP_BASE = 65536;
/** Readable bytes kept past the end of the heap (kernels may read a few lanes past an array's end). */
const SLACK = 65536;

const OP = KERNEL_TABLE.wasmOp;
const CTRL = KERNEL_TABLE.wasmCtrl;
const ERR = KERNEL_TABLE.wasmError;
const ARG0 = CTRL.arg0;
const ACT_CODE: Record<Act['kind'], number> = KERNEL_TABLE.act;

/** What the backend needs from a worker, in Node or in a browser. */
export interface WorkerPort {
  postMessage(m: unknown): void;
  onMessage(cb: (m: unknown) => void): void;
  onError(cb: (e: unknown) => void): void;
  terminate(): void;
  /** Called once the worker is running: lets the host exit while the worker waits (Node's unref). */
  unref?(): void;
}
export type WorkerFactory = (code: string) => WorkerPort;

export type WasmSource = BufferSource | WebAssembly.Module | URL | string;

export interface WasmBackendOptions {
  /** The plain SIMD128 build (kernels.wasm): bytes, a compiled module, or a URL to fetch. */
  wasm: WasmSource;
  /** The relaxed-SIMD build (kernels-relaxed.wasm), used when the engine validates it. */
  relaxedWasm?: WasmSource;
  /** Threads, the calling one included; default navigator.hardwareConcurrency (or 1). */
  threads?: number;
  /** Starts a worker from source; default a Blob-URL Web Worker. */
  createWorker?: WorkerFactory;
  /** Whether the calling thread may block in Atomics.wait (false on a browser's main thread). */
  canBlock?: boolean;
  /** Spin iterations before a worker (or the caller) blocks. */
  spin?: number;
  /** Use the plain build even if relaxed SIMD validates. */
  noRelaxed?: boolean;
}

async function toBytesOrModule(src: WasmSource): Promise<BufferSource | WebAssembly.Module> {
  if (src instanceof WebAssembly.Module) return src;
  if (typeof src === 'string' || src instanceof URL) {
    const res = await fetch(src);
    if (!res.ok) throw new Error(`cannot fetch ${String(src)}: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  return src;
}

function browserWorker(code: string): WorkerPort {
  const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
  const w = new Worker(url);
  return {
    postMessage: m => w.postMessage(m),
    onMessage: cb => w.addEventListener('message', e => cb((e as MessageEvent).data)),
    onError: cb => w.addEventListener('error', e => cb(e)),
    terminate: () => { w.terminate(); URL.revokeObjectURL(url); },
  };
}

/** Loads the module (relaxed if it validates) and starts the workers. */
export async function createWasmBackendFrom(opts: WasmBackendOptions): Promise<WasmBackend> {
  let module: WebAssembly.Module | undefined;
  let relaxed = false;
  if (opts.relaxedWasm !== undefined && !opts.noRelaxed) {
    try {
      const r = await toBytesOrModule(opts.relaxedWasm);
      if (r instanceof WebAssembly.Module) { module = r; relaxed = true; }
      else if (WebAssembly.validate(r)) { module = await WebAssembly.compile(r); relaxed = true; }
    } catch { module = undefined; relaxed = false; }
  }
  if (!module) {
    const p = await toBytesOrModule(opts.wasm);
    module = p instanceof WebAssembly.Module ? p : await WebAssembly.compile(p);
  }
  const hc = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  const threads = Math.max(1, Math.floor(opts.threads ?? hc ?? 1));
  const b = new WasmBackend(module, relaxed, threads, opts);
  await b.startWorkers(opts.createWorker ?? browserWorker);
  return b;
}

interface Staged { arr: Float32Array; ptr: number; out: boolean }

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly batchNormInPlace = true;
  readonly threads: number;
  /** Whether the relaxed-SIMD (FMA) build is running. */
  readonly relaxed: boolean;
  readonly memory: WebAssembly.Memory;

  private readonly module: WebAssembly.Module;
  private readonly runFn: (ctrl: number, tid: number) => void;
  private readonly scratchBytesFn: (ctrl: number) => number;
  private readonly buffers = new Set<ArrayBufferLike>();
  private top = HEAP_BASE;
  private readonly live = new Map<number, number>();
  private readonly freeLists = new Map<number, number[]>();
  private readonly ctrlOff: number;
  private readonly ci: Int32Array;
  private readonly cf: Float32Array;
  private scratchOff = 0;
  private scratchStride = 0;
  private workers: WorkerPort[] = [];
  private readonly canBlock: boolean;
  private readonly spin: number;
  private readonly staged: Staged[] = [];
  private disposed = false;
  private hold = false;

  constructor(module: WebAssembly.Module, relaxed: boolean, threads: number, opts: Partial<WasmBackendOptions> = {}) {
    this.module = module;
    this.relaxed = relaxed;
    this.threads = threads;
    this.memory = new WebAssembly.Memory({ initial: 256, maximum: MEMORY_MAX_PAGES, shared: true });
    this.buffers.add(this.memory.buffer);
    const inst = new WebAssembly.Instance(module, {
      env: { memory: this.memory, abort: () => { throw new Error('wasm abort'); } },
    });
    const hash = (inst.exports.tableHash as (() => number) | undefined)?.() ?? 0;
    if (hash >>> 0 !== kernelTableHash())
      throw new Error('wasm kernels: built from another kernel table (src/engine/kernels/table.ts): run npm run build:wasm');
    this.runFn = inst.exports.run as (ctrl: number, tid: number) => void;
    this.scratchBytesFn = inst.exports.scratchBytes as (ctrl: number) => number;
    this.ctrlOff = this.rawAlloc(CTRL.words * 4);
    this.ci = new Int32Array(this.memory.buffer, this.ctrlOff, CTRL.words);
    this.cf = new Float32Array(this.memory.buffer, this.ctrlOff, CTRL.words);
    this.canBlock = opts.canBlock ?? typeof (globalThis as { window?: unknown }).window === 'undefined';
    this.spin = opts.spin ?? 20000;
  }

  /** Starts threads-1 workers on the shared memory and waits until they are ready. */
  async startWorkers(factory: WorkerFactory): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let t = 1; t < this.threads; t++) {
      const w = factory(WORKER_SOURCE);
      this.workers.push(w);
      ready.push(new Promise<void>((resolve, reject) => {
        w.onMessage(m => {
          const msg = m as { ready?: boolean; error?: string };
          if (msg.ready) resolve(); else reject(new Error(`wasm worker: ${msg.error}`));
        });
        w.onError(e => reject(e instanceof Error ? e : new Error(String(e))));
      }));
      w.postMessage({ module: this.module, memory: this.memory, ctrl: this.ctrlOff, tid: t, spin: this.spin });
    }
    try { await Promise.all(ready); } catch (e) { this.dispose(); throw e; }
    for (const w of this.workers) w.unref?.();
  }

  // ------------------------------------------------------------------------------------------ memory

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    const pages = Math.ceil((bytes - have) / PAGE);
    const grow = Math.max(pages, Math.min(Math.ceil(have / PAGE / 4), MEMORY_MAX_PAGES - have / PAGE));
    this.memory.grow(Math.max(pages, grow));
    this.buffers.add(this.memory.buffer);
  }

  private rawAlloc(bytes: number): number {
    const size = Math.max(64, Math.ceil(bytes / 64) * 64);
    const fl = this.freeLists.get(size);
    let off: number;
    if (fl && fl.length) off = fl.pop()!;
    else {
      off = this.top;
      this.ensure(off + size + SLACK);
      this.top += size;
    }
    this.live.set(off, size);
    return off;
  }

  private rawFree(off: number): void {
    const size = this.live.get(off);
    if (size === undefined) throw new Error('wasm backend: free of an array it did not allocate');
    this.live.delete(off);
    if (off + size === this.top) { this.top = off; return; }
    let fl = this.freeLists.get(size);
    if (!fl) this.freeLists.set(size, fl = []);
    fl.push(off);
  }

  alloc(n: number): Float32Array {
    const off = this.rawAlloc(n * 4);
    // the shared memory's buffer object may change without a grow here (seen under vitest): the
    // one the array views is registered, so that owns() and free() know it
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    const a = new Float32Array(buf, off, n);
    a.fill(0);
    return a;
  }

  free(a: Float32Array): void {
    if (!this.owns(a)) throw new Error('wasm backend: free of an array not in its memory');
    this.rawFree(a.byteOffset);
  }

  /** Whether `a` is a view into this backend's memory. */
  owns(a: Float32Array): boolean {
    return this.buffers.has(a.buffer);
  }

  /** Bytes of wasm memory in use (heap top). */
  get heapBytes(): number { return this.top; }

  /** Bytes of the arrays allocated and not freed (what a leak check counts: freed arrays wait in free lists below the heap top). */
  get liveBytes(): number {
    let t = 0;
    for (const n of this.live.values()) t += n;
    return t;
  }

  /** Makes each thread's scratch hold what the module says the op in the control block needs. */
  private scratch(op: number): void {
    this.ci[CTRL.op] = op;
    const need = Math.ceil((this.scratchBytesFn(this.ctrlOff) + 256) / 64) * 64;
    if (need <= this.scratchStride) return;
    if (this.scratchOff) this.rawFree(this.scratchOff);
    const stride = Math.max(need, Math.ceil(this.scratchStride * 1.25 / 64) * 64);
    this.scratchOff = this.rawAlloc(stride * this.threads);
    this.scratchStride = stride;
    this.ci[CTRL.scratchBase] = this.scratchOff;
    this.ci[CTRL.scratchStride] = stride;
  }

  // -------------------------------------------------------------------------------- staging of arrays

  private ptr(a: Float32Array, n: number, out = false, copyIn = true): number {
    if (this.buffers.has(a.buffer)) return a.byteOffset;
    for (const s of this.staged) if (s.arr === a) { s.out ||= out; return s.ptr; }
    const len = Math.max(n, a.length);
    const p = this.rawAlloc(len * 4);
    if (copyIn || !out) new Float32Array(this.memory.buffer, p, len).set(a.length > len ? a.subarray(0, len) : a);
    this.staged.push({ arr: a, ptr: p, out });
    return p;
  }
  private in(a: Float32Array, n: number): number { return this.ptr(a, n, false, true); }
  private out(a: Float32Array, n: number, copyIn = false): number { return this.ptr(a, n, true, copyIn); }

  private unstage(): void {
    if (this.staged.length === 0) return;
    const buf = this.memory.buffer;
    for (const s of this.staged) {
      if (s.out) s.arr.set(new Float32Array(buf, s.ptr, s.arr.length));
      this.rawFree(s.ptr);
    }
    this.staged.length = 0;
  }

  // ---------------------------------------------------------------------------------------- dispatch

  private exec(op: number, nt: number): void {
    if (this.disposed) throw new Error('wasm backend: used after dispose()');
    const c = this.ci;
    c[CTRL.op] = op; c[CTRL.threads] = nt; c[CTRL.error] = ERR.none; c[CTRL.next] = 0;
    try {
      if (nt <= 1 || this.workers.length === 0) {
        this.runFn(this.ctrlOff, 0);
      } else {
        Atomics.store(c, CTRL.pending, this.workers.length);
        Atomics.add(c, CTRL.generation, 1);
        Atomics.notify(c, CTRL.generation);
        let err: unknown = null;
        try { this.runFn(this.ctrlOff, 0); } catch (e) { err = e; }
        let n = 0;
        for (;;) {
          const p = Atomics.load(c, CTRL.pending);
          if (p === 0) break;
          if (++n > this.spin && this.canBlock) Atomics.wait(c, CTRL.pending, p, 20);
        }
        if (err) throw err;
      }
      const e = Atomics.load(c, CTRL.error);
      if (e === ERR.scratchOverflow) throw new Error(`wasm backend: op ${op} carved more scratch than scratchBytes gave it (assembly/kernels.ts)`);
      if (e) throw new Error('wasm backend: a worker failed');
    } finally {
      if (!this.hold) this.unstage();
    }
  }

  private setI(i: number, v: number): void { this.ci[ARG0 + i] = v; }
  private setF(i: number, v: number): void { this.cf[ARG0 + i] = v; }

  private geom(g: ConvGeom): void {
    const c = this.ci;
    c[ARG0] = g.N; c[ARG0 + 1] = g.C; c[ARG0 + 2] = g.H; c[ARG0 + 3] = g.W; c[ARG0 + 4] = g.K;
    c[ARG0 + 5] = g.R; c[ARG0 + 6] = g.S; c[ARG0 + 7] = g.strideH; c[ARG0 + 8] = g.strideW;
    c[ARG0 + 9] = g.padH; c[ARG0 + 10] = g.padW; c[ARG0 + 11] = g.OH; c[ARG0 + 12] = g.OW;
  }

  private nt(work: number, parts: number, minWork = 1 << 15): number {
    if (work < minWork) return 1;
    return Math.max(1, Math.min(this.threads, parts));
  }

  // ----------------------------------------------------------------------------------------- kernels

  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
       A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void {
    if (M === 0 || N === 0) return;
    this.setI(0, transA ? 1 : 0); this.setI(1, transB ? 1 : 0);
    this.setI(2, M); this.setI(3, N); this.setI(4, K); this.setF(5, alpha);
    this.scratch(OP.gemm);
    this.setI(6, this.in(A, M * K)); this.setI(7, this.in(B, K * N));
    this.setF(8, beta); this.setI(9, this.out(C, M * N, beta !== 0));
    this.exec(OP.gemm, this.nt(M * N * K, Math.max(Math.ceil(N / 8), Math.ceil(M / 6)), KERNEL_TABLE.gemmSerialMacs));
  }

  conv2d(g: ConvGeom, x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array): void {
    const { N, C, H, W, K, R, S, OH, OW } = g;
    const CRS = C * R * S, P = OH * OW;
    this.geom(g);
    this.scratch(OP.convFwd);
    this.setI(13, this.in(x, N * C * H * W)); this.setI(14, this.in(w, K * CRS));
    this.setI(15, bias ? this.in(bias, K) : 0); this.setI(16, this.out(y, N * K * P));
    this.exec(OP.convFwd, this.nt(N * K * P * CRS, N));
  }

  conv2dBackwardData(g: ConvGeom, dy: Float32Array, w: Float32Array, dx: Float32Array): void {
    const { N, C, H, W, K, R, S, OH, OW } = g;
    const CRS = C * R * S, P = OH * OW;
    this.geom(g);
    this.scratch(OP.convBwdData);
    this.setI(13, this.in(dy, N * K * P)); this.setI(14, this.in(w, K * CRS)); this.setI(15, this.out(dx, N * C * H * W));
    this.exec(OP.convBwdData, this.nt(N * K * P * CRS, N));
  }

  conv2dBackwardWeight(g: ConvGeom, x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null): void {
    const { N, C, H, W, K, R, S, OH, OW } = g;
    const CRS = C * R * S, P = OH * OW;
    this.geom(g);
    this.scratch(OP.convBwdWeight);
    const px = this.in(x, N * C * H * W), pdy = this.in(dy, N * K * P);
    this.setI(13, px); this.setI(14, pdy);
    const pdw = this.out(dw, K * CRS), pdb = db ? this.out(db, K) : 0;
    const nt = this.nt(N * K * P * CRS, N);
    this.hold = true;
    try { this.exec(OP.convBwdWeight, nt); } catch (e) { this.hold = false; this.unstage(); throw e; }
    this.hold = false;
    this.setI(0, N); this.setI(1, K); this.setI(2, CRS); this.setI(3, P); this.setI(4, Math.min(nt, N));
    this.setI(5, pdy); this.setI(6, pdw); this.setI(7, pdb); this.setI(8, C); this.setI(9, R); this.setI(10, S);
    this.exec(OP.reduceDw, this.nt(K * CRS + N * K * P, Math.max(1, K)));
  }

  batchNormTrain(N: number, C: number, HW: number, x: Float32Array, gamma: Float32Array, beta: Float32Array,
                 eps: number, act: Act, y: Float32Array, mean: Float32Array, invstd: Float32Array,
                 _layout?: Layout, variance?: Float32Array): void {
    const n = N * C * HW;
    this.setI(0, N); this.setI(1, C); this.setI(2, HW);
    this.scratch(OP.bnTrain);
    this.setI(3, this.in(x, n)); this.setI(4, this.in(gamma, C)); this.setI(5, this.in(beta, C));
    this.setF(6, eps); this.setI(7, ACT_CODE[act.kind]); this.setF(8, act.slope);
    this.setI(9, this.out(y, n)); this.setI(10, this.out(mean, C)); this.setI(11, this.out(invstd, C));
    this.setI(12, variance ? this.out(variance, C) : 0);
    this.exec(OP.bnTrain, this.nt(n, C));
  }

  channelAffine(N: number, C: number, HW: number, x: Float32Array, scale: Float32Array, shift: Float32Array,
                act: Act, y: Float32Array): void {
    const n = N * C * HW;
    this.setI(0, N); this.setI(1, C); this.setI(2, HW);
    this.setI(3, this.in(x, n)); this.setI(4, this.in(scale, C)); this.setI(5, this.in(shift, C));
    this.setI(6, ACT_CODE[act.kind]); this.setF(7, act.slope); this.setI(8, this.out(y, n));
    this.exec(OP.affine, this.nt(n, N * C));
  }

  batchNormBackward(N: number, C: number, HW: number, x: Float32Array | null, y: Float32Array, dy: Float32Array,
                    gamma: Float32Array, mean: Float32Array, invstd: Float32Array, act: Act,
                    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, _layout?: Layout, beta?: Float32Array): void {
    const n = N * C * HW;
    this.setI(0, N); this.setI(1, C); this.setI(2, HW);
    this.scratch(OP.bnBwd);
    checkBnInPlace(x, act, beta);
    // x absent (0): the forward wrote y over x, and the kernel recovers x from y
    this.setI(3, x ? this.in(x, n) : 0); this.setI(4, this.in(y, n)); this.setI(5, this.in(dy, n));
    this.setI(6, this.in(gamma, C)); this.setI(7, this.in(mean, C)); this.setI(8, this.in(invstd, C));
    this.setI(9, ACT_CODE[act.kind]); this.setF(10, act.slope);
    this.setI(11, this.out(dx, n)); this.setI(12, this.out(dgamma, C)); this.setI(13, this.out(dbeta, C));
    // the forward's beta: the activation's sign is then recomputed from x (y is not read)
    this.setI(14, beta ? this.in(beta, C) : 0);
    this.exec(OP.bnBwd, this.nt(n, C));
  }

  channelSums(N: number, C: number, HW: number, x: Float32Array, out: Float32Array, layout?: Layout): void {
    if (layout === 'blocked') throw new Error('the wasm backend has no blocked layout');
    const n = N * C * HW;
    this.setI(0, N); this.setI(1, C); this.setI(2, HW);
    this.setI(3, this.in(x, n)); this.setI(4, this.out(out, C));
    this.exec(OP.channelSums, this.nt(n, C));
  }

  /** SGD with momentum on one parameter tensor (assembly/kernels.ts opSgdMomentum): the arithmetic of optim/sgd.ts. */
  sgdMomentumStep(n: number, data: Float32Array, grad: Float32Array, buf: Float32Array, momentum: number,
                  gradScale: number, negLr: number): void {
    this.setI(0, n); this.setI(1, this.out(data, n, true)); this.setI(2, this.in(grad, n)); this.setI(3, this.out(buf, n, true));
    this.setF(4, momentum); this.setF(5, gradScale); this.setF(6, negLr);
    this.exec(OP.sgdMomentum, 1);
  }

  /** The MSE loss and its gradient (assembly/kernels.ts opMse): the arithmetic of engine/loss.ts mseLoss. */
  mseLoss(n: number, input: Float32Array, target: Float32Array, grad: Float32Array, scale: number): number {
    this.setI(0, n); this.setI(1, this.in(input, n)); this.setI(2, this.in(target, n)); this.setI(3, this.out(grad, n));
    const args = new DataView(this.memory.buffer, this.ctrlOff + ARG0 * 4);
    args.setFloat64(16, (2 * scale) / n, true);
    this.exec(OP.mse, 1);
    return new DataView(this.memory.buffer, this.ctrlOff + ARG0 * 4).getFloat64(24, true) / n;
  }

  /** Adam / AdamW without amsgrad on one parameter tensor (assembly/kernels.ts opAdam): the arithmetic of optim/adam.ts. */
  adamStep(n: number, data: Float32Array, grad: Float32Array, expAvg: Float32Array, expAvgSq: Float32Array, s: AdamStepScalars): void {
    this.setI(0, n); this.setI(1, this.out(data, n, true)); this.setI(2, this.in(grad, n));
    this.setI(3, this.out(expAvg, n, true)); this.setI(4, this.out(expAvgSq, n, true));
    this.setI(5, s.useWeightDecay ? 1 : 0); this.setI(6, s.decoupled ? 1 : 0);
    KERNEL_TABLE.adamScalars.forEach((k, i) => this.setF(7 + i, s[k]));
    this.exec(OP.adam, 1);
  }

  activation(act: Act, n: number, x: Float32Array, y: Float32Array): void {
    this.setI(0, ACT_CODE[act.kind]); this.setF(1, act.slope); this.setI(2, n);
    this.setI(3, this.in(x, n)); this.setI(4, this.out(y, n));
    this.exec(OP.act, this.nt(n, Math.ceil(n / 16), 1 << 16));
  }

  activationBackward(act: Act, n: number, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void {
    this.setI(0, ACT_CODE[act.kind]); this.setF(1, act.slope); this.setI(2, n);
    this.setI(3, this.in(x, n)); this.setI(4, this.in(y, n)); this.setI(5, this.in(dy, n)); this.setI(6, this.out(dx, n));
    this.exec(OP.actBwd, this.nt(n, Math.ceil(n / 16), 1 << 16));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.workers.length) {
      const c = this.ci;
      c[CTRL.op] = OP.exit;
      Atomics.store(c, CTRL.pending, this.workers.length);
      Atomics.add(c, CTRL.generation, 1);
      Atomics.notify(c, CTRL.generation);
      for (const w of this.workers) w.terminate();
      this.workers = [];
    }
  }
}
