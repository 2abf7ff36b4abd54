#include "kernels/sparse/s8_dispatch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "core/logging.h"

namespace wbs::kernels::sparse {
namespace {

constexpr const char* kNames[] = {"ref", "avx2", "avx512", "avx512vnni"};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<int>(S8Isa::kCount));

S8Isa Detect() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
  if (avx512 && __builtin_cpu_supports("avx512vnni")) return S8Isa::kAvx512Vnni;
  if (avx512) return S8Isa::kAvx512;
  if (__builtin_cpu_supports("avx2")) return S8Isa::kAvx2;
  return S8Isa::kRef;
}

bool Verbose() {
  const char* v = std::getenv("WBS_KERNEL_VERBOSE");
  return v && *v && std::strcmp(v, "0") != 0;
}

template <typename K>
std::string Describe(const std::vector<K>& all, int br, int bc) {
  std::string s;
  const S8Isa active = S8ActiveIsa();
  for (const K& k : all) {
    int need_bc = 0;
    if constexpr (requires { k.bc; }) need_bc = k.bc;
    if (k.isa > active) {
      s += std::string(k.name) + ": declined (needs " + S8IsaName(k.isa) + ", active isa " +
           S8IsaName(active) + "); ";
    } else if ((k.br != 0 && k.br != br) || (need_bc != 0 && need_bc != bc)) {
      s += std::string(k.name) + ": declined (block " + std::to_string(br) + "x" +
           std::to_string(bc) + " is not " + std::to_string(k.br) + "x" +
           (need_bc ? std::to_string(need_bc) : std::string("n")) + "); ";
    } else {
      return s + "chose " + k.name;
    }
  }
  return s + "none";
}

template <typename K>
const K& Select(const std::vector<K>& all, int br, int bc, const char* family) {
  const S8Isa active = S8ActiveIsa();
  const K* chosen = &all.back();
  for (const K& k : all) {
    int need_bc = 0;
    if constexpr (requires { k.bc; }) need_bc = k.bc;
    if (k.isa <= active && (k.br == 0 || k.br == br) && (need_bc == 0 || need_bc == bc)) {
      chosen = &k;
      break;
    }
  }
  static std::mutex mu;
  static std::set<std::pair<std::string, int>> logged;
  std::lock_guard<std::mutex> lock(mu);
  if (logged.insert({family, br * 100 + bc}).second) {
    const std::string d = Describe(all, br, bc);
    WBS_LOG_INFO("int8 sparse {} {}x{}: {}", family, br, bc, d);
    if (Verbose())
      std::fprintf(stderr, "wbs: int8 sparse %s %dx%d: %s\n", family, br, bc, d.c_str());
  }
  return *chosen;
}

}  // namespace

const char* S8IsaName(S8Isa isa) {
  const int i = static_cast<int>(isa);
  return i >= 0 && i < static_cast<int>(S8Isa::kCount) ? kNames[i] : "?";
}

S8Isa S8DetectedIsa() {
  static const S8Isa isa = Detect();
  return isa;
}

S8Isa S8ActiveIsa() {
  static const S8Isa isa = [] {
    const S8Isa hw = S8DetectedIsa();
    const char* env = std::getenv("WBS_ISA_CAP");
    S8Isa cap = S8Isa::kAvx512Vnni;
    if (env && *env) {
      bool ok = false;
      for (int i = 0; i < static_cast<int>(S8Isa::kCount); ++i)
        if (std::strcmp(env, kNames[i]) == 0) {
          cap = static_cast<S8Isa>(i);
          ok = true;
        }
      if (!ok) WBS_LOG_WARN("WBS_ISA_CAP='{}' is not avx512vnni|avx512|avx2|ref; ignored", env);
    }
    const S8Isa active = std::min(hw, cap);
    WBS_LOG_INFO("int8 sparse kernels: cpu isa {}, cap {}, using {}", S8IsaName(hw),
                 env && *env ? env : "none", S8IsaName(active));
    if (Verbose())
      std::fprintf(stderr, "wbs: int8 sparse kernels: cpu isa %s, cap %s, using %s\n",
                   S8IsaName(hw), env && *env ? env : "none", S8IsaName(active));
    return active;
  }();
  return isa;
}

const std::vector<S8BsrConvKernel>& S8BsrConvKernels() {
  static const std::vector<S8BsrConvKernel> k = {
      {"s8_bsr8xn_conv__avx512vnni", S8Isa::kAvx512Vnni, 8, S8WeightFormat::kQuads,
       s8_bsr8xn_conv__avx512vnni},
      {"s8_bsr8xn_conv__avx2", S8Isa::kAvx2, 8, S8WeightFormat::kQuadsS16, s8_bsr8xn_conv__avx2},
      {"s8_bsrnxn_conv__ref", S8Isa::kRef, 0, S8WeightFormat::kQuads, s8_bsrnxn_conv__ref},
  };
  return k;
}

const std::vector<S8BsrGemmKernel>& S8BsrGemmKernels() {
  static const std::vector<S8BsrGemmKernel> k = {
      {"s8_bsr8x8_gemm__avx512vnni", S8Isa::kAvx512Vnni, 8, 8, S8WeightFormat::kRows,
       s8_bsr8x8_gemm__avx512vnni},
      {"s8_bsr8x8_gemm__avx2", S8Isa::kAvx2, 8, 8, S8WeightFormat::kPairsS16, s8_bsr8x8_gemm__avx2},
      {"s8_bsrnxn_gemm__ref", S8Isa::kRef, 0, 0, S8WeightFormat::kQuads, s8_bsrnxn_gemm__ref},
  };
  return k;
}

const S8BsrConvKernel& SelectS8BsrConvKernel(int br, int bc) {
  return Select(S8BsrConvKernels(), br, bc, "conv");
}
const S8BsrGemmKernel& SelectS8BsrGemmKernel(int br, int bc) {
  return Select(S8BsrGemmKernels(), br, bc, "gemm");
}
std::string DescribeS8BsrConvChoice(int br, int bc) { return Describe(S8BsrConvKernels(), br, bc); }
std::string DescribeS8BsrGemmChoice(int br, int bc) { return Describe(S8BsrGemmKernels(), br, bc); }

}  // namespace wbs::kernels::sparse
