// Does a non-temporal hint on part of a model's weights keep the rest in L3?
//
// ResNet-50 at 50% block sparsity keeps ~51 MB of fp32 weights; the L3 is
// 32 MB (a victim cache of the per-core L2s on Zen). Every inference cycles
// through all of it, so (the hypothesis tested here) each weight may be
// evicted before its next use. This benchmark models two inferences' worth of weight traffic with
// two buffers read in turn, pass after pass: a "keep" set read with plain loads and a "stream" set
// read with plain loads (mode "normal") or with a hint that it will not be reused (modes "nta",
// "ntload", "flush"; see Mode). If the hint keeps the stream set out of L3, the keep set should
// stay there and its read get faster. The modes alternate in rounds in one process (paired A/B),
// and each round's first pass is not timed (it carries the other mode's state).
//
//   wbs_bench_l3_residency [--keep_mb=20] [--stream_mb=32] [--rounds=40]
//                          [--passes=4] [--distance=16]
//
// Prints, per mode, the keep set's and the stream set's read time per pass
// (median and minimum over rounds x passes, microseconds) and GB/s.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kLine = 64;
constexpr size_t kAlign = 2 << 20;  // 2 MiB: page-aligned either way

struct Options {
  double keep_mb = 20;
  double stream_mb = 32;
  int rounds = 40;
  int passes = 4;
  int distance = 16;  // lines ahead of the loads for PREFETCHNTA
};

// How the stream set is read. kNormal: plain loads. kNta: PREFETCHNTA
// `distance` lines ahead of the loads (the hint must reach every line before
// its load does, or the load fills it normally). kNtLoad: MOVNTDQA loads
// (on write-back memory the hint may be ignored). kFlush: plain loads, then
// CLFLUSHOPT of each line `distance` lines behind, so the line leaves L1/L2
// before it can be victimised into L3 (costs one flush per line).
enum class Mode { kNormal, kNta, kNtLoad, kFlush, kCount };
constexpr const char* kModeNames[] = {"normal", "nta", "ntload", "flush"};
static_assert(sizeof(kModeNames) / sizeof(kModeNames[0]) == static_cast<size_t>(Mode::kCount));

// Sums the buffer with zmm loads (8 independent accumulators, so the loads,
// not the adds, set the pace); the sum is returned so nothing is elided.
template <Mode kMode>
__attribute__((target("avx512f,clflushopt"))) float Read(const float* p, size_t bytes,
                                                         int distance) {
  __m512 acc[8];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const char* c = reinterpret_cast<const char*>(p);
  const size_t lines = bytes / kLine;
  const size_t gap = static_cast<size_t>(distance) * kLine;
  for (size_t i = 0; i < lines; i += 8) {
    if constexpr (kMode == Mode::kNta) {
      for (int j = 0; j < 8; ++j) {
        const size_t off = (i + j) * kLine + gap;
        if (off < bytes) _mm_prefetch(c + off, _MM_HINT_NTA);
      }
    }
    for (int j = 0; j < 8; ++j) {
      const char* line = c + (i + j) * kLine;
      __m512 v;
      if constexpr (kMode == Mode::kNtLoad)
        v = _mm512_castsi512_ps(_mm512_stream_load_si512(const_cast<char*>(line)));
      else
        v = _mm512_load_ps(reinterpret_cast<const float*>(line));
      acc[j] = _mm512_add_ps(acc[j], v);
    }
    if constexpr (kMode == Mode::kFlush) {
      for (int j = 0; j < 8; ++j) {
        const size_t off = (i + j) * kLine;
        if (off >= gap) _mm_clflushopt(const_cast<char*>(c + off - gap));
      }
    }
  }
  if constexpr (kMode == Mode::kFlush) {
    for (size_t off = lines * kLine > gap ? lines * kLine - gap : 0; off < lines * kLine;
         off += kLine)
      _mm_clflushopt(const_cast<char*>(c + off));
  }
  for (int j = 1; j < 8; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  alignas(64) float sink[16];
  _mm512_store_ps(sink, acc[0]);
  return sink[0];
}

float ReadAs(Mode m, const float* p, size_t bytes, int distance) {
  switch (m) {
    case Mode::kNta:
      return Read<Mode::kNta>(p, bytes, distance);
    case Mode::kNtLoad:
      return Read<Mode::kNtLoad>(p, bytes, distance);
    case Mode::kFlush:
      return Read<Mode::kFlush>(p, bytes, distance);
    default:
      return Read<Mode::kNormal>(p, bytes, distance);
  }
}

float* Alloc(size_t bytes) {
  void* p = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  if (!p) return nullptr;
  // Touch and fill so the pages exist and the values are finite.
  float* f = static_cast<float*>(p);
  for (size_t i = 0; i < bytes / sizeof(float); ++i) f[i] = 1e-6f * static_cast<float>(i % 1024);
  return f;
}

double Us(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

void Report(const char* mode, const char* set, std::vector<double> v, size_t bytes) {
  std::sort(v.begin(), v.end());
  const double med = v[v.size() / 2];
  std::printf("%-6s %-6s median %8.1f us  min %8.1f us  (%5.1f GB/s at median, n=%zu)\n", mode, set,
              med, v.front(), static_cast<double>(bytes) / med * 1e-3, v.size());
}

bool ParseFlag(const char* arg, const char* name, double* out) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = std::atof(arg + n + 1);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx512f")) {
    std::fprintf(stderr, "wbs_bench_l3_residency: this CPU has no AVX-512F\n");
    return 1;
  }
  Options o;
  for (int i = 1; i < argc; ++i) {
    double v = 0;
    if (ParseFlag(argv[i], "--keep_mb", &v))
      o.keep_mb = v;
    else if (ParseFlag(argv[i], "--stream_mb", &v))
      o.stream_mb = v;
    else if (ParseFlag(argv[i], "--rounds", &v))
      o.rounds = static_cast<int>(v);
    else if (ParseFlag(argv[i], "--passes", &v))
      o.passes = static_cast<int>(v);
    else if (ParseFlag(argv[i], "--distance", &v))
      o.distance = static_cast<int>(v);
    else {
      std::fprintf(stderr, "wbs_bench_l3_residency: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const size_t keep_bytes = static_cast<size_t>(o.keep_mb * (1 << 20)) / 512 * 512;
  const size_t stream_bytes = static_cast<size_t>(o.stream_mb * (1 << 20)) / 512 * 512;
  float* keep = Alloc(keep_bytes);
  float* stream = Alloc(stream_bytes);
  if (!keep || !stream || o.rounds < 1 || o.passes < 1) {
    std::fprintf(stderr, "wbs_bench_l3_residency: bad sizes or allocation failed\n");
    return 2;
  }
  std::printf(
      "keep %.1f MB, stream %.1f MB, %d rounds x %d timed passes per mode, NTA distance %d lines\n",
      o.keep_mb, o.stream_mb, o.rounds, o.passes, o.distance);

  constexpr int kModes = static_cast<int>(Mode::kCount);
  std::vector<double> keep_us[kModes], stream_us[kModes], total_us[kModes];
  float sink = 0;
  for (int r = 0; r < kModes * (o.rounds + 1); ++r) {
    const int mode = r % kModes;
    for (int p = 0; p <= o.passes; ++p) {
      const auto t0 = std::chrono::steady_clock::now();
      sink += ReadAs(Mode::kNormal, keep, keep_bytes, o.distance);
      const auto t1 = std::chrono::steady_clock::now();
      sink += ReadAs(static_cast<Mode>(mode), stream, stream_bytes, o.distance);
      const auto t2 = std::chrono::steady_clock::now();
      if (p == 0 || r < kModes) continue;  // warm-up round and the mode-switch pass
      keep_us[mode].push_back(Us(t0, t1));
      stream_us[mode].push_back(Us(t1, t2));
      total_us[mode].push_back(Us(t0, t2));
    }
  }
  for (int m = 0; m < kModes; ++m) {
    Report(kModeNames[m], "keep", keep_us[m], keep_bytes);
    Report(kModeNames[m], "stream", stream_us[m], stream_bytes);
    Report(kModeNames[m], "total", total_us[m], keep_bytes + stream_bytes);
  }
  std::printf("(sink %g)\n", static_cast<double>(sink));
  std::free(keep);
  std::free(stream);
  return 0;
}
