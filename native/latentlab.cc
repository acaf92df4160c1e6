// latentlab native kernels: the engine's Backend interface on oneDNN (convolutions, gemm) and
// hand-written, OpenMP-parallel loops (batch-norm with its fused activation, activations).
//
// Semantics follow src/engine/kernels/reference.ts exactly: float32, row-major, NCHW; kernels
// overwrite their outputs. Arrays come from JS as Float32Arrays and are used in place (zero copy).
//
// Build: npm run build:native  (node-gyp rebuild --nodedir=/usr --directory native), needs libdnnl-dev.
// Compiled with plain -O3 (no -march=native): oneDNN picks its ISA at run time, and the element-wise
// loops here are compiled for avx512f / avx2 / baseline with GCC's target_clones (ifunc dispatch).

#include <napi.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

// activation kinds, layout policies, convolution kinds, adamStep's scalars, the channel block: generated from
// the kernel table (src/engine/kernels/table.ts) by tools/gen-kernel-table.mjs
#include "kernel_table.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LL_CLONES
#endif
#define LL_INLINE inline __attribute__((always_inline))

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// ------------------------------------------------------------------------------------------------
// Argument helpers

float* F32(const Napi::Env& env, const Napi::Value& v, size_t need, const char* name) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + ": expected a Float32Array");
  auto ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, std::string(name) + ": expected a Float32Array");
  auto fa = v.As<Napi::TypedArrayOf<float>>();
  if (fa.ElementLength() < need)
    throw Napi::RangeError::New(env, std::string(name) + ": array has " + std::to_string(fa.ElementLength()) +
                                         " elements, the kernel needs " + std::to_string(need));
  return fa.Data();
}

float* F32OrNull(const Napi::Env& env, const Napi::Value& v, size_t need, const char* name) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return F32(env, v, need, name);
}

int I32(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
double F64(const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); }

// ------------------------------------------------------------------------------------------------
// Element-wise kernels. Activation kinds: A_NONE, A_RELU, ... (kernel_table.h).

// exp, tanh and the logistic function written so that loops over them vectorize (libm calls do not):
// Cephes' single-precision algorithms, a few ulp from the correctly rounded result.
LL_INLINE float expV(float x) {
  x = x < -87.f ? -87.f : x;
  x = x > 88.f ? 88.f : x;
  float fx = x * 1.44269504088896341f;
  fx = fx + (fx >= 0.f ? 0.5f : -0.5f);
  int32_t n = int32_t(fx);  // round half away from zero
  float fn = float(n);
  float z = x - fn * 0.693359375f;
  z = z - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * z + 1.3981999507e-3f;
  p = p * z + 8.3334519073e-3f;
  p = p * z + 4.1665795894e-2f;
  p = p * z + 1.6666665459e-1f;
  p = p * z + 5.0000001201e-1f;
  float y = p * z * z + z + 1.f;
  int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}
LL_INLINE float tanhV(float x) {
  float ax = x < 0.f ? -x : x;
  // |x| < 0.625: odd polynomial; else 1 - 2 / (exp(2|x|) + 1) with the sign of x
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float e = expV(2.f * ax);
  float big = 1.f - 2.f / (e + 1.f);
  big = x < 0.f ? -big : big;
  return ax < 0.625f ? small : big;
}
LL_INLINE float sigmoidV(float x) { return 1.f / (1.f + expV(-x)); }

template <int K>
LL_INLINE float actF(float v, float slope) {
  if (K == A_RELU) return v > 0.f ? v : 0.f;
  if (K == A_LEAKY) return v > 0.f ? v : v * slope;
  if (K == A_TANH) return tanhV(v);
  if (K == A_SIGMOID) return sigmoidV(v);
  return v;
}
/** d act / dx from input x and output y (activationBackward). */
template <int K>
LL_INLINE float actG(float x, float y, float slope) {
  if (K == A_RELU) return x > 0.f ? 1.f : 0.f;
  if (K == A_LEAKY) return x > 0.f ? 1.f : slope;
  if (K == A_TANH) return 1.f - y * y;
  if (K == A_SIGMOID) return y * (1.f - y);
  return 1.f;
}
/** The gradient before a fused activation, from its output y (reference dyPre). */
template <int K>
LL_INLINE float dyPre(float y, float dy, float slope) {
  if (K == A_RELU) return y > 0.f ? dy : 0.f;
  if (K == A_LEAKY) return y > 0.f ? dy : dy * slope;
  if (K == A_TANH) return dy * (1.f - y * y);
  if (K == A_SIGMOID) return dy * y * (1.f - y);
  return dy;
}

#define LL_DISPATCH(kind, CALL)            \
  switch (kind) {                          \
    case A_RELU: CALL(A_RELU); break;      \
    case A_LEAKY: CALL(A_LEAKY); break;    \
    case A_TANH: CALL(A_TANH); break;      \
    case A_SIGMOID: CALL(A_SIGMOID); break; \
    default: CALL(A_NONE); break;          \
  }

// y[i] = act((x[i] - mu) * a + b)
template <int K>
LL_INLINE void affineActT(const float* x, float* y, long n, float mu, float a, float b, float slope) {
#pragma omp simd
  for (long i = 0; i < n; i++) y[i] = actF<K>((x[i] - mu) * a + b, slope);
}
LL_CLONES void affineAct(const float* x, float* y, long n, float mu, float a, float b, int kind, float slope) {
#define CALL(K) affineActT<K>(x, y, n, mu, a, b, slope)
  LL_DISPATCH(kind, CALL)
#undef CALL
}

template <int K>
LL_INLINE void actBwdT(const float* x, const float* y, const float* dy, float* dx, long n, float slope) {
#pragma omp simd
  for (long i = 0; i < n; i++) dx[i] = dy[i] * actG<K>(x[i], y[i], slope);
}
LL_CLONES void actBwd(const float* x, const float* y, const float* dy, float* dx, long n, int kind, float slope) {
#define CALL(K) actBwdT<K>(x, y, dy, dx, n, slope)
  LL_DISPATCH(kind, CALL)
#undef CALL
}

constexpr long kChunk = 1024;  // float partial sums over at most this many elements, then double

LL_CLONES void sumRow(const float* x, long n, double* s) {
  double acc = 0;
  for (long i0 = 0; i0 < n; i0 += kChunk) {
    long i1 = i0 + kChunk < n ? i0 + kChunk : n;
    float p = 0.f;
#pragma omp simd reduction(+ : p)
    for (long i = i0; i < i1; i++) p += x[i];
    acc += p;
  }
  *s += acc;
}
LL_CLONES void sqDevRow(const float* x, long n, float mu, double* s) {
  double acc = 0;
  for (long i0 = 0; i0 < n; i0 += kChunk) {
    long i1 = i0 + kChunk < n ? i0 + kChunk : n;
    float p = 0.f;
#pragma omp simd reduction(+ : p)
    for (long i = i0; i < i1; i++) {
      float d = x[i] - mu;
      p += d * d;
    }
    acc += p;
  }
  *s += acc;
}

// The value x[i] the normalised value is computed from: x itself, or (INV: batch-norm wrote y over x) the
// activation's input recovered from y (none, leaky: y / slope below 0), which the caller pairs with mu = beta
// and is = 1 / gamma.
template <int K, bool INV>
LL_INLINE float xIn(const float* x, const float* y, long i, float islope) {
  if (!INV) return x[i];
  return K == A_LEAKY && y[i] < 0.f ? y[i] * islope : y[i];
}
#define LL_DISPATCH_INV(kind, CALL)        \
  if (kind == A_LEAKY) CALL(A_LEAKY);      \
  else CALL(A_NONE);

template <int K, bool INV>
LL_INLINE void bnBwdSumsT(const float* x, const float* y, const float* dy, long n, float mu, float is, float slope,
                          double* sg, double* sgx) {
  const float islope = 1.f / slope;
  double a1 = 0, a2 = 0;
  for (long i0 = 0; i0 < n; i0 += kChunk) {
    long i1 = i0 + kChunk < n ? i0 + kChunk : n;
    float p1 = 0.f, p2 = 0.f;
#pragma omp simd reduction(+ : p1, p2)
    for (long i = i0; i < i1; i++) {
      float g = dyPre<K>(y[i], dy[i], slope);
      p1 += g;
      p2 += g * (xIn<K, INV>(x, y, i, islope) - mu) * is;
    }
    a1 += p1;
    a2 += p2;
  }
  *sg += a1;
  *sgx += a2;
}
LL_CLONES void bnBwdSums(const float* x, const float* y, const float* dy, long n, float mu, float is, int kind,
                         float slope, double* sg, double* sgx) {
  if (!x) {
#define CALL(K) bnBwdSumsT<K, true>(x, y, dy, n, mu, is, slope, sg, sgx)
    LL_DISPATCH_INV(kind, CALL)
#undef CALL
    return;
  }
#define CALL(K) bnBwdSumsT<K, false>(x, y, dy, n, mu, is, slope, sg, sgx)
  LL_DISPATCH(kind, CALL)
#undef CALL
}

// dx = k2 * (g - mdz - xhat * mdzx), xhat = (x - mu) * is
template <int K, bool INV>
LL_INLINE void bnBwdDxT(const float* x, const float* y, const float* dy, float* dx, long n, float mu, float is,
                        float slope, float k2, float mdz, float mdzx) {
  const float islope = 1.f / slope;
#pragma omp simd
  for (long i = 0; i < n; i++) {
    float g = dyPre<K>(y[i], dy[i], slope);
    dx[i] = k2 * (g - mdz - (xIn<K, INV>(x, y, i, islope) - mu) * is * mdzx);
  }
}
LL_CLONES void bnBwdDx(const float* x, const float* y, const float* dy, float* dx, long n, float mu, float is,
                       int kind, float slope, float k2, float mdz, float mdzx) {
  if (!x) {
#define CALL(K) bnBwdDxT<K, true>(x, y, dy, dx, n, mu, is, slope, k2, mdz, mdzx)
    LL_DISPATCH_INV(kind, CALL)
#undef CALL
    return;
  }
#define CALL(K) bnBwdDxT<K, false>(x, y, dy, dx, n, mu, is, slope, k2, mdz, mdzx)
  LL_DISPATCH(kind, CALL)
#undef CALL
}

int ActKind(const Napi::Env& env, const Napi::Value& v) {
  int k = I32(v);
  if (k < 0 || k >= A_COUNT) throw Napi::RangeError::New(env, "unknown activation kind");
  return k;
}

// ------------------------------------------------------------------------------------------------
// The channel-blocked activation layout nChw16c (oneDNN's aBcd16b): [N][C/16][HW][16], C % 16 == 0.
// Convolutions read and write it without reorders; these loops work on it directly, with the 16 channels
// of a block in the 16 lanes of a vector.

constexpr int kB = kChannelBlock;

LL_INLINE long BIdx(long n, long cb, long CB, long HW) { return (n * CB + cb) * HW * kB; }

// ------------------------------------------------------------------------------------------------
// Small products (fewer than gemmSerialMacs multiply-adds, one thread): the Linear layers' shapes, where
// one side is 1-8 wide (the latent) and oneDNN's sgemm spends more on packing than on arithmetic (the
// model's eight products took 0.32 ms a step, 5-16 GFLOP/s). C (row-major, M x N, already scaled by
// beta) += alpha * op(A) op(B), with a(m,k) = tA ? A[k*M+m] : A[m*K+k] and b(k,n) = tB ? B[n*K+k] : B[k*N+n].
// Three forms, each reading its operands along contiguous rows (a small operand is transposed first):
//   rows:  C[m,:] += alpha a(m,k) b(k,:)                  (N wide)
//   cols:  C^T[n,:] += alpha b(k,n) a(:,k), then added    (M wide, A transposed in memory or small)
//   dots:  C[m,n] += alpha <a(m,:), b(:,n)>               (both narrow, K long)
// SmallFits says whether one fits without a large transpose (else the caller uses oneDNN).
constexpr long kSmallTranspose = 1 << 16;  // the most floats a form may copy to get contiguous rows
constexpr long kSmallTile = 512;          // columns of C (or C^T) summed into at a time: 2 KB

// c[j] += s[0] b[j] + s[1] b[ld + j] + ... (r <= 4 rows of b at once: one load and store of c per r FMAs)
LL_CLONES void axpyRows(float* c, const float* b, long ld, const float* s, int r, long n) {
  const float s0 = s[0], s1 = r > 1 ? s[1] : 0.f, s2 = r > 2 ? s[2] : 0.f, s3 = r > 3 ? s[3] : 0.f;
  const float *b0 = b, *b1 = b + (r > 1 ? ld : 0), *b2 = b + (r > 2 ? 2 * ld : 0), *b3 = b + (r > 3 ? 3 * ld : 0);
  if (r == 4) {
#pragma omp simd
    for (long j = 0; j < n; j++) c[j] += (s0 * b0[j] + s1 * b1[j]) + (s2 * b2[j] + s3 * b3[j]);
  } else {
#pragma omp simd
    for (long j = 0; j < n; j++) c[j] += (s0 * b0[j] + s1 * b1[j]) + s2 * b2[j];
  }
}
typedef float V16 __attribute__((vector_size(64), aligned(4)));  // 16 floats, any alignment
LL_CLONES float dotRow(const float* a, const float* b, long n) {
  // four independent vector sums: one would wait on the FMA latency at every step
  V16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
  long j = 0;
  for (; j + 64 <= n; j += 64) {
    s0 += *reinterpret_cast<const V16*>(a + j) * *reinterpret_cast<const V16*>(b + j);
    s1 += *reinterpret_cast<const V16*>(a + j + 16) * *reinterpret_cast<const V16*>(b + j + 16);
    s2 += *reinterpret_cast<const V16*>(a + j + 32) * *reinterpret_cast<const V16*>(b + j + 32);
    s3 += *reinterpret_cast<const V16*>(a + j + 48) * *reinterpret_cast<const V16*>(b + j + 48);
  }
  V16 v = (s0 + s1) + (s2 + s3);
  float s = 0.f;
  for (int t = 0; t < 16; t++) s += v[t];
  for (; j < n; j++) s += a[j] * b[j];
  return s;
}
// dst (cols x rows) = src^T, src rows x cols, row-major
void transposeInto(const float* src, long rows, long cols, std::vector<float>& dst) {
  dst.resize(size_t(rows) * cols);
  for (long r = 0; r < rows; r++)
    for (long c = 0; c < cols; c++) dst[size_t(c) * rows + r] = src[r * cols + c];
}

enum class SmallForm { kNone, kRows, kCols, kDots };
SmallForm SmallFormOf(bool tA, bool tB, long M, long N, long K) {
  if (N >= 8 && (!tB || K * N <= kSmallTranspose)) return SmallForm::kRows;
  if (M >= 8 && (tA || K * M <= kSmallTranspose)) return SmallForm::kCols;
  if ((!tA || M * K <= kSmallTranspose) && (tB || K * N <= kSmallTranspose)) return SmallForm::kDots;
  return SmallForm::kNone;
}
bool SmallFits(bool tA, bool tB, long M, long N, long K) { return SmallFormOf(tA, tB, M, N, K) != SmallForm::kNone; }

void SmallGemm(bool tA, bool tB, long M, long N, long K, float alpha, const float* A, const float* B, float* C) {
  thread_local std::vector<float> ta, tb, tc;
  const SmallForm form = SmallFormOf(tA, tB, M, N, K);
  if (form == SmallForm::kRows) {
    const float* Bk = B;  // K x N
    if (tB) { transposeInto(B, N, K, tb); Bk = tb.data(); }
    // in column tiles that stay in L1 while every k adds to them
    for (long n0 = 0; n0 < N; n0 += kSmallTile)
      for (long m = 0; m < M; m++)
        for (long k = 0; k < K; k += 4) {
          float sc[4];
          const int r = int(std::min(4L, K - k));
          for (int i = 0; i < r; i++) sc[i] = alpha * (tA ? A[(k + i) * M + m] : A[m * K + k + i]);
          axpyRows(C + m * N + n0, Bk + k * N + n0, N, sc, r, std::min(kSmallTile, N - n0));
        }
    return;
  }
  if (form == SmallForm::kCols) {
    const float* Ak = A;  // K x M: row k is a(:,k)
    if (!tA) { transposeInto(A, M, K, ta); Ak = ta.data(); }
    tc.assign(size_t(N) * M, 0.f);
    for (long m0 = 0; m0 < M; m0 += kSmallTile)
      for (long n = 0; n < N; n++)
        for (long k = 0; k < K; k += 4) {
          float sc[4];
          const int r = int(std::min(4L, K - k));
          for (int i = 0; i < r; i++) sc[i] = alpha * (tB ? B[n * K + k + i] : B[(k + i) * N + n]);
          axpyRows(tc.data() + n * M + m0, Ak + k * M + m0, M, sc, r, std::min(kSmallTile, M - m0));
        }
    for (long m = 0; m < M; m++)
      for (long n = 0; n < N; n++) C[m * N + n] += tc[size_t(n) * M + m];
    return;
  }
  if (form == SmallForm::kDots) {
    const float* Am = A;  // M x K
    const float* Bn = B;  // N x K
    if (tA) { transposeInto(A, K, M, ta); Am = ta.data(); }
    if (!tB) { transposeInto(B, K, N, tb); Bn = tb.data(); }
    for (long m = 0; m < M; m++)
      for (long n = 0; n < N; n++) C[m * N + n] += alpha * dotRow(Am + m * K, Bn + n * K, K);
  }
}

// Coefficients per lane copied into locals: read through the pointers, every store through y (which might alias
// them) made the compiler load them again (normConvT1Backward below ran 0.43-0.59 ms against 0.55-0.89 so).
#define LL_LOCAL16(name, src) \
  float name[kB];             \
  for (int l_ = 0; l_ < kB; l_++) name[l_] = (src)[l_]
// The blocked sums loops below add each pixel's vector into one of kChains float accumulators (pixel i into
// chain i % kChains), added together at the end of the block, then into double: with one accumulator every
// pixel's add waited for the previous one's (an add's latency per 64 bytes), which bounded the passes below the
// cache's bandwidth.
constexpr int kChains = 4;
// Per-lane sums of x over the HW pixels of one (n, cb) block: float partials per pixel run, then double.
LL_CLONES void blkSum(const float* x, long HW, double* s) {
  float p[kChains][kB] = {};
  long i = 0;
  for (; i + kChains <= HW; i += kChains)
    for (int u = 0; u < kChains; u++) {
#pragma omp simd
      for (int l = 0; l < kB; l++) p[u][l] += x[(i + u) * kB + l];
    }
  for (; i < HW; i++) {
#pragma omp simd
    for (int l = 0; l < kB; l++) p[i % kChains][l] += x[i * kB + l];
  }
  for (int l = 0; l < kB; l++) s[l] += (p[0][l] + p[1][l]) + (p[2][l] + p[3][l]);
}
// Shifted sums in one pass: s1 += sum(x - k), s2 += sum((x - k)^2) per lane (k near the mean keeps the
// variance s2/M - (s1/M)^2 free of cancellation).
LL_CLONES void blkShiftedSums(const float* x, long HW, const float* k, double* s1, double* s2) {
  float p[kChains][kB] = {}, q[kChains][kB] = {};
  LL_LOCAL16(kk, k);
  auto add = [&](long i, int u) {
#pragma omp simd
    for (int l = 0; l < kB; l++) {
      float d = x[i * kB + l] - kk[l];
      p[u][l] += d;
      q[u][l] += d * d;
    }
  };
  long i = 0;
  for (; i + kChains <= HW; i += kChains)
    for (int u = 0; u < kChains; u++) add(i + u, u);
  for (; i < HW; i++) add(i, int(i % kChains));
  for (int l = 0; l < kB; l++) {
    s1[l] += (p[0][l] + p[1][l]) + (p[2][l] + p[3][l]);
    s2[l] += (q[0][l] + q[1][l]) + (q[2][l] + q[3][l]);
  }
}
// The value before the activation, computed by the same expression in the forward and the backward pass.
LL_INLINE float preAct(float x, float mu, float a, float b) { return (x - mu) * a + b; }

template <int K>
LL_INLINE void blkAffineActT(const float* x, float* y, long HW, const float* mup, const float* ap, const float* bp,
                             float slope) {
  LL_LOCAL16(mu, mup);
  LL_LOCAL16(a, ap);
  LL_LOCAL16(b, bp);
  for (long i = 0; i < HW; i++) {
#pragma omp simd
    for (int l = 0; l < kB; l++) y[i * kB + l] = actF<K>(preAct(x[i * kB + l], mu[l], a[l], b[l]), slope);
  }
}
LL_CLONES void blkAffineAct(const float* x, float* y, long HW, const float* mu, const float* a, const float* b,
                            int kind, float slope) {
#define CALL(K) blkAffineActT<K>(x, y, HW, mu, a, b, slope)
  LL_DISPATCH(kind, CALL)
#undef CALL
}
// Backward loops, by where they take the activation's derivative and x from (X):
//   kMaskY: the derivative from y, x read;
//   kMaskX: for none / relu / leaky the derivative needs only the sign of the activation's input, which is
//           recomputed from x with the forward's scale a and shift b instead of being read from y: one array
//           less to stream through (sign(pre) == sign(y) for these activations);
//   kInPlace: batch-norm wrote y over x; the derivative from y, x's place taken by xIn (mu = beta, is = 1/gamma).
enum { kMaskY, kMaskX, kInPlace };
template <int K, int X>
LL_INLINE float gradPre(const float* x, const float* y, const float* dy, long j, int l, const float* mu, const float* a,
                        const float* b, float slope) {
  if (X == kMaskX) return dyPre<K>(preAct(x[j], mu[l], a[l], b[l]), dy[j], slope);
  return dyPre<K>(y[j], dy[j], slope);
}

template <int K, int X>
LL_INLINE void blkBwdSumsT(const float* x, const float* y, const float* dy, long HW, const float* mu, const float* is,
                           const float* a, const float* b, float slope, double* sg, double* sgx) {
  const float islope = 1.f / slope;
  float p1[kChains][kB] = {}, p2[kChains][kB] = {};
  auto add = [&](long i, int u) {
#pragma omp simd
    for (int l = 0; l < kB; l++) {
      long j = i * kB + l;
      float g = gradPre<K, X>(x, y, dy, j, l, mu, a, b, slope);
      p1[u][l] += g;
      p2[u][l] += g * (xIn<K, X == kInPlace>(x, y, j, islope) - mu[l]) * is[l];
    }
  };
  long i = 0;
  for (; i + kChains <= HW; i += kChains)
    for (int u = 0; u < kChains; u++) add(i + u, u);
  for (; i < HW; i++) add(i, int(i % kChains));
  for (int l = 0; l < kB; l++) {
    sg[l] += (p1[0][l] + p1[1][l]) + (p1[2][l] + p1[3][l]);
    sgx[l] += (p2[0][l] + p2[1][l]) + (p2[2][l] + p2[3][l]);
  }
}
LL_CLONES void blkBwdSums(const float* x, const float* y, const float* dy, long HW, const float* mu, const float* is,
                          const float* a, const float* b, int kind, float slope, double* sg, double* sgx) {
  if (!x) {
#define CALL(K) blkBwdSumsT<K, kInPlace>(x, y, dy, HW, mu, is, a, b, slope, sg, sgx)
    LL_DISPATCH_INV(kind, CALL)
#undef CALL
  } else if (a && kind <= A_LEAKY) {
#define CALL(K) blkBwdSumsT<K, kMaskX>(x, y, dy, HW, mu, is, a, b, slope, sg, sgx)
    LL_DISPATCH(kind, CALL)
#undef CALL
  } else {
#define CALL(K) blkBwdSumsT<K, kMaskY>(x, y, dy, HW, mu, is, a, b, slope, sg, sgx)
    LL_DISPATCH(kind, CALL)
#undef CALL
  }
}
template <int K, int X>
LL_INLINE void blkBwdDxT(const float* x, const float* y, const float* dy, float* dx, long HW, const float* mup,
                         const float* isp, const float* ap, const float* bp, float slope, const float* k2p,
                         const float* mdzp, const float* mdzxp) {
  const float islope = 1.f / slope;
  LL_LOCAL16(mu, mup);
  LL_LOCAL16(is, isp);
  LL_LOCAL16(k2, k2p);
  LL_LOCAL16(mdz, mdzp);
  LL_LOCAL16(mdzx, mdzxp);
  float a[kB], b[kB];  // a (and b) null when the derivative comes from y
  for (int l = 0; l < kB; l++) {
    a[l] = ap ? ap[l] : 0.f;
    b[l] = bp ? bp[l] : 0.f;
  }
  for (long i = 0; i < HW; i++) {
#pragma omp simd
    for (int l = 0; l < kB; l++) {
      long j = i * kB + l;
      float g = gradPre<K, X>(x, y, dy, j, l, mu, a, b, slope);
      dx[j] = k2[l] * (g - mdz[l] - (xIn<K, X == kInPlace>(x, y, j, islope) - mu[l]) * is[l] * mdzx[l]);
    }
  }
}
LL_CLONES void blkBwdDx(const float* x, const float* y, const float* dy, float* dx, long HW, const float* mu,
                        const float* is, const float* a, const float* b, int kind, float slope, const float* k2,
                        const float* mdz, const float* mdzx) {
  if (!x) {
#define CALL(K) blkBwdDxT<K, kInPlace>(x, y, dy, dx, HW, mu, is, a, b, slope, k2, mdz, mdzx)
    LL_DISPATCH_INV(kind, CALL)
#undef CALL
  } else if (a && kind <= A_LEAKY) {
#define CALL(K) blkBwdDxT<K, kMaskX>(x, y, dy, dx, HW, mu, is, a, b, slope, k2, mdz, mdzx)
    LL_DISPATCH(kind, CALL)
#undef CALL
  } else {
#define CALL(K) blkBwdDxT<K, kMaskY>(x, y, dy, dx, HW, mu, is, a, b, slope, k2, mdz, mdzx)
    LL_DISPATCH(kind, CALL)
#undef CALL
  }
}

// ------------------------------------------------------------------------------------------------
// Optimiser steps, element for element the float32 arithmetic of src/engine/optim (and PyTorch 1.13):
// a float op where PyTorch rounds each op, and "x + a*b" evaluated in double and rounded once where
// PyTorch's kernel fuses it (a*b of two floats is exact in double, so FMA contraction cannot change
// the double result either).

// Contraction into FMAs is off here: it would fuse a product that PyTorch rounds (e.g. AdamW's p * decay)
// with the following add.
#define LL_EXACT __attribute__((optimize("fp-contract=off")))

LL_INLINE float addProd(float x, float a, float b) { return float(double(x) + double(a) * double(b)); }

// SGD, momentum, no weight decay, not nesterov: buf = buf*mom (+) ds*g; p = p (+) negLr*buf
LL_CLONES LL_EXACT void SgdMomentumLoop(float* p, const float* g, float* buf, long n, float mom, float ds, float negLr) {
  for (long i = 0; i < n; i++) {
    float b = addProd(buf[i] * mom, ds, g[i]);
    buf[i] = b;
    p[i] = addProd(p[i], negLr, b);
  }
}

struct AdamScalars {
  float sign, b1, omb1, b2, omb2, eps, wd, decay, negStepSize, bc2Sqrt;
  bool useWd, decoupled;
};

LL_CLONES LL_EXACT void AdamLoop(float* p, const float* g, float* m, float* v, long n, const AdamScalars& k) {
  for (long i = 0; i < n; i++) {
    float d = k.sign * g[i];
    float pi = p[i];
    if (k.decoupled) {
      if (k.useWd) pi = pi * k.decay;
    } else if (k.useWd) {
      d = addProd(d, k.wd, pi);
    }
    float mi = addProd(m[i] * k.b1, k.omb1, d);
    float vi = addProd(v[i] * k.b2, k.omb2 * d, d);
    m[i] = mi;
    v[i] = vi;
    float denom = std::sqrt(vi) / k.bc2Sqrt + k.eps;
    p[i] = pi + (k.negStepSize * mi) / denom;
  }
}

// ------------------------------------------------------------------------------------------------
// oneDNN convolutions, cached per geometry.

// Convolution kinds: CONV_FWD, CONV_BWD_DATA, CONV_BWD_WEIGHT (kernel_table.h).

struct Geom {
  int N, C, H, W, K, R, S, sh, sw, ph, pw, OH, OW;
};

/** One tensor argument of a primitive: the user's fp32 NCHW/OIHW memory and, when the primitive wants
 * another layout or data type, its own buffer (in the context's shared workspace) with the cached reorder
 * between the two. */
struct Arg {
  memory user, prim;
  bool needsReorder = false;
  // The reorder only converts f32 to bf16 in the same layout (an activation in nChw16c or NCHW): done by
  // ToBf16 below, which runs at memory speed (oneDNN 2.6's reorder did ~10 GB/s here).
  bool toBf16 = false;
  size_t elems = 0;
  dnnl::reorder r;
  size_t bytes = 0, offset = 0;  // of prim within the workspace, when needsReorder
};

// A leaky ReLU (alpha: the slope below zero; 0: ReLU) that a forward convolution applies to its output.
struct PostRelu {
  bool on = false;
  float alpha = 0.f;
};

struct ConvEntry {
  dnnl::primitive prim;
  // FWD: src, wei, dst; BWD_DATA: diff_dst, wei, diff_src; BWD_WEI: src, diff_dst, diff_wei.
  Arg a[3];
  memory bias;  // FWD: bias; BWD_WEI: diff_bias (user memory, f32)
  bool hasBias = false;
  memory scratch;
  size_t scratchBytes = 0, scratchOffset = 0;
  size_t wsBytes = 0;  // workspace needed: the reordered arguments, then the scratchpad
  std::string impl;

  void Layout() {
    size_t off = 0;
    auto take = [&off](size_t bytes) {
      size_t o = off;
      off += (bytes + 4095) & ~size_t(4095);
      return o;
    };
    for (Arg& x : a)
      if (x.needsReorder) x.offset = take(x.bytes);
    scratchOffset = take(scratchBytes);
    wsBytes = off;
  }
};

Arg MakeArg(const memory::desc& user, const memory::desc& prim, const dnnl::engine& eng, bool input) {
  Arg a;
  a.user = memory(user, eng, DNNL_MEMORY_NONE);
  if (user == prim) {
    a.prim = a.user;
  } else {
    a.prim = memory(prim, eng, DNNL_MEMORY_NONE);
    a.bytes = prim.get_size();
    a.needsReorder = true;
    a.r = input ? dnnl::reorder(a.user, a.prim) : dnnl::reorder(a.prim, a.user);
    memory::desc asBf16 = user;
    asBf16.data.data_type = dnnl_bf16;
    if (input && user.data_type() == dt::f32 && prim.data_type() == dt::bf16 && asBf16 == prim) {
      a.toBf16 = true;
      a.elems = user.get_size() / sizeof(float);
    }
  }
  return a;
}

// f32 -> bf16, round to nearest even (NaN stays NaN), as oneDNN's reorder.
LL_CLONES void ToBf16(const float* x, uint16_t* y, long n) {
#pragma omp simd
  for (long i = 0; i < n; i++) {
    uint32_t b;
    std::memcpy(&b, x + i, 4);
    uint32_t r = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
    y[i] = uint16_t((b & 0x7FFFFFFFu) > 0x7F800000u ? ((b >> 16) | 0x40u) : r);
  }
}

// ------------------------------------------------------------------------------------------------
// Backward-data into ONE plain channel from a blocked tensor of K % 16 == 0 channels: the forward of the
// study's last ConvTranspose2d (32 -> 1 channels, 3x3, 28x28). oneDNN 2.6 runs it as a gemm over NCHW
// after reordering its 6.4 MB input out of the blocked layout (0.62-0.64 ms on 2 threads, quiet); these
// loops read the blocked layout as it is, 16 channels of one pixel per vector (0.37-0.38 ms). Every output
// element is summed in a fixed order, whatever the thread count. (The same idea for the forward, 1 -> 32
// channels, measured 0.55 ms against oneDNN's 0.45: it stays with oneDNN.)

constexpr int kDirectMaxTaps = 49;  // up to 7x7 kernels

// 16 floats as one value (GCC's vector extension: one zmm with AVX-512, two ymm with AVX2), loaded and stored
// unaligned.
typedef float V16 __attribute__((vector_size(64), aligned(4)));
static_assert(kB == 16, "the direct loops put one channel block in a V16");
// Output pixels computed together, each with its own accumulator: one FMA chain per pixel would wait on the
// FMA's latency.
constexpr int kDirectPix = 8;

// The taps that reach input row (or column) i of a convolution: pairs (r, oh) with oh * stride - pad + r == i.
struct Taps {
  int n = 0;
  int k[kDirectMaxTaps], o[kDirectMaxTaps];
};
std::vector<Taps> TapsOf(long in, long out, long R, long stride, long pad) {
  std::vector<Taps> v(in);
  for (long i = 0; i < in; i++)
    for (long r = 0; r < R; r++) {
      const long num = i + pad - r;
      if (num < 0 || num % stride) continue;
      const long o = num / stride;
      if (o >= out) continue;
      v[i].k[v[i].n] = int(r);
      v[i].o[v[i].n++] = int(o);
    }
  return v;
}

LL_INLINE double HSumD(V16 a) {
  double s = 0;
  for (int l = 0; l < kB; l++) s += a[l];
  return s;
}
LL_INLINE float HSum(V16 a) {
  float s = 0.f;
  for (int l = 0; l < kB; l++) s += a[l];
  return s;
}
// The lane sums of eight vectors at once, as a tree of shuffles and adds (15 adds for all eight, where HSum
// adds 15 times per vector, one after another): out[p] = the sum of acc[p]'s 16 lanes.
typedef int I16 __attribute__((vector_size(64)));
LL_INLINE void HSum8(const V16* acc, float* out) {
  // pairs: lanes 0-7 the first vector's half-sums, 8-15 the second's
  const I16 lo1 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const I16 hi1 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  V16 c[4];
  for (int k = 0; k < 4; k++) c[k] = __builtin_shuffle(acc[2 * k], acc[2 * k + 1], lo1) + __builtin_shuffle(acc[2 * k], acc[2 * k + 1], hi1);
  // c = [p0|p1], [p2|p3], [p4|p5], [p6|p7] -> quarter sums [p0|p2|p1|p3], [p4|p6|p5|p7]
  const I16 lo2 = {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27};
  const I16 hi2 = {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31};
  const V16 d0 = __builtin_shuffle(c[0], c[1], lo2) + __builtin_shuffle(c[0], c[1], hi2);
  const V16 d1 = __builtin_shuffle(c[2], c[3], lo2) + __builtin_shuffle(c[2], c[3], hi2);
  // -> pairs of lanes [p0 p4 | p2 p6 | p1 p5 | p3 p7]
  const I16 lo3 = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
  const I16 hi3 = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
  const V16 e = __builtin_shuffle(d0, d1, lo3) + __builtin_shuffle(d0, d1, hi3);
  // -> lanes 0-7: p0 p4 p2 p6 p1 p5 p3 p7
  const I16 ev = {0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14};
  const I16 od = {1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15};
  const V16 f = __builtin_shuffle(e, ev) + __builtin_shuffle(e, od);
  static constexpr int kOrder[8] = {0, 4, 2, 6, 1, 5, 3, 7};
  for (int k = 0; k < 8; k++) out[kOrder[k]] = f[k];
}

// Backward-data, one image: dx[ih][iw] = sum over the taps and channels that reach it of dy[cb][oh][ow][16] *
// wt[cb][t][16], the 16 lanes summed last. Columns whose taps all fall inside dy, with stride 1, go
// kDirectPix at a time; the others (borders, other strides) one by one through their tap lists.
LL_CLONES void DirectC1BwdData(const Geom& g, const float* dy, const float* wt, float* dx, const Taps* rows,
                               const Taps* cols) {
  const long CB = g.K / kB, OHW = long(g.OH) * g.OW, S = g.S, RS = long(g.R) * S;
  // columns iw with every s in [0, S) landing on ow = iw + pw - s in [0, OW) (stride 1)
  const long lo = g.sw == 1 ? std::max<long>(0, S - 1 - g.pw) : g.W, hi = g.sw == 1 ? std::min<long>(g.W, g.OW - g.pw) : g.W;
  const V16* wv = reinterpret_cast<const V16*>(wt);
  for (long ih = 0; ih < g.H; ih++) {
    const Taps& tr = rows[ih];
    long iw = 0;
    auto one = [&](long c) {
      const Taps& tc = cols[c];
      V16 acc = {};
      for (long cb = 0; cb < CB; cb++)
        for (int a = 0; a < tr.n; a++)
          for (int b = 0; b < tc.n; b++)
            acc += *reinterpret_cast<const V16*>(dy + (cb * OHW + long(tr.o[a]) * g.OW + tc.o[b]) * kB) *
                   wv[cb * RS + long(tr.k[a]) * S + tc.k[b]];
      dx[ih * g.W + c] = HSum(acc);
    };
    for (; iw < lo; iw++) one(iw);
    for (; iw + kDirectPix <= hi; iw += kDirectPix) {
      V16 acc[kDirectPix] = {};
      for (long cb = 0; cb < CB; cb++)
        for (int a = 0; a < tr.n; a++) {
          // ow = iw + p + pw - s: for s = 0 the rightmost, then one to the left per s
          const float* d = dy + (cb * OHW + long(tr.o[a]) * g.OW + iw + g.pw) * kB;
          const V16* w = wv + cb * RS + long(tr.k[a]) * S;
          for (long s = 0; s < S; s++) {
            const V16 ws = w[s];
            const float* ds = d - s * kB;
            for (int p = 0; p < kDirectPix; p++) acc[p] += *reinterpret_cast<const V16*>(ds + p * kB) * ws;
          }
        }
      static_assert(kDirectPix == 8, "HSum8 sums eight accumulators");
      HSum8(acc, dx + ih * g.W + iw);
    }
    for (; iw < g.W; iw++) one(iw);
  }
}

// The weights of a convolution into one channel, [K][1][R][S], as [K/16][R*S][16]: one vector of 16 channels per
// tap (what DirectC1BwdData and the fused batch-norm kernels read).
std::vector<float> TapVectors(const float* w, long K, long RS) {
  std::vector<float> wt(size_t(K) * RS);
  for (long k = 0; k < K; k++)
    for (long t = 0; t < RS; t++) wt[((k / kB) * RS + t) * kB + k % kB] = w[k * RS + t];
  return wt;
}

// Whether a convolution of this kind and geometry runs on the direct loops above.
bool DirectC1(int kind, const Geom& g, bool xb, bool yb) {
  return kind == CONV_BWD_DATA && g.C == 1 && !xb && yb && g.K % kB == 0 &&
         long(g.R) * g.S <= kDirectMaxTaps;
}

// ------------------------------------------------------------------------------------------------
// Batch-norm (training) + activation read by a 3x3, stride-1, padding-1 transposed convolution into one
// channel (the autoencoder's last layer), from the blocked activation x the batch-norm normalises. The
// normalised, activated value z = act((x - mu) * a + b) is never stored: the forward computes it per image
// into a thread's scratch and runs DirectC1BwdData on it; the backward computes it again from x, and the
// convolution's input gradient dz from the 3x3 neighbourhood of its output gradient dY, where it needs them.
// Two passes over x backward instead of the convolution's two (z read, dz written) and the batch-norm's
// three (x, dz read twice, dx written).

// dY of one image with a zero border of one pixel: (H + 2) x (W + 2).
LL_INLINE void PadPlane(const float* src, long H, long W, float* dst) {
  const long Wp = W + 2;
  std::memset(dst, 0, sizeof(float) * Wp);
  std::memset(dst + (H + 1) * Wp, 0, sizeof(float) * Wp);
  for (long i = 0; i < H; i++) {
    float* d = dst + (i + 1) * Wp;
    d[0] = 0.f;
    std::memcpy(d + 1, src + i * W, sizeof(float) * W);
    d[W + 1] = 0.f;
  }
}

// The per-lane coefficients of one channel block: mu, a = gamma * invstd (in float, as BatchNormTrain), b = beta, is.
struct BlockCoef {
  V16 mu, a, b, is;
};
// Per channel block: mu = mean, a = gamma * invstd (in float, as BatchNormTrain), b = beta, is = invstd.
std::vector<BlockCoef> BlockCoefs(long K, const float* gamma, const float* beta, const float* mean, const float* invstd) {
  std::vector<BlockCoef> coef(K / kB);
  for (long ch = 0; ch < K; ch++) {
    BlockCoef& c = coef[ch / kB];
    const int l = int(ch % kB);
    c.mu[l] = mean[ch];
    c.a[l] = gamma[ch] * invstd[ch];
    c.b[l] = beta[ch];
    c.is[l] = invstd[ch];
  }
  return coef;
}
// 16 floats at p, any alignment (a macro: an inline function returning a V16 warns of the vector ABI)
#define LL_LOADV(p) (*reinterpret_cast<const V16*>(p))

// act(pre) and dz * act'(pre), written over their first argument (references: a function returning a V16 warns
// of the vector ABI).
template <int K>
LL_INLINE void ActV(V16& v, float slope) {
  if (K == A_RELU) v = v > 0.f ? v : V16{};
  if (K == A_LEAKY) v = v > 0.f ? v : v * slope;
}
template <int K>
LL_INLINE void DyPreV(V16& dz, const V16& pre, float slope) {
  if (K == A_RELU) dz = pre > 0.f ? dz : V16{};
  if (K == A_LEAKY) dz = pre > 0.f ? dz : dz * slope;
}

// Pass 1 of one image and channel block: dw[t] += z * dY(t), and the batch-norm's sums sg += g, sgx += g * xhat,
// where g = dz * act'(pre) and dz = sum over the taps t of w[t] * dY(t). dyp: the padded dY of the image.
template <int K>
LL_INLINE void NcSumsT(const float* x, const float* dyp, long H, long W, const V16* wp, const BlockCoef& cp, float slope,
                       V16* dw, V16* sg, V16* sgx) {
  const long Wp = W + 2;
  V16 w[9];  // locals, as NcDxT's
  for (int t = 0; t < 9; t++) w[t] = wp[t];
  const BlockCoef c = cp;
  V16 acc[9] = {}, s1 = {}, s2 = {};
  for (long oh = 0; oh < H; oh++)
    for (long ow = 0; ow < W; ow++) {
      const V16 xv = LL_LOADV(x + (oh * W + ow) * kB), xm = xv - c.mu;
      const V16 pre = xm * c.a + c.b;
      V16 z = pre;
      ActV<K>(z, slope);
      const float* d = dyp + oh * Wp + ow;
      V16 dr[3] = {};  // dz by tap row: three short chains instead of one of nine multiply-adds
      for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++) {
          const float ds = d[r * Wp + s];
          acc[r * 3 + s] += z * ds;
          dr[r] += w[r * 3 + s] * ds;
        }
      V16 dz = dr[0] + dr[1] + dr[2];
      DyPreV<K>(dz, pre, slope);  // dz is now g
      s1 += dz;
      s2 += dz * xm * c.is;
    }
  for (int t = 0; t < 9; t++) dw[t] += acc[t];
  *sg += s1;
  *sgx += s2;
}
LL_CLONES void NcSums(const float* x, const float* dyp, long H, long W, const V16* w, const BlockCoef& c, int kind,
                      float slope, V16* dw, V16* sg, V16* sgx) {
  if (kind == A_LEAKY) NcSumsT<A_LEAKY>(x, dyp, H, W, w, c, slope, dw, sg, sgx);
  else if (kind == A_RELU) NcSumsT<A_RELU>(x, dyp, H, W, w, c, slope, dw, sg, sgx);
  else NcSumsT<A_NONE>(x, dyp, H, W, w, c, slope, dw, sg, sgx);
}

// Pass 2: dx = k2 * (g - mdz - xhat * mdzx), g computed again as in pass 1.
template <int K>
LL_INLINE void NcDxT(const float* x, const float* dyp, long H, long W, const V16* wp, const BlockCoef& cp, float slope,
                     const float* k2p, const float* mdzp, const float* mdzxp, float* dx) {
  const long Wp = W + 2;
  V16 w[9];  // locals: read through w, every store through dx (which might alias it) reloaded them (see LL_LOCAL16)
  for (int t = 0; t < 9; t++) w[t] = wp[t];
  const BlockCoef c = cp;
  const V16 k2 = LL_LOADV(k2p), mdz = LL_LOADV(mdzp), mdzx = LL_LOADV(mdzxp);
  for (long oh = 0; oh < H; oh++)
    for (long ow = 0; ow < W; ow++) {
      const V16 xv = LL_LOADV(x + (oh * W + ow) * kB), xm = xv - c.mu;
      const V16 pre = xm * c.a + c.b;
      const float* d = dyp + oh * Wp + ow;
      V16 dr[3] = {};
      for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++) dr[r] += w[r * 3 + s] * d[r * Wp + s];
      V16 dz = dr[0] + dr[1] + dr[2];
      DyPreV<K>(dz, pre, slope);  // dz is now g
      *reinterpret_cast<V16*>(dx + (oh * W + ow) * kB) = k2 * (dz - mdz - xm * c.is * mdzx);
    }
}
LL_CLONES void NcDx(const float* x, const float* dyp, long H, long W, const V16* w, const BlockCoef& c, int kind,
                    float slope, const float* k2, const float* mdz, const float* mdzx, float* dx) {
  if (kind == A_LEAKY) NcDxT<A_LEAKY>(x, dyp, H, W, w, c, slope, k2, mdz, mdzx, dx);
  else if (kind == A_RELU) NcDxT<A_RELU>(x, dyp, H, W, w, c, slope, k2, mdz, mdzx, dx);
  else NcDxT<A_NONE>(x, dyp, H, W, w, c, slope, k2, mdz, mdzx, dx);
}

const char* KindName(int k) { return k == CONV_FWD ? "fwd" : k == CONV_BWD_DATA ? "bwd_data" : "bwd_weights"; }

// Batch-norm's per-channel coefficients, shared by the NCHW and the blocked loops.
// The biased variance from q = the sum of squared deviations from a point dm away from the mean.
LL_INLINE double BiasedVar(double q, double dm, double M) {
  double var = q / M - dm * dm;
  return var < 0 ? 0 : var;
}
// A channel's batch statistics from its sums s = sum(x - k), q = sum((x - k)^2) over M values shifted by k.
struct BnStats {
  float mean, invstd, var;
};
LL_INLINE BnStats BnStatsOf(double s, double q, float k, double M, double eps) {
  const double dm = s / M, var = BiasedVar(q, dm, M);  // dm = mean - k
  return {float(double(k) + dm), float(1.0 / std::sqrt(var + eps)), float(var)};
}
// The backward pass's sums sg = sum(g), sgx = sum(g * xhat) -> dbeta, dgamma and the coefficients of
// dx = k2 * (g - mdz - xhat * mdzx).
struct BnBwdCoef {
  float k2, mdz, mdzx;
};
LL_INLINE BnBwdCoef BnBwdCoefs(double sg, double sgx, float gamma, float is, double M, float* dbeta, float* dgamma) {
  *dbeta = float(sg);
  *dgamma = float(sgx);
  return {float(double(gamma) * is), float(sg / M), float(sgx / M)};
}

// mseLoss's loop over one chunk: sum of d^2 (d = a - t in double), g = float(k * d).
LL_CLONES double MseChunk(const float* a, const float* t, float* g, long n, double k) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (long i = 0; i < n; i++) {
    const double d = double(a[i]) - double(t[i]);
    s += d * d;
    g[i] = float(k * d);
  }
  return s;
}

// f(i) for i in [0, count): on `threads` threads with a static split when `parallel`, else a plain loop on the calling
// thread. Not `#pragma omp parallel if (parallel)`: libgomp starts a team of one for a false clause, which measured
// 2 us a call against 0.4 for the whole N-API call without it (a step makes about 70 such small calls).
template <class F>
void ForRange(long count, bool parallel, int threads, F f) {
  if (!parallel || threads < 2) {
    for (long i = 0; i < count; i++) f(i);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < count; i++) f(i);
}

// f(offset, count) over n elements in chunks of 16k, on `threads` threads when n >= minParallel (a
// parallel region costs more than ~100k cheap elements, and much more on a loaded machine).
template <class F>
void ForChunks(long n, long minParallel, int threads, F f) {
  const long chunk = 16384;
  ForRange((n + chunk - 1) / chunk, n >= minParallel, threads, [&](long c) { f(c * chunk, std::min(chunk, n - c * chunk)); });
}


// f(thread, n, padded) for every image n of a one-channel [N, 1, H, W] array, on T threads with a static split (each
// thread the same images every call, so per-thread sums add up in the same order), padded: image n with a zero
// border of one pixel, in the thread's scratch.
template <class F>
void ForPaddedImages(int T, long N, long H, long W, const float* a, F f) {
#pragma omp parallel num_threads(T)
  {
    std::vector<float> padded(size_t(H + 2) * (W + 2));
    const int t = omp_get_thread_num();
#pragma omp for schedule(static)
    for (long n = 0; n < N; n++) {
      PadPlane(a + n * H * W, H, W, padded.data());
      f(t, n, padded.data());
    }
  }
}
// convNormBackward's sums over one image's pixels for one channel block (3x3 taps): y and dy at `y` and `dy` (blocked:
// [P][16], else NCHW: lane l at l * P), the zero-padded input image xp (rows of Wp), the output pixel p at
// xp[(p / OW) sh Wp + (p % OW) sw]. With g = dy act'(y) and xhat = (act^-1(y) - beta) / gamma (ig = 1 / gamma):
// out[t] = sum(g p_t), out[9 + t] = sum(xhat p_t), out[18] = sum(g), out[19] = sum(g xhat), out[20] = sum(xhat),
// each 16 lanes, in float.
LL_CLONES void ConvNormBwdSums(const float* xp, long Wp, long OW, long sh, long sw, long P, const float* y,
                               const float* dy, bool blocked, const float* beta, const float* ig, bool leaky, float slope,
                               float (*out)[kB]) {
  V16 bet, igm, sg = {}, sgx = {}, sx = {}, tg[9] = {}, tx[9] = {};
  for (int l = 0; l < kB; l++) {
    bet[l] = beta[l];
    igm[l] = ig[l];
  }
  const float islope = 1.f / slope;
  // one pixel's y and dy (16 channels) into the sums
  auto add = [&](V16 yv, V16 dv, const float* a) __attribute__((always_inline)) {
    V16 z = yv, gv = dv;
    if (leaky) {
      z = yv < 0.f ? yv * islope : yv;
      gv = yv > 0.f ? dv : dv * slope;
    }
    const V16 xh = (z - bet) * igm;
    sg += gv;
    sgx += gv * xh;
    sx += xh;
#pragma GCC unroll 9
    for (int u = 0; u < 9; u++) {
      const float v = a[(u / 3) * Wp + u % 3];
      tg[u] += gv * v;
      tx[u] += xh * v;
    }
  };
  const long OH = P / OW;
  if (blocked) {
    for (long oh = 0; oh < OH; oh++)
      for (long ow = 0; ow < OW; ow++) {
        const long p = oh * OW + ow;
        add(LL_LOADV(y + p * kB), LL_LOADV(dy + p * kB), xp + oh * sh * Wp + ow * sw);
      }
  } else {
    for (long oh = 0; oh < OH; oh++)
      for (long ow = 0; ow < OW; ow++) {
        const long p = oh * OW + ow;
        V16 yv, dv;
        for (int l = 0; l < kB; l++) {
          yv[l] = y[l * P + p];
          dv[l] = dy[l * P + p];
        }
        add(yv, dv, xp + oh * sh * Wp + ow * sw);
      }
  }
  for (int u = 0; u < 9; u++)
    for (int l = 0; l < kB; l++) {
      out[u][l] = tg[u][l];
      out[9 + u][l] = tx[u][l];
    }
  for (int l = 0; l < kB; l++) {
    out[18][l] = sg[l];
    out[19][l] = sgx[l];
    out[20][l] = sx[l];
  }
}

// Per-thread partial sums part[T][slots] -> part[0][.], added in thread order.
void SumParts(std::vector<double>& part, int T, long slots) {
  for (int t = 1; t < T; t++)
    for (long i = 0; i < slots; i++) part[i] += part[size_t(t) * slots + i];
}

// PatchMoments for one padded image when the taps are 3x3 (T = 9), the column stride 1 and the rows at most 32 wide:
// each tap's row as two vectors (masked to the row's width), the pairs (t, u >= t) accumulated in vectors down the
// image (float partials of OH * OW / 16 products a lane), then into double.
LL_CLONES void PatchMoments3x3(const float* xp, long Wp, long OH, long OW, long rs, double* acc) {
  constexpr long T = 9;
  V16 m0, m1;
  for (int l = 0; l < kB; l++) {
    m0[l] = l < OW ? 1.f : 0.f;
    m1[l] = kB + l < OW ? 1.f : 0.f;
  }
  for (long t = 0; t < T; t++) {
    const float* a0 = xp + (t / 3) * Wp + t % 3;
    V16 sa = {}, pa[T] = {};
    for (long oh = 0; oh < OH; oh++) {
      const float* a = a0 + oh * rs;
      const V16 x0 = LL_LOADV(a) * m0, x1 = LL_LOADV(a + kB) * m1;
      sa += x0 + x1;
#pragma GCC unroll 9
      for (long u = 0; u < T; u++)
        if (u >= t) {
          const float* b = xp + (u / 3) * Wp + u % 3 + oh * rs;
          pa[u] += x0 * LL_LOADV(b) + x1 * LL_LOADV(b + kB);
        }
    }
    acc[t] += HSumD(sa);
    for (long u = t; u < T; u++) acc[T + t * T + u] += HSumD(pa[u]);
  }
}
// The batch statistics of a one-channel convolution's output without computing it: the output is linear in the
// input patches p (the T = R * S values that an output pixel's taps read, zero in the padding), so its mean and
// variance per channel follow from the patches' mean and covariance (ConvNormStats). PatchMoments sums, over every
// output pixel of every image, d_t = p_t - k (k: the input's first value, so that the covariance is taken from
// small numbers) into m[t] and d_t * d_u into q[t * T + u] (u >= t): float partials down each output column, then
// double; the images split statically between the threads, the parts added in thread order.
// sum over rows i < OH and columns j < OW of a[i * rs + j * cs] (times b[...] when prod), as float partials per
// column (col: OW floats of scratch) added up in double.
LL_CLONES double ColumnSums(const float* a, const float* b, bool prod, long OH, long OW, long rs, long cs, float* col) {
  for (long j = 0; j < OW; j++) col[j] = 0.f;
  for (long i = 0; i < OH; i++) {
    const float* __restrict ai = a + i * rs;
    const float* __restrict bi = b + i * rs;
    float* __restrict c = col;
    if (cs == 1 && prod) {
#pragma omp simd
      for (long j = 0; j < OW; j++) c[j] += ai[j] * bi[j];
    } else if (cs == 1) {
#pragma omp simd
      for (long j = 0; j < OW; j++) c[j] += ai[j];
    } else {
      for (long j = 0; j < OW; j++) c[j] += prod ? ai[j * cs] * bi[j * cs] : ai[j * cs];
    }
  }
  double s = 0;
  for (long j = 0; j < OW; j++) s += col[j];
  return s;
}
void PatchMoments(const Geom& g, const float* x, float k, int threads, double* m, double* q) {
  const long R = g.R, S = g.S, T = R * S, OH = g.OH, OW = g.OW;
  const long Hp = std::max<long>((OH - 1) * g.sh + R, g.H + g.ph), Wp = std::max<long>((OW - 1) * g.sw + S, g.W + g.pw);
  const long slots = T + T * T;
  std::vector<double> part(size_t(threads) * slots, 0.0);
  const bool fast = R == 3 && S == 3 && g.sw == 1 && OW <= 2 * kB;
#pragma omp parallel num_threads(threads)
  {
    // 2 * kB floats of slack: the fast path's second vector reads up to 31 floats past a row's start
    std::vector<float> xp(size_t(Hp) * Wp + 2 * kB, 0.f), col(OW);
    double* acc = part.data() + size_t(omp_get_thread_num()) * slots;
#pragma omp for schedule(static)
    for (long n = 0; n < g.N; n++) {
      std::fill(xp.begin(), xp.begin() + Hp * Wp, -k);
      for (long i = 0; i < g.H; i++)
        for (long j = 0; j < g.W; j++) xp[(i + g.ph) * Wp + j + g.pw] = x[(n * g.H + i) * g.W + j] - k;
      if (fast) {
        PatchMoments3x3(xp.data(), Wp, OH, OW, g.sh * Wp, acc);
        continue;
      }
      // per output column, float partials over the rows; their sum per image into double
      for (long t = 0; t < T; t++) {
        const float* a0 = xp.data() + (t / S) * Wp + t % S;
        acc[t] += ColumnSums(a0, a0, false, OH, OW, g.sh * Wp, g.sw, col.data());
        for (long u = t; u < T; u++)
          acc[T + t * T + u] += ColumnSums(a0, xp.data() + (u / S) * Wp + u % S, true, OH, OW, g.sh * Wp, g.sw, col.data());
      }
    }
  }
  SumParts(part, threads, slots);
  for (long t = 0; t < T; t++) m[t] = part[t];
  for (long i = 0; i < T * T; i++) q[i] = part[T + i];
}
// mean_c = b_c + sum_t w_ct E[p_t], var_c = sum_tu w_ct w_cu Cov(p_t, p_u) from PatchMoments' sums over M pixels.
LL_INLINE BnStats ConvNormStats(const double* m, const double* q, long T, const float* w, float bias, float k, double M,
                                double eps) {
  double mu = double(bias);
  for (long t = 0; t < T; t++) mu += double(w[t]) * (double(k) + m[t] / M);
  double var = 0;
  for (long t = 0; t < T; t++)
    for (long u = 0; u < T; u++) {
      const long lo = std::min(t, u), hi = std::max(t, u);
      var += double(w[t]) * double(w[u]) * (q[lo * T + hi] / M - (m[t] / M) * (m[u] / M));
    }
  if (var < 0) var = 0;
  return {float(mu), float(1.0 / std::sqrt(var + eps)), float(var)};
}

// Memory for arrays and scratch (freed with std::free): 64-byte aligned, so that AVX-512 loads never split a cache
// line; from 2 MiB on, aligned to 2 MiB with its whole 2 MiB pages marked for transparent huge pages (madvise: the
// kernel's default THP mode is "madvise" on Debian), so that a step's 6.4 MB activations take 4 TLB entries each
// instead of 1,600 (measured: training steps 0.2-0.4 ms shorter, fp32 and bf16, two models alternating in one
// process, 300 rounds). Only pages inside the array are marked: the resident size stays the array's. nullptr when
// out of memory.
void* AllocBuffer(size_t bytes) {
  constexpr size_t kHugePage = size_t(2) << 20;
  void* p = nullptr;
  if (posix_memalign(&p, bytes >= kHugePage ? kHugePage : 64, bytes) != 0) return nullptr;
  if (bytes >= kHugePage) madvise(p, bytes & ~(kHugePage - 1), MADV_HUGEPAGE);  // advice only: ignored where THP is off
  return p;
}

// ------------------------------------------------------------------------------------------------
// Weight gradient in bf16 products with fp32 sums (AVX512-BF16's vdpbf16ps), for x and dy in the blocked layout:
//   dw[k][c][r][s] = sum over n, oh, ow of dy[n][k][oh][ow] * x[n][c][oh sh - ph + r][ow sw - pw + s],
// x and dy rounded to bf16 (nearest, ties to even: oneDNN's bf16 convolutions round so too); db[k] = the fp32 sum
// of dy. oneDNN 2.6's bf16 weight gradient ran at 39% of the bf16 peak here, no faster than its fp32 one (32 -> 64
// channels at 28x28, stride 2: 1.37 ms each), so the weight gradients stayed fp32 with precision bf16; this one is
// a GEMM dw[K][(r,s,c)] over the pixels, whose bf16 pairs are two images at the same position:
// - a pair of images (n, n + 1) is packed once: x as [channel block][row][column][16 channels x 2 images] bf16,
//   zero-padded so that every tap of every output pixel reads inside it, and dy as [pixel][K x 2 images]. A pair of
//   images is the same pair at every tap, so an output pixel's tap (r, s) is a load at a fixed offset from its
//   pixel's address: no copy per tap (an earlier version paired neighbouring pixels, whose pair differs at each
//   tap, and copied x nine times: its packing took 0.40 of 1.24 ms);
// - a 4 x 6 tile (4 output channels k, broadcast as pairs, by 6 vectors of 16 (tap, channel)) runs 24 vdpbf16ps
//   chains over a chunk's pixels; the tile's sums live in the thread's fp32 accumulator [K][V][16];
// - each thread takes a range of image pairs, kWgPix pixels' worth at a time; the threads' accumulators are added
//   and written in PyTorch's [K][C][R][S] order. An odd last image pairs with zeros.
constexpr long kWgPix = 400;  // pixels per packed group and chunk (measured flat from 196 to 600 at the model's shapes)
constexpr int kWgMR = 4, kWgNR = 6;

// The kernel's shape rule: 16-channel blocks on both sides, whole 4 x 6 tiles.
bool Bf16WgradFits(const Geom& g) {
  const long V = long(g.R) * g.S * (g.C / kB);
  return kB == 16 && g.C % kB == 0 && g.K % kB == 0 && g.K % kWgMR == 0 && V % kWgNR == 0;
}

// Per-thread scratch, each part 64-byte aligned: G image pairs of x, padded to Hp x Wp (the rows and columns the
// taps reach: padded row ih + ph), [G][CB][Hp][Wp][32 bf16]; their dy pairs [G * P][K] (32 bits each); each of the
// group's pixels' byte offset in the x pairs; the accumulator [K][V][16] and db [K] (floats).
struct WgScratch {
  long P, G, Hp, Wp;
  size_t xp, dyp, off, acc, db, total;
  explicit WgScratch(const Geom& g) {
    const size_t V = size_t(g.R) * g.S * (g.C / kB);
    P = long(g.OH) * g.OW;
    G = std::max(1L, kWgPix / P);
    Hp = long(g.OH - 1) * g.sh + g.R;
    Wp = long(g.OW - 1) * g.sw + g.S;
    auto up = [](size_t b) { return (b + 63) & ~size_t(63); };
    xp = 0;
    dyp = up(size_t(G) * (g.C / kB) * Hp * Wp * 64);
    off = dyp + up(size_t(G) * P * g.K * 4);
    acc = off + up(size_t(G) * P * sizeof(long));
    db = acc + up(size_t(g.K) * V * kB * 4);
    total = db + up(size_t(g.K) * 4);
  }
};

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __m512i PairBf16(__m512 a, __m512 b) {
  // 16 values of a and 16 of b, rounded to bf16 and interleaved: a0 b0 a1 b1 ... (one 32-bit pair per lane)
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

// acc[m][v] += sum over j < J of pair(dy[j][k0 + m]) . x pair at xv[v] + off[j] (m < 4, v < 6)
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void WgTile(const char* const* xv, const long* off, const uint32_t* dp, long dStride, long J, float* acc,
                   long accStride) {
  const char *x0 = xv[0], *x1 = xv[1], *x2 = xv[2], *x3 = xv[3], *x4 = xv[4], *x5 = xv[5];
  __m512 c[kWgMR][kWgNR];
  for (int m = 0; m < kWgMR; m++)
    for (int v = 0; v < kWgNR; v++) c[m][v] = _mm512_load_ps(acc + m * accStride + v * kB);
  for (long j = 0; j < J; j++) {
    const long o = off[j];
    const __m512bh b[kWgNR] = {(__m512bh)_mm512_load_si512(x0 + o), (__m512bh)_mm512_load_si512(x1 + o),
                               (__m512bh)_mm512_load_si512(x2 + o), (__m512bh)_mm512_load_si512(x3 + o),
                               (__m512bh)_mm512_load_si512(x4 + o), (__m512bh)_mm512_load_si512(x5 + o)};
    const uint32_t* d = dp + j * dStride;
    for (int m = 0; m < kWgMR; m++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(d[m]));
      for (int v = 0; v < kWgNR; v++) c[m][v] = _mm512_dpbf16_ps(c[m][v], a, b[v]);
    }
  }
  for (int m = 0; m < kWgMR; m++)
    for (int v = 0; v < kWgNR; v++) _mm512_store_ps(acc + m * accStride + v * kB, c[m][v]);
}

// One thread's share: image pairs [pr0, pr1) into its accumulator and db (both zeroed here).
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void WgThread(const Geom& g, const float* x, const float* dy, long pr0, long pr1, char* ws, const WgScratch& L) {
  const long CB = g.C / kB, KB = g.K / kB, V = long(g.R) * g.S * CB, P = L.P, K = g.K, Hp = L.Hp, Wp = L.Wp;
  char* xp = ws + L.xp;
  uint32_t* dyp = reinterpret_cast<uint32_t*>(ws + L.dyp);
  long* off = reinterpret_cast<long*>(ws + L.off);
  float* acc = reinterpret_cast<float*>(ws + L.acc);
  float* db = reinterpret_cast<float*>(ws + L.db);
  std::memset(acc, 0, size_t(K) * V * kB * 4);
  std::memset(db, 0, size_t(K) * 4);
  std::memset(xp, 0, size_t(L.G) * CB * Hp * Wp * 64);  // the padding: every group writes the same interior
  for (long q = 0; q < L.G * P; q++) {  // pixel q of a group: its pair, output row and column
    const long gi = q / P, oh = (q % P) / g.OW, ow = q % g.OW;
    off[q] = ((gi * CB * Hp + oh * g.sh) * Wp + ow * g.sw) * 64;
  }
  std::vector<long> tap(V);  // v = (r, s, cb): its offset from a pixel's tap (0, 0)
  for (int r = 0; r < g.R; r++)
    for (int s = 0; s < g.S; s++)
      for (long cb = 0; cb < CB; cb++) tap[(r * g.S + s) * CB + cb] = ((cb * Hp + r) * Wp + s) * 64;
  const __m512 zero = _mm512_setzero_ps();
  const long xImg = CB * long(g.H) * g.W * kB, yImg = KB * P * kB;
  const long rows = std::min<long>(g.H, Hp - g.ph), cols = std::min<long>(g.W, Wp - g.pw);  // the x the taps reach
  for (long pa = pr0; pa < pr1; pa += L.G) {
    const long G = std::min(L.G, pr1 - pa);
    for (long gi = 0; gi < G; gi++) {
      const long n = 2 * (pa + gi);
      const bool two = n + 1 < g.N;
      const float *xa = x + n * xImg, *ya = dy + n * yImg;
      for (long cb = 0; cb < CB; cb++)
        for (long ih = 0; ih < rows; ih++) {
          char* row = xp + (((gi * CB + cb) * Hp + ih + g.ph) * Wp + g.pw) * 64;
          const float* src = xa + (cb * g.H + ih) * g.W * kB;
          for (long iw = 0; iw < cols; iw++) {
            const __m512 a = _mm512_loadu_ps(src + iw * kB);
            const __m512 b = two ? _mm512_loadu_ps(src + xImg + iw * kB) : zero;
            _mm512_store_si512(row + iw * 64, PairBf16(a, b));
          }
        }
      for (long p = 0; p < P; p++)
        for (long kb = 0; kb < KB; kb++) {
          const __m512 a = _mm512_loadu_ps(ya + (kb * P + p) * kB);
          const __m512 b = two ? _mm512_loadu_ps(ya + yImg + (kb * P + p) * kB) : zero;
          _mm512_store_si512(dyp + (gi * P + p) * K + kb * kB, PairBf16(a, b));
          _mm512_store_ps(db + kb * kB, _mm512_add_ps(_mm512_load_ps(db + kb * kB), _mm512_add_ps(a, b)));
        }
    }
    // the group's G * P pixels in chunks of at most kWgPix, of equal size but the last
    const long Q = G * P, chunks = (Q + kWgPix - 1) / kWgPix, cs = (Q + chunks - 1) / chunks;
    for (long q0 = 0; q0 < Q; q0 += cs) {
      const long J = std::min(cs, Q - q0);
      for (long v0 = 0; v0 < V; v0 += kWgNR) {
        const char* xv[kWgNR];
        for (int v = 0; v < kWgNR; v++) xv[v] = xp + tap[v0 + v];
        for (long k0 = 0; k0 < K; k0 += kWgMR)
          WgTile(xv, off + q0, dyp + q0 * K + k0, K, J, acc + (k0 * V + v0) * kB, V * kB);
      }
    }
  }
}

// Bf16WgradFits(g) must hold; threads each take a range of image pairs. ws: threads x WgScratch(g).total bytes.
void Bf16Wgrad(const Geom& g, const float* x, const float* dy, float* dw, float* db, char* ws, int threads) {
  const WgScratch L(g);
  const long CB = g.C / kB, V = long(g.R) * g.S * CB, K = g.K, pairs = (g.N + 1) / 2;
  const int nt = int(std::max(1L, std::min<long>(threads, pairs)));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    WgThread(g, x, dy, pairs * t / n, pairs * (t + 1) / n, ws + size_t(t) * L.total, L);
  }
  // the threads' sums, in PyTorch's order: dw[k][cb*16 + i][r][s] = acc[k][(r*S + s)*CB + cb][i]
  for (long k = 0; k < K; k++)
    for (long c = 0; c < g.C; c++)
      for (int r = 0; r < g.R; r++)
        for (int s = 0; s < g.S; s++) {
          const long v = (r * g.S + s) * CB + c / kB;
          float sum = 0;
          for (int t = 0; t < nt; t++) sum += reinterpret_cast<const float*>(ws + size_t(t) * L.total + L.acc)[(k * V + v) * kB + c % kB];
          dw[((k * g.C + c) * g.R + r) * g.S + s] = sum;
        }
  if (db)
    for (long k = 0; k < K; k++) {
      float sum = 0;
      for (int t = 0; t < nt; t++) sum += reinterpret_cast<const float*>(ws + size_t(t) * L.total + L.db)[k];
      db[k] = sum;
    }
}

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceMethod("gemm", &Context::Gemm),
                           InstanceMethod("conv2d", &Context::Conv2d),
                           InstanceMethod("conv2dBackwardData", &Context::Conv2dBackwardData),
                           InstanceMethod("conv2dBackwardWeight", &Context::Conv2dBackwardWeight),
                           InstanceMethod("batchNormTrain", &Context::BatchNormTrain),
                           InstanceMethod("channelAffine", &Context::ChannelAffine),
                           InstanceMethod("batchNormBackward", &Context::BatchNormBackward),
                           InstanceMethod("normConvT1Forward", &Context::NormConvT1Forward),
                           InstanceMethod("convNormForward", &Context::ConvNormForward),
                           InstanceMethod("convNormBackward", &Context::ConvNormBackward),
                           InstanceMethod("normConvT1Backward", &Context::NormConvT1Backward),
                           InstanceMethod("activation", &Context::Activation),
                           InstanceMethod("activationBackward", &Context::ActivationBackward),
                           InstanceMethod("reorderLayout", &Context::ReorderLayout),
                           InstanceMethod("channelSums", &Context::ChannelSums),
                           InstanceMethod("sgdMomentumStep", &Context::SgdMomentumStep),
                           InstanceMethod("mseLoss", &Context::MseLoss),
                           InstanceMethod("adamStep", &Context::AdamStep),
                           InstanceMethod("convImpl", &Context::ConvImpl),
                           InstanceMethod("dispose", &Context::Dispose),
                       });
  }

  // new Context(threads, bf16, layout, bf16WeightGrad, bf16Timed)  layout: 0 = oneDNN's choice (format any + cached reorders),
  // 1 = plain NCHW activations (weights still any), 2 = per shape, the faster of the two (timed on first
  // use: unreliable on a loaded machine), 3 = per shape by a fixed rule (measured: blocked layouts win
  // except for backward-data into very few channels, e.g. the 32->1 ConvTranspose2d's forward).
  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    threads_ = info.Length() > 0 ? I32(info[0]) : omp_get_max_threads();
    if (threads_ < 1) throw Napi::RangeError::New(env, "threads must be >= 1");
    bf16_ = info.Length() > 1 && info[1].ToBoolean().Value();
    bf16Wgrad_ = bf16_ && (info.Length() > 3 ? info[3].ToBoolean().Value() : true);
    // 5th: with bf16, time bf16 and fp32 on the first call of each convolution and keep the faster
    bf16Timed_ = bf16_ && info.Length() > 4 && info[4].ToBoolean().Value();
    layout_ = info.Length() > 2 ? I32(info[2]) : LAYOUT_ANY;
    if (layout_ < 0 || layout_ >= LAYOUT_COUNT) throw Napi::RangeError::New(env, "unknown layout policy");
    try {
      eng_ = dnnl::engine(dnnl::engine::kind::cpu, 0);
      strm_ = dnnl::stream(eng_);
    } catch (const dnnl::error& e) {
      throw Napi::Error::New(env, std::string("oneDNN: ") + e.what());
    }
  }
  ~Context() override { std::free(scratch_); }

 private:
  dnnl::engine eng_;
  dnnl::stream strm_;
  int threads_ = 1;
  bool bf16_ = false;
  bool bf16Wgrad_ = false;  // backward-weights in bf16 too: Bf16Wgrad where it fits, else oneDNN's with AMX, else fp32
  bool bf16Timed_ = false;  // per convolution and direction, the faster of bf16 and fp32 (timed on first use)
  int layout_ = 0;
  // key: kind, the 13 geometry numbers, bias, x/y blocked, the post-op (0 none, 1 eltwise relu) and its alpha's bits
  std::map<std::array<int, 18>, std::unique_ptr<ConvEntry>> convs_;
  void* scratch_ = nullptr;
  size_t scratchCap_ = 0;

  // Weight gradients in bf16 by this file's kernel (Bf16Wgrad) rather than oneDNN's: with bf16 weight gradients
  // asked for, on a CPU with AVX512-BF16, for blocked x and dy of a shape it takes.
  // Without AMX, oneDNN 2.6's bf16 weight gradients are no faster than its fp32 ones here, so the shapes this
  // kernel does not take stay fp32 (Create); with AMX, oneDNN's bf16 ones run.
  bool OwnBf16Wgrad(const Geom& g, bool xb, bool yb) const {
    return bf16Wgrad_ && hasAvx512Bf16_ && !hasAmx_ && xb && yb && Bf16WgradFits(g);
  }
  bool hasAvx512Bf16_ = __builtin_cpu_supports("avx512bf16");
  bool hasAmx_ = dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;

  void UseThreads(int n = 0) {
    // The OpenMP ICV of the calling (main) thread: oneDNN's OpenMP runtime reads it when it runs.
    if (n <= 0) n = threads_;
    if (omp_get_max_threads() != n) omp_set_num_threads(n);
  }

  void* Scratch(size_t bytes) {
    if (bytes > scratchCap_) {
      std::free(scratch_);
      scratchCap_ = (bytes + 4095) & ~size_t(4095);
      scratch_ = AllocBuffer(scratchCap_);
      if (!scratch_) {
        scratchCap_ = 0;
        throw std::bad_alloc();
      }
    }
    return scratch_;
  }

  static Geom ReadGeom(const Napi::CallbackInfo& info) {
    Geom g;
    int* f = &g.N;
    for (int i = 0; i < 13; i++) f[i] = I32(info[i]);
    Napi::Env env = info.Env();
    if (g.N < 0 || g.C < 1 || g.H < 1 || g.W < 1 || g.K < 1 || g.R < 1 || g.S < 1 || g.sh < 1 || g.sw < 1 ||
        g.ph < 0 || g.pw < 0 || g.OH < 1 || g.OW < 1)
      throw Napi::RangeError::New(env, "conv: invalid geometry");
    if ((g.H + 2 * g.ph - g.R) / g.sh + 1 != g.OH || (g.W + 2 * g.pw - g.S) / g.sw + 1 != g.OW)
      throw Napi::RangeError::New(env, "conv: OH/OW do not match H/W, kernel, stride and padding");
    return g;
  }

  // xb / yb: the user's x / y (src / dst of the convolution) are in the blocked layout nChw16c.
  // prec: -1 = the context's rule, 0 = fp32, 1 = bf16 (where oneDNN has it).
  ConvEntry* Create(int kind, const Geom& g, bool bias, int layout, bool xb, bool yb, int prec = -1,
                    const PostRelu& post = PostRelu{}) {
    using namespace dnnl;
    memory::dims srcD{g.N, g.C, g.H, g.W}, weiD{g.K, g.C, g.R, g.S}, dstD{g.N, g.K, g.OH, g.OW}, biasD{g.K};
    memory::dims strides{g.sh, g.sw}, padL{g.ph, g.pw};
    // Right padding so that the output size matches exactly (may be negative when the last rows are unused).
    memory::dims padR{(g.OH - 1) * g.sh + g.R - g.H - g.ph, (g.OW - 1) * g.sw + g.S - g.W - g.pw};
    // Backward-data into very few channels (the last ConvTranspose2d's forward) runs as a gemm over plain
    // layouts, where bf16 only adds a conversion: measured 0.66 ms in bf16 vs 0.40 ms in fp32, so fp32.
    const bool b16 = prec >= 0 ? prec == 1 : (kind == CONV_BWD_WEIGHT ? bf16Wgrad_ && hasAmx_ : bf16_) && !(kind == CONV_BWD_DATA && g.C < 8);
    const dt lo = b16 ? dt::bf16 : dt::f32;
    const tag at = layout == LAYOUT_PLAIN ? tag::nchw : tag::any;
    memory::desc srcU(srcD, dt::f32, xb ? tag::nChw16c : tag::nchw), weiU(weiD, dt::f32, tag::oihw),
        dstU(dstD, dt::f32, yb ? tag::nChw16c : tag::nchw),
        biasU(biasD, dt::f32, tag::x);
    memory::desc srcLo(srcD, lo, at), weiLo(weiD, lo, tag::any), dstLo(dstD, lo, at);
    // fp32 results: with bf16 inputs oneDNN can write f32 directly; fall back to bf16 + reorder.
    std::vector<dt> outTypes = b16 ? std::vector<dt>{dt::f32, dt::bf16} : std::vector<dt>{dt::f32};

    primitive_attr attr;
    attr.set_scratchpad_mode(scratchpad_mode::user);
    if (post.on && kind == CONV_FWD) {
      post_ops po;
      po.append_eltwise(1.f, algorithm::eltwise_relu, post.alpha, 0.f);  // x > 0 ? x : alpha * x
      attr.set_post_ops(po);
    }

    auto e = std::make_unique<ConvEntry>();
    e->hasBias = bias;
    std::string lastErr;
    if (kind == CONV_FWD) {
      for (dt ot : outTypes) {
        try {
          memory::desc dstMd(dstD, ot, at);
          auto d = bias ? convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, srcLo,
                                                    weiLo, biasU, dstMd, strides, padL, padR)
                        : convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, srcLo,
                                                    weiLo, dstMd, strides, padL, padR);
          convolution_forward::primitive_desc pd(d, attr, eng_);
          e->prim = convolution_forward(pd);
          e->a[0] = MakeArg(srcU, pd.src_desc(), eng_, true);
          e->a[1] = MakeArg(weiU, pd.weights_desc(), eng_, true);
          e->a[2] = MakeArg(dstU, pd.dst_desc(), eng_, false);
          e->scratchBytes = pd.scratchpad_desc().get_size();
          e->scratch = memory(pd.scratchpad_desc(), eng_, DNNL_MEMORY_NONE);
          e->impl = pd.impl_info_str();
          break;
        } catch (const dnnl::error& err) {
          lastErr = err.what();
        }
      }
    } else {
      // The forward primitive descriptor is the hint for the backward ones.
      auto hd = convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, srcLo, weiLo,
                                          dstLo, strides, padL, padR);
      convolution_forward::primitive_desc hint(hd, eng_);
      for (dt ot : outTypes) {
        try {
          if (kind == CONV_BWD_DATA) {
            memory::desc dsrcMd(srcD, ot, at);
            convolution_backward_data::desc d(algorithm::convolution_direct, dsrcMd, weiLo, dstLo, strides, padL,
                                              padR);
            convolution_backward_data::primitive_desc pd(d, attr, eng_, hint);
            e->prim = convolution_backward_data(pd);
            e->a[0] = MakeArg(dstU, pd.diff_dst_desc(), eng_, true);
            e->a[1] = MakeArg(weiU, pd.weights_desc(), eng_, true);
            e->a[2] = MakeArg(srcU, pd.diff_src_desc(), eng_, false);
            e->scratchBytes = pd.scratchpad_desc().get_size();
            e->scratch = memory(pd.scratchpad_desc(), eng_, DNNL_MEMORY_NONE);
            e->impl = pd.impl_info_str();
          } else {
            memory::desc dweiMd(weiD, ot, tag::any);
            auto d = bias ? convolution_backward_weights::desc(algorithm::convolution_direct, srcLo, dweiMd, biasU,
                                                               dstLo, strides, padL, padR)
                          : convolution_backward_weights::desc(algorithm::convolution_direct, srcLo, dweiMd, dstLo,
                                                               strides, padL, padR);
            convolution_backward_weights::primitive_desc pd(d, attr, eng_, hint);
            e->prim = convolution_backward_weights(pd);
            e->a[0] = MakeArg(srcU, pd.src_desc(), eng_, true);
            e->a[1] = MakeArg(dstU, pd.diff_dst_desc(), eng_, true);
            e->a[2] = MakeArg(weiU, pd.diff_weights_desc(), eng_, false);
            e->scratchBytes = pd.scratchpad_desc().get_size();
            e->scratch = memory(pd.scratchpad_desc(), eng_, DNNL_MEMORY_NONE);
            e->impl = pd.impl_info_str();
          }
          break;
        } catch (const dnnl::error& err) {
          lastErr = err.what();
        }
      }
    }
    if (!e->prim) throw std::runtime_error(std::string("no oneDNN convolution ") + KindName(kind) + ": " + lastErr);
    if (bias) e->bias = memory(biasU, eng_, DNNL_MEMORY_NONE);
    e->Layout();
    return e.release();
  }

  void Run(ConvEntry& e, int kind, float* p0, float* p1, float* p2, float* pb) {
    e.a[0].user.set_data_handle(p0);
    e.a[1].user.set_data_handle(p1);
    e.a[2].user.set_data_handle(p2);
    if (e.hasBias) e.bias.set_data_handle(pb);
    // One workspace per context for every primitive's reordered arguments and scratchpad: calls run one
    // at a time, so memory is the largest single call's, not the sum over the cached shapes.
    char* ws = static_cast<char*>(e.wsBytes ? Scratch(e.wsBytes) : nullptr);
    for (Arg& x : e.a)
      if (x.needsReorder) x.prim.set_data_handle(ws + x.offset);
    e.scratch.set_data_handle(e.scratchBytes ? ws + e.scratchOffset : nullptr);
    for (int i = 0; i < 2; i++)
      if (e.a[i].toBf16) {
        const float* src = static_cast<const float*>(e.a[i].user.get_data_handle());
        uint16_t* dst = static_cast<uint16_t*>(e.a[i].prim.get_data_handle());
        ForChunks(long(e.a[i].elems), 65536, threads_, [&](long o, long m) { ToBf16(src + o, dst + o, m); });
      } else if (e.a[i].needsReorder) {
        e.a[i].r.execute(strm_, e.a[i].user, e.a[i].prim);
      }
    std::unordered_map<int, memory> args;
    args[DNNL_ARG_SCRATCHPAD] = e.scratch;
    if (kind == CONV_FWD) {
      args[DNNL_ARG_SRC] = e.a[0].prim;
      args[DNNL_ARG_WEIGHTS] = e.a[1].prim;
      args[DNNL_ARG_DST] = e.a[2].prim;
      if (e.hasBias) args[DNNL_ARG_BIAS] = e.bias;
    } else if (kind == CONV_BWD_DATA) {
      args[DNNL_ARG_DIFF_DST] = e.a[0].prim;
      args[DNNL_ARG_WEIGHTS] = e.a[1].prim;
      args[DNNL_ARG_DIFF_SRC] = e.a[2].prim;
    } else {
      args[DNNL_ARG_SRC] = e.a[0].prim;
      args[DNNL_ARG_DIFF_DST] = e.a[1].prim;
      args[DNNL_ARG_DIFF_WEIGHTS] = e.a[2].prim;
      if (e.hasBias) args[DNNL_ARG_DIFF_BIAS] = e.bias;
    }
    e.prim.execute(strm_, args);
    if (e.a[2].needsReorder) e.a[2].r.execute(strm_, e.a[2].prim, e.a[2].user);
    strm_.wait();
  }

  // post: a leaky ReLU applied to the output by the primitive (PostRelu), else none.
  // prec: 1 bf16, 0 fp32, -1 the context's choice.
  ConvEntry* Get(int kind, const Geom& g, bool bias, bool xb, bool yb, float* p0, float* p1, float* p2, float* pb,
                 const PostRelu& post = PostRelu{}, int prec = -1) {
    int alphaBits;
    std::memcpy(&alphaBits, &post.alpha, 4);
    std::array<int, 18> key{kind, g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, bias,
                            int(xb) | int(yb) << 1, int(post.on) | (prec + 1) << 1, post.on ? alphaBits : 0};
    auto it = convs_.find(key);
    if (it != convs_.end()) return it->second.get();
    std::unique_ptr<ConvEntry> e;
    if (layout_ == LAYOUT_TUNED) {
      // Measure both layouts on this call's data (the outputs are overwritten by every run) and keep the faster.
      std::unique_ptr<ConvEntry> c0(Create(kind, g, bias, LAYOUT_ANY, xb, yb, prec, post)), c1(Create(kind, g, bias, LAYOUT_PLAIN, xb, yb, prec, post));
      double best[2] = {1e30, 1e30};
      ConvEntry* cs[2] = {c0.get(), c1.get()};
      for (int rep = 0; rep < 3; rep++)
        for (int j = 0; j < 2; j++) {
          double t0 = omp_get_wtime();
          Run(*cs[j], kind, p0, p1, p2, pb);
          double t = omp_get_wtime() - t0;
          if (rep > 0 && t < best[j]) best[j] = t;
        }
      e = best[1] < best[0] ? std::move(c1) : std::move(c0);
      // the caller runs the chosen primitive once more, so the outputs come from it
    } else if (bf16Timed_ && prec < 0) {
      // The faster of bf16 and fp32 for this convolution and direction: the least of 5 runs each, the two
      // alternating (so that a change of load hits both), after one warm-up run each.
      const int lay = layout_ == LAYOUT_AUTO ? (kind == CONV_BWD_DATA && g.C < 8 ? LAYOUT_PLAIN : LAYOUT_ANY) : layout_;
      std::unique_ptr<ConvEntry> c16(Create(kind, g, bias, lay, xb, yb, 1, post)), c32(Create(kind, g, bias, lay, xb, yb, 0, post));
      double best[2] = {1e30, 1e30};
      ConvEntry* cs[2] = {c16.get(), c32.get()};
      for (int rep = 0; rep < 6; rep++)
        for (int j = 0; j < 2; j++) {
          double t0 = omp_get_wtime();
          Run(*cs[j], kind, p0, p1, p2, pb);
          double t = omp_get_wtime() - t0;
          if (rep > 0 && t < best[j]) best[j] = t;
        }
      const bool pick16 = best[0] <= best[1];
      e = pick16 ? std::move(c16) : std::move(c32);
      char note[96];
      std::snprintf(note, sizeof note, " [timed: bf16 %.3f ms, fp32 %.3f ms]", best[0] * 1e3, best[1] * 1e3);
      e->impl += note;
      // the caller runs the chosen primitive once more, so the outputs come from it
    } else if (layout_ == LAYOUT_AUTO) {
      e.reset(Create(kind, g, bias, kind == CONV_BWD_DATA && g.C < 8 ? LAYOUT_PLAIN : LAYOUT_ANY, xb, yb, prec, post));
    } else {
      e.reset(Create(kind, g, bias, layout_, xb, yb, prec, post));
    }
    ConvEntry* raw = e.get();
    convs_.emplace(key, std::move(e));
    return raw;
  }

  Napi::Value Conv(const Napi::CallbackInfo& info, int kind) {
    Napi::Env env = info.Env();
    if (info.Length() < 17) throw Napi::TypeError::New(env, "conv: expected 17 arguments");
    Geom g = ReadGeom(info);
    // optional 18th and 19th: x and y in the blocked layout
    const bool xb = Blocked(env, info, 17, g.C), yb = Blocked(env, info, 18, g.K);
    size_t xN = size_t(g.N) * g.C * g.H * g.W, wN = size_t(g.K) * g.C * g.R * g.S, yN = size_t(g.N) * g.K * g.OH * g.OW;
    float *p0, *p1, *p2, *pb;
    if (kind == CONV_FWD) {  // x, w, bias, y
      p0 = F32(env, info[13], xN, "x");
      p1 = F32(env, info[14], wN, "w");
      pb = F32OrNull(env, info[15], g.K, "bias");
      p2 = F32(env, info[16], yN, "y");
    } else if (kind == CONV_BWD_DATA) {  // dy, w, -, dx
      p0 = F32(env, info[13], yN, "dy");
      p1 = F32(env, info[14], wN, "w");
      pb = nullptr;
      p2 = F32(env, info[16], xN, "dx");
    } else {  // x, dy, db, dw
      p0 = F32(env, info[13], xN, "x");
      p1 = F32(env, info[14], yN, "dy");
      pb = F32OrNull(env, info[15], g.K, "db");
      p2 = F32(env, info[16], wN, "dw");
    }
    if (g.N == 0) {
      if (kind == CONV_BWD_WEIGHT) {
        std::memset(p2, 0, wN * sizeof(float));
        if (pb) std::memset(pb, 0, g.K * sizeof(float));
      }
      return env.Undefined();
    }
    if (DirectC1(kind, g, xb, yb)) {
      const long CB = g.K / kB;
      const std::vector<float> wt = TapVectors(p1, g.K, long(g.R) * g.S);
      const long xImg = long(g.H) * g.W, yImg = CB * long(g.OH) * g.OW * kB;
      const std::vector<Taps> rows = TapsOf(g.H, g.OH, g.R, g.sh, g.ph), cols = TapsOf(g.W, g.OW, g.S, g.sw, g.pw);
#pragma omp parallel for schedule(dynamic, 2) num_threads(threads_)
      for (long n = 0; n < g.N; n++) DirectC1BwdData(g, p0 + n * yImg, wt.data(), p2 + n * xImg, rows.data(), cols.data());
      return env.Undefined();
    }
    if (kind == CONV_BWD_WEIGHT && OwnBf16Wgrad(g, xb, yb)) {
      Bf16Wgrad(g, p0, p1, p2, pb, static_cast<char*>(Scratch(WgScratch(g).total * size_t(threads_))), threads_);
      return env.Undefined();
    }
    UseThreads();
    try {
      ConvEntry* e = Get(kind, g, pb != nullptr, xb, yb, p0, p1, p2, pb);
      Run(*e, kind, p0, p1, p2, pb);
    } catch (const dnnl::error& err) {
      throw Napi::Error::New(env, std::string("oneDNN ") + KindName(kind) + ": " + err.what());
    } catch (const std::exception& err) {
      throw Napi::Error::New(env, err.what());
    }
    return env.Undefined();
  }

  Napi::Value Conv2d(const Napi::CallbackInfo& info) { return Conv(info, CONV_FWD); }
  Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) { return Conv(info, CONV_BWD_DATA); }
  Napi::Value Conv2dBackwardWeight(const Napi::CallbackInfo& info) { return Conv(info, CONV_BWD_WEIGHT); }

  // convImpl(kind, 13 geometry numbers, hasBias): the oneDNN implementation chosen, with its reorders.
  Napi::Value ConvImpl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int kind = I32(info[0]);
    std::array<int, 18> key{kind};
    for (int i = 0; i < 13; i++) key[i + 1] = I32(info[i + 1]);
    key[14] = info[14].ToBoolean().Value();
    key[15] = int(info.Length() > 15 && info[15].ToBoolean().Value()) | int(info.Length() > 16 && info[16].ToBoolean().Value()) << 1;
    Geom g{key[1], key[2], key[3], key[4], key[5], key[6], key[7], key[8], key[9], key[10], key[11], key[12], key[13]};
    if (DirectC1(kind, g, key[15] & 1, key[15] & 2)) return Napi::String::New(env, "latentlab direct (into one plain channel, 16 channels per vector)");
    if (kind == CONV_BWD_WEIGHT && OwnBf16Wgrad(g, key[15] & 1, key[15] & 2))
      return Napi::String::New(env, "latentlab bf16 (vdpbf16ps, fp32 sums; blocked x and dy)");
    auto it = convs_.find(key);
    if (it == convs_.end()) return env.Null();
    const ConvEntry& e = *it->second;
    std::string s = e.impl;
    const char* names[3] = {"in0", "in1", "out"};
    for (int i = 0; i < 3; i++)
      if (e.a[i].toBf16) s += std::string(" +bf16(") + names[i] + ")";
      else if (e.a[i].needsReorder) s += std::string(" +reorder(") + names[i] + ")";
    return Napi::String::New(env, s);
  }

  // gemm(transA, transB, M, N, K, alpha, A, B, beta, C)
  Napi::Value Gemm(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool ta = info[0].ToBoolean().Value(), tb = info[1].ToBoolean().Value();
    long M = I32(info[2]), N = I32(info[3]), K = I32(info[4]);
    float alpha = float(F64(info[5])), beta = float(F64(info[8]));
    if (M < 0 || N < 0 || K < 0) throw Napi::RangeError::New(env, "gemm: negative size");
    float* A = F32(env, info[6], size_t(M) * K, "A");
    float* B = F32(env, info[7], size_t(K) * N, "B");
    float* C = F32(env, info[9], size_t(M) * N, "C");
    if (M == 0 || N == 0) return env.Undefined();
    if (beta == 0.f) std::memset(C, 0, size_t(M) * N * sizeof(float));  // never read C (it may hold NaN)
    if (K == 0) {
      if (beta != 0.f)
        for (long i = 0; i < M * N; i++) C[i] *= beta;
      return env.Undefined();
    }
    // small products (kernel table: gemmSerialMacs) run on the calling thread, in our own loops when
    // one of their forms fits (SmallGemm)
    const bool small = double(M) * N * K < kGemmSerialMacs;
    if (small && SmallFits(ta, tb, M, N, K)) {
      if (beta != 0.f && beta != 1.f)
        for (long i = 0; i < M * N; i++) C[i] *= beta;
      SmallGemm(ta, tb, M, N, K, alpha, A, B, C);
      return env.Undefined();
    }
    UseThreads(small ? 1 : threads_);
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta,
                                  C, N);
    if (st != dnnl_success) throw Napi::Error::New(env, "oneDNN sgemm failed (status " + std::to_string(st) + ")");
    return env.Undefined();
  }

  // batchNormTrain(N, C, HW, x, gamma, beta, eps, actKind, slope, y, mean, invstd, blocked, variance)
  Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long N = I32(info[0]), C = I32(info[1]), HW = I32(info[2]);
    size_t n = size_t(N) * C * HW;
    const float* x = F32(env, info[3], n, "x");
    const float* gamma = F32OrNull(env, info[4], C, "gamma");
    const float* beta = F32OrNull(env, info[5], C, "beta");
    double eps = F64(info[6]);
    int kind = ActKind(env, info[7]);
    float slope = float(F64(info[8]));
    float* y = F32OrNull(env, info[9], n, "y");  // null: the statistics only (normConvT1Forward applies them)
    if (y && (!gamma || !beta)) throw Napi::TypeError::New(env, "batchNormTrain: gamma and beta are needed with y");
    float* mean = F32(env, info[10], C, "mean");
    float* invstd = F32(env, info[11], C, "invstd");
    // optional 14th: the batch's biased variance (for the running statistics)
    float* variance = info.Length() > 13 ? F32OrNull(env, info[13], C, "variance") : nullptr;
    const double M = double(N) * HW;
    if (Blocked(env, info, 12, C)) {
      const long CB = C / kB;
      ForRange(CB, n >= 65536, threads_, [&](long cb) {
        // one pass over x for both moments, shifted by the channel's first value
        double s[kB] = {0}, q[kB] = {0};
        float k[kB], mu[kB], a[kB];
        for (int l = 0; l < kB; l++) k[l] = x[BIdx(0, cb, CB, HW) + l];
        for (long b = 0; b < N; b++) blkShiftedSums(x + BIdx(b, cb, CB, HW), HW, k, s, q);
        for (int l = 0; l < kB; l++) {
          const long c = cb * kB + l;
          const BnStats st = BnStatsOf(s[l], q[l], k[l], M, eps);
          if (variance) variance[c] = st.var;
          mean[c] = mu[l] = st.mean;
          invstd[c] = st.invstd;
          if (y) a[l] = gamma[c] * invstd[c];  // in float: the backward pass recomputes it exactly
        }
        if (y)
          for (long b = 0; b < N; b++)
            blkAffineAct(x + BIdx(b, cb, CB, HW), y + BIdx(b, cb, CB, HW), HW, mu, a, beta + cb * kB, kind, slope);
      });
      return env.Undefined();
    }
    ForRange(C, n >= 65536, threads_, [&](long c) {
      double s = 0, q = 0;
      for (long b = 0; b < N; b++) sumRow(x + (b * C + c) * HW, HW, &s);
      double mu = s / M;
      float muf = float(mu);
      for (long b = 0; b < N; b++) sqDevRow(x + (b * C + c) * HW, HW, muf, &q);
      // the deviations were taken from the float mean; correct for the (tiny) rounding of mu
      double var = BiasedVar(q, mu - double(muf), M), is = 1.0 / std::sqrt(var + eps);
      if (variance) variance[c] = float(var);
      mean[c] = muf;
      invstd[c] = float(is);
      if (y)
        for (long b = 0; b < N; b++)
          affineAct(x + (b * C + c) * HW, y + (b * C + c) * HW, HW, muf, float(double(gamma[c]) * is), beta[c], kind, slope);
    });
    return env.Undefined();
  }

  static void CheckNormConv(const Napi::Env& env, long N, long K, long H, long W, int kind) {
    if (N < 1 || H < 1 || W < 1 || K < 1 || K % kB != 0 || double(N) * H * W < 2)
      throw Napi::RangeError::New(env, "normConvT1: expected N, H, W >= 1, more than one value per channel and channels divisible by 16");
    if (kind != A_NONE && kind != A_RELU && kind != A_LEAKY)
      throw Napi::RangeError::New(env, "normConvT1: the activation must be none, relu or leaky");
  }

  // convNormBackward(13 geometry numbers, x, gamma, beta, invstd, actKind, slope, y, dy, dw, db, dgamma, dbeta,
  // yBlocked): the backward of convNormForward for a first layer (no input gradient), given y (its output, which
  // the batch-norm's in-place backward recovers the normalised value from: xhat = (act^-1(y) - beta) / gamma) and dy.
  // One pass over y and dy instead of three (the batch-norm's sums, its dx, the weight gradient reading dx): with
  // g = dy * act'(y), the batch-norm's dx = k2 (g - sum(g) / M - xhat sum(g xhat) / M) (k2 = gamma invstd), so
  //   dw[k][t] = sum(dx p_t) = k2 (sum(g p_t) - sum(g) / M sum(p_t) - sum(g xhat) / M sum(xhat p_t)),
  //   db[k] = sum(dx) = -k2 sum(g xhat) / M sum(xhat) (zero but for rounding),
  // over the batch's output pixels, p_t the input at tap t; dgamma = sum(g xhat), dbeta = sum(g) as batchNormBackward
  // writes them. Sums in float over an image's pixels, then in double.
  Napi::Value ConvNormBackward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 26) throw Napi::TypeError::New(env, "convNormBackward: expected 26 arguments");
    const Geom g = ReadGeom(info);
    constexpr long T = 9;  // 3x3 taps (ConvNormBwdSums)
    const long K = g.K, P = long(g.OH) * g.OW;
    if (g.C != 1 || g.R != 3 || g.S != 3 || K % kB != 0 || double(g.N) * P < 2)
      throw Napi::RangeError::New(env, "convNormBackward: expected one input channel, 3x3 taps, channels divisible by 16 and more than one output value per channel");
    const int kind = ActKind(env, info[17]);
    if (kind != A_NONE && kind != A_LEAKY) throw Napi::RangeError::New(env, "convNormBackward: the activation must be none or leaky");
    const bool yb = Blocked(env, info, 25, K);
    const float* x = F32(env, info[13], size_t(g.N) * g.H * g.W, "x");
    const float* gamma = F32(env, info[14], K, "gamma");
    const float* beta = F32(env, info[15], K, "beta");
    const float* invstd = F32(env, info[16], K, "invstd");
    const float slope = float(F64(info[18]));
    const size_t n = size_t(g.N) * K * P;
    const float* y = F32(env, info[19], n, "y");
    const float* dy = F32(env, info[20], n, "dy");
    float* dw = F32(env, info[21], size_t(K) * T, "dw");
    float* db = F32OrNull(env, info[22], K, "db");
    float* dgamma = F32(env, info[23], K, "dgamma");
    float* dbeta = F32(env, info[24], K, "dbeta");
    const long CB = K / kB, Hp = long(g.OH - 1) * g.sh + g.R, Wp = long(g.OW - 1) * g.sw + g.S;
    // per thread: sum(g p_t) [K][T], sum(xhat p_t) [K][T], sum(g), sum(g xhat), sum(xhat) [K], sum(p_t) [T]
    const long slots = 2 * K * T + 3 * K + T;
    const int threads = threads_;
    std::vector<double> part(size_t(threads) * slots, 0.0);
    std::vector<float> ig(K);
    for (long k = 0; k < K; k++) ig[k] = 1.f / gamma[k];
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      double* pt = part.data() + size_t(t) * slots;
      std::vector<float> xp(size_t(Hp) * Wp);
#pragma omp for schedule(static)
      for (long b = 0; b < g.N; b++) {
        // the image, zero-padded to the rows and columns the taps reach
        for (long i = 0; i < Hp; i++)
          for (long j = 0; j < Wp; j++) {
            const long ih = i - g.ph, iw = j - g.pw;
            xp[i * Wp + j] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x[(b * g.H + ih) * g.W + iw] : 0.f;
          }
        float sp[T] = {};  // sum(p_t) over the image's output pixels, the taps side by side
        for (long oh = 0; oh < g.OH; oh++)
          for (long ow = 0; ow < g.OW; ow++) {
            const float* a = xp.data() + oh * g.sh * Wp + ow * g.sw;
            for (int u = 0; u < T; u++) sp[u] += a[(u / 3) * Wp + u % 3];
          }
        for (int u = 0; u < T; u++) pt[2 * K * T + 3 * K + u] += sp[u];
        for (long cb = 0; cb < CB; cb++) {
          const long base = yb ? BIdx(b, cb, CB, P) : (b * K + cb * kB) * P;
          float sums[2 * T + 3][kB];  // sum(g p_t) [9], sum(xhat p_t) [9], sum(g), sum(g xhat), sum(xhat)
          ConvNormBwdSums(xp.data(), Wp, g.OW, g.sh, g.sw, P, y + base, dy + base, yb, beta + cb * kB, ig.data() + cb * kB,
                          kind == A_LEAKY, slope, sums);
          const V16* tg = reinterpret_cast<const V16*>(sums[0]);
          const V16* tx = tg + T;
          const V16 sg = tg[2 * T], sgx = tg[2 * T + 1], sx = tg[2 * T + 2];
          for (int l = 0; l < kB; l++) {
            const long k = cb * kB + l;
            for (long u = 0; u < T; u++) {
              pt[k * T + u] += tg[u][l];
              pt[K * T + k * T + u] += tx[u][l];
            }
            pt[2 * K * T + k] += sg[l];
            pt[2 * K * T + K + k] += sgx[l];
            pt[2 * K * T + 2 * K + k] += sx[l];
          }
        }
      }
    }
    SumParts(part, threads, slots);
    const double M = double(g.N) * P;
    const double* sp = part.data() + 2 * K * T + 3 * K;
    for (long k = 0; k < K; k++) {
      const double sg = part[2 * K * T + k], sgx = part[2 * K * T + K + k], sx = part[2 * K * T + 2 * K + k];
      const BnBwdCoef f = BnBwdCoefs(sg, sgx, gamma[k], invstd[k], M, dbeta + k, dgamma + k);
      for (long u = 0; u < T; u++)
        dw[k * T + u] = float(double(f.k2) * (part[k * T + u] - sg / M * sp[u] - sgx / M * part[K * T + k * T + u]));
      if (db) db[k] = float(double(f.k2) * -(sgx / M * sx));  // sum(g) - M sum(g) / M = 0
    }
    return env.Undefined();
  }

  // convNormForward(13 geometry numbers, x, w, bias, gamma, beta, eps, actKind, slope, y, mean, invstd, variance,
  // yBlocked): y = act(batch-norm(conv2d(x, w, bias))) in training, for a convolution from one channel (x plain
  // [N, 1, H, W]): the batch's statistics from the input's patch moments (PatchMoments), then one oneDNN convolution
  // with the normalisation folded into its weights and bias, w'_c = a_c w_c and b'_c = (b_c - mean_c) a_c + beta_c
  // (a_c = gamma_c invstd_c, in float as in batchNormTrain), and the activation (none, relu, leaky) as its post-op.
  // The convolution's output is never stored or read: one pass over y instead of three. mean, invstd and variance
  // (biased) are written as batchNormTrain writes them.
  Napi::Value ConvNormForward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 26) throw Napi::TypeError::New(env, "convNormForward: expected 26 arguments");
    const Geom g = ReadGeom(info);
    const long T = long(g.R) * g.S;
    if (g.C != 1 || T > kDirectMaxTaps || double(g.N) * g.OH * g.OW < 2)
      throw Napi::RangeError::New(env, "convNormForward: expected one input channel, at most 7x7 taps and more than one output value per channel");
    const int kind = ActKind(env, info[19]);
    if (kind != A_NONE && kind != A_RELU && kind != A_LEAKY)
      throw Napi::RangeError::New(env, "convNormForward: the activation must be none, relu or leaky");
    const bool yb = Blocked(env, info, 25, g.K);
    const float* x = F32(env, info[13], size_t(g.N) * g.H * g.W, "x");
    const float* w = F32(env, info[14], size_t(g.K) * T, "w");
    const float* bias = F32OrNull(env, info[15], g.K, "bias");
    const float* gamma = F32(env, info[16], g.K, "gamma");
    const float* beta = F32(env, info[17], g.K, "beta");
    const double eps = F64(info[18]);
    const float slope = float(F64(info[20]));
    float* y = F32(env, info[21], size_t(g.N) * g.K * g.OH * g.OW, "y");
    float* mean = F32(env, info[22], g.K, "mean");
    float* invstd = F32(env, info[23], g.K, "invstd");
    float* variance = F32(env, info[24], g.K, "variance");
    if (g.N == 0) return env.Undefined();
    const float k = x[0];
    std::vector<double> m(T), q(size_t(T) * T);
    PatchMoments(g, x, k, threads_, m.data(), q.data());
    const double M = double(g.N) * g.OH * g.OW;
    std::vector<float> wf(size_t(g.K) * T), bf(g.K);
    for (long c = 0; c < g.K; c++) {
      const BnStats st = ConvNormStats(m.data(), q.data(), T, w + c * T, bias ? bias[c] : 0.f, k, M, eps);
      mean[c] = st.mean;
      invstd[c] = st.invstd;
      variance[c] = st.var;
      const float a = gamma[c] * st.invstd;
      for (long t = 0; t < T; t++) wf[c * T + t] = a * w[c * T + t];
      bf[c] = ((bias ? bias[c] : 0.f) - st.mean) * a + beta[c];
    }
    PostRelu post;
    post.on = kind != A_NONE;
    post.alpha = kind == A_LEAKY ? slope : 0.f;
    UseThreads();
    try {
      // fp32 with precision bf16 too: bf16 would round the folded weights, so that y's batch mean would miss beta by
      // that rounding times the channel's mean; this convolution from one channel is bound by its output's stores
      ConvEntry* e = Get(CONV_FWD, g, true, false, yb, const_cast<float*>(x), wf.data(), y, bf.data(), post, 0);
      Run(*e, CONV_FWD, const_cast<float*>(x), wf.data(), y, bf.data());
    } catch (const dnnl::error& err) {
      throw Napi::Error::New(env, std::string("oneDNN convNormForward: ") + err.what());
    }
    return env.Undefined();
  }

  // normConvT1Forward(N, K, H, W, x, w, bias, gamma, beta, mean, invstd, actKind, slope, out): out [N, 1, H, W] =
  // conv_transpose2d(act(batch-norm of x), w, bias), 3x3, stride 1, padding 1; x blocked [N, K, H, W], mean and
  // invstd the batch's (batchNormTrain with y null). The same arithmetic as batchNormTrain + conv2dBackwardData +
  // channelAffine, without storing the batch-norm's output.
  Napi::Value NormConvT1Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const long N = I32(info[0]), K = I32(info[1]), H = I32(info[2]), W = I32(info[3]), HW = H * W;
    const int kind = ActKind(env, info[11]);
    CheckNormConv(env, N, K, H, W, kind);
    const float* x = F32(env, info[4], size_t(N) * K * HW, "x");
    const float* w = F32(env, info[5], size_t(K) * 9, "w");
    const float* bias = F32OrNull(env, info[6], 1, "bias");
    const float* gamma = F32(env, info[7], K, "gamma");
    const float* beta = F32(env, info[8], K, "beta");
    const float* mean = F32(env, info[9], K, "mean");
    const float* invstd = F32(env, info[10], K, "invstd");
    const float slope = float(F64(info[12]));
    float* out = F32(env, info[13], size_t(N) * HW, "out");
    const long CB = K / kB;
    std::vector<float> a(K);
    for (long c = 0; c < K; c++) a[c] = gamma[c] * invstd[c];
    const std::vector<float> wt = TapVectors(w, K, 9);
    const Geom g{int(N), 1, int(H), int(W), int(K), 3, 3, 1, 1, 1, 1, int(H), int(W)};
    const std::vector<Taps> rows = TapsOf(H, H, 3, 1, 1), cols = TapsOf(W, W, 3, 1, 1);
#pragma omp parallel num_threads(threads_)
    {
      std::vector<float> z(size_t(CB) * HW * kB);
#pragma omp for schedule(dynamic, 2)
      for (long n = 0; n < N; n++) {
        for (long cb = 0; cb < CB; cb++)
          blkAffineAct(x + BIdx(n, cb, CB, HW), z.data() + cb * HW * kB, HW, mean + cb * kB, a.data() + cb * kB,
                       beta + cb * kB, kind, slope);
        DirectC1BwdData(g, z.data(), wt.data(), out + n * HW, rows.data(), cols.data());
        if (bias) affineAct(out + n * HW, out + n * HW, HW, 0.f, 1.f, bias[0], A_NONE, 0.f);
      }
    }
    return env.Undefined();
  }

  // normConvT1Backward(N, K, H, W, x, w, gamma, beta, mean, invstd, actKind, slope, dy, dw, db, dgamma, dbeta, dx):
  // the backward of normConvT1Forward given dy [N, 1, H, W]: the convolution's dw [K, 1, 3, 3] and db [1] (when
  // not null), the batch-norm's dgamma and dbeta, and dx (blocked, the batch-norm input's gradient), all
  // overwritten.
  Napi::Value NormConvT1Backward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const long N = I32(info[0]), K = I32(info[1]), H = I32(info[2]), W = I32(info[3]), HW = H * W;
    const int kind = ActKind(env, info[10]);
    CheckNormConv(env, N, K, H, W, kind);
    const size_t n = size_t(N) * K * HW;
    const float* x = F32(env, info[4], n, "x");
    const float* w = F32(env, info[5], size_t(K) * 9, "w");
    const float* gamma = F32(env, info[6], K, "gamma");
    const float* beta = F32(env, info[7], K, "beta");
    const float* mean = F32(env, info[8], K, "mean");
    const float* invstd = F32(env, info[9], K, "invstd");
    const float slope = float(F64(info[11]));
    const float* dy = F32(env, info[12], size_t(N) * HW, "dy");
    float* dw = F32(env, info[13], size_t(K) * 9, "dw");
    float* db = F32OrNull(env, info[14], 1, "db");
    float* dgamma = F32(env, info[15], K, "dgamma");
    float* dbeta = F32(env, info[16], K, "dbeta");
    float* dx = F32(env, info[17], n, "dx");
    const long CB = K / kB;
    const std::vector<float> wt = TapVectors(w, K, 9);
    const V16* wv = reinterpret_cast<const V16*>(wt.data());
    const std::vector<BlockCoef> coef = BlockCoefs(K, gamma, beta, mean, invstd);
    // pass 1: per thread, double sums over its images (a static split: the same sums in the same order each run)
    const int T = threads_;
    const long slots = K * 9 + 2 * K + 1;  // dw, sg, sgx, db
    std::vector<double> part(size_t(T) * slots, 0.0);
    ForPaddedImages(T, N, H, W, dy, [&](int t, long b, const float* dyp) {
      double* p = part.data() + size_t(t) * slots;
      double sb = 0;
      for (long i = 0; i < HW; i++) sb += dy[b * HW + i];
      p[K * 9 + 2 * K] += sb;
      for (long cb = 0; cb < CB; cb++) {
        V16 dwv[9] = {}, sg = {}, sgx = {};
        NcSums(x + BIdx(b, cb, CB, HW), dyp, H, W, wv + cb * 9, coef[cb], kind, slope, dwv, &sg, &sgx);
        for (int l = 0; l < kB; l++) {
          const long ch = cb * kB + l;
          for (int tap = 0; tap < 9; tap++) p[ch * 9 + tap] += dwv[tap][l];
          p[K * 9 + ch] += sg[l];
          p[K * 10 + ch] += sgx[l];
        }
      }
    });
    SumParts(part, T, slots);
    for (long i = 0; i < K * 9; i++) dw[i] = float(part[i]);
    if (db) db[0] = float(part[K * 9 + 2 * K]);
    const double M = double(N) * HW;
    std::vector<float> k2(K), mdz(K), mdzx(K);
    for (long c = 0; c < K; c++) {
      BnBwdCoef f = BnBwdCoefs(part[K * 9 + c], part[K * 10 + c], gamma[c], invstd[c], M, dbeta + c, dgamma + c);
      k2[c] = f.k2;
      mdz[c] = f.mdz;
      mdzx[c] = f.mdzx;
    }
    // pass 2: dx
    ForPaddedImages(T, N, H, W, dy, [&](int, long b, const float* dyp) {
      for (long cb = 0; cb < CB; cb++)
        NcDx(x + BIdx(b, cb, CB, HW), dyp, H, W, wv + cb * 9, coef[cb], kind, slope, &k2[cb * kB], &mdz[cb * kB], &mdzx[cb * kB],
             dx + BIdx(b, cb, CB, HW));
    });
    return env.Undefined();
  }

  // channelAffine(N, C, HW, x, scale, shift, actKind, slope, y)
  Napi::Value ChannelAffine(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long N = I32(info[0]), C = I32(info[1]), HW = I32(info[2]);
    size_t n = size_t(N) * C * HW;
    const float* x = F32(env, info[3], n, "x");
    const float* scale = F32(env, info[4], C, "scale");
    const float* shift = F32(env, info[5], C, "shift");
    int kind = ActKind(env, info[6]);
    float slope = float(F64(info[7]));
    float* y = F32(env, info[8], n, "y");
    if (Blocked(env, info, 9, C)) {
      const long CB = C / kB;
      static const float zero[kB] = {0};
      ForRange(N * CB, n * (kind >= A_TANH ? 4 : 1) >= 262144, threads_, [&](long r) {
        long cb = r % CB;
        blkAffineAct(x + r * HW * kB, y + r * HW * kB, HW, zero, scale + cb * kB, shift + cb * kB, kind, slope);
      });
      return env.Undefined();
    }
    long rows = N * C;
    ForRange(rows, n * (kind >= A_TANH ? 4 : 1) >= 262144, threads_, [&](long r) {
      long c = r % C;
      affineAct(x + r * HW, y + r * HW, HW, 0.f, scale[c], shift[c], kind, slope);
    });
    return env.Undefined();
  }

  // batchNormBackward(N, C, HW, x, y, dy, gamma, mean, invstd, actKind, slope, dx, dgamma, dbeta, blocked, beta)
  // x null: the forward wrote y over x (in place); then beta is given and the activation is none or leaky with
  // a positive slope, and x's normalised value is (act^-1(y) - beta) / gamma.
  Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long N = I32(info[0]), C = I32(info[1]), HW = I32(info[2]);
    size_t n = size_t(N) * C * HW;
    const float* x = F32OrNull(env, info[3], n, "x");
    const float* y = F32(env, info[4], n, "y");
    const float* dy = F32(env, info[5], n, "dy");
    const float* gamma = F32(env, info[6], C, "gamma");
    const float* mean = F32(env, info[7], C, "mean");
    const float* invstd = F32(env, info[8], C, "invstd");
    int kind = ActKind(env, info[9]);
    float slope = float(F64(info[10]));
    float* dx = F32(env, info[11], n, "dx");
    float* dgamma = F32(env, info[12], C, "dgamma");
    float* dbeta = F32(env, info[13], C, "dbeta");
    // optional 16th: the forward's beta (then the blocked path takes the activation's mask from x, not y)
    const float* beta = info.Length() > 15 ? F32OrNull(env, info[15], C, "beta") : nullptr;
    if (!x && !(beta && (kind == A_NONE || (kind == A_LEAKY && slope > 0.f))))
      throw Napi::RangeError::New(env, "batchNormBackward without x needs beta and an activation none or leaky (slope > 0)");
    // in place: the normalised value is (xIn - beta) * (1 / gamma)
    std::vector<float> igamma(x ? 0 : C);
    for (long c = 0; c < long(igamma.size()); c++) igamma[c] = 1.f / gamma[c];
    const double M = double(N) * HW;
    if (Blocked(env, info, 14, C)) {
      const long CB = C / kB;
      ForRange(CB, n >= 65536, threads_, [&](long cb) {
        const float* mu = x ? mean + cb * kB : beta + cb * kB;
        const float* is = x ? invstd + cb * kB : igamma.data() + cb * kB;
        float a[kB];
        for (int l = 0; l < kB; l++) a[l] = gamma[cb * kB + l] * invstd[cb * kB + l];
        const float* pa = beta ? a : nullptr;
        const float* pb = beta ? beta + cb * kB : nullptr;
        double sg[kB] = {0}, sgx[kB] = {0};
        for (long b = 0; b < N; b++) {
          long o = BIdx(b, cb, CB, HW);
          blkBwdSums(x ? x + o : nullptr, y + o, dy + o, HW, mu, is, pa, pb, kind, slope, sg, sgx);
        }
        float k2[kB], mdz[kB], mdzx[kB];
        for (int l = 0; l < kB; l++) {
          long c = cb * kB + l;
          BnBwdCoef f = BnBwdCoefs(sg[l], sgx[l], gamma[c], invstd[c], M, dbeta + c, dgamma + c);
          k2[l] = f.k2;
          mdz[l] = f.mdz;
          mdzx[l] = f.mdzx;
        }
        for (long b = 0; b < N; b++) {
          long o = BIdx(b, cb, CB, HW);
          blkBwdDx(x ? x + o : nullptr, y + o, dy + o, dx + o, HW, mu, is, pa, pb, kind, slope, k2, mdz, mdzx);
        }
      });
      return env.Undefined();
    }
    ForRange(C, n >= 65536, threads_, [&](long c) {
      float mu = x ? mean[c] : beta[c], is = x ? invstd[c] : igamma[c];
      double sg = 0, sgx = 0;
      for (long b = 0; b < N; b++) {
        long o = (b * C + c) * HW;
        bnBwdSums(x ? x + o : nullptr, y + o, dy + o, HW, mu, is, kind, slope, &sg, &sgx);
      }
      BnBwdCoef f = BnBwdCoefs(sg, sgx, gamma[c], invstd[c], M, dbeta + c, dgamma + c);
      for (long b = 0; b < N; b++) {
        long o = (b * C + c) * HW;
        bnBwdDx(x ? x + o : nullptr, y + o, dy + o, dx + o, HW, mu, is, kind, slope, f.k2, f.mdz, f.mdzx);
      }
    });
    return env.Undefined();
  }

  // Whether argument i says the tensors are in the blocked layout (then C must be a multiple of 16).
  static bool Blocked(const Napi::Env& env, const Napi::CallbackInfo& info, size_t i, long C) {
    bool b = info.Length() > i && info[i].ToBoolean().Value();
    if (b && C % kB != 0) throw Napi::RangeError::New(env, "blocked layout needs channels divisible by 16");
    return b;
  }

  // reorderLayout(N, C, HW, src, dst, toBlocked): NCHW -> nChw16c (toBlocked) or back. dst != src.
  Napi::Value ReorderLayout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long N = I32(info[0]), C = I32(info[1]), HW = I32(info[2]);
    size_t n = size_t(N) * C * HW;
    const float* src = F32(env, info[3], n, "src");
    float* dst = F32(env, info[4], n, "dst");
    bool toBlocked = info[5].ToBoolean().Value();
    if (C % kB != 0) throw Napi::RangeError::New(env, "blocked layout needs channels divisible by 16");
    const long CB = C / kB;
    // block r = (b, cb) is the 16 planes starting at plane r * 16 of the NCHW tensor
    ForRange(N * CB, n >= 65536, threads_, [&](long r) {
      const long o = r * HW * kB;
      if (toBlocked) {
        for (long i = 0; i < HW; i++)
          for (int l = 0; l < kB; l++) dst[o + i * kB + l] = src[o + l * HW + i];
      } else {
        for (long i = 0; i < HW; i++)
          for (int l = 0; l < kB; l++) dst[o + l * HW + i] = src[o + i * kB + l];
      }
    });
    return env.Undefined();
  }

  // channelSums(N, C, HW, x, out, blocked): out[c] = sum of channel c of x over N and HW (overwritten).
  Napi::Value ChannelSums(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long N = I32(info[0]), C = I32(info[1]), HW = I32(info[2]);
    size_t n = size_t(N) * C * HW;
    const float* x = F32(env, info[3], n, "x");
    float* out = F32(env, info[4], C, "out");
    if (Blocked(env, info, 5, C)) {
      const long CB = C / kB;
      ForRange(CB, n >= 65536, threads_, [&](long cb) {
        double s[kB] = {0};
        for (long b = 0; b < N; b++) blkSum(x + BIdx(b, cb, CB, HW), HW, s);
        for (int l = 0; l < kB; l++) out[cb * kB + l] = float(s[l]);
      });
      return env.Undefined();
    }
    ForRange(C, n >= 65536, threads_, [&](long c) {
      double s = 0;
      for (long b = 0; b < N; b++) sumRow(x + (b * C + c) * HW, HW, &s);
      out[c] = float(s);
    });
    return env.Undefined();
  }

  // sgdMomentumStep(n, data, grad, buf, momentum, gradScale, negLr)
  // mseLoss(n, input, target, grad, scale) -> the sum of (input - target)^2 in double (by chunks of 16k added in order,
  // whatever the threads), with grad = float(k * d), k = 2 scale / n and d = input - target in double: the arithmetic
  // of src/engine/loss.ts mseLoss, so the gradient is bit-identical to it.
  Napi::Value MseLoss(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const long n = I32(info[0]);
    const float* a = F32(env, info[1], n, "input");
    const float* t = F32(env, info[2], n, "target");
    float* grad = F32(env, info[3], n, "grad");
    const double k = 2.0 * F64(info[4]) / double(n);
    const long chunk = 16384, chunks = (n + chunk - 1) / chunk;
    std::vector<double> part(chunks > 0 ? chunks : 1, 0.0);
    ForRange(chunks, n >= 262144, threads_, [&](long c) { part[c] = MseChunk(a + c * chunk, t + c * chunk, grad + c * chunk, std::min(chunk, n - c * chunk), k); });
    double s = 0;
    for (long c = 0; c < chunks; c++) s += part[c];
    return Napi::Number::New(env, s);
  }

  Napi::Value SgdMomentumStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long n = I32(info[0]);
    float* p = F32(env, info[1], n, "data");
    const float* g = F32(env, info[2], n, "grad");
    float* buf = F32(env, info[3], n, "momentum buffer");
    float mom = float(F64(info[4])), ds = float(F64(info[5])), negLr = float(F64(info[6]));
    ForChunks(n, 262144, threads_, [&](long o, long m) { SgdMomentumLoop(p + o, g + o, buf + o, m, mom, ds, negLr); });
    return env.Undefined();
  }

  // adamStep(n, data, grad, expAvg, expAvgSq, [sign, b1, omb1, b2, omb2, eps, wd, decay, negStepSize, bc2Sqrt],
  //          useWd, decoupled)
  Napi::Value AdamStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    long n = I32(info[0]);
    float* p = F32(env, info[1], n, "data");
    const float* g = F32(env, info[2], n, "grad");
    float* m = F32(env, info[3], n, "expAvg");
    float* v = F32(env, info[4], n, "expAvgSq");
    const float* sc = F32(env, info[5], ADAM_COUNT, "scalars");
    AdamScalars k{sc[ADAM_SIGN], sc[ADAM_BETA1], sc[ADAM_ONE_MINUS_BETA1], sc[ADAM_BETA2], sc[ADAM_ONE_MINUS_BETA2],
                  sc[ADAM_EPS], sc[ADAM_WEIGHT_DECAY], sc[ADAM_DECAY], sc[ADAM_NEG_STEP_SIZE], sc[ADAM_BC2_SQRT],
                  info[6].ToBoolean().Value(), info[7].ToBoolean().Value()};
    ForChunks(n, 131072, threads_, [&](long o, long cnt) { AdamLoop(p + o, g + o, m + o, v + o, cnt, k); });
    return env.Undefined();
  }

  // activation(actKind, slope, n, x, y)
  Napi::Value Activation(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int kind = ActKind(env, info[0]);
    float slope = float(F64(info[1]));
    long n = I32(info[2]);
    const float* x = F32(env, info[3], n, "x");
    float* y = F32(env, info[4], n, "y");
    // tanh and sigmoid cost ~4x a cheap element
    ForChunks(n, kind >= A_TANH ? 65536 : 262144, threads_,
              [&](long o, long m) { affineAct(x + o, y + o, m, 0.f, 1.f, 0.f, kind, slope); });
    return env.Undefined();
  }

  // activationBackward(actKind, slope, n, x, y, dy, dx)
  Napi::Value ActivationBackward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int kind = ActKind(env, info[0]);
    float slope = float(F64(info[1]));
    long n = I32(info[2]);
    const float* x = F32(env, info[3], n, "x");
    const float* y = F32(env, info[4], n, "y");
    const float* dy = F32(env, info[5], n, "dy");
    float* dx = F32(env, info[6], n, "dx");
    ForChunks(n, 262144, threads_, [&](long o, long m) { actBwd(x + o, y + o, dy + o, dx + o, m, kind, slope); });
    return env.Undefined();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    convs_.clear();
    std::free(scratch_);
    scratch_ = nullptr;
    scratchCap_ = 0;
    return info.Env().Undefined();
  }
};

// ------------------------------------------------------------------------------------------------
// Module functions

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const dnnl_version_t* v = dnnl_version();
  o.Set("dnnl", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  o.Set("cpuRuntime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "omp"
                      : v->cpu_runtime == DNNL_RUNTIME_TBB ? "tbb"
                      : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "seq"
                                                            : "other");
  o.Set("maxThreads", omp_get_max_threads());
  o.Set("numProcs", omp_get_num_procs());
  const char* isa = "unknown";
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: isa = "sse41"; break;
    case dnnl::cpu_isa::avx: isa = "avx"; break;
    case dnnl::cpu_isa::avx2: isa = "avx2"; break;
    case dnnl::cpu_isa::avx512_core: isa = "avx512_core"; break;
    case dnnl::cpu_isa::avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl::cpu_isa::avx512_core_amx: isa = "avx512_core_amx"; break;
    default: break;
  }
  o.Set("isa", isa);
  o.Set("tableHash", double(kKernelTableHash));
  return o;
}

// allocAligned(n): a zero-filled Float32Array of n elements over 64-byte aligned native memory.
Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double nd = F64(info[0]);
  if (!(nd >= 0) || nd > 4e9) throw Napi::RangeError::New(env, "alloc: bad size");
  size_t n = size_t(nd), bytes = ((n * sizeof(float)) + 63) & ~size_t(63);
  if (bytes == 0) bytes = 64;
  void* p = AllocBuffer(bytes);
  if (!p) throw Napi::Error::New(env, "alloc: out of memory");
  std::memset(p, 0, bytes);
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes));
  auto ab = Napi::ArrayBuffer::New(env, p, n * sizeof(float), [bytes](Napi::Env e, void* d) {
    std::free(d);
    Napi::MemoryManagement::AdjustExternalMemory(e, -int64_t(bytes));
  });
  return Napi::Float32Array::New(env, n, ab, 0);
}

// ------------------------------------------------------------------------------------ FMA peak probe
// fmaPeak(threads, iters): the machine's fp32 FMA peak for `npm run bench`. Every thread runs `iters`
// rounds of 16 independent vector FMAs (AVX-512: 16 lanes, AVX2+FMA: 8 lanes, else 4 scalar mul+add
// chains), enough independent chains to cover the FMA latency on two pipes. No memory traffic.
// Returns { gflops, seconds, isa }.
namespace peak {
__attribute__((target("avx512f"))) float Avx512(long iters) {
  const __m512 m = _mm512_set1_ps(0.999999f), k = _mm512_set1_ps(1e-7f);
  __m512 a[16];
  for (int j = 0; j < 16; j++) a[j] = _mm512_set1_ps(1.0f + 0.01f * j);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) a[j] = _mm512_fmadd_ps(a[j], m, k);
  }
  __m512 s = a[0];
  for (int j = 1; j < 16; j++) s = _mm512_add_ps(s, a[j]);
  return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) float Avx2(long iters) {
  const __m256 m = _mm256_set1_ps(0.999999f), k = _mm256_set1_ps(1e-7f);
  __m256 a[16];
  for (int j = 0; j < 16; j++) a[j] = _mm256_set1_ps(1.0f + 0.01f * j);
  for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) a[j] = _mm256_fmadd_ps(a[j], m, k);
  }
  __m256 s = a[0];
  for (int j = 1; j < 16; j++) s = _mm256_add_ps(s, a[j]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
float Scalar(long iters) {
  float a[16];
  for (int j = 0; j < 16; j++) a[j] = 1.0f + 0.01f * j;
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < 16; j++) a[j] = a[j] * 0.999999f + 1e-7f;
  float s = 0;
  for (int j = 0; j < 16; j++) s += a[j];
  return s;
}
}  // namespace peak

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int threads = int(F64(info[0]));
  const double itersD = F64(info[1]);
  if (threads < 1 || threads > 1024) throw Napi::RangeError::New(env, "fmaPeak: threads must be 1..1024");
  if (!(itersD >= 1) || itersD > 1e12) throw Napi::RangeError::New(env, "fmaPeak: iters must be 1..1e12");
  const long iters = long(itersD);
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const int lanes = avx512 ? 16 : avx2 ? 8 : 1;
  volatile float sink = 0;
  const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
  {
    float r = avx512 ? peak::Avx512(iters) : avx2 ? peak::Avx2(iters) : peak::Scalar(iters);
#pragma omp atomic
    sink += r;
  }
  const double sec = omp_get_wtime() - t0;
  const double flops = 2.0 * 16 * lanes * double(iters) * threads;
  Napi::Object o = Napi::Object::New(env);
  o.Set("gflops", flops / sec / 1e9);
  o.Set("seconds", sec);
  o.Set("isa", avx512 ? "avx512f" : avx2 ? "avx2+fma" : "scalar");
  o.Set("check", double(sink));
  return o;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("Context", Context::Init(env));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("allocAligned", Napi::Function::New(env, AllocAligned));
  exports.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
  return exports;
}

}  // namespace

NODE_API_MODULE(latentlab, InitModule)
