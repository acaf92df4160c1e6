// latentlab wasm kernels (AssemblyScript, SIMD128; relaxed-SIMD FMA when built with --enable relaxed-simd).
//
// Memory is imported and shared between the calling thread and the workers. Nothing is allocated here:
// every buffer (tensors, per-thread scratch, the control block) is handed in by the JS side as a byte
// offset. All threads call `run(ctrl, tid)`; the control block holds the op, the thread count and the
// arguments, and each kernel takes its share of the work from `tid`/`nt`.
//
// The control block's words, the op codes and the activation kinds come from the kernel table
// (src/engine/kernels/table.ts, generated into kernel-table.ts). Arguments are i32, f32 or u32 byte offsets.

import {
  ACT_LEAKY, ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_TANH, CTRL_ARG0, CTRL_ERROR, CTRL_NEXT, CTRL_OP, CTRL_SCRATCH_BASE,
  CTRL_SCRATCH_STRIDE, CTRL_THREADS, ERR_SCRATCH_OVERFLOW, KERNEL_TABLE_HASH, OP_ACT, OP_ACT_BWD, OP_AFFINE, OP_CHANNEL_SUMS, OP_SGD_MOMENTUM, OP_ADAM, OP_MSE,
  OP_BN_BWD, OP_BN_TRAIN, OP_CONV_BWD_DATA, OP_CONV_BWD_WEIGHT, OP_CONV_FWD, OP_GEMM, OP_REDUCE_DW, ADAM_SIGN, ADAM_BETA1, ADAM_ONE_MINUS_BETA1, ADAM_BETA2, ADAM_ONE_MINUS_BETA2, ADAM_EPS,
  ADAM_WEIGHT_DECAY, ADAM_DECAY, ADAM_NEG_STEP_SIZE, ADAM_BC2_SQRT,
} from './kernel-table';

/** Rows of the GEMM micro-kernel tile. */
const MR: i32 = 4;

// ---------------------------------------------------------------------------------------------- helpers

@inline function word(ctrl: usize, w: i32): usize { return ctrl + (<usize>w << 2); }
@inline function ai(ctrl: usize, i: i32): i32 { return load<i32>(word(ctrl, CTRL_ARG0 + i)); }
@inline function af(ctrl: usize, i: i32): f32 { return load<f32>(word(ctrl, CTRL_ARG0 + i)); }
@inline function ap(ctrl: usize, i: i32): usize { return <usize>load<u32>(word(ctrl, CTRL_ARG0 + i)); }
/**
 * The next image of a loop the threads of a call share: each takes one at a time from the counter the
 * caller zeroed, so a thread the OS holds back leaves its images to the others. Only for loops whose
 * images are independent (each output written by one thread, the same sums in the same order): the
 * results do not depend on which thread took which image.
 */
@inline function nextImage(ctrl: usize): i32 { return atomic.add<i32>(word(ctrl, CTRL_NEXT), 1); }

@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  else return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * Lanes of a where the mask (all ones or all zeros per lane, from a comparison) is set, else of b: one
 * blend with relaxed SIMD (vblendvps), three logic ops as v128.bitselect.
 */
@inline function select4(a: v128, b: v128, mask: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_laneselect(a, b, mask);
  else return v128.bitselect(a, b, mask);
}

@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function rangeLo(total: i32, nt: i32, tid: i32): i32 { return <i32>((<i64>total * tid) / nt); }
@inline function up(x: i32, m: i32): i32 { return (x + m - 1) / m * m; }
@inline function align64(p: usize): usize { return (p + 63) & ~(<usize>63); }
@inline function imin(a: i32, b: i32): i32 { return a < b ? a : b; }
@inline function imax(a: i32, b: i32): i32 { return a > b ? a : b; }
@inline function f4(i: i32): usize { return <usize>i << 2; }

function zeroF(p: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(p + f4(i), z);
  for (; i < n; i++) store<f32>(p + f4(i), 0);
}

function copyF(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    v128.store(dst + f4(i), v128.load(src + f4(i)));
    v128.store(dst + f4(i), v128.load(src + f4(i), 16), 16);
  }
  for (; i + 4 <= n; i += 4) v128.store(dst + f4(i), v128.load(src + f4(i)));
  for (; i < n; i++) store<f32>(dst + f4(i), load<f32>(src + f4(i)));
}

function addF(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + f4(i), f32x4.add(v128.load(dst + f4(i)), v128.load(src + f4(i))));
  for (; i < n; i++) store<f32>(dst + f4(i), load<f32>(dst + f4(i)) + load<f32>(src + f4(i)));
}

// ----------------------------------------------------------------------------------------------- GEMM
// Micro-kernel: a 4x8 tile of C = alpha * Apanel @ B (+ bias[row]) (+ beta * C).
// Apanel is packed [kc][4]; B is row-major with row stride ldb (bytes), 8 columns read per row (columns
// past the valid nr may hold anything: their lanes are discarded).

function mk4x8(a: usize, b: usize, ldb: usize, kc: i32, c: usize, ldc: usize, mr: i32, nr: i32,
               alpha: f32, beta: f32, bias: usize, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  let k = 0;
  for (; k + 2 <= kc; k += 2) {
    let b0 = v128.load(b), b1 = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
    x = v128.load32_splat(a, 4);
    c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
    x = v128.load32_splat(a, 8);
    c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
    x = v128.load32_splat(a, 12);
    c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
    b += ldb;
    b0 = v128.load(b); b1 = v128.load(b, 16);
    x = v128.load32_splat(a, 16);
    c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
    x = v128.load32_splat(a, 20);
    c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
    x = v128.load32_splat(a, 24);
    c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
    x = v128.load32_splat(a, 28);
    c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
    b += ldb;
    a += 32;
  }
  if (k < kc) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let x = v128.load32_splat(a);
    c00 = fma(x, b0, c00); c01 = fma(x, b1, c01);
    x = v128.load32_splat(a, 4);
    c10 = fma(x, b0, c10); c11 = fma(x, b1, c11);
    x = v128.load32_splat(a, 8);
    c20 = fma(x, b0, c20); c21 = fma(x, b1, c21);
    x = v128.load32_splat(a, 12);
    c30 = fma(x, b0, c30); c31 = fma(x, b1, c31);
  }
  if (alpha != 1) {
    const al = f32x4.splat(alpha);
    c00 = f32x4.mul(c00, al); c01 = f32x4.mul(c01, al); c10 = f32x4.mul(c10, al); c11 = f32x4.mul(c11, al);
    c20 = f32x4.mul(c20, al); c21 = f32x4.mul(c21, al); c30 = f32x4.mul(c30, al); c31 = f32x4.mul(c31, al);
  }
  if (bias) {
    let bv = v128.load32_splat(bias);
    c00 = f32x4.add(c00, bv); c01 = f32x4.add(c01, bv);
    if (mr > 1) { bv = v128.load32_splat(bias, 4); c10 = f32x4.add(c10, bv); c11 = f32x4.add(c11, bv); }
    if (mr > 2) { bv = v128.load32_splat(bias, 8); c20 = f32x4.add(c20, bv); c21 = f32x4.add(c21, bv); }
    if (mr > 3) { bv = v128.load32_splat(bias, 12); c30 = f32x4.add(c30, bv); c31 = f32x4.add(c31, bv); }
  }
  if (mr == 4 && nr == 8) {
    if (beta != 0) {
      const bt = f32x4.splat(beta);
      c00 = fma(bt, v128.load(c), c00); c01 = fma(bt, v128.load(c, 16), c01);
      c10 = fma(bt, v128.load(c + ldc), c10); c11 = fma(bt, v128.load(c + ldc, 16), c11);
      c20 = fma(bt, v128.load(c + 2 * ldc), c20); c21 = fma(bt, v128.load(c + 2 * ldc, 16), c21);
      c30 = fma(bt, v128.load(c + 3 * ldc), c30); c31 = fma(bt, v128.load(c + 3 * ldc, 16), c31);
    }
    v128.store(c, c00); v128.store(c, c01, 16);
    v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
    v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
    v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
  } else {
    v128.store(tile, c00); v128.store(tile, c01, 16);
    v128.store(tile, c10, 32); v128.store(tile, c11, 48);
    v128.store(tile, c20, 64); v128.store(tile, c21, 80);
    v128.store(tile, c30, 96); v128.store(tile, c31, 112);
    for (let r = 0; r < mr; r++) {
      const cr = c + <usize>r * ldc, tr = tile + (<usize>r << 5);
      for (let j = 0; j < nr; j++) {
        let v = load<f32>(tr + f4(j));
        if (beta != 0) v += beta * load<f32>(cr + f4(j));
        store<f32>(cr + f4(j), v);
      }
    }
  }
}

/** Packs rows [0,M) of A(i,k) = src[i*rs + k*cs] (element strides) into 4-row panels [M/4][K][4], zero-padded. */
function packA(src: usize, rs: i32, cs: i32, M: i32, K: i32, dst: usize): void {
  for (let m = 0; m < M; m += MR) {
    const rows = imin(MR, M - m);
    if (rows == 4 && rs == 1) {
      // the 4 values of one k are contiguous in the source
      for (let k = 0; k < K; k++) {
        v128.store(dst, v128.load(src + f4(m + k * cs)));
        dst += 16;
      }
    } else {
      for (let k = 0; k < K; k++) {
        for (let r = 0; r < MR; r++)
          store<f32>(dst + f4(r), r < rows ? load<f32>(src + f4((m + r) * rs + k * cs)) : 0);
        dst += MR * 4;
      }
    }
  }
}

/** C[M, N] (row stride ldc bytes) = alpha * Apacked @ B (+bias) (+beta C); B rows have stride ldb bytes. */
function gemmBlock(apk: usize, M: i32, b: usize, ldb: usize, N: i32, K: i32, c: usize, ldc: usize,
                   alpha: f32, beta: f32, bias: usize, tile: usize): void {
  for (let n = 0; n < N; n += 8) {
    const nr = imin(8, N - n);
    for (let m = 0; m < M; m += MR) {
      mk4x8(apk + f4(m * K), b + f4(n), ldb, K, c + <usize>m * ldc + f4(n), ldc, imin(MR, M - m), nr,
            alpha, beta, bias ? bias + f4(m) : 0, tile);
    }
  }
}

/** alpha * v (+ beta * C[p]) into C[p]; C is not read when beta == 0 (it may hold anything). */
@inline function storeScaled(p: usize, v: f32, alpha: f32, beta: f32): void {
  store<f32>(p, beta == 0 ? alpha * v : alpha * v + beta * load<f32>(p));
}

/**
 * C[M,N] = alpha * op(A) . op(B) (+ beta * C) for N <= 4 (the model's Linear(3136, 2) / Linear(2, 3136)
 * and their gradients): op(B) as N rows of K (copied to `bt` unless B is already [N,K]), then dot products
 * along K for a row-major A, or 4 rows of C at a time for a transposed A. The packing GEMM spent most of
 * its time packing here.
 */
function gemmSmallN(transA: bool, transB: bool, M: i32, N: i32, K: i32, alpha: f32, A: usize, B: usize, beta: f32,
                    C: usize, bt: usize, tid: i32, nt: i32): void {
  let b = B;
  if (!transB) {
    // every thread writes the same copy of its own
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) store<f32>(bt + f4(n * K + k), load<f32>(B + f4(k * N + n)));
    b = bt;
  }
  if (!transA) {
    const m0 = rangeLo(M, nt, tid), m1 = rangeLo(M, nt, tid + 1);
    for (let m = m0; m < m1; m++) {
      const a = A + f4(m * K);
      for (let n = 0; n < N; n++) {
        const r = b + f4(n * K);
        let s0 = f32x4.splat(0), s1 = s0;
        let k = 0;
        for (; k + 8 <= K; k += 8) {
          s0 = fma(v128.load(a + f4(k)), v128.load(r + f4(k)), s0);
          s1 = fma(v128.load(a + f4(k), 16), v128.load(r + f4(k), 16), s1);
        }
        for (; k + 4 <= K; k += 4) s0 = fma(v128.load(a + f4(k)), v128.load(r + f4(k)), s0);
        let t = hsum(f32x4.add(s0, s1));
        for (; k < K; k++) t += load<f32>(a + f4(k)) * load<f32>(r + f4(k));
        storeScaled(C + f4(m * N + n), t, alpha, beta);
      }
    }
    return;
  }
  // A is [K,M]: C[m][n] = sum_k A[k][m] * b[n][k], 4 values of m per vector
  const q0 = rangeLo(M >> 2, nt, tid) << 2, q1 = tid == nt - 1 ? M : rangeLo(M >> 2, nt, tid + 1) << 2;
  let m = q0;
  for (; m + 4 <= q1; m += 4) {
    let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0;
    for (let k = 0; k < K; k++) {
      const a = v128.load(A + f4(k * M + m));
      c0 = fma(a, v128.load32_splat(b + f4(k)), c0);
      if (N > 1) c1 = fma(a, v128.load32_splat(b + f4(K + k)), c1);
      if (N > 2) c2 = fma(a, v128.load32_splat(b + f4(2 * K + k)), c2);
      if (N > 3) c3 = fma(a, v128.load32_splat(b + f4(3 * K + k)), c3);
    }
    for (let l = 0; l < 4; l++) {
      const row = C + f4((m + l) * N);
      storeScaled(row, laneOf(c0, l), alpha, beta);
      if (N > 1) storeScaled(row + 4, laneOf(c1, l), alpha, beta);
      if (N > 2) storeScaled(row + 8, laneOf(c2, l), alpha, beta);
      if (N > 3) storeScaled(row + 12, laneOf(c3, l), alpha, beta);
    }
  }
  for (; m < q1; m++)
    for (let n = 0; n < N; n++) {
      let t: f32 = 0;
      for (let k = 0; k < K; k++) t += load<f32>(A + f4(k * M + m)) * load<f32>(b + f4(n * K + k));
      storeScaled(C + f4(m * N + n), t, alpha, beta);
    }
}

/**
 * C[M,N] = alpha * op(A) . op(B) (+ beta * C) for few rows or a short K with N wide (the Linear layers'
 * Linear(2, 3136) forward and the bias and weight gradients of both: M <= 4 or K <= 4): each row of C as
 * a sum of K rows of op(B), 16 columns at a time, the columns split between the threads. A transposed B
 * is first copied (this thread's columns) to `bt` as K rows. The packing GEMM took 0.1-0.2 ms for each.
 */
function gemmRows(transA: bool, transB: bool, M: i32, N: i32, K: i32, alpha: f32, A: usize, B: usize, beta: f32,
                  C: usize, bt: usize, tid: i32, nt: i32): void {
  const q0 = rangeLo(N >> 2, nt, tid) << 2, q1 = tid == nt - 1 ? N : rangeLo(N >> 2, nt, tid + 1) << 2;
  if (q0 >= q1) return;
  let b = B + f4(q0), ldb = N;
  if (transB) {
    const w = q1 - q0;
    for (let k = 0; k < K; k++) for (let n = q0; n < q1; n++) store<f32>(bt + f4(k * w + n - q0), load<f32>(B + f4(n * K + k)));
    b = bt; ldb = w;
  }
  const va = f32x4.splat(alpha), vb = f32x4.splat(beta);
  for (let m = 0; m < M; m++) {
    const c = C + f4(m * N + q0);
    let n = 0;
    const w = q1 - q0;
    for (; n + 16 <= w; n += 16) {
      let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0;
      for (let k = 0; k < K; k++) {
        const a = f32x4.splat(transA ? load<f32>(A + f4(k * M + m)) : load<f32>(A + f4(m * K + k)));
        const r = b + f4(k * ldb + n);
        c0 = fma(a, v128.load(r), c0);
        c1 = fma(a, v128.load(r, 16), c1);
        c2 = fma(a, v128.load(r, 32), c2);
        c3 = fma(a, v128.load(r, 48), c3);
      }
      const p = c + f4(n);
      if (beta == 0) {
        v128.store(p, f32x4.mul(va, c0)); v128.store(p, f32x4.mul(va, c1), 16);
        v128.store(p, f32x4.mul(va, c2), 32); v128.store(p, f32x4.mul(va, c3), 48);
      } else {
        v128.store(p, fma(vb, v128.load(p), f32x4.mul(va, c0)));
        v128.store(p, fma(vb, v128.load(p, 16), f32x4.mul(va, c1)), 16);
        v128.store(p, fma(vb, v128.load(p, 32), f32x4.mul(va, c2)), 32);
        v128.store(p, fma(vb, v128.load(p, 48), f32x4.mul(va, c3)), 48);
      }
    }
    for (; n < w; n++) {
      let t: f32 = 0;
      for (let k = 0; k < K; k++) t += (transA ? load<f32>(A + f4(k * M + m)) : load<f32>(A + f4(m * K + k))) * load<f32>(b + f4(k * ldb + n));
      storeScaled(c + f4(n), t, alpha, beta);
    }
  }
}

/** Lane l (0..3) of v. */
@inline function laneOf(v: v128, l: i32): f32 {
  return l == 0 ? f32x4.extract_lane(v, 0) : l == 1 ? f32x4.extract_lane(v, 1) : l == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3);
}

function opGemm(ctrl: usize, tid: i32, nt: i32, scratch: usize): void {
  const transA = ai(ctrl, 0), transB = ai(ctrl, 1), M = ai(ctrl, 2), N = ai(ctrl, 3), K = ai(ctrl, 4);
  const alpha = af(ctrl, 5), A = ap(ctrl, 6), B = ap(ctrl, 7), beta = af(ctrl, 8), C = ap(ctrl, 9);
  if (N <= 4 && K >= 16) {
    const bt = align64(scratch + 256);
    if (!fits(bt + f4(N * K))) return;
    gemmSmallN(transA != 0, transB != 0, M, N, K, alpha, A, B, beta, C, bt, tid, nt);
    return;
  }
  if ((M <= 4 || K <= 4) && N >= 16 && K > 0) {
    const bt = align64(scratch + 256);
    if (transB && !fits(bt + f4(K * N))) return;
    gemmRows(transA != 0, transB != 0, M, N, K, alpha, A, B, beta, C, bt, tid, nt);
    return;
  }
  if (!transA && transB && (K & 3) == 0 && (M & 1) == 0 && (N & 3) == 0 && alpha == 1 && (beta == 0 || beta == 1)) {
    // C (+)= A . B^T with both operands' rows contiguous along K: the dot kernel, no packing
    const quads = N >> 2, pairs = M >> 1;
    let m0 = 0, m1 = M, n0 = 0, n1 = N;
    if (quads >= pairs) { n0 = rangeLo(quads, nt, tid) << 2; n1 = rangeLo(quads, nt, tid + 1) << 2; }
    else { m0 = rangeLo(pairs, nt, tid) << 1; m1 = rangeLo(pairs, nt, tid + 1) << 1; }
    if (m0 < m1 && n0 < n1)
      dotGemm(A + f4(m0 * K), f4(K), m1 - m0, B + f4(n0 * K), f4(K), n1 - n0, K, C + f4(m0 * N + n0), f4(N), beta == 1, 0);
    return;
  }
  const nTiles = (N + 7) >> 3, mBlocks = (M + MR - 1) / MR;
  let m0 = 0, m1 = M, n0 = 0, n1 = N;
  if (nTiles >= mBlocks || nTiles >= 2 * nt) {
    n0 = rangeLo(nTiles, nt, tid) * 8; n1 = imin(N, rangeLo(nTiles, nt, tid + 1) * 8);
  } else {
    m0 = rangeLo(mBlocks, nt, tid) * MR; m1 = imin(M, rangeLo(mBlocks, nt, tid + 1) * MR);
  }
  if (m0 >= m1 || n0 >= n1) return;
  const rows = m1 - m0, cols = n1 - n0;
  const tile = scratch;
  const apk = scratch + 256;
  const bpk = align64(apk + f4(up(rows, MR) * K));
  if (!fits(transB ? bpk + f4(K * up(cols, 8)) : bpk)) return;
  if (K == 0) {
    // C = beta * C
    for (let i = m0; i < m1; i++) for (let j = n0; j < n1; j++) {
      const p = C + f4(i * N + j);
      store<f32>(p, beta == 0 ? 0 : beta * load<f32>(p));
    }
    return;
  }
  if (transA) packA(A + f4(m0), 1, M, rows, K, apk);
  else packA(A + f4(m0 * K), K, 1, rows, K, apk);
  let b = B + f4(n0), ldb = f4(N);
  if (transB) {
    // B is [N,K]: pack columns n0..n1 of op(B) = B^T into [K][wpad]
    const wpad = up(cols, 8);
    for (let k = 0; k < K; k++) {
      const drow = bpk + f4(k * wpad);
      for (let j = 0; j < cols; j++) store<f32>(drow + f4(j), load<f32>(B + f4((n0 + j) * K + k)));
    }
    b = bpk; ldb = f4(wpad);
  }
  gemmBlock(apk, rows, b, ldb, cols, K, C + f4(m0 * N + n0), f4(N), alpha, beta, 0, tile);
}

// ------------------------------------------------------------------------------------- im2col / col2im

/** Unfolds one image [C,H,W] into rows [C*R*S][ld] (columns 0..OH*OW). */
function im2col(x: usize, C: i32, H: i32, W: i32, R: i32, S: i32, sh: i32, sw: i32, ph: i32, pw: i32,
                OH: i32, OW: i32, col: usize, ld: i32): void {
  for (let c = 0; c < C; c++) {
    const xc = x + f4(c * H * W);
    for (let r = 0; r < R; r++) {
      for (let s = 0; s < S; s++) {
        let row = col + f4(((c * R + r) * S + s) * ld);
        // valid ow: 0 <= ow*sw - pw + s < W
        let lo = 0;
        const t = pw - s;
        if (t > 0) lo = (t + sw - 1) / sw;
        let hi = OW;
        const t2 = W - 1 + pw - s;
        if (t2 < 0) hi = 0; else hi = imin(OW, t2 / sw + 1);
        if (lo > hi) lo = hi;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh - ph + r;
          if (ih < 0 || ih >= H) {
            zeroF(row, OW);
          } else {
            for (let ow = 0; ow < lo; ow++) store<f32>(row + f4(ow), 0);
            const src = xc + f4(ih * W + lo * sw - pw + s);
            const n = hi - lo;
            const dst = row + f4(lo);
            if (sw == 1) {
              copyF(dst, src, n);
            } else if (sw == 2) {
              let i = 0;
              for (; i + 4 <= n; i += 4) {
                // need src elements 0,2,4,6 (+8i); load 8 floats (the last one is not used)
                const v0 = v128.load(src + f4(2 * i)), v1 = v128.load(src + f4(2 * i), 16);
                v128.store(dst + f4(i), i32x4.shuffle(v0, v1, 0, 2, 4, 6));
              }
              for (; i < n; i++) store<f32>(dst + f4(i), load<f32>(src + f4(2 * i)));
            } else {
              for (let i = 0; i < n; i++) store<f32>(dst + f4(i), load<f32>(src + f4(i * sw)));
            }
            for (let ow = hi; ow < OW; ow++) store<f32>(row + f4(ow), 0);
          }
          row += f4(OW);
        }
      }
    }
  }
}

/** Folds rows [C*R*S][ld] back into one image [C,H,W] (overwritten), summing overlaps. */
function col2im(col: usize, ld: i32, C: i32, H: i32, W: i32, R: i32, S: i32, sh: i32, sw: i32, ph: i32, pw: i32,
                OH: i32, OW: i32, dx: usize): void {
  zeroF(dx, C * H * W);
  for (let c = 0; c < C; c++) {
    const xc = dx + f4(c * H * W);
    for (let r = 0; r < R; r++) {
      for (let s = 0; s < S; s++) {
        let row = col + f4(((c * R + r) * S + s) * ld);
        let lo = 0;
        const t = pw - s;
        if (t > 0) lo = (t + sw - 1) / sw;
        let hi = OW;
        const t2 = W - 1 + pw - s;
        if (t2 < 0) hi = 0; else hi = imin(OW, t2 / sw + 1);
        if (lo > hi) lo = hi;
        const n = hi - lo;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh - ph + r;
          if (ih >= 0 && ih < H) {
            const dst = xc + f4(ih * W + lo * sw - pw + s);
            const src = row + f4(lo);
            if (sw == 1) addF(dst, src, n);
            else if (sw == 2) {
              let i = 0;
              const z = f32x4.splat(0);
              // dst[2i] += src[i]; the odd elements in between get +0 (all within this row's valid range)
              for (; i + 4 <= n - 1; i += 4) {
                const v = v128.load(src + f4(i));
                const d = dst + f4(2 * i);
                v128.store(d, f32x4.add(v128.load(d), i32x4.shuffle(v, z, 0, 4, 1, 5)));
                v128.store(d, f32x4.add(v128.load(d, 16), i32x4.shuffle(v, z, 2, 6, 3, 7)), 16);
              }
              for (; i < n; i++) {
                const p = dst + f4(2 * i);
                store<f32>(p, load<f32>(p) + load<f32>(src + f4(i)));
              }
            } else for (let i = 0; i < n; i++) {
              const p = dst + f4(i * sw);
              store<f32>(p, load<f32>(p) + load<f32>(src + f4(i)));
            }
          }
          row += f4(OW);
        }
      }
    }
  }
}


// ------------------------------------------------------------------------------- dot-product ("NT") GEMM
// C[i][j] = A[i,:] . B[j,:] with both operands contiguous along the reduction (length L, a multiple of 4;
// the lanes past the true length must be zero in both). On CPUs whose broadcast loads compete with the FP
// pipes this is faster than the broadcast outer-product kernel.

/** [hsum a, hsum b, hsum c, hsum d] */
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const u0 = f32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const u1 = f32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.add(i32x4.shuffle(u0, u1, 0, 1, 4, 5), i32x4.shuffle(u0, u1, 2, 3, 6, 7));
}

/** A 2x4 tile: C[0..mr][0..nr] (+)= A[2 rows] . B[4 rows] (+ bias[row]). Rows past mr/nr are read, not stored. */
function dot2x4(a: usize, lda: usize, b: usize, ldb: usize, L: i32, c: usize, ldc: usize, mr: i32, nr: i32,
                accumulate: bool, bias: usize): void {
  let s00 = f32x4.splat(0), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
  const a1 = a + lda, b1 = b + ldb, b2 = b + 2 * ldb, b3 = b + 3 * ldb;
  for (let p: usize = 0, e = f4(L); p < e; p += 16) {
    const x0 = v128.load(a + p), x1 = v128.load(a1 + p);
    let y = v128.load(b + p);
    s00 = fma(x0, y, s00); s10 = fma(x1, y, s10);
    y = v128.load(b1 + p);
    s01 = fma(x0, y, s01); s11 = fma(x1, y, s11);
    y = v128.load(b2 + p);
    s02 = fma(x0, y, s02); s12 = fma(x1, y, s12);
    y = v128.load(b3 + p);
    s03 = fma(x0, y, s03); s13 = fma(x1, y, s13);
  }
  store2x4(hsum4(s00, s01, s02, s03), hsum4(s10, s11, s12, s13), c, ldc, mr, nr, accumulate, bias);
}

/** The epilogue of the 2x4 dot kernels: adds the bias per row, then stores (or accumulates) mr rows of nr lanes. */
@inline function store2x4(r0: v128, r1: v128, c: usize, ldc: usize, mr: i32, nr: i32, accumulate: bool, bias: usize): void {
  if (bias) {
    r0 = f32x4.add(r0, v128.load32_splat(bias));
    if (mr > 1) r1 = f32x4.add(r1, v128.load32_splat(bias, 4));
  }
  if (nr == 4) {
    if (accumulate) r0 = f32x4.add(r0, v128.load(c));
    v128.store(c, r0);
    if (mr > 1) {
      if (accumulate) r1 = f32x4.add(r1, v128.load(c + ldc));
      v128.store(c + ldc, r1);
    }
  } else {
    storeLanes(c, r0, nr, accumulate);
    if (mr > 1) storeLanes(c + ldc, r1, nr, accumulate);
  }
}

function storeLanes(c: usize, v: v128, nr: i32, accumulate: bool): void {
  const v0 = f32x4.extract_lane(v, 0), v1 = f32x4.extract_lane(v, 1), v2 = f32x4.extract_lane(v, 2);
  store<f32>(c, accumulate ? load<f32>(c) + v0 : v0);
  if (nr > 1) store<f32>(c + 4, accumulate ? load<f32>(c + 4) + v1 : v1);
  if (nr > 2) store<f32>(c + 8, accumulate ? load<f32>(c + 8) + v2 : v2);
}

/** C[M,N] (row stride ldc bytes) (+)= A[M,L] . B[N,L]^T, rows of A/B with strides lda/ldb bytes. */
function dotGemm(a: usize, lda: usize, M: i32, b: usize, ldb: usize, N: i32, L: i32, c: usize, ldc: usize,
                 accumulate: bool, bias: usize): void {
  // a block of A rows (about 16 KB) stays in L1 while the B rows stream past it, 4 at a time
  const MB = lda == 0 ? imax(2, M + 1) : imax(2, <i32>(16384 / <u32>lda) & ~1);
  for (let i0 = 0; i0 < M; i0 += MB) {
    const i1 = imin(M, i0 + MB);
    for (let j = 0; j < N; j += 4) {
      const nr = imin(4, N - j);
      const bj = b + <usize>j * ldb, cj = c + f4(j);
      for (let i = i0; i < i1; i += 2) {
        dot2x4(a + <usize>i * lda, lda, bj, ldb, L, cj + <usize>i * ldc, ldc, imin(2, i1 - i), nr, accumulate,
               bias ? bias + f4(i) : 0);
      }
    }
  }
}

// Packed variant: A in panels of 2 rows [L/4][2][4], B in panels of 4 rows [L/4][4][4] (one pointer each).
@inline function dotP2x4(pa: usize, pb: usize, steps: i32, c: usize, ldc: usize, mr: i32, nr: i32, accumulate: bool, bias: usize): void {
  let s00 = f32x4.splat(0), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
  for (let i = 0; i < steps; i++) {
    const x0 = v128.load(pa), x1 = v128.load(pa, 16);
    let y = v128.load(pb);
    s00 = fma(x0, y, s00); s10 = fma(x1, y, s10);
    y = v128.load(pb, 16);
    s01 = fma(x0, y, s01); s11 = fma(x1, y, s11);
    y = v128.load(pb, 32);
    s02 = fma(x0, y, s02); s12 = fma(x1, y, s12);
    y = v128.load(pb, 48);
    s03 = fma(x0, y, s03); s13 = fma(x1, y, s13);
    pa += 32; pb += 64;
  }
  store2x4(hsum4(s00, s01, s02, s03), hsum4(s10, s11, s12, s13), c, ldc, mr, nr, accumulate, bias);
}

/** Packs rows [0,rows) of src (row stride ld floats, L floats used, L a multiple of 4) into panels of `pr` rows. */
function packPanels(src: usize, ld: i32, rows: i32, L: i32, pr: i32, dst: usize): void {
  // whole panels of 2 or 4 rows without a per-vector test, then the last (zero-padded) one
  const full = rows - rows % pr, row = f4(ld), e = f4(L);
  let i0 = 0;
  if (pr == 4) {
    for (; i0 < full; i0 += 4) {
      const s0 = src + <usize>i0 * row, s1 = s0 + row, s2 = s1 + row, s3 = s2 + row;
      for (let l: usize = 0; l < e; l += 16) {
        v128.store(dst, v128.load(s0 + l)); v128.store(dst, v128.load(s1 + l), 16);
        v128.store(dst, v128.load(s2 + l), 32); v128.store(dst, v128.load(s3 + l), 48);
        dst += 64;
      }
    }
  } else if (pr == 2) {
    for (; i0 < full; i0 += 2) {
      const s0 = src + <usize>i0 * row, s1 = s0 + row;
      for (let l: usize = 0; l < e; l += 16) {
        v128.store(dst, v128.load(s0 + l)); v128.store(dst, v128.load(s1 + l), 16);
        dst += 32;
      }
    }
  }
  for (; i0 < rows; i0 += pr) {
    for (let l = 0; l < L; l += 4) {
      for (let r = 0; r < pr; r++) {
        const i = i0 + r;
        v128.store(dst, i < rows ? v128.load(src + f4(i * ld + l)) : f32x4.splat(0));
        dst += 16;
      }
    }
  }
}

function dotGemmP(pa: usize, M: i32, pb: usize, N: i32, L: i32, c: usize, ldc: usize, accumulate: bool, bias: usize): void {
  const steps = L >> 2;
  const pA = f4(L * 2), pB = f4(L * 4);
  const MB = L == 0 ? imax(2, M + 1) : imax(2, <i32>(16384 / <u32>f4(L)) & ~1);
  for (let i0 = 0; i0 < M; i0 += MB) {
    const i1 = imin(M, i0 + MB);
    for (let j = 0; j < N; j += 4) {
      const nr = imin(4, N - j);
      const bj = pb + <usize>(j >> 2) * pB, cj = c + f4(j);
      for (let i = i0; i < i1; i += 2)
        dotP2x4(pa + <usize>(i >> 1) * pA, bj, steps, cj + <usize>i * ldc, ldc, imin(2, i1 - i), nr, accumulate, bias ? bias + f4(i) : 0);
    }
  }
}

/** dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols (element strides). */
function transpose(src: usize, lds: i32, rows: i32, cols: i32, dst: usize, ldd: i32): void {
  let i = 0;
  for (; i + 4 <= rows; i += 4) {
    const s0 = src + f4(i * lds), s1 = s0 + f4(lds), s2 = s1 + f4(lds), s3 = s2 + f4(lds);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const r0 = v128.load(s0 + f4(j)), r1 = v128.load(s1 + f4(j)), r2 = v128.load(s2 + f4(j)), r3 = v128.load(s3 + f4(j));
      const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
      const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
      const d = dst + f4(j * ldd + i);
      v128.store(d, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
      v128.store(d + f4(ldd), i32x4.shuffle(t0, t2, 2, 3, 6, 7));
      v128.store(d + f4(2 * ldd), i32x4.shuffle(t1, t3, 0, 1, 4, 5));
      v128.store(d + f4(3 * ldd), i32x4.shuffle(t1, t3, 2, 3, 6, 7));
    }
    for (; j < cols; j++) {
      const d = dst + f4(j * ldd + i);
      store<f32>(d, load<f32>(s0 + f4(j))); store<f32>(d, load<f32>(s1 + f4(j)), 4);
      store<f32>(d, load<f32>(s2 + f4(j)), 8); store<f32>(d, load<f32>(s3 + f4(j)), 12);
    }
  }
  for (; i < rows; i++)
    for (let j = 0; j < cols; j++) store<f32>(dst + f4(j * ldd + i), load<f32>(src + f4(i * lds + j)));
}

// ---------------------------------------------------------------------------------------- convolutions
// Arguments 0..12: N C H W K R S sh sw ph pw OH OW, then pointers.

/** Row stride (floats) for a reduction of length L: avoid strides that are multiples of 256 bytes. */
@inline function rowStride(L: i32): i32 { return (L & 63) == 0 ? L + 4 : L; }

/** The backward-data takes the dot-product path from this K on. */
const DOT_MIN_K: i32 = 16;

/** From this reduction length on, the weight gradient reads dy in place rather than packing it. */
const BW_UNPACKED_L: i32 = 512;

/** The forward takes the dot-product path (padded NHWC image, patch-major columns) from this C*R*S on. */
const DOT_MIN_CRS: i32 = 32;

/** 8 outputs of one channel from the 9 taps' input vectors (two per tap: pixels ow..ow+3 and ow+4..ow+7). */
@inline function store8(yr: usize, a: v128, b: v128, left: i32): void {
  store4(yr, a, left);
  store4(yr + 16, b, left - 4);
}

/**
 * Direct 3x3 convolution of one-channel images (stride 1 along W): 8 outputs per step of each of 4 output
 * channels at once, so that every input vector loaded serves 4 channels and 8 FMA chains run side by side
 * (one channel at a time waited on the FMA's latency: 15 GFLOP/s, a quarter of the other convolutions).
 */
function convFwd1ch3x3(x: usize, w: usize, bias: usize, y: usize, n0: i32, n1: i32, H: i32, W: i32, K: i32,
                       sh: i32, ph: i32, pw: i32, OH: i32, OW: i32, xp: usize, zero: bool): void {
  const Hp = imax(H + 2 * ph, (OH - 1) * sh + 3), Wp = up(OW + 2 + 8, 4);
  if (!fits(xp + f4(Hp * Wp))) return;
  const plane = f4(OH * OW);
  // zero-padded copy of each image, rows of Wp floats (slack on the right for the last vector): the padding is
  // zeroed once per call (`zero`: this thread's first image), the images only ever write the interior
  if (zero) zeroF(xp, Hp * Wp);
  for (let n = n0; n < n1; n++) {
    const xn = x + f4(n * H * W);
    for (let ih = 0; ih < H; ih++) {
      const dst = ih + ph;
      if (dst < 0 || dst >= Hp) continue;
      // columns iw -> iw + pw (only those inside the padded row)
      const lo = imax(0, -pw), hi = imin(W, Wp - pw);
      if (hi > lo) copyF(xp + f4(dst * Wp + lo + pw), xn + f4(ih * W + lo), hi - lo);
    }
    for (let k0 = 0; k0 < K; k0 += 4) {
      // a group of 4 channels (the last group repeats its last channel; only the real ones are stored)
      const k1 = imin(k0 + 1, K - 1), k2 = imin(k0 + 2, K - 1), k3 = imin(k0 + 3, K - 1);
      const wa = w + f4(k0 * 9), wb = w + f4(k1 * 9), wc = w + f4(k2 * 9), wd = w + f4(k3 * 9);
      const z = f32x4.splat(0);
      const ba = bias ? v128.load32_splat(bias + f4(k0)) : z, bb = bias ? v128.load32_splat(bias + f4(k1)) : z;
      const bc = bias ? v128.load32_splat(bias + f4(k2)) : z, bd = bias ? v128.load32_splat(bias + f4(k3)) : z;
      const nk = imin(4, K - k0);
      let yr = y + f4((n * K + k0) * OH * OW);
      for (let oh = 0; oh < OH; oh++) {
        const r0 = xp + f4(oh * sh * Wp);
        for (let ow = 0; ow < OW; ow += 8) {
          let a0 = ba, a1 = ba, b0 = bb, b1 = bb, c0 = bc, c1 = bc, d0 = bd, d1 = bd;
          // the 9 taps as 3 rows of 3 (no division in the address of a tap)
          for (let r = 0; r < 3; r++) {
            const row = r0 + f4(r * Wp + ow), tr = f4(r * 3);
            for (let c = 0; c < 3; c++) {
              const src = row + f4(c), tw = tr + f4(c);
              const u = v128.load(src), v = v128.load(src, 16);
              let s = v128.load32_splat(wa + tw); a0 = fma(s, u, a0); a1 = fma(s, v, a1);
              s = v128.load32_splat(wb + tw); b0 = fma(s, u, b0); b1 = fma(s, v, b1);
              s = v128.load32_splat(wc + tw); c0 = fma(s, u, c0); c1 = fma(s, v, c1);
              s = v128.load32_splat(wd + tw); d0 = fma(s, u, d0); d1 = fma(s, v, d1);
            }
          }
          const left = OW - ow, o = yr + f4(ow);
          store8(o, a0, a1, left);
          if (nk > 1) store8(o + plane, b0, b1, left);
          if (nk > 2) store8(o + 2 * plane, c0, c1, left);
          if (nk > 3) store8(o + 3 * plane, d0, d1, left);
        }
        yr += f4(OW);
      }
    }
  }
}

function opConvFwd(ctrl: usize, tid: i32, nt: i32, scratch: usize): void {
  const N = ai(ctrl, 0), C = ai(ctrl, 1), H = ai(ctrl, 2), W = ai(ctrl, 3), K = ai(ctrl, 4), R = ai(ctrl, 5), S = ai(ctrl, 6);
  const sh = ai(ctrl, 7), sw = ai(ctrl, 8), ph = ai(ctrl, 9), pw = ai(ctrl, 10), OH = ai(ctrl, 11), OW = ai(ctrl, 12);
  const x = ap(ctrl, 13), w = ap(ctrl, 14), bias = ap(ctrl, 15), y = ap(ctrl, 16);
  if (N <= 0) return;
  const P = OH * OW, CRS = C * R * S, Ppad = up(P, 8);
  const tile = scratch;
  if (C == 1 && R == 3 && S == 3 && sw == 1) {
    let first = true;
    for (let n = nextImage(ctrl); n < N; n = nextImage(ctrl)) {
      convFwd1ch3x3(x, w, bias, y, n, n + 1, H, W, K, sh, ph, pw, OH, OW, scratch + 256, first);
      first = false;
    }
    return;
  }
  if (CRS < DOT_MIN_CRS) {
    const apk = scratch + 256;
    const col = align64(apk + f4(up(K, MR) * CRS));
    if (!fits(col + f4(CRS * Ppad))) return;
    packA(w, CRS, 1, K, CRS, apk);
    for (let n = nextImage(ctrl); n < N; n = nextImage(ctrl)) {
      im2col(x + f4(n * C * H * W), C, H, W, R, S, sh, sw, ph, pw, OH, OW, col, Ppad);
      gemmBlock(apk, K, col, f4(Ppad), P, CRS, y + f4(n * K * P), f4(P), 1, 0, bias, tile);
    }
    return;
  }
  // W'[k][(r*S + s)*C + c] = w[k][c][r][s], rows of L floats (zero tail)
  const L = up(CRS, 4), ld = rowStride(L);
  const wr = scratch + 256;
  const Hp = H + 2 * ph, Wp = W + 2 * pw;
  const xp = align64(wr + f4(up(K, 2) * ld));
  const colT = align64(xp + f4(Hp * Wp * C));
  for (let k = 0; k < K; k++) {
    const drow = wr + f4(k * ld);
    for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) for (let s2 = 0; s2 < S; s2++)
      store<f32>(drow + f4((r * S + s2) * C + c), load<f32>(w + f4(((k * C + c) * R + r) * S + s2)));
    zeroF(drow + f4(CRS), L - CRS);
  }
  const wrP = align64(colT + f4((P + 8) * ld));
  const colP = align64(wrP + f4(up(K, 2) * L));
  if (!fits(colP + f4(up(P, 4) * L))) return;
  packPanels(wr, ld, K, L, 2, wrP);
  // zero the padding of the NHWC image once (the interior is overwritten per image)
  zeroF(xp, ph * Wp * C);
  zeroF(xp + f4((ph + H) * Wp * C), (Hp - ph - H) * Wp * C);
  for (let ih = 0; ih < H; ih++) {
    const row = xp + f4((ih + ph) * Wp * C);
    zeroF(row, pw * C);
    zeroF(row + f4((pw + W) * C), (Wp - pw - W) * C);
  }
  const SC = S * C;
  for (let n = nextImage(ctrl); n < N; n = nextImage(ctrl)) {
    const xn = x + f4(n * C * H * W);
    for (let ih = 0; ih < H; ih++) transpose(xn + f4(ih * W), H * W, C, W, xp + f4(((ih + ph) * Wp + pw) * C), C);
    if ((SC & 3) == 0) {
      // patch-major columns written straight into 4-pixel panels [L/4][4][4]
      const panel = f4(L * 4);
      let p = 0;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const src = xp + f4(((oh * sh) * Wp + ow * sw) * C);
          const base = colP + <usize>(p >> 2) * panel + (<usize>(p & 3) << 4);
          for (let r = 0; r < R; r++) {
            const sr = src + f4(r * Wp * C);
            let d = base + (<usize>(r * SC) << 4);
            for (let l = 0; l < SC; l += 4) { v128.store(d, v128.load(sr + f4(l))); d += 64; }
          }
          p++;
        }
      }
      dotGemmP(wrP, K, colP, P, L, y + f4(n * K * P), f4(P), false, bias);
      continue;
    }
    // patch-major columns: colT[p][(r*S + s)*C + c]
    let dst = colT;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const src = xp + f4(((oh * sh) * Wp + ow * sw) * C);
        for (let r = 0; r < R; r++) copyF(dst + f4(r * SC), src + f4(r * Wp * C), SC);
        if (L > CRS) zeroF(dst + f4(CRS), L - CRS);
        dst += f4(ld);
      }
    }
    packPanels(colT, ld, P, L, 4, colP);
    dotGemmP(wrP, K, colP, P, L, y + f4(n * K * P), f4(P), false, bias);
  }
}

/**
 * Backward-data into one channel, 3x3, stride 1 (the last ConvTranspose2d's forward, 32 -> 1 channels):
 * dx[ih][iw] = sum over k, r, s of dy[k][ih + ph - r][iw + pw - s] * w[k][r][s], from zero-padded copies
 * of the dy planes. Two output rows of 16 columns per step: each dy row loaded serves both rows it
 * reaches, in 8 FMA chains.
 */
function convBwdData1ch3x3(dy: usize, w: usize, dx: usize, n: i32, H: i32, W: i32, K: i32, ph: i32, pw: i32,
                           OH: i32, OW: i32, dyp: usize, zero: bool): void {
  // dyp[k][i][j] = dy[k][i - qh][j - qw]: output row ih reads rows ih .. ih + 2 (tap r reads row ih + 2 - r);
  // the padding is zeroed once per call (`zero`: this thread's first image), the images only write the interior
  const qh = 2 - ph, qw = 2 - pw;
  const Hp = H + 3, Wp = up(W, 16) + 4, pl = Hp * Wp;
  if (!fits(dyp + f4(K * pl))) return;
  if (zero) zeroF(dyp, K * pl);
  const lo = imax(0, -qw), hi = imin(OW, Wp - qw);
  for (let k = 0; k < K; k++)
    for (let oh = 0; oh < OH; oh++) {
      const row = oh + qh;
      if (row < 0 || row >= Hp || hi <= lo) continue;
      copyF(dyp + f4(k * pl + row * Wp + lo + qw), dy + f4(((n * K + k) * OH + oh) * OW + lo), hi - lo);
    }
  const dxn = dx + f4(n * H * W);
  for (let ih = 0; ih < H; ih += 2)
    for (let iw0 = 0; iw0 < W; iw0 += 16) {
      // a: row ih, b: row ih + 1 (not stored past the last row)
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      for (let k = 0; k < K; k++) {
        const wk = w + f4(k * 9), plane = dyp + f4(k * pl + ih * Wp + iw0 + 2);
        // dy row ih + 0: tap r = 2 of row ih
        for (let s2 = 0; s2 < 3; s2++) {
          const src = plane - f4(s2);
          const u0 = v128.load(src), u1 = v128.load(src, 16), u2 = v128.load(src, 32), u3 = v128.load(src, 48);
          const wa = v128.load32_splat(wk + f4(6 + s2));
          a0 = fma(wa, u0, a0); a1 = fma(wa, u1, a1); a2 = fma(wa, u2, a2); a3 = fma(wa, u3, a3);
        }
        // dy rows ih + 1 and ih + 2: tap r = 2 - j of row ih and r = 3 - j of row ih + 1
        for (let j = 1; j < 3; j++) {
          const row = plane + f4(j * Wp), wja = wk + f4((2 - j) * 3), wjb = wja + f4(3);
          for (let s2 = 0; s2 < 3; s2++) {
            const src = row - f4(s2);
            const u0 = v128.load(src), u1 = v128.load(src, 16), u2 = v128.load(src, 32), u3 = v128.load(src, 48);
            const wa = v128.load32_splat(wja + f4(s2));
            a0 = fma(wa, u0, a0); a1 = fma(wa, u1, a1); a2 = fma(wa, u2, a2); a3 = fma(wa, u3, a3);
            const wb = v128.load32_splat(wjb + f4(s2));
            b0 = fma(wb, u0, b0); b1 = fma(wb, u1, b1); b2 = fma(wb, u2, b2); b3 = fma(wb, u3, b3);
          }
        }
        // dy row ih + 3: tap r = 0 of row ih + 1
        for (let s2 = 0; s2 < 3; s2++) {
          const src = plane + f4(3 * Wp - s2);
          const u0 = v128.load(src), u1 = v128.load(src, 16), u2 = v128.load(src, 32), u3 = v128.load(src, 48);
          const wb = v128.load32_splat(wk + f4(s2));
          b0 = fma(wb, u0, b0); b1 = fma(wb, u1, b1); b2 = fma(wb, u2, b2); b3 = fma(wb, u3, b3);
        }
      }
      const left = W - iw0;
      let o = dxn + f4(ih * W + iw0);
      store4(o, a0, left); store4(o + 16, a1, left - 4); store4(o + 32, a2, left - 8); store4(o + 48, a3, left - 12);
      if (ih + 1 < H) {
        o += f4(W);
        store4(o, b0, left); store4(o + 16, b1, left - 4); store4(o + 32, b2, left - 8); store4(o + 48, b3, left - 12);
      }
    }
}

/** Up to 4 lanes of v to c (left = how many outputs remain from c on; none when <= 0). */
@inline function store4(c: usize, v: v128, left: i32): void {
  if (left >= 4) v128.store(c, v);
  else if (left > 0) storeLanes(c, v, left, false);
}

function opConvBwdData(ctrl: usize, tid: i32, nt: i32, scratch: usize): void {
  const N = ai(ctrl, 0), C = ai(ctrl, 1), H = ai(ctrl, 2), W = ai(ctrl, 3), K = ai(ctrl, 4), R = ai(ctrl, 5), S = ai(ctrl, 6);
  const sh = ai(ctrl, 7), sw = ai(ctrl, 8), ph = ai(ctrl, 9), pw = ai(ctrl, 10), OH = ai(ctrl, 11), OW = ai(ctrl, 12);
  const dy = ap(ctrl, 13), w = ap(ctrl, 14), dx = ap(ctrl, 15);
  if (N <= 0) return;
  const P = OH * OW, CRS = C * R * S, Ppad = up(P, 8);
  const tile = scratch;
  if (C == 1 && R == 3 && S == 3 && sh == 1 && sw == 1 && ph <= 2 && pw <= 2) {
    let first = true;
    for (let n = nextImage(ctrl); n < N; n = nextImage(ctrl)) {
      convBwdData1ch3x3(dy, w, dx, n, H, W, K, ph, pw, OH, OW, scratch + 256, first);
      first = false;
    }
    return;
  }
  if (K < DOT_MIN_K || C < 4) {
    const apk = scratch + 256;
    const col = align64(apk + f4(up(CRS, MR) * K));
    if (!fits(col + f4(CRS * Ppad))) return;
    // A = W^T [CRS, K]: A(i,k) = w[k*CRS + i]
    packA(w, 1, CRS, CRS, K, apk);
    for (let n = nextImage(ctrl); n < N; n = nextImage(ctrl)) {
      if (K == 0) { zeroF(dx + f4(n * C * H * W), C * H * W); continue; }
      gemmBlock(apk, CRS, dy + f4(n * K * P), f4(P), Ppad, K, col, f4(Ppad), 1, 0, 0, tile);
      col2im(col, Ppad, C, H, W, R, S, sh, sw, ph, pw, OH, OW, dx + f4(n * C * H * W));
    }
    return;
  }
  // colT[p][(r*S + s)*C + c] = dy^T[p,:] . W'[(r,s,c),:] (reduction over K, both rows contiguous), then
  // scatter-add the patches into a padded NHWC image (contiguous runs of S*C floats) and transpose to NCHW
  const L = up(K, 4), ld = rowStride(L);
  const Hp = H + 2 * ph, Wp = W + 2 * pw;
  const wt = scratch + 256;
  const dyT = align64(wt + f4(up(CRS, 4) * ld));
  const colT = align64(dyT + f4((P + 2) * ld));
  const xp = align64(colT + f4(P * CRS));
  const wtP = align64(xp + f4(Hp * Wp * C));
  const dyP = align64(wtP + f4((CRS + 4) * L));
  if (!fits(dyP + f4(up(P, 2) * L))) return;
  for (let k = 0; k < K; k++)
    for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) for (let s2 = 0; s2 < S; s2++)
      store<f32>(wt + f4(((r * S + s2) * C + c) * ld + k), load<f32>(w + f4(((k * C + c) * R + r) * S + s2)));
  if (L > K) for (let i = 0; i < CRS; i++) zeroF(wt + f4(i * ld + K), L - K);
  packPanels(wt, ld, CRS, L, 4, wtP);
  const SC = S * C;
  for (let n = nextImage(ctrl); n < N; n = nextImage(ctrl)) {
    transpose(dy + f4(n * K * P), P, K, P, dyT, ld);
    if (L > K) for (let p = 0; p < P; p++) zeroF(dyT + f4(p * ld + K), L - K);
    packPanels(dyT, ld, P, L, 2, dyP);
    dotGemmP(dyP, P, wtP, CRS, L, colT, f4(CRS), false, 0);
    zeroF(xp, Hp * Wp * C);
    let src = colT;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dst = xp + f4(((oh * sh) * Wp + ow * sw) * C);
        for (let r = 0; r < R; r++) addF(dst + f4(r * Wp * C), src + f4(r * SC), SC);
        src += f4(CRS);
      }
    }
    const dxn = dx + f4(n * C * H * W);
    for (let ih = 0; ih < H; ih++) transpose(xp + f4(((ih + ph) * Wp + pw) * C), C, W, C, dxn + f4(ih * W), H * W);
  }
}

/** Images per group in the weight gradient, so that the reduction length is long enough. */
@inline function bwGroup(P: i32): i32 { return imax(1, imin(8, (192 + P - 1) / P)); }

/** Whether the weight gradient builds its columns from padded NHWC images, in (r,s,c) order. */
@inline function bwNHWC(C: i32, S: i32): bool { return ((S * C) & 3) == 0; }

/**
 * Weight gradient from padded NHWC copies of the G images of a group: the packed column panels (4 rows of
 * (r,s,c) x L pixels) are filled by 4x4 transposes of 4 pixels' patches. part[k][(r*S + s)*C + c] += ...
 */
function bwNHWC4(x: usize, dy: usize, n0: i32, n1: i32, N: i32, C: i32, H: i32, W: i32, K: i32, R: i32, S: i32,
                 sh: i32, sw: i32, ph: i32, pw: i32, OH: i32, OW: i32, G: i32, L: i32,
                 part: usize, dyG: usize, colP: usize, dyP: usize): void {
  const P = OH * OW, CRS = C * R * S, SC = S * C;
  const Hp = H + 2 * ph, Wp = W + 2 * pw, img = Hp * Wp * C;
  // G padded images then one all-zero image (the source of the pixels past the group's end)
  const xps = align64(dyP + f4(up(K, 4) * L));
  const zimg = xps + f4(G * img);
  if (!fits(zimg + f4(img))) return;
  zeroF(xps, (G + 1) * img);
  const panel = f4(L * 4);
  for (let n = n0; n < n1; n += G) {
    const g = imin(G, n1 - n);
    for (let gi = 0; gi < g; gi++) {
      const xn = x + f4((n + gi) * C * H * W), xp = xps + f4(gi * img);
      for (let ih = 0; ih < H; ih++) transpose(xn + f4(ih * W), H * W, C, W, xp + f4(((ih + ph) * Wp + pw) * C), C);
    }
    const used = g * P;
    for (let p4 = 0; p4 < L; p4 += 4) {
      let s0: usize = zimg, s1: usize = zimg, s2: usize = zimg, s3: usize = zimg;
      for (let q = 0; q < 4; q++) {
        const pp = p4 + q;
        if (pp >= used) break;
        const gi = pp / P, pl = pp - gi * P, oh = pl / OW, ow = pl - oh * OW;
        const src = xps + f4(gi * img + ((oh * sh) * Wp + ow * sw) * C);
        if (q == 0) s0 = src; else if (q == 1) s1 = src; else if (q == 2) s2 = src; else s3 = src;
      }
      const pbase = colP + (<usize>(p4 >> 2) << 6);
      for (let r = 0; r < R; r++) {
        const ro = f4(r * Wp * C);
        for (let l = 0; l < SC; l += 4) {
          const o = ro + f4(l);
          const r0 = v128.load(s0 + o), r1 = v128.load(s1 + o), r2 = v128.load(s2 + o), r3 = v128.load(s3 + o);
          const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
          const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
          const d = pbase + <usize>((r * SC + l) >> 2) * panel;
          v128.store(d, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
          v128.store(d, i32x4.shuffle(t0, t2, 2, 3, 6, 7), 16);
          v128.store(d, i32x4.shuffle(t1, t3, 0, 1, 4, 5), 32);
          v128.store(d, i32x4.shuffle(t1, t3, 2, 3, 6, 7), 48);
        }
      }
    }
    // dy rows of the group, concatenated and zero-padded to L, packed in 2-row panels
    if (g == 1 && L == P) packPanels(dy + f4(n * K * P), P, K, L, 2, dyP);
    else {
      for (let k = 0; k < K; k++) {
        const drow = dyG + f4(k * L);
        for (let gi = 0; gi < g; gi++) copyF(drow + f4(gi * P), dy + f4(((n + gi) * K + k) * P), P);
        if (used < L) zeroF(drow + f4(used), L - used);
      }
      packPanels(dyG, L, K, L, 2, dyP);
    }
    dotGemmP(dyP, K, colP, CRS, L, part, f4(CRS), true, 0);
  }
}

/**
 * Weight gradient of a 3x3, stride-1 convolution of one-channel images (the first Conv2d, the last
 * ConvTranspose2d): part[k][r * 3 + s] += the sum over an image of dy[k][oh][ow] * xp[oh + r][ow + s], xp the
 * zero-padded image. Per tap row r, three output channels at once: each of the three dy vectors and three
 * shifted image vectors loaded serves three of the nine accumulators (6 loads for 9 FMAs). No im2col, and no
 * padding of the nine columns to twelve that the dot-product GEMM's 4-wide tiles needed.
 */
function bw1ch3x3(x: usize, dy: usize, n0: i32, n1: i32, H: i32, W: i32, K: i32, ph: i32, pw: i32, OH: i32, OW: i32,
                  part: usize, xp: usize): void {
  const Hp = OH + 2, Wp = up(OW, 4) + 4, P = OH * OW;
  if (!fits(xp + f4(Hp * Wp))) return;
  // the padding is zeroed once, the images only ever write the interior
  zeroF(xp, Hp * Wp);
  const lo = imax(0, -pw), hi = imin(W, Wp - pw);
  const z = f32x4.splat(0);
  for (let n = n0; n < n1; n++) {
    const xn = x + f4(n * H * W);
    for (let ih = 0; ih < H; ih++) {
      const dst = ih + ph;
      if (dst < 0 || dst >= Hp || hi <= lo) continue;
      copyF(xp + f4(dst * Wp + lo + pw), xn + f4(ih * W + lo), hi - lo);
    }
    for (let k0 = 0; k0 < K; k0 += 3) {
      // a group of 3 channels (the last group repeats its last channel; only the real ones are stored)
      const nk = imin(3, K - k0), k1 = imin(k0 + 1, K - 1), k2 = imin(k0 + 2, K - 1);
      const da = dy + f4((n * K + k0) * P), db = dy + f4((n * K + k1) * P), dc = dy + f4((n * K + k2) * P);
      for (let r = 0; r < 3; r++) {
        let a0 = z, a1 = z, a2 = z, b0 = z, b1 = z, b2 = z, c0 = z, c1 = z, c2 = z;
        let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, u0: f32 = 0, u1: f32 = 0, u2: f32 = 0, v0: f32 = 0, v1: f32 = 0, v2: f32 = 0;
        for (let oh = 0; oh < OH; oh++) {
          const xr = xp + f4((oh + r) * Wp), o = f4(oh * OW);
          let ow = 0;
          for (; ow + 4 <= OW; ow += 4) {
            const q = o + f4(ow), xq = xr + f4(ow);
            const x0 = v128.load(xq), x1 = v128.load(xq, 4), x2 = v128.load(xq, 8);
            const d = v128.load(da + q), e = v128.load(db + q), g = v128.load(dc + q);
            a0 = fma(d, x0, a0); a1 = fma(d, x1, a1); a2 = fma(d, x2, a2);
            b0 = fma(e, x0, b0); b1 = fma(e, x1, b1); b2 = fma(e, x2, b2);
            c0 = fma(g, x0, c0); c1 = fma(g, x1, c1); c2 = fma(g, x2, c2);
          }
          for (; ow < OW; ow++) {
            const q = o + f4(ow), xq = xr + f4(ow);
            const x0 = load<f32>(xq), x1 = load<f32>(xq, 4), x2 = load<f32>(xq, 8);
            const d = load<f32>(da + q), e = load<f32>(db + q), g = load<f32>(dc + q);
            t0 += d * x0; t1 += d * x1; t2 += d * x2;
            u0 += e * x0; u1 += e * x1; u2 += e * x2;
            v0 += g * x0; v1 += g * x1; v2 += g * x2;
          }
        }
        const pa = part + f4(k0 * 9 + r * 3);
        store<f32>(pa, load<f32>(pa) + hsum(a0) + t0);
        store<f32>(pa, load<f32>(pa, 4) + hsum(a1) + t1, 4);
        store<f32>(pa, load<f32>(pa, 8) + hsum(a2) + t2, 8);
        if (nk > 1) {
          const pb = pa + f4(9);
          store<f32>(pb, load<f32>(pb) + hsum(b0) + u0);
          store<f32>(pb, load<f32>(pb, 4) + hsum(b1) + u1, 4);
          store<f32>(pb, load<f32>(pb, 8) + hsum(b2) + u2, 8);
        }
        if (nk > 2) {
          const pc = pa + f4(18);
          store<f32>(pc, load<f32>(pc) + hsum(c0) + v0);
          store<f32>(pc, load<f32>(pc, 4) + hsum(c1) + v1, 4);
          store<f32>(pc, load<f32>(pc, 8) + hsum(c2) + v2, 8);
        }
      }
    }
  }
}

function opConvBwdW(ctrl: usize, tid: i32, nt: i32, scratch: usize): void {
  const N = ai(ctrl, 0), C = ai(ctrl, 1), H = ai(ctrl, 2), W = ai(ctrl, 3), K = ai(ctrl, 4), R = ai(ctrl, 5), S = ai(ctrl, 6);
  const sh = ai(ctrl, 7), sw = ai(ctrl, 8), ph = ai(ctrl, 9), pw = ai(ctrl, 10), OH = ai(ctrl, 11), OW = ai(ctrl, 12);
  const x = ap(ctrl, 13), dy = ap(ctrl, 14);
  const P = OH * OW, CRS = C * R * S;
  const part = scratch;
  const G = bwGroup(P), L = up(G * P, 4);
  const colG = align64(part + f4(K * CRS));
  const dyG = align64(colG + f4(up(CRS, 4) * L));
  const colP = align64(dyG + f4(up(K, 4) * L));
  const dyP = align64(colP + f4(up(CRS, 4) * L));
  if (!fits(dyP + f4(up(K, 4) * L))) return;
  zeroF(part, K * CRS);
  const n0 = rangeLo(N, nt, tid), n1 = rangeLo(N, nt, tid + 1);
  if (n0 >= n1) return;
  if (C == 1 && R == 3 && S == 3 && sh == 1 && sw == 1) {
    bw1ch3x3(x, dy, n0, n1, H, W, K, ph, pw, OH, OW, part, colG);
    return;
  }
  if (bwNHWC(C, S)) {
    bwNHWC4(x, dy, n0, n1, N, C, H, W, K, R, S, sh, sw, ph, pw, OH, OW, G, L, part, dyG, colP, dyP);
    return;
  }
  for (let n = n0; n < n1; n += G) {
    const g = imin(G, n1 - n);
    for (let gi = 0; gi < g; gi++)
      im2col(x + f4((n + gi) * C * H * W), C, H, W, R, S, sh, sw, ph, pw, OH, OW, colG + f4(gi * P), L);
    const used = g * P;
    if (used < L) for (let i = 0; i < CRS; i++) zeroF(colG + f4(i * L + used), L - used);
    const inPlace = G == 1 && L == P && (K & 1) == 0;
    if (!(inPlace && L >= BW_UNPACKED_L)) packPanels(colG, L, CRS, L, 4, colP);
    if (inPlace) {
      // one image per group and rows of dy already a multiple of 4 long: use dy in place
      if (L < BW_UNPACKED_L) {
        packPanels(dy + f4(n * K * P), P, K, L, 2, dyP);
        dotGemmP(dyP, K, colP, CRS, L, part, f4(CRS), true, 0);
      } else dotGemm(dy + f4(n * K * P), f4(P), K, colG, f4(L), CRS, L, part, f4(CRS), true, 0);
      continue;
    }
    for (let k = 0; k < K; k++) {
      const drow = dyG + f4(k * L);
      for (let gi = 0; gi < g; gi++) copyF(drow + f4(gi * P), dy + f4(((n + gi) * K + k) * P), P);
      if (used < L) zeroF(drow + f4(used), L - used);
    }
    packPanels(dyG, L, K, L, 2, dyP);
    dotGemmP(dyP, K, colP, CRS, L, part, f4(CRS), true, 0);
  }
}

/** dw = sum of the threads' partial sums; db[k] = sum of dy over images and pixels. */
function opReduceDw(ctrl: usize, tid: i32, nt: i32, scratch: usize): void {
  const N = ai(ctrl, 0), K = ai(ctrl, 1), CRS = ai(ctrl, 2), P = ai(ctrl, 3), parts = ai(ctrl, 4);
  const dy = ap(ctrl, 5), dw = ap(ctrl, 6), db = ap(ctrl, 7);
  const base = <usize>load<u32>(word(ctrl, CTRL_SCRATCH_BASE)), stride = <usize>load<u32>(word(ctrl, CTRL_SCRATCH_STRIDE));
  const total = K * CRS;
  const e0 = rangeLo(total >> 2, nt, tid) << 2;
  const e1 = tid == nt - 1 ? total : rangeLo(total >> 2, nt, tid + 1) << 2;
  const C = ai(ctrl, 8), R = ai(ctrl, 9), S = ai(ctrl, 10);
  if (e1 > e0) {
    if (bwNHWC(C, S)) {
      // partial sums are in [k][(r*S + s)*C + c] order
      const RS = R * S;
      for (let e = e0; e < e1; e++) {
        const k = e / CRS, rem = e - k * CRS, c = rem / RS, rs = rem - c * RS;
        const src = f4(k * CRS + rs * C + c);
        let v = load<f32>(base + src);
        for (let t = 1; t < parts; t++) v += load<f32>(base + <usize>t * stride + src);
        store<f32>(dw + f4(e), v);
      }
    } else {
      copyF(dw + f4(e0), base + f4(e0), e1 - e0);
      for (let t = 1; t < parts; t++) addF(dw + f4(e0), base + <usize>t * stride + f4(e0), e1 - e0);
    }
  }
  if (db) {
    const k0 = rangeLo(K, nt, tid), k1 = rangeLo(K, nt, tid + 1);
    for (let k = k0; k < k1; k++) {
      let s: f64 = 0;
      for (let n = 0; n < N; n++) s += <f64>sumF(dy + f4((n * K + k) * P), P);
      store<f32>(db + f4(k), <f32>s);
    }
  }
}

function sumF(p: usize, n: i32): f32 {
  let a = f32x4.splat(0), b = a;
  let i = 0;
  for (; i + 8 <= n; i += 8) { a = f32x4.add(a, v128.load(p + f4(i))); b = f32x4.add(b, v128.load(p + f4(i), 16)); }
  for (; i + 4 <= n; i += 4) a = f32x4.add(a, v128.load(p + f4(i)));
  let s = hsum(f32x4.add(a, b));
  for (; i < n; i++) s += load<f32>(p + f4(i));
  return s;
}

// ----------------------------------------------------------------------------------------- activations

/** exp(x) on 4 lanes (Cephes expf polynomial, relative error ~2e-7; saturates outside [-87.3, 88.3]). */
@inline function expV(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.33654)), f32x4.splat(88.37626));
  const fx = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504)));
  let r = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(0.693359375)));
  r = f32x4.add(r, f32x4.mul(fx, f32x4.splat(2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = fma(p, r, f32x4.splat(1.3981999507e-3));
  p = fma(p, r, f32x4.splat(8.3334519073e-3));
  p = fma(p, r, f32x4.splat(4.1665795894e-2));
  p = fma(p, r, f32x4.splat(1.6666665459e-1));
  p = fma(p, r, f32x4.splat(5.0000001201e-1));
  p = fma(p, f32x4.mul(r, r), f32x4.add(r, f32x4.splat(1)));
  // * 2^fx
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(fx), i32x4.splat(127)), 23);
  return f32x4.mul(p, e);
}
@inline function sigmoidV(v: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.div(one, f32x4.add(one, expV(f32x4.neg(v))));
}
@inline function tanhV(v: v128): v128 {
  // tanh(v) = sign(v) * (1 - 2 / (exp(2|v|) + 1)); near 0 use the series v - v^3/3 for relative accuracy
  const a = f32x4.abs(v), one = f32x4.splat(1);
  const t = f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(expV(f32x4.add(a, a)), one)));
  const v2 = f32x4.mul(v, v);
  const series = f32x4.mul(v, fma(v2, fma(v2, f32x4.splat(0.13333334), f32x4.splat(-0.33333334)), one));
  const signed = v128.or(t, v128.and(v, f32x4.splat(-0.0)));
  return select4(series, signed, f32x4.lt(a, f32x4.splat(0.004)));
}

/**
 * The activations as types, each with its 4-lane form `v` and its scalar form `s`, and its gradient (dy times the
 * derivative, from x or y at the given addresses) `g` / `gs`: affineActK<A> and actBwdK<A> are compiled once per
 * activation, as loops with only that activation's instructions in them. (One loop written with a `kind` test
 * that folded away where it was inlined with a constant did not stay that way: Binaryen merged the six inlined
 * copies into one loop that tested `kind` for every vector.)
 */
@final class ActNone {
  @inline v(v: v128, vs: v128): v128 { return v; }
  @inline s(v: f32, slope: f32): f32 { return v; }
  @inline g(x: usize, y: usize, dy: v128, vs: v128): v128 { return dy; }
  @inline gs(x: usize, y: usize, dy: f32, slope: f32): f32 { return dy; }
}
@final class ActRelu {
  @inline v(v: v128, vs: v128): v128 { return f32x4.pmax(f32x4.splat(0), v); }
  @inline s(v: f32, slope: f32): f32 { return v > 0 ? v : 0; }
  @inline g(x: usize, y: usize, dy: v128, vs: v128): v128 { return v128.and(dy, f32x4.gt(v128.load(x), f32x4.splat(0))); }
  @inline gs(x: usize, y: usize, dy: f32, slope: f32): f32 { return load<f32>(x) > 0 ? dy : 0; }
}
/**
 * LeakyReLU with a slope in [0, 1] (all the models'): max(v, v * slope), pmax's one instruction for the compare
 * and the select (the same value bit for bit: v * slope < v exactly when v > 0; a NaN v gives NaN, -0 gives -0 as
 * the select does).
 */
@final class ActLeaky01 {
  @inline v(v: v128, vs: v128): v128 { return f32x4.pmax(f32x4.mul(v, vs), v); }
  @inline s(v: f32, slope: f32): f32 { return v > 0 ? v : v * slope; }
}
@final class ActLeaky {
  @inline v(v: v128, vs: v128): v128 { return select4(v, f32x4.mul(v, vs), f32x4.gt(v, f32x4.splat(0))); }
  @inline s(v: f32, slope: f32): f32 { return v > 0 ? v : v * slope; }
  @inline g(x: usize, y: usize, dy: v128, vs: v128): v128 { return select4(dy, f32x4.mul(dy, vs), f32x4.gt(v128.load(x), f32x4.splat(0))); }
  @inline gs(x: usize, y: usize, dy: f32, slope: f32): f32 { return load<f32>(x) > 0 ? dy : dy * slope; }
}
@final class ActTanh {
  @inline v(v: v128, vs: v128): v128 { return tanhV(v); }
  @inline s(v: f32, slope: f32): f32 { return <f32>Math.tanh(<f64>v); }
  @inline g(x: usize, y: usize, dy: v128, vs: v128): v128 { return dyPreV(ACT_TANH, v128.load(y), dy, vs); }
  @inline gs(x: usize, y: usize, dy: f32, slope: f32): f32 { return dyPreS(ACT_TANH, load<f32>(y), dy, slope); }
}
@final class ActSigmoid {
  @inline v(v: v128, vs: v128): v128 { return sigmoidV(v); }
  @inline s(v: f32, slope: f32): f32 { return <f32>(1.0 / (1.0 + Math.exp(-<f64>v))); }
  @inline g(x: usize, y: usize, dy: v128, vs: v128): v128 { return dyPreV(ACT_SIGMOID, v128.load(y), dy, vs); }
  @inline gs(x: usize, y: usize, dy: f32, slope: f32): f32 { return dyPreS(ACT_SIGMOID, load<f32>(y), dy, slope); }
}

/** affineAct's loop for one activation A: 8 lanes a step, then 4, then 1. */
@inline function affineActK<A>(x: usize, y: usize, n: i32, a: f32, b: f32, slope: f32): void {
  const act = changetype<A>(0);  // its methods read no fields
  const va = f32x4.splat(a), vb = f32x4.splat(b), vs = f32x4.splat(slope);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = f4(i);
    const u = act.v(fma(v128.load(x + o), va, vb), vs), v = act.v(fma(v128.load(x + o, 16), va, vb), vs);
    v128.store(y + o, u);
    v128.store(y + o, v, 16);
  }
  for (; i + 4 <= n; i += 4) v128.store(y + f4(i), act.v(fma(v128.load(x + f4(i)), va, vb), vs));
  for (; i < n; i++) store<f32>(y + f4(i), act.s(load<f32>(x + f4(i)) * a + b, slope));
}

/**
 * y[i] = act(x[i] * a + b) for i < n (a=1, b=0 for a plain activation). One loop per activation: a
 * test of `kind` inside the loop cost about as much as the arithmetic.
 */
function affineAct(x: usize, y: usize, n: i32, a: f32, b: f32, kind: i32, slope: f32): void {
  if (kind == ACT_LEAKY && slope >= 0 && slope <= 1) affineActK<ActLeaky01>(x, y, n, a, b, slope);
  else if (kind == ACT_LEAKY) affineActK<ActLeaky>(x, y, n, a, b, slope);
  else if (kind == ACT_RELU) affineActK<ActRelu>(x, y, n, a, b, slope);
  else if (kind == ACT_NONE) affineActK<ActNone>(x, y, n, a, b, slope);
  else if (kind == ACT_TANH) affineActK<ActTanh>(x, y, n, a, b, slope);
  else affineActK<ActSigmoid>(x, y, n, a, b, slope);
}

/** The gradient before the activation, from its output y. */
@inline function dyPreV(kind: i32, y: v128, dy: v128, vs: v128): v128 {
  const z = f32x4.splat(0), one = f32x4.splat(1);
  if (kind == ACT_NONE) return dy;
  if (kind == ACT_RELU) return v128.and(dy, f32x4.gt(y, z));
  if (kind == ACT_LEAKY) return select4(dy, f32x4.mul(dy, vs), f32x4.gt(y, z));
  if (kind == ACT_TANH) return f32x4.mul(dy, f32x4.sub(one, f32x4.mul(y, y)));
  return f32x4.mul(f32x4.mul(dy, y), f32x4.sub(one, y));
}
@inline function dyPreS(kind: i32, y: f32, dy: f32, slope: f32): f32 {
  if (kind == ACT_NONE) return dy;
  if (kind == ACT_RELU) return y > 0 ? dy : 0;
  if (kind == ACT_LEAKY) return y > 0 ? dy : dy * slope;
  if (kind == ACT_TANH) return dy * (1 - y * y);
  return dy * y * (1 - y);
}

function opAct(ctrl: usize, tid: i32, nt: i32): void {
  const kind = ai(ctrl, 0), slope = af(ctrl, 1), n = ai(ctrl, 2), x = ap(ctrl, 3), y = ap(ctrl, 4);
  const q = n >> 4;
  const i0 = rangeLo(q, nt, tid) << 4, i1 = tid == nt - 1 ? n : rangeLo(q, nt, tid + 1) << 4;
  if (i1 > i0) affineAct(x + f4(i0), y + f4(i0), i1 - i0, 1, 0, kind, slope);
}

/** dx = dy * act'(x or y) over [i0, i1) for one activation A (see ActNone). */
@inline function actBwdK<A>(x: usize, y: usize, dy: usize, dx: usize, i0: i32, i1: i32, slope: f32): void {
  const act = changetype<A>(0);
  const vs = f32x4.splat(slope);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = f4(i);
    v128.store(dx + o, act.g(x + o, y + o, v128.load(dy + o), vs));
  }
  for (; i < i1; i++) {
    const o = f4(i);
    store<f32>(dx + o, act.gs(x + o, y + o, load<f32>(dy + o), slope));
  }
}

function opActBwd(ctrl: usize, tid: i32, nt: i32): void {
  const kind = ai(ctrl, 0), slope = af(ctrl, 1), n = ai(ctrl, 2);
  const x = ap(ctrl, 3), y = ap(ctrl, 4), dy = ap(ctrl, 5), dx = ap(ctrl, 6);
  const q = n >> 4;
  const i0 = rangeLo(q, nt, tid) << 4, i1 = tid == nt - 1 ? n : rangeLo(q, nt, tid + 1) << 4;
  if (kind == ACT_LEAKY) actBwdK<ActLeaky>(x, y, dy, dx, i0, i1, slope);
  else if (kind == ACT_RELU) actBwdK<ActRelu>(x, y, dy, dx, i0, i1, slope);
  else if (kind == ACT_NONE) actBwdK<ActNone>(x, y, dy, dx, i0, i1, slope);
  else if (kind == ACT_TANH) actBwdK<ActTanh>(x, y, dy, dx, i0, i1, slope);
  else actBwdK<ActSigmoid>(x, y, dy, dx, i0, i1, slope);
}

// ------------------------------------------------------------------------------------------ batch norm

/**
 * Per-channel slots of the batch-norm ops in this thread's scratch, 48 bytes for each of its channels: two
 * f64 sums (bytes 0-15) of the first pass, then f32 coefficients (from byte 16) for the passes that use them.
 */
const BN_SLOT: i32 = 48;

/**
 * The batch-norm passes visit this thread's channels image by image: channels [c0, c1) of one image are one
 * contiguous run of memory. Channel by channel, the same data came as one plane of each image in turn (3 KB
 * runs 100 KB apart at 28x28), which the prefetchers did not follow: 0.69 / 1.02 ms forward / backward at
 * [64, 32, 784] against 0.35 / 0.47 for one long run of the same size. Each channel's sums still add the
 * images in order, so the results are the same as before.
 */
function opBnTrain(ctrl: usize, tid: i32, nt: i32, scratch: usize): void {
  const N = ai(ctrl, 0), C = ai(ctrl, 1), HW = ai(ctrl, 2), x = ap(ctrl, 3), gamma = ap(ctrl, 4), beta = ap(ctrl, 5);
  const eps = af(ctrl, 6), kind = ai(ctrl, 7), slope = af(ctrl, 8), y = ap(ctrl, 9), mean = ap(ctrl, 10), invstd = ap(ctrl, 11);
  const variance = ap(ctrl, 12);
  const c0 = rangeLo(C, nt, tid), c1 = rangeLo(C, nt, tid + 1);
  if (c1 <= c0) return;
  const slots = align64(scratch);
  if (!fits(slots + <usize>(c1 - c0) * BN_SLOT)) return;
  const M = <f64>N * <f64>HW;
  zeroF(slots, (c1 - c0) * (BN_SLOT >> 2));
  // one pass over x for both moments: sums of d = x - shift and d^2 (shift = the channel's first value keeps
  // the cancellation small), f32 SIMD partials per plane, f64 totals
  for (let n = 0; n < N; n++) {
    for (let c = c0; c < c1; c++) {
      const shift = load<f32>(x + f4(c * HW));
      const vsh = f32x4.splat(shift);
      const p = x + f4((n * C + c) * HW);
      let a = f32x4.splat(0), b = a, a2 = a, b2 = a;
      let i = 0;
      for (; i + 8 <= HW; i += 8) {
        const d = f32x4.sub(v128.load(p + f4(i)), vsh), e = f32x4.sub(v128.load(p + f4(i), 16), vsh);
        a = f32x4.add(a, d); a2 = fma(d, d, a2);
        b = f32x4.add(b, e); b2 = fma(e, e, b2);
      }
      for (; i + 4 <= HW; i += 4) { const d = f32x4.sub(v128.load(p + f4(i)), vsh); a = f32x4.add(a, d); a2 = fma(d, d, a2); }
      let t = hsum(f32x4.add(a, b)), t2 = hsum(f32x4.add(a2, b2));
      for (; i < HW; i++) { const d = load<f32>(p + f4(i)) - shift; t += d; t2 += d * d; }
      const sl = slots + <usize>(c - c0) * BN_SLOT;
      store<f64>(sl, load<f64>(sl) + <f64>t);
      store<f64>(sl, load<f64>(sl, 8) + <f64>t2, 8);
    }
  }
  for (let c = c0; c < c1; c++) {
    const sl = slots + <usize>(c - c0) * BN_SLOT;
    const shift = load<f32>(x + f4(c * HW));
    const s1 = load<f64>(sl), s2 = load<f64>(sl, 8);
    const dm = s1 / M;
    const mu = <f32>(<f64>shift + dm);
    let q = s2 - s1 * dm;
    if (q < 0) q = 0;
    const is = <f32>(1.0 / Math.sqrt(q / M + <f64>eps));
    if (variance) store<f32>(variance + f4(c), <f32>(q / M));
    store<f32>(mean + f4(c), mu);
    store<f32>(invstd + f4(c), is);
    const a = load<f32>(gamma + f4(c)) * is;
    store<f32>(sl, a, 16);
    store<f32>(sl, load<f32>(beta + f4(c)) - mu * a, 20);
  }
  for (let n = 0; n < N; n++)
    for (let c = c0; c < c1; c++) {
      const sl = slots + <usize>(c - c0) * BN_SLOT, o = f4((n * C + c) * HW);
      affineAct(x + o, y + o, HW, load<f32>(sl, 16), load<f32>(sl, 20), kind, slope);
    }
}

function opAffine(ctrl: usize, tid: i32, nt: i32): void {
  const N = ai(ctrl, 0), C = ai(ctrl, 1), HW = ai(ctrl, 2), x = ap(ctrl, 3), scale = ap(ctrl, 4), shift = ap(ctrl, 5);
  const kind = ai(ctrl, 6), slope = af(ctrl, 7), y = ap(ctrl, 8);
  const r0 = rangeLo(N * C, nt, tid), r1 = rangeLo(N * C, nt, tid + 1);
  for (let r = r0; r < r1; r++) {
    const c = r % C;
    affineAct(x + f4(r * HW), y + f4(r * HW), HW, load<f32>(scale + f4(c)), load<f32>(shift + f4(c)), kind, slope);
  }
}

/**
 * The gradient before the activation of batch-norm + activation. With the forward's beta (bx != 0) and
 * an activation whose derivative needs only the sign of its input (none / relu / leaky), that sign is
 * recomputed from x by the forward's own expression fma(x, a, b) instead of being read from y: one array
 * less to stream through.
 */
@inline function bnGrad(kind: i32, bx: bool, x: usize, y: usize, dy: usize, va: v128, vb: v128, vs: v128): v128 {
  const g = v128.load(dy);
  if (!bx) return dyPreV(kind, v128.load(y), g, vs);
  if (kind == ACT_NONE) return g;
  const pos = f32x4.gt(fma(v128.load(x), va, vb), f32x4.splat(0));
  if (kind == ACT_RELU) return v128.and(g, pos);
  return select4(g, f32x4.mul(g, vs), pos);
}
/**
 * Where the backward takes x from: x itself, or (in place: batch-norm wrote y over x, x absent) the
 * activation's input recovered from y (none, leaky: y / slope below 0), paired with mu = beta.
 */
@inline function bnX(kind: i32, inPlace: bool, x: usize, y: usize, vis: v128): v128 {
  if (!inPlace) return v128.load(x);
  const v = v128.load(y);
  if (kind == ACT_LEAKY) return select4(v, f32x4.mul(v, vis), f32x4.gt(v, f32x4.splat(0)));
  return v;
}
@inline function bnXS(kind: i32, inPlace: bool, x: usize, y: usize, islope: f32): f32 {
  if (!inPlace) return load<f32>(x);
  const v = load<f32>(y);
  return kind == ACT_LEAKY && v < 0 ? v * islope : v;
}
@inline function bnGradS(kind: i32, bx: bool, x: f32, y: f32, dy: f32, a: f32, b: f32, slope: f32): f32 {
  if (!bx) return dyPreS(kind, y, dy, slope);
  if (kind == ACT_NONE) return dy;
  // the scalar tail of affineAct computes x * a + b unfused
  const pos = x * a + b > 0;
  if (kind == ACT_RELU) return pos ? dy : 0;
  return pos ? dy : dy * slope;
}

function opBnBwd(ctrl: usize, tid: i32, nt: i32, scratch: usize): void {
  const kind = ai(ctrl, 9), bx = ap(ctrl, 14) != 0 && kind <= ACT_LEAKY;
  // one copy of the loops per activation the mask is recomputed for (tests inside them cost as much as the
  // arithmetic), and per activation that works in place (x absent: none, leaky); the others (the mask from y:
  // tanh, sigmoid, or no beta) share one copy that tests the kind (each copy its own function: one function
  // holding them all took V8 megabytes more to compile)
  if (ap(ctrl, 3) == 0) {
    if (kind == ACT_LEAKY) bnBwdLeakyInPlace(ctrl, tid, nt, scratch);
    else bnBwdNoneInPlace(ctrl, tid, nt, scratch);
  } else if (bx) {
    if (kind == ACT_LEAKY) bnBwdLeaky(ctrl, tid, nt, scratch);
    else if (kind == ACT_RELU) bnBwdRelu(ctrl, tid, nt, scratch);
    else bnBwdNone(ctrl, tid, nt, scratch);
  } else bnBwdAny(ctrl, tid, nt, scratch, kind);
}
function bnBwdLeaky(ctrl: usize, tid: i32, nt: i32, scratch: usize): void { bnBwdK(ctrl, tid, nt, scratch, ACT_LEAKY, true, false); }
function bnBwdRelu(ctrl: usize, tid: i32, nt: i32, scratch: usize): void { bnBwdK(ctrl, tid, nt, scratch, ACT_RELU, true, false); }
function bnBwdNone(ctrl: usize, tid: i32, nt: i32, scratch: usize): void { bnBwdK(ctrl, tid, nt, scratch, ACT_NONE, true, false); }
function bnBwdAny(ctrl: usize, tid: i32, nt: i32, scratch: usize, kind: i32): void { bnBwdK(ctrl, tid, nt, scratch, kind, false, false); }
function bnBwdLeakyInPlace(ctrl: usize, tid: i32, nt: i32, scratch: usize): void { bnBwdK(ctrl, tid, nt, scratch, ACT_LEAKY, false, true); }
function bnBwdNoneInPlace(ctrl: usize, tid: i32, nt: i32, scratch: usize): void { bnBwdK(ctrl, tid, nt, scratch, ACT_NONE, false, true); }

/**
 * opBnBwd for one activation and mask source (constants where this is inlined). In place, x's deviation from
 * the mean is taken as (bnX - beta) / (gamma * invstd): the loops see mu = beta, and the per-channel factor
 * xs that turns their sums of (x - mu) into sums of the normalised value is 1 / gamma instead of invstd.
 */
@inline function bnBwdK(ctrl: usize, tid: i32, nt: i32, scratch: usize, kind: i32, bx: bool, inPlace: bool): void {
  const N = ai(ctrl, 0), C = ai(ctrl, 1), HW = ai(ctrl, 2), x = ap(ctrl, 3), y = ap(ctrl, 4), dy = ap(ctrl, 5);
  const gamma = ap(ctrl, 6), mean = ap(ctrl, 7), invstd = ap(ctrl, 8), slope = af(ctrl, 10);
  const dx = ap(ctrl, 11), dgamma = ap(ctrl, 12), dbeta = ap(ctrl, 13), beta = ap(ctrl, 14);
  const c0 = rangeLo(C, nt, tid), c1 = rangeLo(C, nt, tid + 1);
  if (c1 <= c0) return;
  const slots = align64(scratch);
  if (!fits(slots + <usize>(c1 - c0) * BN_SLOT)) return;
  const vs = f32x4.splat(slope), islope: f32 = 1 / slope, vis = f32x4.splat(islope);
  const M = <f64>N * <f64>HW;
  // slot: sums sdz, sdzx (f64) of the first pass; mu, the forward's scale af and shift bf (opBnTrain), then
  // the second pass's c1f, c0f, c2f (f32, from byte 16)
  zeroF(slots, (c1 - c0) * (BN_SLOT >> 2));
  for (let c = c0; c < c1; c++) {
    const sl = slots + <usize>(c - c0) * BN_SLOT;
    const mu = inPlace ? load<f32>(beta + f4(c)) : load<f32>(mean + f4(c));
    const af = load<f32>(gamma + f4(c)) * load<f32>(invstd + f4(c));
    store<f32>(sl, mu, 16);
    store<f32>(sl, af, 20);
    store<f32>(sl, bx ? load<f32>(beta + f4(c)) - mu * af : 0, 24);
  }
  for (let n = 0; n < N; n++) {
    for (let c = c0; c < c1; c++) {
      const sl = slots + <usize>(c - c0) * BN_SLOT;
      const mu = load<f32>(sl, 16), af = load<f32>(sl, 20), bf = load<f32>(sl, 24);
      const vmu = f32x4.splat(mu), va = f32x4.splat(af), vb = f32x4.splat(bf);
      const o = f4((n * C + c) * HW);
      // two accumulator pairs (even and odd vectors): one pair would wait on the FMA's latency
      let a = f32x4.splat(0), b = a, a1 = a, b1 = a;
      let i = 0;
      for (; i + 8 <= HW; i += 8) {
        const q = o + f4(i);
        const g = bnGrad(kind, bx, x + q, y + q, dy + q, va, vb, vs);
        const h = bnGrad(kind, bx, x + q + 16, y + q + 16, dy + q + 16, va, vb, vs);
        a = f32x4.add(a, g); a1 = f32x4.add(a1, h);
        b = fma(g, f32x4.sub(bnX(kind, inPlace, x + q, y + q, vis), vmu), b);
        b1 = fma(h, f32x4.sub(bnX(kind, inPlace, x + q + 16, y + q + 16, vis), vmu), b1);
      }
      for (; i + 4 <= HW; i += 4) {
        const q = o + f4(i);
        const g = bnGrad(kind, bx, x + q, y + q, dy + q, va, vb, vs);
        a = f32x4.add(a, g);
        b = fma(g, f32x4.sub(bnX(kind, inPlace, x + q, y + q, vis), vmu), b);
      }
      let ta = hsum(f32x4.add(a, a1)), tb = hsum(f32x4.add(b, b1));
      for (; i < HW; i++) {
        const q = o + f4(i);
        const g = bnGradS(kind, bx, inPlace ? 0 : load<f32>(x + q), load<f32>(y + q), load<f32>(dy + q), af, bf, slope);
        ta += g; tb += g * (bnXS(kind, inPlace, x + q, y + q, islope) - mu);
      }
      store<f64>(sl, load<f64>(sl) + <f64>ta);
      store<f64>(sl, load<f64>(sl, 8) + <f64>tb, 8);
    }
  }
  for (let c = c0; c < c1; c++) {
    const sl = slots + <usize>(c - c0) * BN_SLOT;
    const is = load<f32>(invstd + f4(c)), xs = inPlace ? 1 / <f64>load<f32>(gamma + f4(c)) : <f64>is;
    const sdz = load<f64>(sl), sdzx = load<f64>(sl, 8) * xs;
    store<f32>(dbeta + f4(c), <f32>sdz);
    store<f32>(dgamma + f4(c), <f32>sdzx);
    const k = <f64>load<f32>(gamma + f4(c)) * <f64>is / M;
    // dx = k*(M*g - sdz - (x-mu)*xs*sdzx) = c1*g - c0 - (x-mu)*c2
    store<f32>(sl, <f32>(k * M), 28);
    store<f32>(sl, <f32>(k * sdz), 32);
    store<f32>(sl, <f32>(k * xs * sdzx), 36);
  }
  for (let n = 0; n < N; n++) {
    for (let c = c0; c < c1; c++) {
      const sl = slots + <usize>(c - c0) * BN_SLOT;
      const mu = load<f32>(sl, 16), af = load<f32>(sl, 20), bf = load<f32>(sl, 24);
      const c1f = load<f32>(sl, 28), c0f = load<f32>(sl, 32), c2f = load<f32>(sl, 36);
      const vmu = f32x4.splat(mu), va = f32x4.splat(af), vb = f32x4.splat(bf);
      const v1 = f32x4.splat(c1f), v0 = f32x4.splat(c0f), v2 = f32x4.splat(c2f);
      const o = f4((n * C + c) * HW);
      let i = 0;
      for (; i + 8 <= HW; i += 8) {
        const q = o + f4(i);
        const g = bnGrad(kind, bx, x + q, y + q, dy + q, va, vb, vs);
        const h = bnGrad(kind, bx, x + q + 16, y + q + 16, dy + q + 16, va, vb, vs);
        const d = f32x4.sub(bnX(kind, inPlace, x + q, y + q, vis), vmu), e = f32x4.sub(bnX(kind, inPlace, x + q + 16, y + q + 16, vis), vmu);
        v128.store(dx + q, f32x4.sub(f32x4.sub(f32x4.mul(v1, g), v0), f32x4.mul(d, v2)));
        v128.store(dx + q, f32x4.sub(f32x4.sub(f32x4.mul(v1, h), v0), f32x4.mul(e, v2)), 16);
      }
      for (; i + 4 <= HW; i += 4) {
        const q = o + f4(i);
        const g = bnGrad(kind, bx, x + q, y + q, dy + q, va, vb, vs);
        const d = f32x4.sub(bnX(kind, inPlace, x + q, y + q, vis), vmu);
        v128.store(dx + q, f32x4.sub(f32x4.sub(f32x4.mul(v1, g), v0), f32x4.mul(d, v2)));
      }
      for (; i < HW; i++) {
        const q = o + f4(i);
        const g = bnGradS(kind, bx, inPlace ? 0 : load<f32>(x + q), load<f32>(y + q), load<f32>(dy + q), af, bf, slope);
        store<f32>(dx + q, c1f * g - c0f - (bnXS(kind, inPlace, x + q, y + q, islope) - mu) * c2f);
      }
    }
  }
}

/**
 * out[c] = the sum of channel c of x [N, C, HW] (a ConvTranspose2d's bias gradient): the channels split
 * between the threads, f32 vector partials along each image's plane, f64 across the images.
 */
function opChannelSums(ctrl: usize, tid: i32, nt: i32): void {
  const N = ai(ctrl, 0), C = ai(ctrl, 1), HW = ai(ctrl, 2), x = ap(ctrl, 3), out = ap(ctrl, 4);
  const c0 = rangeLo(C, nt, tid), c1 = rangeLo(C, nt, tid + 1);
  for (let c = c0; c < c1; c++) {
    let s: f64 = 0;
    for (let n = 0; n < N; n++) s += <f64>sumF(x + f4((n * C + c) * HW), HW);
    store<f32>(out + f4(c), <f32>s);
  }
}

// ------------------------------------------------------------------------------------------- optimiser

@inline function madd2(x: v128, a: v128, b: v128): v128 { return f64x2.add(x, f64x2.mul(a, b)); }
@inline function hi2(v: v128): v128 { return i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7); }
@inline function join2(lo: v128, hi: v128): v128 { return i8x16.shuffle(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23); }
/** x + a * b for f32 lanes, evaluated in f64 and rounded once to f32 (PyTorch's fused multiply-adds). */
@inline function addProd4(x: v128, a: v128, b: v128): v128 {
  return join2(f32x4.demote_f64x2_zero(madd2(f64x2.promote_low_f32x4(x), f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(b))),
               f32x4.demote_f64x2_zero(madd2(f64x2.promote_low_f32x4(hi2(x)), f64x2.promote_low_f32x4(hi2(a)), f64x2.promote_low_f32x4(hi2(b)))));
}
@inline function addProdS(x: f32, a: f32, b: f32): f32 { return <f32>(<f64>x + <f64>a * <f64>b); }

/**
 * SGD with momentum (no weight decay, not nesterov), element for element the float32 arithmetic of
 * src/engine/optim/sgd.ts (PyTorch's): buf = f32(f64(f32(buf * mom)) + ds * g), p = f32(p + negLr * buf), each
 * multiply-add evaluated in f64 (the product of two f32 is exact there) and rounded once to f32, two lanes of
 * f64 at a time. One thread: a parameter tensor is at most a few hundred KB.
 */
function opSgdMomentum(ctrl: usize): void {
  const n = ai(ctrl, 0), p = ap(ctrl, 1), g = ap(ctrl, 2), buf = ap(ctrl, 3);
  const mom = af(ctrl, 4), ds = af(ctrl, 5), negLr = af(ctrl, 6);
  const vm = f32x4.splat(mom), vds = f32x4.splat(ds), vlr = f32x4.splat(negLr);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = f4(i);
    const b = addProd4(f32x4.mul(v128.load(buf + o), vm), vds, v128.load(g + o));
    v128.store(buf + o, b);
    v128.store(p + o, addProd4(v128.load(p + o), vlr, b));
  }
  for (; i < n; i++) {
    const o = f4(i);
    const b = addProdS(load<f32>(buf + o) * mom, ds, load<f32>(g + o));
    store<f32>(buf + o, b);
    store<f32>(p + o, addProdS(load<f32>(p + o), negLr, b));
  }
}

/**
 * The MSE loss's pass, the arithmetic of src/engine/loss.ts mseLoss: d = a - t in f64, g = f32(k * d) with k (f64,
 * arguments 4-5) = 2 scale / n, and the sum of d^2 in f64 (arguments 6-7, written). Arguments: n, a, t, g. One thread:
 * an image batch is 200 KB.
 */
function opMse(ctrl: usize): void {
  const n = ai(ctrl, 0), a = ap(ctrl, 1), t = ap(ctrl, 2), g = ap(ctrl, 3);
  const k = load<f64>(word(ctrl, CTRL_ARG0 + 4)), vk = f64x2.splat(k);
  let s0 = f64x2.splat(0), s1 = s0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = f4(i);
    const va = v128.load(a + o), vt = v128.load(t + o);
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(va), f64x2.promote_low_f32x4(vt));
    const d1 = f64x2.sub(f64x2.promote_low_f32x4(hi2(va)), f64x2.promote_low_f32x4(hi2(vt)));
    s0 = f64x2.add(s0, f64x2.mul(d0, d0));
    s1 = f64x2.add(s1, f64x2.mul(d1, d1));
    v128.store(g + o, join2(f32x4.demote_f64x2_zero(f64x2.mul(vk, d0)), f32x4.demote_f64x2_zero(f64x2.mul(vk, d1))));
  }
  const sv = f64x2.add(s0, s1);
  let s = f64x2.extract_lane(sv, 0) + f64x2.extract_lane(sv, 1);
  for (; i < n; i++) {
    const o = f4(i);
    const d = <f64>load<f32>(a + o) - <f64>load<f32>(t + o);
    s += d * d;
    store<f32>(g + o, <f32>(k * d));
  }
  store<f64>(word(ctrl, CTRL_ARG0 + 6), s);
}

/**
 * Adam / AdamW without amsgrad, element for element the float32 arithmetic of src/engine/optim/adam.ts (and
 * native AdamLoop): each op rounded to f32 (sqrt and division correctly rounded), the multiply-adds PyTorch fuses
 * evaluated in f64 and rounded once. Arguments: n, p, g, m, v, useWeightDecay, decoupled, then the scalars in
 * the order of KERNEL_TABLE.adamScalars. One thread, as opSgdMomentum.
 */
function opAdam(ctrl: usize): void {
  const n = ai(ctrl, 0), p = ap(ctrl, 1), g = ap(ctrl, 2), m = ap(ctrl, 3), v = ap(ctrl, 4);
  const useWd = ai(ctrl, 5) != 0, decoupled = ai(ctrl, 6) != 0;
  const sign = af(ctrl, 7 + ADAM_SIGN), b1 = af(ctrl, 7 + ADAM_BETA1), omb1 = af(ctrl, 7 + ADAM_ONE_MINUS_BETA1);
  const b2 = af(ctrl, 7 + ADAM_BETA2), omb2 = af(ctrl, 7 + ADAM_ONE_MINUS_BETA2), eps = af(ctrl, 7 + ADAM_EPS);
  const wd = af(ctrl, 7 + ADAM_WEIGHT_DECAY), decay = af(ctrl, 7 + ADAM_DECAY);
  const negStep = af(ctrl, 7 + ADAM_NEG_STEP_SIZE), bc2s = af(ctrl, 7 + ADAM_BC2_SQRT);
  const vsign = f32x4.splat(sign), vb1 = f32x4.splat(b1), vomb1 = f32x4.splat(omb1), vb2 = f32x4.splat(b2), vomb2 = f32x4.splat(omb2);
  const veps = f32x4.splat(eps), vwd = f32x4.splat(wd), vdecay = f32x4.splat(decay), vneg = f32x4.splat(negStep), vbc2s = f32x4.splat(bc2s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = f4(i);
    let d = f32x4.mul(vsign, v128.load(g + o)), pi = v128.load(p + o);
    if (decoupled) { if (useWd) pi = f32x4.mul(pi, vdecay); }
    else if (useWd) d = addProd4(d, vwd, pi);
    const mi = addProd4(f32x4.mul(v128.load(m + o), vb1), vomb1, d);
    const vi = addProd4(f32x4.mul(v128.load(v + o), vb2), f32x4.mul(vomb2, d), d);
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), vbc2s), veps);
    v128.store(p + o, f32x4.add(pi, f32x4.div(f32x4.mul(vneg, mi), denom)));
  }
  for (; i < n; i++) {
    const o = f4(i);
    let d = sign * load<f32>(g + o), pi = load<f32>(p + o);
    if (decoupled) { if (useWd) pi = pi * decay; }
    else if (useWd) d = addProdS(d, wd, pi);
    const mi = addProdS(load<f32>(m + o) * b1, omb1, d);
    const vi = addProdS(load<f32>(v + o) * b2, omb2 * d, d);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const denom = Mathf.sqrt(vi) / bc2s + eps;
    store<f32>(p + o, pi + (negStep * mi) / denom);
  }
}

// -------------------------------------------------------------------------------------------- dispatch

/** This thread's control block and the end of its scratch (globals are per instance, so per thread). */
let curCtrl: usize = 0;
let scratchEnd: usize = 0;

/**
 * Whether a carve of the scratch that ends at `end` fits in what the caller gave this thread; if not, the
 * op stops and the control block's error word says so (scratchBytes below fell behind the carving).
 */
function fits(end: usize): bool {
  if (end <= scratchEnd) return true;
  store<i32>(word(curCtrl, CTRL_ERROR), ERR_SCRATCH_OVERFLOW);
  return false;
}

@inline function upL(x: i64, m: i64): i64 { return (x + m - 1) / m * m; }
@inline function maxL(a: i64, b: i64): i64 { return a > b ? a : b; }

/**
 * Bytes of scratch each thread needs for the op and the arguments in the control block: an upper bound over
 * the paths of the op, declared here beside the code that carves it (the JS side asks before each call).
 */
export function scratchBytes(ctrl: usize): f64 { return <f64>scratchBytesL(ctrl); }

function scratchBytesL(ctrl: usize): i64 {
  const op = load<i32>(word(ctrl, CTRL_OP));
  if (op == OP_GEMM) {
    const transB = ai(ctrl, 1), N = <i64>ai(ctrl, 3), M = <i64>ai(ctrl, 2), K = <i64>ai(ctrl, 4);
    return (256 + 64 + 4 * (M + 8) * K + 64 + (transB ? 4 * K * upL(N, 8) : 0) + 64);
  }
  // one slot per channel (a thread takes at most all of them)
  if (op == OP_BN_TRAIN || op == OP_BN_BWD) return 64 + <i64>BN_SLOT * <i64>ai(ctrl, 1);
  if (op != OP_CONV_FWD && op != OP_CONV_BWD_DATA && op != OP_CONV_BWD_WEIGHT) return 0;
  const C = <i64>ai(ctrl, 1), H = <i64>ai(ctrl, 2), W = <i64>ai(ctrl, 3), K = <i64>ai(ctrl, 4);
  const R = <i64>ai(ctrl, 5), S = <i64>ai(ctrl, 6), ph = <i64>ai(ctrl, 9), pw = <i64>ai(ctrl, 10);
  const OH = <i64>ai(ctrl, 11), OW = <i64>ai(ctrl, 12);
  const CRS = C * R * S, P = OH * OW, Ppad = upL(P, 8), img = (H + 2 * ph) * (W + 2 * pw) * C;
  if (op == OP_CONV_FWD) {
    const L = upL(CRS, 4) + 4;
    return (256 + 64 + 4 * (K + 8) * L + 64 + 4 * maxL(img, (H + 2 * ph + 4) * (OW + 16)) + 64 +
      4 * maxL((P + 8) * L, CRS * Ppad) + 64 + 4 * (K + 8) * L + 64 + 4 * (P + 8) * L + 64);
  }
  if (op == OP_CONV_BWD_DATA)
    return (256 + 64 + 4 * K * (H + 3) * (upL(W, 16) + 4) + 64 + 4 * (CRS + 8) * (K + 8) + 64 + 4 * (P + 4) * (K + 8) + 64 + 4 * CRS * Ppad + 64 +
      4 * img + 64 + 4 * (CRS + 8) * (K + 8) + 64 + 4 * (P + 8) * (K + 8) + 64);
  const G = <i64>bwGroup(<i32>P), L = upL(G * P, 4);
  return (4 * K * CRS + 64 + 2 * (4 * (CRS + 8) * L + 64 + 4 * (K + 8) * L + 64) + 4 * (G + 1) * img + 64);
}

/** The version of the kernel table this module was built from (the JS side compares it with its own). */
export function tableHash(): u32 { return KERNEL_TABLE_HASH; }

export function run(ctrl: usize, tid: i32): void {
  const op = load<i32>(word(ctrl, CTRL_OP)), nt = load<i32>(word(ctrl, CTRL_THREADS));
  if (tid >= nt) return;
  const stride = <usize>load<u32>(word(ctrl, CTRL_SCRATCH_STRIDE));
  const scratch = <usize>load<u32>(word(ctrl, CTRL_SCRATCH_BASE)) + <usize>tid * stride;
  curCtrl = ctrl;
  scratchEnd = scratch + stride;
  switch (op) {
    case OP_GEMM: opGemm(ctrl, tid, nt, scratch); break;
    case OP_CONV_FWD: opConvFwd(ctrl, tid, nt, scratch); break;
    case OP_CONV_BWD_DATA: opConvBwdData(ctrl, tid, nt, scratch); break;
    case OP_CONV_BWD_WEIGHT: opConvBwdW(ctrl, tid, nt, scratch); break;
    case OP_REDUCE_DW: opReduceDw(ctrl, tid, nt, scratch); break;
    case OP_BN_TRAIN: opBnTrain(ctrl, tid, nt, scratch); break;
    case OP_AFFINE: opAffine(ctrl, tid, nt); break;
    case OP_BN_BWD: opBnBwd(ctrl, tid, nt, scratch); break;
    case OP_ACT: opAct(ctrl, tid, nt); break;
    case OP_ACT_BWD: opActBwd(ctrl, tid, nt); break;
    case OP_CHANNEL_SUMS: opChannelSums(ctrl, tid, nt); break;
    case OP_SGD_MOMENTUM: if (tid == 0) opSgdMomentum(ctrl); break;
    case OP_ADAM: if (tid == 0) opAdam(ctrl); break;
    case OP_MSE: if (tid == 0) opMse(ctrl); break;
    default: break;
  }
}

/** Flops of one round of fmaPeak: 12 chains of 4-lane multiply-adds (the probe's callers read it from here). */
export const FMA_PEAK_FLOPS_PER_ITER: i32 = 2 * 12 * 4;

/**
 * The machine's fp32 FMA peak on one thread, for `npm run bench`: `iters` rounds of 12 independent
 * 4-lane multiply-adds (relaxed-SIMD FMA when built with it, else mul + add), no memory traffic.
 * Twelve chains, not eight: V8 keeps 15 SIMD registers, and eight chains waited on the FMA's latency
 * (49-50 against 53-54 GFLOP/s a thread here, a probe of both in one process).
 * Returns a value that depends on every lane so the loop cannot be removed (FMA_PEAK_FLOPS_PER_ITER * iters flops).
 */
export function fmaPeak(iters: i32): f32 {
  const m = f32x4.splat(0.999999), k = f32x4.splat(1e-7);
  let a0 = f32x4.splat(1.0), a1 = f32x4.splat(1.1), a2 = f32x4.splat(1.2), a3 = f32x4.splat(1.3);
  let a4 = f32x4.splat(1.4), a5 = f32x4.splat(1.5), a6 = f32x4.splat(1.6), a7 = f32x4.splat(1.7);
  let a8 = f32x4.splat(1.8), a9 = f32x4.splat(1.9), a10 = f32x4.splat(2.0), a11 = f32x4.splat(2.1);
  for (let i = 0; i < iters; i++) {
    a0 = fma(a0, m, k); a1 = fma(a1, m, k); a2 = fma(a2, m, k); a3 = fma(a3, m, k);
    a4 = fma(a4, m, k); a5 = fma(a5, m, k); a6 = fma(a6, m, k); a7 = fma(a7, m, k);
    a8 = fma(a8, m, k); a9 = fma(a9, m, k); a10 = fma(a10, m, k); a11 = fma(a11, m, k);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return hsum(f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11))));
}
