// flow's native 2D and 3D convolutions for the TensorFlow.js wasm backend: im2col + flow's own packed GEMM
// (gemm.cc: no BLAS library, so `npm ci` builds it with nothing but a C++ compiler), channels last (NHWC /
// NDHWC), dilation 1.
// The JS side (lib/tf/native-conv.ts) passes Float32Array views straight onto the wasm heap, so nothing is
// copied in or out; the im2col scratch is native memory owned by the calling thread (each training worker
// thread has its own). The GEMM runs single-threaded: flow already uses one worker thread per core.
#include <node_api.h>
#include "gemm.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FLOW_X86 1
#endif
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

// One convolution's geometry (3D; a 2D convolution is the case d = kd = sd = 1, pd = 0), as flow's JS side
// computes it with tfjs's computeConv2DInfo / computeConv3DInfo. Layout NDHWC, filter [kd, kh, kw, ci, co].
struct Geometry {
  int64_t n, d, h, w, ci, kd, kh, kw, co, sd, sh, sw, pd, pt, pl, od, oh, ow;
  int64_t k() const { return kd * kh * kw * ci; }
  int64_t rows() const { return od * oh * ow; }  // output positions per image
  int64_t inputSize() const { return d * h * w * ci; }  // values per input image
  bool pointwise() const {
    return kd == 1 && kh == 1 && kw == 1 && sd == 1 && sh == 1 && sw == 1 && pd == 0 && pt == 0 && pl == 0 && od == d && oh == h && ow == w;
  }
};
constexpr size_t kGeometryValues = 18;

enum Activation { kLinear = 0, kRelu = 1, kSigmoid = 2 };

// ---- The addon's own timers (for bench/step-profile.ts): time per phase on the calling thread ----
enum Phase { kIm2col, kGemm, kCol2im, kPad, kDirect, kBiasActivation, kPhases };
const char* const kPhaseNames[kPhases] = {"im2col", "gemm", "col2im", "pad", "direct", "bias+activation"};
thread_local double phaseSeconds[kPhases] = {};

// Adds the time from its construction to its destruction to one phase.
class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase) : phase_(phase), start_(std::chrono::steady_clock::now()) {}
  ~PhaseTimer() { phaseSeconds[phase_] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  Phase phase_;
  std::chrono::steady_clock::time_point start_;
};

// Scratch for im2col / col2im, one per thread (worker threads each load this addon).
thread_local std::vector<float> scratch;

// Images per GEMM: all of them unless the column matrix would pass 32 MiB.
int64_t chunkImages(const Geometry& g) {
  const int64_t perImage = g.rows() * g.k() * (int64_t)sizeof(float);
  const int64_t budget = 32ll << 20;
  int64_t images = perImage > 0 ? budget / perImage : g.n;
  if (images < 1) images = 1;
  return images < g.n ? images : g.n;
}

// Calls visit(row, (kz, ky, kx) block, input offset or -1 when outside) for every output position of images
// n0 .. n0 + count and every kernel tap: the one walk that im2col and col2im share.
template <typename Visit>
void forEachTap(const Geometry& g, int64_t n0, int64_t count, Visit visit) {
  for (int64_t i = 0; i < count; i++) {
    const int64_t image = (n0 + i) * g.inputSize();
    for (int64_t oz = 0; oz < g.od; oz++) {
      for (int64_t oy = 0; oy < g.oh; oy++) {
        for (int64_t ox = 0; ox < g.ow; ox++) {
          const int64_t row = ((i * g.od + oz) * g.oh + oy) * g.ow + ox;
          int64_t tap = 0;
          for (int64_t kz = 0; kz < g.kd; kz++) {
            const int64_t iz = oz * g.sd + kz - g.pd;
            for (int64_t ky = 0; ky < g.kh; ky++) {
              const int64_t iy = oy * g.sh + ky - g.pt;
              for (int64_t kx = 0; kx < g.kw; kx++, tap++) {
                const int64_t ix = ox * g.sw + kx - g.pl;
                const bool inside = iz >= 0 && iz < g.d && iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
                visit(row, tap, inside ? image + ((iz * g.h + iy) * g.w + ix) * g.ci : -1);
              }
            }
          }
        }
      }
    }
  }
}

// col[(i, oz, oy, ox), (kz, ky, kx, ci)] = x[n0 + i, oz·sd + kz − pd, oy·sh + ky − pt, ox·sw + kx − pl, ci] (0 outside).
void im2col(const float* x, const Geometry& g, int64_t n0, int64_t count, float* col) {
  const int64_t k = g.k();
  forEachTap(g, n0, count, [&](int64_t row, int64_t tap, int64_t offset) {
    float* dst = col + row * k + tap * g.ci;
    if (offset < 0) std::memset(dst, 0, g.ci * sizeof(float));
    else std::memcpy(dst, x + offset, g.ci * sizeof(float));
  });
}

// The adjoint of im2col: dx[…] += col[…] (dx zeroed by the caller).
void col2im(const float* col, const Geometry& g, int64_t n0, int64_t count, float* dx) {
  const int64_t k = g.k();
  forEachTap(g, n0, count, [&](int64_t row, int64_t tap, int64_t offset) {
    if (offset < 0) return;
    const float* src = col + row * k + tap * g.ci;
    float* dst = dx + offset;
    for (int64_t c = 0; c < g.ci; c++) dst[c] += src[c];
  });
}

// The column matrix of images n0 .. n0 + count: the images themselves for a pointwise convolution, else im2col
// into this thread's scratch.
const float* columns(const float* x, const Geometry& g, int64_t n0, int64_t count) {
  if (g.pointwise()) return x + n0 * g.inputSize();
  PhaseTimer timer(kIm2col);
  scratch.resize(count * g.rows() * g.k());
  im2col(x, g, n0, count, scratch.data());
  return scratch.data();
}

// ---- Direct convolution for narrow channel counts (stride 1, AVX2 + FMA) ----
// With 8 or 16 output channels a GEMM over im2col columns is memory-bound: each 27·ci-wide column row is written
// and read once for only 8-16 multiply-adds per value. These kernels read a zero-padded copy of the input in
// place instead, keeping a block of outputs (or of filter-gradient taps) in registers.

// Set at load time: the CPU runs AVX2 and FMA (the direct kernels are compiled for them, nothing else is), and
// neither FLOW_NATIVE_DIRECT nor FLOW_NATIVE_PORTABLE turned them off.
bool directKernels = false;

thread_local std::vector<float> padded;

// A zero-padded copy of `count` images [d, h, w, c] as [count, d + front + back, h + top + bottom, w + left + right, c]
// in this thread's `padded` buffer (plus slack: the forward kernel reads whole blocks past a row's end).
const float* padImages(const float* src, int64_t count, int64_t d, int64_t h, int64_t w, int64_t c, int64_t front,
                       int64_t top, int64_t left, int64_t dp, int64_t hp, int64_t wp) {
  PhaseTimer timer(kPad);
  padded.assign(count * dp * hp * wp * c + 64 * c, 0.0f);
  for (int64_t i = 0; i < count; i++) {
    for (int64_t z = 0; z < d; z++) {
      for (int64_t y = 0; y < h; y++) {
        const float* from = src + ((i * d + z) * h + y) * w * c;
        float* to = padded.data() + (((i * dp + z + front) * hp + y + top) * wp + left) * c;
        std::memcpy(to, from, w * c * sizeof(float));
      }
    }
  }
  return padded.data();
}

#ifdef FLOW_X86
// y[i, z, y, x, 0..8·CB) = Σ_taps Σ_c xp[i, z + kz, y + ky, x + kx, c] · w[kz, ky, kx, c, ·] over a padded input.
template <int CB>
__attribute__((target("avx2,fma"))) void directForwardKernel(const float* xp, const float* w, float* y, int64_t n, int64_t od,
                                                              int64_t oh, int64_t ow, int64_t ci, int64_t kd, int64_t kh,
                                                              int64_t kw, int64_t dp, int64_t hp, int64_t wp) {
  constexpr int64_t kBlock = 8 / CB;  // output x positions per register block: 8 independent accumulators
  constexpr int64_t co = CB * 8;
  for (int64_t i = 0; i < n; i++) {
    for (int64_t oz = 0; oz < od; oz++) {
      for (int64_t oy = 0; oy < oh; oy++) {
        float* row = y + ((i * od + oz) * oh + oy) * ow * co;
        for (int64_t ox = 0; ox < ow; ox += kBlock) {
          __m256 acc[kBlock][CB];
          for (int64_t b = 0; b < kBlock; b++)
            for (int j = 0; j < CB; j++) acc[b][j] = _mm256_setzero_ps();
          for (int64_t kz = 0; kz < kd; kz++) {
            for (int64_t ky = 0; ky < kh; ky++) {
              const float* line = xp + (((i * dp + oz + kz) * hp + oy + ky) * wp + ox) * ci;
              const float* taps = w + (kz * kh + ky) * kw * ci * co;
              for (int64_t kx = 0; kx < kw; kx++) {
                const float* xs = line + kx * ci;
                const float* ws = taps + kx * ci * co;
                for (int64_t c = 0; c < ci; c++) {
                  __m256 wv[CB];
                  for (int j = 0; j < CB; j++) wv[j] = _mm256_loadu_ps(ws + c * co + 8 * j);
                  for (int64_t b = 0; b < kBlock; b++) {
                    const __m256 xv = _mm256_broadcast_ss(xs + b * ci + c);
                    for (int j = 0; j < CB; j++) acc[b][j] = _mm256_fmadd_ps(xv, wv[j], acc[b][j]);
                  }
                }
              }
            }
          }
          const int64_t valid = std::min(kBlock, ow - ox);
          for (int64_t b = 0; b < valid; b++)
            for (int j = 0; j < CB; j++) _mm256_storeu_ps(row + (ox + b) * co + 8 * j, acc[b][j]);
        }
      }
    }
  }
}

// dw[kz, ky, kx, c, 0..8·CB) = Σ_{i, z, y, x} xp[i, z + kz, y + ky, x + kx, c] · dy[i, z, y, x, ·] over a padded input.
// One output row at a time, every tap and channel block over it: the row of dy and the kernel's rows of the input
// stay in L1 while the small dw accumulates in memory (loaded into registers per row, block and tap).
template <int CB>
__attribute__((target("avx2,fma"))) void directFilterKernel(const float* xp, const float* dy, float* dw, int64_t n, int64_t od,
                                                             int64_t oh, int64_t ow, int64_t ci, int64_t kd, int64_t kh,
                                                             int64_t kw, int64_t dp, int64_t hp, int64_t wp) {
  constexpr int64_t kChannels = 8 / CB;  // input channels per register block: 8 independent accumulators
  constexpr int64_t co = CB * 8;
  std::memset(dw, 0, kd * kh * kw * ci * co * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    for (int64_t oz = 0; oz < od; oz++) {
      for (int64_t oy = 0; oy < oh; oy++) {
        const float* grads = dy + ((i * od + oz) * oh + oy) * ow * co;
        for (int64_t kz = 0; kz < kd; kz++) {
          for (int64_t ky = 0; ky < kh; ky++) {
            const float* line = xp + (((i * dp + oz + kz) * hp + oy + ky) * wp) * ci;
            for (int64_t kx = 0; kx < kw; kx++) {
              float* tap = dw + ((kz * kh + ky) * kw + kx) * ci * co;
              for (int64_t c0 = 0; c0 < ci; c0 += kChannels) {
                const int64_t channels = std::min(kChannels, ci - c0);
                __m256 acc[kChannels][CB];
                for (int64_t b = 0; b < channels; b++)
                  for (int j = 0; j < CB; j++) acc[b][j] = _mm256_loadu_ps(tap + (c0 + b) * co + 8 * j);
                const float* xs = line + kx * ci + c0;
                for (int64_t ox = 0; ox < ow; ox++) {
                  __m256 gv[CB];
                  for (int j = 0; j < CB; j++) gv[j] = _mm256_loadu_ps(grads + ox * co + 8 * j);
                  const float* xv = xs + ox * ci;
                  for (int64_t b = 0; b < channels; b++) {
                    const __m256 v = _mm256_broadcast_ss(xv + b);
                    for (int j = 0; j < CB; j++) acc[b][j] = _mm256_fmadd_ps(v, gv[j], acc[b][j]);
                  }
                }
                for (int64_t b = 0; b < channels; b++)
                  for (int j = 0; j < CB; j++) _mm256_storeu_ps(tap + (c0 + b) * co + 8 * j, acc[b][j]);
              }
            }
          }
        }
      }
    }
  }
}

bool stridesOne(const Geometry& g) { return g.sd == 1 && g.sh == 1 && g.sw == 1; }
bool narrow(int64_t channels) { return channels == 8 || channels == 16; }

// A zero-padded input and its padded depth, height and width.
struct PaddedInput {
  const float* data;
  int64_t dp, hp, wp;
};

// x padded for a direct forward or filter gradient (stride 1, 8 or 16 output channels), or data = nullptr
// where the direct kernels do not apply.
PaddedInput padForDirect(const float* x, const Geometry& g) {
  if (!directKernels || !stridesOne(g) || !narrow(g.co) || g.pointwise()) return {nullptr, 0, 0, 0};
  const int64_t dp = g.od + g.kd - 1, hp = g.oh + g.kh - 1, wp = g.ow + g.kw - 1;
  if (dp < g.d + g.pd || hp < g.h + g.pt || wp < g.w + g.pl) return {nullptr, 0, 0, 0};  // a negative trailing pad
  return {padImages(x, g.n, g.d, g.h, g.w, g.ci, g.pd, g.pt, g.pl, dp, hp, wp), dp, hp, wp};
}

// Direct forward when it applies: true if it ran.
bool directForward(const float* x, const float* w, float* y, const Geometry& g) {
  const PaddedInput p = padForDirect(x, g);
  if (p.data == nullptr) return false;
  PhaseTimer timer(kDirect);
  if (g.co == 8) directForwardKernel<1>(p.data, w, y, g.n, g.od, g.oh, g.ow, g.ci, g.kd, g.kh, g.kw, p.dp, p.hp, p.wp);
  else directForwardKernel<2>(p.data, w, y, g.n, g.od, g.oh, g.ow, g.ci, g.kd, g.kh, g.kw, p.dp, p.hp, p.wp);
  return true;
}

// Direct filter gradient when it applies: true if it ran.
bool directFilterGradient(const float* x, const float* dy, float* dw, const Geometry& g) {
  const PaddedInput p = padForDirect(x, g);
  if (p.data == nullptr) return false;
  PhaseTimer timer(kDirect);
  if (g.co == 8) directFilterKernel<1>(p.data, dy, dw, g.n, g.od, g.oh, g.ow, g.ci, g.kd, g.kh, g.kw, p.dp, p.hp, p.wp);
  else directFilterKernel<2>(p.data, dy, dw, g.n, g.od, g.oh, g.ow, g.ci, g.kd, g.kh, g.kw, p.dp, p.hp, p.wp);
  return true;
}

// Direct input gradient when it applies (stride 1, 8 or 16 input channels): the forward kernel over dy padded by
// k − 1 − pad in front, with the filter flipped in space and its channel axes swapped.
bool directInputGradient(const float* dy, const float* w, float* dx, const Geometry& g) {
  if (!directKernels || !stridesOne(g) || !narrow(g.ci) || g.pointwise()) return false;
  const int64_t front = g.kd - 1 - g.pd, top = g.kh - 1 - g.pt, left = g.kw - 1 - g.pl;
  const int64_t dp = g.d + g.kd - 1, hp = g.h + g.kh - 1, wp = g.w + g.kw - 1;
  if (front < 0 || top < 0 || left < 0 || dp < g.od + front || hp < g.oh + top || wp < g.ow + left) return false;
  thread_local std::vector<float> flipped;
  flipped.resize(g.kd * g.kh * g.kw * g.ci * g.co);
  for (int64_t kz = 0; kz < g.kd; kz++)
    for (int64_t ky = 0; ky < g.kh; ky++)
      for (int64_t kx = 0; kx < g.kw; kx++) {
        const float* from = w + ((kz * g.kh + ky) * g.kw + kx) * g.ci * g.co;
        float* to = flipped.data() + (((g.kd - 1 - kz) * g.kh + g.kh - 1 - ky) * g.kw + g.kw - 1 - kx) * g.co * g.ci;
        for (int64_t c = 0; c < g.ci; c++)
          for (int64_t o = 0; o < g.co; o++) to[o * g.ci + c] = from[c * g.co + o];
      }
  const float* dyp = padImages(dy, g.n, g.od, g.oh, g.ow, g.co, front, top, left, dp, hp, wp);
  PhaseTimer timer(kDirect);
  if (g.ci == 8) directForwardKernel<1>(dyp, flipped.data(), dx, g.n, g.d, g.h, g.w, g.co, g.kd, g.kh, g.kw, dp, hp, wp);
  else directForwardKernel<2>(dyp, flipped.data(), dx, g.n, g.d, g.h, g.w, g.co, g.kd, g.kh, g.kw, dp, hp, wp);
  return true;
}

#else
// Off x86 the direct kernels are not compiled (they are AVX2 code): every convolution takes the GEMM.
bool directForward(const float*, const float*, float*, const Geometry&) { return false; }
bool directFilterGradient(const float*, const float*, float*, const Geometry&) { return false; }
bool directInputGradient(const float*, const float*, float*, const Geometry&) { return false; }
#endif

void applyBiasAndActivation(float* out, int64_t m, const float* bias, int activation, const Geometry& g) {
  if (bias == nullptr && activation == kLinear) return;
  PhaseTimer timer(kBiasActivation);
  for (int64_t r = 0; r < m; r++) {
    float* v = out + r * g.co;
    if (bias != nullptr) for (int64_t c = 0; c < g.co; c++) v[c] += bias[c];
    if (activation == kRelu) {
      for (int64_t c = 0; c < g.co; c++) v[c] = v[c] > 0.0f ? v[c] : 0.0f;
    } else if (activation == kSigmoid) {
      for (int64_t c = 0; c < g.co; c++) v[c] = 1.0f / (1.0f + std::exp(-v[c]));
    }
  }
}

void forward(const float* x, const float* w, const float* bias, int activation, float* y, const Geometry& g) {
  if (directForward(x, w, y, g)) {
    applyBiasAndActivation(y, g.n * g.rows(), bias, activation, g);
    return;
  }
  const int64_t k = g.k();
  const int64_t chunk = chunkImages(g);
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t count = chunk < g.n - n0 ? chunk : g.n - n0;
    const int64_t m = count * g.rows();
    const float* col = columns(x, g, n0, count);
    float* out = y + n0 * g.rows() * g.co;
    {
      PhaseTimer timer(kGemm);
      flow::gemm(m, g.co, k, {col, k, 1}, {w, g.co, 1}, out, g.co, false);
    }
    applyBiasAndActivation(out, m, bias, activation, g);
  }
}

void backpropInput(const float* dy, const float* w, float* dx, const Geometry& g) {
  if (directInputGradient(dy, w, dx, g)) return;
  const int64_t k = g.k();
  const int64_t chunk = chunkImages(g);
  if (!g.pointwise()) std::memset(dx, 0, g.n * g.inputSize() * sizeof(float));
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t count = chunk < g.n - n0 ? chunk : g.n - n0;
    const int64_t m = count * g.rows();
    const float* grad = dy + n0 * g.rows() * g.co;
    // dy · wᵀ, wᵀ being w [k, co] read with its strides swapped.
    const flow::MatrixView wT{w, 1, g.co};
    if (g.pointwise()) {
      // dx = dy · wᵀ directly: the column matrix is the image itself.
      PhaseTimer timer(kGemm);
      flow::gemm(m, k, g.co, {grad, g.co, 1}, wT, dx + n0 * g.inputSize(), k, false);
      continue;
    }
    scratch.resize(m * k);
    {
      PhaseTimer timer(kGemm);
      flow::gemm(m, k, g.co, {grad, g.co, 1}, wT, scratch.data(), k, false);
    }
    PhaseTimer timer(kCol2im);
    col2im(scratch.data(), g, n0, count, dx);
  }
}

void backpropFilter(const float* x, const float* dy, float* dw, const Geometry& g) {
  if (directFilterGradient(x, dy, dw, g)) return;
  const int64_t k = g.k();
  const int64_t chunk = chunkImages(g);
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t count = chunk < g.n - n0 ? chunk : g.n - n0;
    const int64_t m = count * g.rows();
    const float* col = columns(x, g, n0, count);
    // dw[k, co] (+)= colᵀ · dy over this chunk's rows (colᵀ: col [m, k] with its strides swapped).
    PhaseTimer timer(kGemm);
    flow::gemm(k, g.co, m, {col, 1, k}, {dy + n0 * g.rows() * g.co, g.co, 1}, dw, g.co, n0 > 0);
  }
}

// ---- N-API glue ----

napi_value fail(napi_env env, const char* message) {
  napi_throw_error(env, "FLOW_NATIVE_CONV", message);
  return nullptr;
}

bool floatArray(napi_env env, napi_value value, float** data, size_t* length) {
  bool isTyped = false;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped) return false;
  napi_typedarray_type type;
  void* raw = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_float32_array) return false;
  *data = static_cast<float*>(raw);
  return true;
}

bool readGeometry(napi_env env, napi_value value, Geometry* g, int64_t* extra) {
  bool isTyped = false;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped) return false;
  napi_typedarray_type type;
  size_t length = 0;
  void* raw = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &raw, nullptr, nullptr) != napi_ok) return false;
  if (type != napi_int32_array || length < kGeometryValues) return false;
  const int32_t* v = static_cast<const int32_t*>(raw);
  for (size_t i = 0; i < kGeometryValues; i++) if (v[i] < 0) return false;
  *g = Geometry{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16], v[17]};
  if (extra != nullptr) *extra = length > kGeometryValues ? v[kGeometryValues] : 0;
  return g->sd > 0 && g->sh > 0 && g->sw > 0;
}

size_t xCount(const Geometry& g) { return g.n * g.inputSize(); }
size_t yCount(const Geometry& g) { return g.n * g.rows() * g.co; }
size_t wCount(const Geometry& g) { return g.kd * g.kh * g.kw * g.ci * g.co; }

// forward(x, w, bias | null, y, geometry[18 + activation])
napi_value Forward(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  if (argc != 5) return fail(env, "forward(x, w, bias, y, geometry) takes 5 arguments");
  Geometry g;
  int64_t activation = 0;
  if (!readGeometry(env, args[4], &g, &activation)) return fail(env, "forward: geometry must be an Int32Array of 19 non-negative values");
  float *x, *w, *y, *bias = nullptr;
  size_t nx, nw, ny, nb = 0;
  napi_valuetype biasType;
  napi_typeof(env, args[2], &biasType);
  if (!floatArray(env, args[0], &x, &nx) || !floatArray(env, args[1], &w, &nw) || !floatArray(env, args[3], &y, &ny)) {
    return fail(env, "forward: x, w and y must be Float32Arrays");
  }
  if (biasType != napi_null && (!floatArray(env, args[2], &bias, &nb) || nb != (size_t)g.co)) return fail(env, "forward: bias must be null or a Float32Array of co values");
  if (nx != xCount(g) || nw != wCount(g) || ny != yCount(g)) return fail(env, "forward: array lengths do not match the geometry");
  if (activation < 0 || activation > 2) return fail(env, "forward: unknown activation");
  forward(x, w, bias, (int)activation, y, g);
  return nullptr;
}

// The two gradients share a signature: (a, b, out, geometry) with a/b/out lengths given by the geometry.
using Counter = size_t (*)(const Geometry&);
using Gradient = void (*)(const float*, const float*, float*, const Geometry&);

napi_value RunGradient(napi_env env, napi_callback_info info, const char* name, Counter counts[3], Gradient gradient) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  const std::string what(name);
  if (argc != 4) return fail(env, (what + " takes 4 arguments: two inputs, the output and the geometry").c_str());
  Geometry g;
  if (!readGeometry(env, args[3], &g, nullptr)) return fail(env, (what + ": geometry must be an Int32Array of 18 non-negative values").c_str());
  float* arrays[3];
  for (int i = 0; i < 3; i++) {
    size_t length = 0;
    if (!floatArray(env, args[i], &arrays[i], &length)) return fail(env, (what + ": the first three arguments must be Float32Arrays").c_str());
    if (length != counts[i](g)) return fail(env, (what + ": array lengths do not match the geometry").c_str());
  }
  gradient(arrays[0], arrays[1], arrays[2], g);
  return nullptr;
}

// backpropInput(dy, w, dx, geometry)
napi_value BackpropInput(napi_env env, napi_callback_info info) {
  Counter counts[3] = {yCount, wCount, xCount};
  return RunGradient(env, info, "backpropInput", counts, backpropInput);
}

// backpropFilter(x, dy, dw, geometry); an empty batch gives a zero gradient.
napi_value BackpropFilter(napi_env env, napi_callback_info info) {
  Counter counts[3] = {xCount, yCount, wCount};
  return RunGradient(env, info, "backpropFilter", counts, [](const float* x, const float* dy, float* dw, const Geometry& g) {
    if (g.n == 0) std::memset(dw, 0, wCount(g) * sizeof(float));
    else backpropFilter(x, dy, dw, g);
  });
}

// copyBlocks(source, sourceOffset, sourceStride, target, targetOffset, targetStride, run, rows): for each of
// `rows` rows r, `run` elements from source[sourceOffset + r·sourceStride] to target[targetOffset + r·targetStride]
// (offsets, strides and run in elements of the arrays' common element size). The strided copy that Concat and
// SplitV of channels-last feature maps are made of, as memcpy instead of a JS loop per element or per run.
napi_value CopyBlocks(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value args[8];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  if (argc != 8) return fail(env, "copyBlocks takes 8 arguments");
  void* data[2] = {nullptr, nullptr};
  size_t lengths[2] = {0, 0};
  size_t elementSizes[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    bool isTyped = false;
    napi_typedarray_type type;
    if (napi_is_typedarray(env, args[i * 3], &isTyped) != napi_ok || !isTyped ||
        napi_get_typedarray_info(env, args[i * 3], &type, &lengths[i], &data[i], nullptr, nullptr) != napi_ok) {
      return fail(env, "copyBlocks: source and target must be typed arrays");
    }
    elementSizes[i] = type == napi_float32_array || type == napi_int32_array || type == napi_uint32_array ? 4 : type == napi_uint8_array || type == napi_int8_array ? 1 : 0;
  }
  if (elementSizes[0] == 0 || elementSizes[0] != elementSizes[1]) return fail(env, "copyBlocks: source and target must both be 4-byte or both 1-byte typed arrays");
  int64_t v[6];
  const int positions[6] = {1, 2, 4, 5, 6, 7};
  for (int i = 0; i < 6; i++) {
    if (napi_get_value_int64(env, args[positions[i]], &v[i]) != napi_ok || v[i] < 0) return fail(env, "copyBlocks: offsets, strides, run and rows must be non-negative integers");
  }
  const int64_t sourceOffset = v[0], sourceStride = v[1], targetOffset = v[2], targetStride = v[3], run = v[4], rows = v[5];
  if (rows == 0 || run == 0) return nullptr;
  const int64_t sourceEnd = sourceOffset + (rows - 1) * sourceStride + run, targetEnd = targetOffset + (rows - 1) * targetStride + run;
  if (sourceEnd > (int64_t)lengths[0] || targetEnd > (int64_t)lengths[1]) return fail(env, "copyBlocks: the blocks reach past the end of an array");
  const size_t bytes = elementSizes[0];
  const char* from = static_cast<const char*>(data[0]) + sourceOffset * bytes;
  char* to = static_cast<char*>(data[1]) + targetOffset * bytes;
  for (int64_t r = 0; r < rows; r++) std::memcpy(to + r * targetStride * bytes, from + r * sourceStride * bytes, run * bytes);
  return nullptr;
}

// maxPoolGrad(x, dy, dx, [n, h, w, c, kh, kw, sh, sw, padTop, padLeft, oh, ow]): 2D max pooling's gradient,
// NHWC, dilation 1. Each window's dy goes to its maximum, the first one in row-major window order on ties (the
// cpu backend's rule: a strict >); windows clipped to the input. wasm's own kernel took 6-8% of a U-Net step.
napi_value MaxPoolGrad(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  float *x, *dy, *dx;
  size_t nx, ndy, ndx;
  bool isTyped = false;
  napi_typedarray_type type;
  size_t count = 0;
  void* raw = nullptr;
  if (argc != 4 || !floatArray(env, args[0], &x, &nx) || !floatArray(env, args[1], &dy, &ndy) || !floatArray(env, args[2], &dx, &ndx) ||
      napi_is_typedarray(env, args[3], &isTyped) != napi_ok || !isTyped ||
      napi_get_typedarray_info(env, args[3], &type, &count, &raw, nullptr, nullptr) != napi_ok || type != napi_int32_array || count != 12) {
    return fail(env, "maxPoolGrad(x, dy, dx, geometry) takes three Float32Arrays and an Int32Array of 12 values");
  }
  const int32_t* v = static_cast<const int32_t*>(raw);
  const int64_t n = v[0], h = v[1], w = v[2], c = v[3], kh = v[4], kw = v[5], sh = v[6], sw = v[7], pt = v[8], pl = v[9], oh = v[10], ow = v[11];
  if (n < 0 || h < 0 || w < 0 || c < 0 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || oh < 0 || ow < 0) return fail(env, "maxPoolGrad: bad geometry");
  if (nx != (size_t)(n * h * w * c) || ndx != nx || ndy != (size_t)(n * oh * ow * c)) return fail(env, "maxPoolGrad: array lengths do not match the geometry");
  std::memset(dx, 0, ndx * sizeof(float));
  thread_local std::vector<float> best;
  thread_local std::vector<int64_t> where;
  best.resize(c);
  where.resize(c);
  for (int64_t b = 0; b < n; b++) {
    for (int64_t oy = 0; oy < oh; oy++) {
      const int64_t y0 = std::max<int64_t>(0, oy * sh - pt), y1 = std::min<int64_t>(h, oy * sh - pt + kh);
      for (int64_t ox = 0; ox < ow; ox++) {
        const int64_t x0 = std::max<int64_t>(0, ox * sw - pl), x1 = std::min<int64_t>(w, ox * sw - pl + kw);
        std::fill(best.begin(), best.end(), -INFINITY);
        std::fill(where.begin(), where.end(), -1);
        for (int64_t iy = y0; iy < y1; iy++) {
          for (int64_t ix = x0; ix < x1; ix++) {
            const int64_t base = ((b * h + iy) * w + ix) * c;
            for (int64_t ch = 0; ch < c; ch++) {
              if (x[base + ch] > best[ch]) best[ch] = x[base + ch], where[ch] = base + ch;
            }
          }
        }
        const float* grad = dy + ((b * oh + oy) * ow + ox) * c;
        for (int64_t ch = 0; ch < c; ch++) if (where[ch] >= 0) dx[where[ch]] += grad[ch];
      }
    }
  }
  return nullptr;
}

// columnSums(x, inner, out): out[i] = Σ_o x[o·inner + i], accumulated in double in row order (the order and
// precision of the JS fallback, so both give the same bits): a bias gradient, Sum over a feature map's leading axes.
napi_value ColumnSums(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  float *x, *out;
  size_t nx, nout;
  int64_t inner = 0;
  if (argc != 3 || !floatArray(env, args[0], &x, &nx) || !floatArray(env, args[2], &out, &nout) ||
      napi_get_value_int64(env, args[1], &inner) != napi_ok) {
    return fail(env, "columnSums(x, inner, out) takes a Float32Array, an integer and a Float32Array");
  }
  if (inner <= 0 || (size_t)inner != nout || nx % (size_t)inner != 0) return fail(env, "columnSums: out must hold `inner` values and x whole rows of them");
  std::vector<double> totals(inner, 0.0);
  const int64_t rows = (int64_t)nx / inner;
  for (int64_t r = 0; r < rows; r++) {
    const float* row = x + r * inner;
    for (int64_t i = 0; i < inner; i++) totals[i] += row[i];
  }
  for (int64_t i = 0; i < inner; i++) out[i] = (float)totals[i];
  return nullptr;
}

// timers() → {phase: seconds} on the calling thread since the last call (which resets them).
napi_value Timers(napi_env env, napi_callback_info) {
  napi_value result;
  napi_create_object(env, &result);
  for (int phase = 0; phase < kPhases; phase++) {
    napi_value seconds;
    napi_create_double(env, phaseSeconds[phase], &seconds);
    napi_set_named_property(env, result, kPhaseNames[phase], seconds);
    phaseSeconds[phase] = 0;
  }
  return result;
}

// kernels() → which GEMM micro-kernel and direct kernels this CPU runs, for env.json.
napi_value Kernels(napi_env env, napi_callback_info) {
  std::string text = flow::avx2Kernel() ? "flow GEMM, AVX2+FMA 6x16 micro-kernel" : "flow GEMM, portable C++ micro-kernel";
  if (!flow::avx2Kernel()) text += std::getenv("FLOW_NATIVE_PORTABLE") != nullptr ? " (FLOW_NATIVE_PORTABLE set)" : " (this CPU has no AVX2+FMA)";
  text += directKernels ? "; direct AVX2 kernels for 8/16 channels" : "; no direct kernels";
  napi_value result;
  napi_create_string_utf8(env, text.c_str(), text.size(), &result);
  return result;
}

}  // namespace

NAPI_MODULE_INIT() {
#ifdef FLOW_X86
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && std::getenv("FLOW_NATIVE_PORTABLE") == nullptr;
#else
  const bool avx2 = false;
#endif
  flow::useAvx2Kernel(avx2);
  directKernels = avx2 && std::getenv("FLOW_NATIVE_DIRECT") == nullptr;
  napi_property_descriptor properties[] = {
      {"forward", nullptr, Forward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"backpropInput", nullptr, BackpropInput, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"backpropFilter", nullptr, BackpropFilter, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copyBlocks", nullptr, CopyBlocks, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolGrad", nullptr, MaxPoolGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"columnSums", nullptr, ColumnSums, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"timers", nullptr, Timers, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"kernels", nullptr, Kernels, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}
