// The plain-NCHW f32 max pool (contract and reasons in ops_pool_plain.h).
#include "runtime/ops_pool_plain.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/sparse/dispatch.h"

// GCC 12 flags _mm512_max_ps's internal _mm512_undefined_ps() pass-through
// operand as maybe-uninitialized (a known false positive: it is unused
// without a mask).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::runtime {

namespace {

namespace kref = kernels::ref;

// Floats of input columns left of column 0 in the row buffer, and the
// buffer's size: the pads the windows reach plus the slack the last
// vector's full loads read (up to 32 floats past the last output's window).
int64_t RowLeft(const kref::PoolParams& p) { return p.pad_begin[2]; }
int64_t RowFloats(const kref::PoolParams& p) {
  const int64_t used = std::max(RowLeft(p) + p.in[2], (p.out[2] - 1) * p.stride[2] + p.kernel[2]);
  return used + 3 * 16;
}

// True when an output range [0, out) over an input of `in` elements with
// this kernel, stride and leading pad has an in-range tap in every window
// (the windows move monotonically, so the first and the last decide).
bool EveryWindowReachesInput(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad) {
  return out >= 1 && kernel - 1 - pad >= 0 && (out - 1) * stride - pad <= in - 1;
}

// One plane. `rb`: RowFloats(p) floats whose pad columns hold -inf (only
// [RowLeft, RowLeft + IW) is written here).
__attribute__((target("avx512f"))) void MaxPoolPlaneAvx512(const kref::PoolParams& p,
                                                           const float* x, float* y, float* rb) {
  const int64_t IH = p.in[1], IW = p.in[2], OH = p.out[1], OW = p.out[2];
  const int64_t KH = p.kernel[1], KW = p.kernel[2], SH = p.stride[1], SW = p.stride[2];
  float* in = rb + RowLeft(p);  // input column 0
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t oh = 0; oh < OH; ++oh) {
    // Vertical: the max of the valid input rows into in[0, IW). Supports()
    // guarantees at least one.
    const int64_t ih0 = std::max<int64_t>(0, oh * SH - p.pad_begin[1]);
    const int64_t ih1 = std::min<int64_t>(IH, oh * SH - p.pad_begin[1] + KH);
    std::memcpy(in, x + ih0 * IW, static_cast<size_t>(IW) * sizeof(float));
    for (int64_t ih = ih0 + 1; ih < ih1; ++ih) {
      const float* xr = x + ih * IW;
      int64_t i = 0;
      for (; i + 16 <= IW; i += 16)
        _mm512_storeu_ps(in + i, _mm512_max_ps(_mm512_loadu_ps(in + i), _mm512_loadu_ps(xr + i)));
      if (i < IW) {
        const __mmask16 m = static_cast<__mmask16>((1u << (IW - i)) - 1);
        _mm512_mask_storeu_ps(
            in + i, m,
            _mm512_max_ps(_mm512_maskz_loadu_ps(m, in + i), _mm512_maskz_loadu_ps(m, xr + i)));
      }
    }
    // Horizontal: output ow takes the floats ow * SW + kw of rb.
    float* yr = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ow += 16) {
      __m512 acc = lowest;
      for (int64_t kw = 0; kw < KW; ++kw) {
        const float* src = rb + ow * SW + kw;
        const __m512 v =
            SW == 1 ? _mm512_loadu_ps(src)
                    : _mm512_permutex2var_ps(_mm512_loadu_ps(src), even, _mm512_loadu_ps(src + 16));
        acc = _mm512_max_ps(acc, v);
      }
      const int64_t n = std::min<int64_t>(16, OW - ow);
      const __mmask16 m = static_cast<__mmask16>(n == 16 ? 0xffffu : (1u << n) - 1);
      _mm512_mask_storeu_ps(yr + ow, m, acc);
    }
  }
}

}  // namespace

bool PlainMaxPoolSupports(const kref::PoolParams& p) {
  if (kernels::sparse::ActiveIsa() < kernels::sparse::Isa::kAvx512) return false;
  if (p.in[0] != 1 || p.out[0] != 1 || p.kernel[0] != 1 || p.pad_begin[0] != 0) return false;
  if (p.dilation[1] != 1 || p.dilation[2] != 1 || (p.stride[2] != 1 && p.stride[2] != 2) ||
      p.stride[1] < 1 || p.pad_begin[1] < 0 || p.pad_begin[2] < 0 || p.in[1] < 1 || p.in[2] < 1)
    return false;
  return EveryWindowReachesInput(p.in[1], p.out[1], p.kernel[1], p.stride[1], p.pad_begin[1]) &&
         EveryWindowReachesInput(p.in[2], p.out[2], p.kernel[2], p.stride[2], p.pad_begin[2]);
}

void PlainMaxPoolF32(const kref::PoolParams& p, const float* x, float* y, int threads) {
  const int64_t planes = p.batch * p.channels;
  const int64_t in_plane = p.in[1] * p.in[2], out_plane = p.out[1] * p.out[2];
  const int nt = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(planes, 1)));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t begin = planes * t / n, end = planes * (t + 1) / n;
    // The pad columns stay -inf for every plane: only the input columns
    // are rewritten per row.
    std::vector<float> rb(static_cast<size_t>(RowFloats(p)),
                          -std::numeric_limits<float>::infinity());
    for (int64_t pl = begin; pl < end; ++pl)
      MaxPoolPlaneAvx512(p, x + pl * in_plane, y + pl * out_plane, rb.data());
  }
}

}  // namespace wbs::runtime
