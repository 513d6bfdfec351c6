// flow's own single-precision GEMM: C (+)= op(A) · op(B), row-major, no BLAS library needed. Packed in the
// BLIS style (blocks of A and B copied into micro-panels that stay in L2 / L1) around a 6x16 register-blocked
// micro-kernel: AVX2 + FMA where the CPU has them (chosen at load time), portable C++ everywhere else.
#pragma once
#include <cstdint>

namespace flow {

// A strided view of a row-major matrix: element (i, j) is data[i * rowStride + j * colStride]. A transposed
// operand is the same memory with the strides swapped, so the one packing routine covers every case.
struct MatrixView {
  const float* data;
  int64_t rowStride, colStride;
  float at(int64_t i, int64_t j) const { return data[i * rowStride + j * colStride]; }
};

// C[m, n] = A[m, k] · B[k, n] (accumulate = false) or C += A · B (accumulate = true); C row-major with row
// stride ldc. With k = 0, C is zeroed (or left as it is).
void gemm(int64_t m, int64_t n, int64_t k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate);

// Whether the AVX2 + FMA micro-kernel is in use (set once at load time by useAvx2Kernel).
bool avx2Kernel();
void useAvx2Kernel(bool on);

}  // namespace flow
