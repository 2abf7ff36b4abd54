// The machine's per-core peak for the two instructions our kernels live on:
// zmm `vfmadd231ps` (f32) and zmm `vpdpbusd` (int8 VNNI), each timed on 12
// independent accumulator chains (enough to cover latency x ports), median of
// 7 runs. The kernel benchmarks' ceilings (scripts/s8_ceiling.py) divide by it.
//
//   wbs_bench_peak            prints "fp32_gflops <x>" and "int8_gops <x>" (median and max)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace {

constexpr long kIters = 20000000;
constexpr int kChains = 12;

__attribute__((target("avx512f,avx512vnni"))) double Int8Gops() {
  __m512i a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm512_set1_epi32(i);
  __m512i x = _mm512_set1_epi32(0x01010101), w = _mm512_set1_epi32(0x02020202);
  const auto t0 = std::chrono::steady_clock::now();
  for (long n = 0; n < kIters; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_dpbusd_epi32(a[i], x, w);
    asm volatile("" : "+v"(x));  // keep the loop from being folded
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  alignas(64) int sink[16];
  for (int i = 1; i < kChains; ++i) a[0] = _mm512_add_epi32(a[0], a[i]);
  _mm512_store_si512(sink, a[0]);  // (GCC 12's _mm512_reduce_* trips -Wuninitialized)
  asm volatile("" : : "r"(sink[0]));
  return double(kIters) * kChains * 16 * 4 * 2 / s * 1e-9;  // 64 MACs = 128 ops each
}

__attribute__((target("avx512f,fma"))) double Fp32Gflops() {
  __m512 f[kChains];
  for (int i = 0; i < kChains; ++i) f[i] = _mm512_set1_ps(float(i));
  __m512 x = _mm512_set1_ps(1.0001f), w = _mm512_set1_ps(0.9999f);
  const auto t0 = std::chrono::steady_clock::now();
  for (long n = 0; n < kIters; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) f[i] = _mm512_fmadd_ps(f[i], x, w);
    asm volatile("" : "+v"(x));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  alignas(64) float sink[16];
  for (int i = 1; i < kChains; ++i) f[0] = _mm512_add_ps(f[0], f[i]);
  _mm512_store_ps(sink, f[0]);
  asm volatile("" : : "x"(sink[0]));
  return double(kIters) * kChains * 16 * 2 / s * 1e-9;
}

void Report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%s %.0f (median of %zu; max %.0f)\n", what, v[v.size() / 2], v.size(), v.back());
}

}  // namespace

int main() {
  if (!__builtin_cpu_supports("avx512f")) {
    std::fprintf(stderr, "wbs_bench_peak: this CPU has no AVX-512F\n");
    return 1;
  }
  const bool vnni = __builtin_cpu_supports("avx512vnni");
  std::vector<double> f32, i8;
  for (int r = 0; r < 7; ++r) {
    f32.push_back(Fp32Gflops());
    if (vnni) i8.push_back(Int8Gops());
  }
  Report("fp32_gflops", f32);
  if (vnni) Report("int8_gops", i8);
  return 0;
}
