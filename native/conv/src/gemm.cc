// flow's packed GEMM (see gemm.h). Blocking, for the shapes a U-Net's convolutions give (m up to batch · pixels,
// n and k up to a few thousand): a KC x NC block of B is packed into 16-wide micro-panels, an MC x KC block of A
// into 6-tall ones (MC · KC · 4 bytes = 120 KiB stays in L2; one 16 KiB B micro-panel stays in L1 while the
// micro-kernel walks the A block), and the micro-kernel keeps its 6x16 block of C in 12 registers over kc.
// k is cut into equal blocks of at most KC (288 = 144 + 144, not 256 + 32: a short last block costs a whole
// extra pass over C for little work).
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FLOW_X86 1
#endif

namespace flow {
namespace {

constexpr int64_t MR = 6, NR = 16;
constexpr int64_t MC = 144, KC = 256, NC = 3072;

bool avx2 = false;

// Packed panels, one set per thread (each training worker thread calls in on its own), 64-byte aligned.
struct AlignedBuffer {
  float* data = nullptr;
  size_t size = 0;
  float* reserve(size_t count) {
    if (count > size) {
      std::free(data);
      data = static_cast<float*>(std::aligned_alloc(64, ((count * sizeof(float) + 63) / 64) * 64));
      size = count;
    }
    return data;
  }
  ~AlignedBuffer() { std::free(data); }
};
thread_local AlignedBuffer packedA, packedB;

// A[i0 .. i0 + mc, p0 .. p0 + kc] as 6-row micro-panels, each stored p-major (6 values per p), zero-padded rows.
void packA(const MatrixView& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* out) {
  for (int64_t ir = 0; ir < mc; ir += MR, out += MR * kc) {
    const int64_t rows = std::min(MR, mc - ir);
    if (a.rowStride == 1) {  // a transposed operand: each p's 6 values are contiguous
      for (int64_t p = 0; p < kc; p++) {
        const float* src = a.data + (i0 + ir) + (p0 + p) * a.colStride;
        float* dst = out + p * MR;
        for (int64_t r = 0; r < rows; r++) dst[r] = src[r];
        for (int64_t r = rows; r < MR; r++) dst[r] = 0.0f;
      }
      continue;
    }
    for (int64_t r = 0; r < MR; r++) {
      float* dst = out + r;
      if (r >= rows) {
        for (int64_t p = 0; p < kc; p++) dst[p * MR] = 0.0f;
        continue;
      }
      const float* src = a.data + (i0 + ir + r) * a.rowStride + p0 * a.colStride;
      if (a.colStride == 1) {
        for (int64_t p = 0; p < kc; p++) dst[p * MR] = src[p];
      } else {
        for (int64_t p = 0; p < kc; p++) dst[p * MR] = src[p * a.colStride];
      }
    }
  }
}

// B[p0 .. p0 + kc, j0 .. j0 + nc] as 16-column micro-panels, each stored p-major (16 values per p), zero-padded.
void packB(const MatrixView& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  for (int64_t jr = 0; jr < nc; jr += NR, out += NR * kc) {
    const int64_t cols = std::min(NR, nc - jr);
    for (int64_t p = 0; p < kc; p++) {
      const float* src = b.data + (p0 + p) * b.rowStride + (j0 + jr) * b.colStride;
      float* dst = out + p * NR;
      if (b.colStride == 1) {
        std::memcpy(dst, src, cols * sizeof(float));
      } else {
        for (int64_t j = 0; j < cols; j++) dst[j] = src[j * b.colStride];
      }
      for (int64_t j = cols; j < NR; j++) dst[j] = 0.0f;
    }
  }
}

// The A operand of one micro-tile: 6 rows, row r's p-th value at data[r * rowStride + p * colStride]. A packed
// micro-panel is (1, 6); an unpacked row-major block is (lda, 1), a transposed one (1, lda).
struct PanelA {
  const float* data;
  int64_t rowStride, colStride;
};

// c[0..6, 0..16] (+)= A-panel · b-panel over kc, c with row stride ldc. Plain loops the compiler vectorizes for
// whatever the target has (SSE2, NEON); the fallback on CPUs without AVX2 + FMA.
void kernelPortable(int64_t kc, PanelA a, const float* b, float* c, int64_t ldc, bool accumulate) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; p++, b += NR) {
    for (int64_t r = 0; r < MR; r++) {
      const float ar = a.data[r * a.rowStride + p * a.colStride];
      for (int64_t j = 0; j < NR; j++) acc[r][j] += ar * b[j];
    }
  }
  for (int64_t r = 0; r < MR; r++) {
    float* row = c + r * ldc;
    for (int64_t j = 0; j < NR; j++) row[j] = accumulate ? row[j] + acc[r][j] : acc[r][j];
  }
}

#ifdef FLOW_X86
// The same with AVX2 + FMA: 12 accumulators (6 rows x two 8-wide halves), two B loads and six broadcasts per p.
__attribute__((target("avx2,fma"))) void kernelAvx2(int64_t kc, PanelA panel, const float* b, float* c, int64_t ldc, bool accumulate) {
  const float* a = panel.data;
  const int64_t r1 = panel.rowStride, r2 = 2 * r1, r3 = 3 * r1, r4 = 4 * r1, r5 = 5 * r1, step = panel.colStride;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; p++, a += step, b += NR) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ar = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(ar, b0, c00), c01 = _mm256_fmadd_ps(ar, b1, c01);
    ar = _mm256_broadcast_ss(a + r1);
    c10 = _mm256_fmadd_ps(ar, b0, c10), c11 = _mm256_fmadd_ps(ar, b1, c11);
    ar = _mm256_broadcast_ss(a + r2);
    c20 = _mm256_fmadd_ps(ar, b0, c20), c21 = _mm256_fmadd_ps(ar, b1, c21);
    ar = _mm256_broadcast_ss(a + r3);
    c30 = _mm256_fmadd_ps(ar, b0, c30), c31 = _mm256_fmadd_ps(ar, b1, c31);
    ar = _mm256_broadcast_ss(a + r4);
    c40 = _mm256_fmadd_ps(ar, b0, c40), c41 = _mm256_fmadd_ps(ar, b1, c41);
    ar = _mm256_broadcast_ss(a + r5);
    c50 = _mm256_fmadd_ps(ar, b0, c50), c51 = _mm256_fmadd_ps(ar, b1, c51);
  }
  const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t r = 0; r < MR; r++) {
    float* row = c + r * ldc;
    __m256 lo = rows[r][0], hi = rows[r][1];
    if (accumulate) lo = _mm256_add_ps(lo, _mm256_loadu_ps(row)), hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
    _mm256_storeu_ps(row, lo);
    _mm256_storeu_ps(row + 8, hi);
  }
}
#endif

using Kernel = void (*)(int64_t, PanelA, const float*, float*, int64_t, bool);

// One micro-tile of C: straight into C when it is a whole 6x16 tile, else through a scratch tile.
inline void microTile(Kernel kernel, int64_t kc, PanelA a, const float* b, float* c, int64_t ldc, int64_t rows, int64_t cols,
                      bool accumulate) {
  if (rows == MR && cols == NR) {
    kernel(kc, a, b, c, ldc, accumulate);
    return;
  }
  alignas(64) float tile[MR * NR];
  kernel(kc, a, b, tile, NR, false);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < cols; j++) c[r * ldc + j] = accumulate ? c[r * ldc + j] + tile[r * NR + j] : tile[r * NR + j];
}

}  // namespace

bool avx2Kernel() { return avx2; }
void useAvx2Kernel(bool on) {
#ifdef FLOW_X86
  avx2 = on;
#else
  (void)on;  // no AVX2 kernel is compiled off x86
#endif
}

void gemm(int64_t m, int64_t n, int64_t k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; i++) std::memset(c + i * ldc, 0, n * sizeof(float));
    return;
  }
#ifdef FLOW_X86
  const Kernel kernel = avx2 ? kernelAvx2 : kernelPortable;
#else
  const Kernel kernel = kernelPortable;
#endif
  const int64_t ncMax = std::min(NC, (n + NR - 1) / NR * NR);
  // A is packed only where its blocks are reused across many B micro-panels (n > 64). For the narrow n of most
  // convolutions (16-64 output channels) the micro-kernel reads A where it lies, in rows (or, transposed, in
  // columns): packing would copy all of A, usually an im2col matrix, for at most 4 passes over it. A block's
  // last, partial panel is always packed (zero rows), since reading past A's end is not allowed.
  const bool packWholeA = n > 64 || (a.colStride != 1 && a.rowStride != 1);
  float* bufA = packedA.reserve(MC * KC);
  float* bufB = packedB.reserve(KC * ncMax);
  const int64_t kBlocks = (k + KC - 1) / KC;
  const int64_t kcEven = (k + kBlocks - 1) / kBlocks;
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += kcEven) {
      const int64_t kc = std::min(kcEven, k - pc);
      const bool add = accumulate || pc > 0;
      packB(b, pc, kc, jc, nc, bufB);
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min(MC, m - ic);
        const int64_t whole = mc / MR * MR;  // rows in whole panels
        if (packWholeA) packA(a, ic, mc, pc, kc, bufA);
        else if (whole < mc) packA(a, ic + whole, mc - whole, pc, kc, bufA + whole * kc);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const float* panelB = bufB + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const PanelA panel = packWholeA || ir >= whole ? PanelA{bufA + ir * kc, 1, MR}
                                                           : PanelA{a.data + (ic + ir) * a.rowStride + pc * a.colStride, a.rowStride, a.colStride};
            microTile(kernel, kc, panel, panelB, c + (ic + ir) * ldc + jc + jr, ldc, std::min(MR, mc - ir), std::min(NR, nc - jr), add);
          }
        }
      }
    }
  }
}

}  // namespace flow
