// The plain-NCHW f32 max pool (contract and reasons in plain_max_pool.h).
#include "kernels/x86/plain_max_pool.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/sparse/dispatch.h"

// GCC 12 flags _mm512_max_ps's internal _mm512_undefined_ps() pass-through
// operand as maybe-uninitialized (a known false positive: it is unused
// without a mask).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::kernels::x86 {

namespace {

namespace kref = ::wbs::kernels::ref;

// True when an output range [0, out) over an input of `in` elements with
// this kernel, stride and leading pad has an in-range tap in every window
// (the windows move monotonically, so the first and the last decide).
bool EveryWindowReachesInput(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad) {
  return out >= 1 && kernel - 1 - pad >= 0 && (out - 1) * stride - pad <= in - 1;
}

// The lanes of a 16-float load at input column `c` that lie in [0, w).
__attribute__((target("avx512f"), always_inline)) inline __mmask16 ColumnMask(int64_t c,
                                                                              int64_t w) {
  const int64_t lo = std::clamp<int64_t>(-c, 0, 16), hi = std::clamp<int64_t>(w - c, 0, 16);
  return hi <= lo ? 0 : static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// The max over input rows [ih0, ih1) of the 16 columns from `c` (columns
// outside the row read as -inf; masked lanes are not accessed).
__attribute__((target("avx512f"), always_inline)) inline __m512 ColumnMax(const float* x,
                                                                          int64_t iw, int64_t ih0,
                                                                          int64_t ih1, int64_t c,
                                                                          __m512 lowest) {
  const __mmask16 m = ColumnMask(c, iw);
  __m512 v = lowest;
  for (int64_t ih = ih0; ih < ih1; ++ih)
    v = _mm512_max_ps(v, _mm512_mask_loadu_ps(lowest, m, x + ih * iw + c));
  return v;
}

// One plane, 16 outputs of a row at a time, all in registers: the
// vertical max of the window's rows over the input columns the 16 outputs
// cover (2 vectors at stride 1, 3 at stride 2; the last one is the next
// block's first), then per kernel column kw the lanes kw + SW * j picked by
// vpermt2ps. An earlier version staged the vertical max in a row buffer
// and read it back at shifted offsets: those loads straddled stores still
// in the store buffer (a forwarding stall each) and on 35x35 planes ran at
// half oneDNN's speed; loading each tap's columns from x instead took 18
// loads per 16 outputs of a 3x3/2 window and was slower on large planes.
__attribute__((target("avx512f"))) void MaxPoolPlaneAvx512(const kref::PoolParams& p,
                                                           const float* x, float* y) {
  const int64_t IH = p.in[1], IW = p.in[2], OH = p.out[1], OW = p.out[2];
  const int64_t KH = p.kernel[1], KW = p.kernel[2], SH = p.stride[1], SW = p.stride[2];
  const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i even = _mm512_add_epi32(iota, iota);
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const int64_t step = 16 * SW;  // input columns per 16 outputs
  for (int64_t oh = 0; oh < OH; ++oh) {
    // PlainMaxPoolSupports() guarantees a valid row per window.
    const int64_t ih0 = std::max<int64_t>(0, oh * SH - p.pad_begin[1]);
    const int64_t ih1 = std::min<int64_t>(IH, oh * SH - p.pad_begin[1] + KH);
    float* yr = y + oh * OW;
    int64_t c0 = -p.pad_begin[2];  // first input column of output ow
    __m512 v0 = ColumnMax(x, IW, ih0, ih1, c0, lowest);
    for (int64_t ow = 0; ow < OW; ow += 16, c0 += step) {
      // v[k]: columns c0 + 16k .. c0 + 16k + 15; v[SW] is the next v0.
      __m512 v[3] = {v0, ColumnMax(x, IW, ih0, ih1, c0 + 16, lowest), lowest};
      if (SW == 2) v[2] = ColumnMax(x, IW, ih0, ih1, c0 + 32, lowest);
      __m512 acc = lowest;
      for (int64_t kw = 0; kw < KW; ++kw) {
        if (SW == 1) {
          // Lanes kw + j of (v0, v1); kw < 16 (a wider kernel is rejected).
          acc = _mm512_max_ps(
              acc,
              _mm512_permutex2var_ps(
                  v[0], _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(kw))), v[1]));
        } else {
          // Lanes kw + 2j of (v0, v1, v2): shift by 2q = kw & ~1 first.
          const int q2 = static_cast<int>(kw & ~int64_t{1});
          __m512 a = v[0], b = v[1];
          if (q2 > 0) {
            const __m512i shift = _mm512_add_epi32(iota, _mm512_set1_epi32(q2));
            a = _mm512_permutex2var_ps(v[0], shift, v[1]);
            b = _mm512_permutex2var_ps(v[1], shift, v[2]);
          }
          acc = _mm512_max_ps(
              acc, _mm512_permutex2var_ps(
                       a, _mm512_add_epi32(even, _mm512_set1_epi32(static_cast<int>(kw & 1))), b));
        }
      }
      v0 = v[SW];
      const int64_t n = std::min<int64_t>(16, OW - ow);
      const __mmask16 m = static_cast<__mmask16>(n == 16 ? 0xffffu : (1u << n) - 1);
      _mm512_mask_storeu_ps(yr + ow, m, acc);
    }
  }
}

// AVX2 (no vpermt2ps, no 16-lane masks): per output row, the vertical max
// of the window's rows over every input column the row's windows cover goes
// to a row buffer whose columns outside the input stay -inf, then per 8
// outputs and kernel column kw one load from the buffer (stride 1) or two
// and an even-lane extract (stride 2). The vertical max of row oh + 1 is
// written to the other of two buffers while row oh's outputs read theirs,
// so those loads do not straddle stores still in the store buffer (the
// stall that made the AVX-512 kernel keep everything in registers). Whole
// vectors use plain loads: with vmaskmovps for every load the 64 x 147^2
// 3x3/2 pool (5.5 MB, past this Zen 3 VM's cache) took 2.5-4.0 ms against
// 0.65-1.05 ms (isolated, medians of 50), apparently without the hardware
// prefetch; 64 x 112^2 (3.2 MB) 0.37-0.39 vs 0.31-0.32 ms.
// `bufs` holds 2 * BufferFloats(p) floats.
int64_t BufferFloats(const kref::PoolParams& p) {
  const int64_t ow8 = (p.out[2] + 7) / 8 * 8;
  return std::max((ow8 - 1) * p.stride[2] + p.kernel[2] + 16, p.in[2] + p.pad_begin[2] + 16);
}

// Row buffer `buf` column pl + c = the max over input rows [ih0, ih1) of
// column c, for c in [0, cols) (rounded up to 8 columns, the extra lanes -inf).
__attribute__((target("avx2"))) void VerticalMaxAvx2(const float* x, int64_t iw, int64_t ih0,
                                                     int64_t ih1, int64_t cols, float* buf) {
  const __m256 lowest = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256i iota = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    __m256 v = _mm256_loadu_ps(x + ih0 * iw + c);
    for (int64_t ih = ih0 + 1; ih < ih1; ++ih)
      v = _mm256_max_ps(v, _mm256_loadu_ps(x + ih * iw + c));
    _mm256_storeu_ps(buf + c, v);
  }
  if (c < cols) {
    // vmaskmovps for the row's last columns only (plain loads for the rest).
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols - c)), iota);
    __m256 v = lowest;
    for (int64_t ih = ih0; ih < ih1; ++ih)
      v = _mm256_max_ps(v, _mm256_blendv_ps(lowest, _mm256_maskload_ps(x + ih * iw + c, m),
                                            _mm256_castsi256_ps(m)));
    // Lanes past `cols` store -inf: the buffer's right padding stays so.
    _mm256_storeu_ps(buf + c, v);
  }
}

__attribute__((target("avx2"))) void MaxPoolPlaneAvx2(const kref::PoolParams& p, const float* x,
                                                      float* y, float* bufs) {
  const int64_t IH = p.in[1], IW = p.in[2], OH = p.out[1], OW = p.out[2];
  const int64_t KH = p.kernel[1], KW = p.kernel[2], SH = p.stride[1], SW = p.stride[2];
  const int64_t pl = p.pad_begin[2], nbuf = BufferFloats(p);
  const float lowest_f = -std::numeric_limits<float>::infinity();
  const __m256 lowest = _mm256_set1_ps(lowest_f);
  const __m256i iota = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  std::fill(bufs, bufs + 2 * nbuf, lowest_f);
  // Input columns [0, cols) are the ones some window reaches; buffer
  // column pl + c holds input column c.
  const int64_t cols = std::min(IW, (OW - 1) * SW + KW - pl);
  auto vertical = [&](int64_t oh, float* buf) {
    // PlainMaxPoolSupports() guarantees a valid row per window.
    const int64_t ih0 = std::max<int64_t>(0, oh * SH - p.pad_begin[1]);
    const int64_t ih1 = std::min<int64_t>(IH, oh * SH - p.pad_begin[1] + KH);
    VerticalMaxAvx2(x, IW, ih0, ih1, cols, buf + pl);
  };
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(OW % 8)), iota);
  vertical(0, bufs);
  for (int64_t oh = 0; oh < OH; ++oh) {
    const float* buf = bufs + (oh % 2) * nbuf;
    if (oh + 1 < OH) vertical(oh + 1, bufs + ((oh + 1) % 2) * nbuf);
    float* yr = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ow += 8) {
      __m256 acc = lowest;
      const float* b = buf + ow * SW;
      for (int64_t kw = 0; kw < KW; ++kw) {
        if (SW == 1) {
          acc = _mm256_max_ps(acc, _mm256_loadu_ps(b + kw));
        } else {
          // Even lanes of 16 columns from b + kw, in order.
          const __m256 e = _mm256_shuffle_ps(_mm256_loadu_ps(b + kw), _mm256_loadu_ps(b + kw + 8),
                                             _MM_SHUFFLE(2, 0, 2, 0));
          acc = _mm256_max_ps(acc, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                       _mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
        }
      }
      if (ow + 8 <= OW)
        _mm256_storeu_ps(yr + ow, acc);
      else
        _mm256_maskstore_ps(yr + ow, tail, acc);
    }
  }
}

// Channels-last in, plain out (NhwcToPlainMaxPoolF32). Per output row and
// 16 outputs of it, per 16 channels: each output's window max over its
// in-range taps, 16 channels in one zmm (one contiguous load per tap), then
// the 16 x 16 block (rows: outputs, columns: channels) transposed in
// registers so that each channel's 16 outputs leave in one store to its
// plane. Same maxima as the reference (the max does not depend on the
// order; no NaN inputs, see the header).
__attribute__((target("avx512f"), always_inline)) inline void Transpose16(__m512 (&r)[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // u[4i + j]: rows 4i..4i+3, column j of each 128-bit lane. Gather the
  // lanes: first rows 0-7 / 8-15 pairs of lanes, then the halves.
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
  }
}

__attribute__((target("avx512f"))) void MaxPoolNhwcRowAvx512(const kref::PoolParams& p,
                                                              const float* x, float* y,
                                                              int64_t oy) {
  const int64_t c_all = p.channels, ih = p.in[1], iw = p.in[2], oh = p.out[1], ow = p.out[2];
  const int64_t iy0 = oy * p.stride[1] - p.pad_begin[1];
  const int64_t ky0 = std::max<int64_t>(0, -iy0), ky1 = std::min(p.kernel[1], ih - iy0);
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t ox0 = 0; ox0 < ow; ox0 += 16) {
    const int64_t nq = std::min<int64_t>(16, ow - ox0);
    const __mmask16 store = static_cast<__mmask16>((1u << nq) - 1);
    for (int64_t cb = 0; cb < c_all; cb += 16) {
      __m512 r[16];
      for (int64_t q = 0; q < 16; ++q) {
        __m512 acc = lowest;
        if (q < nq) {
          const int64_t ix0 = (ox0 + q) * p.stride[2] - p.pad_begin[2];
          const int64_t kx0 = std::max<int64_t>(0, -ix0), kx1 = std::min(p.kernel[2], iw - ix0);
          for (int64_t ky = ky0; ky < ky1; ++ky) {
            const float* row = x + ((iy0 + ky) * iw + ix0) * c_all + cb;
            for (int64_t kx = kx0; kx < kx1; ++kx)
              acc = _mm512_max_ps(acc, _mm512_loadu_ps(row + kx * c_all));
          }
        }
        r[q] = acc;
      }
      Transpose16(r);
      float* yb = y + cb * oh * ow + oy * ow + ox0;
      for (int c = 0; c < 16; ++c) _mm512_mask_storeu_ps(yb + c * oh * ow, store, r[c]);
    }
  }
}

constexpr int64_t kMinOutWidth = 16;
constexpr int64_t kMaxInputFloats = int64_t{4} << 20;  // 16 MB

}  // namespace

bool PlainMaxPoolSupports(const kref::PoolParams& p) {
  if (kernels::sparse::ActiveIsa() < kernels::sparse::Isa::kAvx2) return false;
  const bool avx512 = kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512;
  if (p.in[0] != 1 || p.out[0] != 1 || p.kernel[0] != 1 || p.pad_begin[0] != 0) return false;
  // Column windows up to 16 wide: the kernel shifts within two vectors.
  // (The AVX2 kernel's row buffer takes any width.)
  if (avx512 && p.kernel[2] > 16) return false;
  // Where it beats oneDNN's plain pool (isolated, warm, medians of 200,
  // us at 1 / 2 threads, ours vs oneDNN): 64 x 112^2 3x3/2 pad 1 119-123 /
  // 69-107 vs 143-154 / 104; 64 x 147^2 3x3/2 210 / 104-110 vs 217 /
  // 123-143; 128 x 112^2 2x2/2 200 / 109 vs 267 / 164. Narrower output rows
  // pay the per-row work on one or two vectors and lose at 1 thread (288 x
  // 35^2 3x3/2: 82 vs 56; 768 x 17^2: 65 vs 34; 512 x 14^2 2x2/2: 30 vs 14),
  // and a 12.8 MB input (64 x 224^2 2x2/2) lost at 1 thread (2231 vs 1625).
  // On AVX2 (Zen 3, 1 thread, in-model per-node profile of the 50% block-
  // sparse models, 3 alternating runs, ms oneDNN's reorder + nChw8c pool +
  // reorder vs ours) every max pool of the zoo gains: ResNet-50 64 x 112^2
  // 3x3/2 1.11-1.27 vs 0.20-0.29; Inception-v3 64 x 147^2 3x3/2 2.15-2.88 vs
  // 0.46-1.76, 192 x 71^2 1.29-1.54 vs 0.27-0.46, 288 x 35^2 0.47-0.55 vs
  // 0.13-0.21, 768 x 17^2 0.20-0.24 vs 0.09-0.15; VGG-16 64 x 224^2 2x2/2
  // 5.41-6.99 vs 2.94-3.64, 128 x 112^2 2.17-3.56 vs 0.49-0.73, 256 x 56^2
  // 1.00-1.45 vs 0.21-0.35, 512 x 28^2 0.59-0.61 vs 0.23-0.26, 512 x 14^2
  // 0.13-0.15 vs 0.08-0.10.
  // The narrow-row losses above were an AMD Zen 4 VM's. On an Intel Xeon VM
  // (2026-11-29, Inception-v3 at 50% in the model, per-step minimums, us,
  // oneDNN's plain pool vs ours, 1 / 2 threads): 192 x 71^2 3x3/2 (35 wide)
  // 622-629 / 443 vs 287 / 154-235; 288 x 35^2 (17 wide) 238-245 / 197 vs
  // 137 / 101-131; 768 x 17^2 (8 wide) 84-86 / 110 vs 113 / 76-78. So rows
  // of at least 16 outputs now (it was 48). And VGG-16's 12.8 MB input (64 x
  // 224^2 2x2/2), where the Zen 4 VM lost at 1 thread: 1.73-1.92 vs 4.23-4.83
  // ms at 1 thread, 0.81-0.84 vs 2.00-2.07 ms at 2 (two alternating runs of
  // two binaries), so inputs up to 16 MB now (it was 8).
  if (avx512 &&
      (p.out[2] < kMinOutWidth || p.batch * p.channels * p.in[1] * p.in[2] > kMaxInputFloats))
    return false;
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
  const bool avx512 = kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t begin = planes * t / n, end = planes * (t + 1) / n;
    std::vector<float> bufs(avx512 ? 0 : 2 * BufferFloats(p));
    for (int64_t pl = begin; pl < end; ++pl) {
      if (avx512)
        MaxPoolPlaneAvx512(p, x + pl * in_plane, y + pl * out_plane);
      else
        MaxPoolPlaneAvx2(p, x + pl * in_plane, y + pl * out_plane, bufs.data());
    }
  }
}

bool NhwcToPlainMaxPoolSupports(const kref::PoolParams& p) {
  if (kernels::sparse::ActiveIsa() < kernels::sparse::Isa::kAvx512) return false;
  if (p.in[0] != 1 || p.out[0] != 1 || p.kernel[0] != 1 || p.pad_begin[0] != 0) return false;
  if (p.channels % 16 != 0 || p.dilation[1] != 1 || p.dilation[2] != 1 || p.stride[1] < 1 ||
      p.stride[2] < 1 || p.pad_begin[1] < 0 || p.pad_begin[2] < 0 || p.in[1] < 1 || p.in[2] < 1)
    return false;
  return EveryWindowReachesInput(p.in[1], p.out[1], p.kernel[1], p.stride[1], p.pad_begin[1]) &&
         EveryWindowReachesInput(p.in[2], p.out[2], p.kernel[2], p.stride[2], p.pad_begin[2]);
}

void NhwcToPlainMaxPoolF32(const kref::PoolParams& p, const float* x, float* y, int threads) {
  const int64_t rows = p.batch * p.out[1];
  const int64_t in_image = p.channels * p.in[1] * p.in[2];
  const int64_t out_image = p.channels * p.out[1] * p.out[2];
  const int nt = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(rows, 1)));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    for (int64_t r = rows * t / n; r < rows * (t + 1) / n; ++r) {
      const int64_t b = r / p.out[1];
      MaxPoolNhwcRowAvx512(p, x + b * in_image, y + b * out_image, r % p.out[1]);
    }
  }
}

const char* PlainMaxPoolName() {
  return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512 ? "wbs:maxpool_plain_avx512"
                                                                       : "wbs:maxpool_plain_avx2";
}

}  // namespace wbs::kernels::x86
