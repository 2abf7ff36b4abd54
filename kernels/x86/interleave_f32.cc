// 3-channel plain -> channels-last interleave (contract in interleave_f32.h).
#include "kernels/x86/interleave_f32.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>

#include "kernels/sparse/dispatch.h"

namespace wbs::kernels::x86 {

namespace {

// 16 pixels: channel vectors a, b, c -> 48 interleaved floats in three
// vectors. First a and b are placed (lane i of output k takes a or b's
// pixel (16k + i) / 3 when (16k + i) % 3 is 0 or 1), then c fills the lanes
// with (16k + i) % 3 == 2.
__attribute__((target("avx512f"))) void InterleaveRange(const float* x0, const float* x1,
                                                        const float* x2, float* y, int64_t begin,
                                                        int64_t end) {
  alignas(64) static const int kAb[3][16] = {
      {0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5},
      {21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26},
      {0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0}};
  alignas(64) static const int kC[3][16] = {
      {0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15},
      {0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15},
      {26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31}};
  __m512i ab[3], cc[3];
  for (int k = 0; k < 3; ++k) {
    ab[k] = _mm512_load_si512(kAb[k]);
    cc[k] = _mm512_load_si512(kC[k]);
  }
  int64_t p = begin;
  for (; p + 16 <= end; p += 16) {
    const __m512 a = _mm512_loadu_ps(x0 + p), b = _mm512_loadu_ps(x1 + p),
                 c = _mm512_loadu_ps(x2 + p);
    for (int k = 0; k < 3; ++k)
      _mm512_storeu_ps(y + 3 * p + 16 * k,
                       _mm512_permutex2var_ps(_mm512_permutex2var_ps(a, ab[k], b), cc[k], c));
  }
  for (; p < end; ++p) {
    y[3 * p] = x0[p];
    y[3 * p + 1] = x1[p];
    y[3 * p + 2] = x2[p];
  }
}

}  // namespace

bool Interleave3Supported() {
  return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512;
}

void PlainToChannelsLast3(const float* x, float* y, int64_t images, int64_t plane, int threads) {
  const int nt =
      static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(plane / 16, 1)));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    // Whole 16-pixel groups per thread; the last one takes the tail.
    const int64_t groups = plane / 16;
    const int64_t begin = groups * t / n * 16;
    const int64_t end = t == n - 1 ? plane : groups * (t + 1) / n * 16;
    for (int64_t img = 0; img < images; ++img) {
      const float* xi = x + img * 3 * plane;
      InterleaveRange(xi, xi + plane, xi + 2 * plane, y + img * 3 * plane, begin, end);
    }
  }
}

}  // namespace wbs::kernels::x86
