// The plain-NCHW f32 average pool (contract and reasons in plain_avg_pool.h).
#include "kernels/x86/plain_avg_pool.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/ref/window.h"
#include "kernels/sparse/dispatch.h"

namespace wbs::kernels::x86 {

namespace {

namespace kref = ::wbs::kernels::ref;

// Window taps of output o along axis d that count, as the reference counts
// them (stride 1): inside the padded extent (count_include_pad) or inside
// the input.
int64_t CountAt(const kref::PoolParams& p, int d, int64_t o) {
  const kref::Range r =
      p.count_include_pad
          ? kref::ValidRange(p.kernel[d], 1, o, p.in[d] + p.pad_begin[d] + p.pad_end[d])
          : kref::ValidRange(p.kernel[d], 1, o - p.pad_begin[d], p.in[d]);
  return r.end - r.begin;
}

// Kernel columns the masks are precomputed for (PlainAvgPoolSupports).
constexpr int64_t kMaxKernelCols = 16;
// Output rows computed together: independent sums hide the add latency (one
// output vector's taps are a chain of dependent adds).
constexpr int64_t kRowsPerStep = 4;
// At 1 thread narrower rows stay on oneDNN (plain_avg_pool.h).
constexpr int64_t kMinOutWidthOneThread = 24;

__attribute__((target("avx512f"))) void AvgPoolPlaneAvx512(const kref::PoolParams& p,
                                                           const float* x, float* y,
                                                           const float* col_count) {
  const int64_t ih = p.in[1], iw = p.in[2], oh = p.out[1], ow = p.out[2];
  const int64_t kh = p.kernel[1], kw = p.kernel[2], ph = p.pad_begin[1], pw = p.pad_begin[2];
  for (int64_t ox0 = 0; ox0 < ow; ox0 += 16) {
    const int64_t nq = std::min<int64_t>(16, ow - ox0);
    const __mmask16 out_mask = static_cast<__mmask16>((1u << nq) - 1);
    // Per kernel column, the lanes whose input column lies in [0, iw).
    __mmask16 cm[kMaxKernelCols];
    for (int64_t kx = 0; kx < kw; ++kx) {
      const int64_t c = ox0 - pw + kx;
      const int64_t lo = std::clamp<int64_t>(-c, 0, nq), hi = std::clamp<int64_t>(iw - c, 0, nq);
      cm[kx] = hi <= lo ? 0 : static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
    }
    const __m512 cols = _mm512_maskz_loadu_ps(out_mask, col_count + ox0);
    const float* xc = x + ox0 - pw;
    for (int64_t oy0 = 0; oy0 < oh; oy0 += kRowsPerStep) {
      const int64_t rows = std::min(kRowsPerStep, oh - oy0);
      // Named sums, not an array: GCC 12 keeps an array of __m512 in memory.
      __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      // Each sum adds its taps in the reference's order: rows, then columns.
      for (int64_t ky = 0; ky < kh; ++ky) {
        const int64_t iy = oy0 - ph + ky;
        const float* row = xc + iy * iw;
        const bool v0 = iy >= 0 && iy<ih, v1 = rows> 1 && iy + 1 >= 0 && iy + 1 < ih;
        const bool v2 = rows > 2 && iy + 2 >= 0 && iy + 2 < ih;
        const bool v3 = rows > 3 && iy + 3 >= 0 && iy + 3 < ih;
        for (int64_t kx = 0; kx < kw; ++kx) {
          const __mmask16 m = cm[kx];
          if (v0) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(m, row + kx));
          if (v1) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(m, row + iw + kx));
          if (v2) s2 = _mm512_add_ps(s2, _mm512_maskz_loadu_ps(m, row + 2 * iw + kx));
          if (v3) s3 = _mm512_add_ps(s3, _mm512_maskz_loadu_ps(m, row + 3 * iw + kx));
        }
      }
      const __m512 sums[kRowsPerStep] = {s0, s1, s2, s3};
      for (int64_t r = 0; r < rows; ++r) {
        // count = rows x columns (an integer in float: exact).
        const __m512 count =
            _mm512_mul_ps(_mm512_set1_ps(static_cast<float>(CountAt(p, 1, oy0 + r))), cols);
        _mm512_mask_storeu_ps(y + (oy0 + r) * ow + ox0, out_mask,
                              _mm512_maskz_div_ps(out_mask, sums[r], count));
      }
    }
  }
}

// The first and the last window along axis d (stride 1) reach the input,
// hence every window between them does.
bool EveryWindowReachesInput(const kref::PoolParams& p, int d) {
  const auto reaches = [&](int64_t o) {
    const kref::Range r = kref::ValidRange(p.kernel[d], 1, o - p.pad_begin[d], p.in[d]);
    return r.end > r.begin;
  };
  return p.out[d] >= 1 && reaches(0) && reaches(p.out[d] - 1);
}

}  // namespace

bool PlainAvgPoolSupports(const kref::PoolParams& p, int threads) {
  if (kernels::sparse::ActiveIsa() < kernels::sparse::Isa::kAvx512) return false;
  if (threads <= 1 && p.out[2] < kMinOutWidthOneThread) return false;
  if (p.in[0] != 1 || p.out[0] != 1 || p.kernel[0] != 1 || p.pad_begin[0] != 0) return false;
  if (p.kernel[2] > kMaxKernelCols) return false;
  if (p.stride[1] != 1 || p.stride[2] != 1 || p.dilation[1] != 1 || p.dilation[2] != 1 ||
      p.pad_begin[1] < 0 || p.pad_begin[2] < 0 || p.pad_end[1] < 0 || p.pad_end[2] < 0 ||
      p.in[1] < 1 || p.in[2] < 1)
    return false;
  return EveryWindowReachesInput(p, 1) && EveryWindowReachesInput(p, 2);
}

void PlainAvgPoolF32(const kref::PoolParams& p, const float* x, float* y, int threads) {
  const int64_t planes = p.batch * p.channels;
  const int64_t in_plane = p.in[1] * p.in[2], out_plane = p.out[1] * p.out[2];
  // Per output column, the window's column count (16 floats of slack: the
  // kernel loads whole vectors masked to the row).
  std::vector<float> col_count(static_cast<size_t>(p.out[2] + 16), 1.0f);
  for (int64_t ox = 0; ox < p.out[2]; ++ox)
    col_count[static_cast<size_t>(ox)] = static_cast<float>(CountAt(p, 2, ox));
  const int nt = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(planes, 1)));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    for (int64_t pl = planes * t / n; pl < planes * (t + 1) / n; ++pl)
      AvgPoolPlaneAvx512(p, x + pl * in_plane, y + pl * out_plane, col_count.data());
  }
}

const char* PlainAvgPoolName() { return "wbs:avgpool_plain_avx512"; }

}  // namespace wbs::kernels::x86
