// The plain-NCHW f32 global average pool (contract and reasons in
// plain_global_pool.h).
#include "kernels/x86/plain_global_pool.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cassert>

#include "kernels/sparse/dispatch.h"

// GCC 12 flags an intrinsic's internal _mm512_undefined_ps() operand as
// maybe-uninitialized (a known false positive, as in plain_max_pool.cc).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::kernels::x86 {

namespace {

// Input floats per thread: below 2^20 (4 MB) one thread does it all. In
// ResNet-50 at 50%, 2 threads (layer4.2.conv3's 2048 x 7x7 output, written
// by both cores), the step took 37-38 us split over two threads against
// 10.7-11.3 us on one (in-model medians, paired processes).
constexpr int64_t kMinFloatsPerThread = int64_t{1} << 20;

// Planes [begin, end): per plane, full 16-float loads into two
// accumulators (two add chains), the rest masked, then a horizontal sum.
__attribute__((target("avx512f"))) void Planes(int64_t begin, int64_t end, int64_t plane_size,
                                               const float* x, float* y) {
  const int64_t full = plane_size / 16 * 16;
  const __mmask16 rest = static_cast<__mmask16>((1u << (plane_size - full)) - 1);
  for (int64_t i = begin; i < end; ++i) {
    const float* xp = x + i * plane_size;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= full; j += 32) {
      s0 = _mm512_add_ps(s0, _mm512_loadu_ps(xp + j));
      s1 = _mm512_add_ps(s1, _mm512_loadu_ps(xp + j + 16));
    }
    if (j < full) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(xp + j));
    if (rest) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(rest, xp + full));
    // Divided, not multiplied by 1/n, as the reference does.
    y[i] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / static_cast<float>(plane_size);
  }
}

// The same with 8-float AVX2 loads (the tail through vmaskmovps, which
// does not touch the masked lanes' memory).
__attribute__((target("avx2"))) void PlanesAvx2(int64_t begin, int64_t end, int64_t plane_size,
                                                const float* x, float* y) {
  const int64_t full = plane_size / 8 * 8;
  const int rest = static_cast<int>(plane_size - full);
  const __m256i tail =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t i = begin; i < end; ++i) {
    const float* xp = x + i * plane_size;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= full; j += 16) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xp + j));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(xp + j + 8));
    }
    if (j < full) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xp + j));
    if (rest) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(xp + full, tail));
    const __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    y[i] = _mm_cvtss_f32(h) / static_cast<float>(plane_size);
  }
}

void AnyPlanes(int64_t begin, int64_t end, int64_t plane_size, const float* x, float* y) {
  if (kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512)
    Planes(begin, end, plane_size, x, y);
  else
    PlanesAvx2(begin, end, plane_size, x, y);
}

}  // namespace

bool PlainGlobalAvgPoolSupported() {
  return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx2;
}

const char* PlainGlobalAvgPoolName() {
  return kernels::sparse::ActiveIsa() >= kernels::sparse::Isa::kAvx512 ? "wbs:gap_plain_avx512"
                                                                       : "wbs:gap_plain_avx2";
}

void PlainGlobalAvgPoolF32(int64_t planes, int64_t plane_size, const float* x, float* y,
                           int threads) {
  if (planes <= 0) return;
  assert(plane_size >= 1);
  const int64_t by_size = std::max<int64_t>(1, planes * plane_size / kMinFloatsPerThread);
  const int nt = static_cast<int>(std::clamp<int64_t>(threads, 1, std::min(by_size, planes)));
  if (nt <= 1) {
    AnyPlanes(0, planes, plane_size, x, y);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    AnyPlanes(planes * t / n, planes * (t + 1) / n, plane_size, x, y);
  }
}

}  // namespace wbs::kernels::x86
