#include "kernels/sparse/dispatch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/logging.h"

namespace wbs::kernels::sparse {
namespace {

Isa Detect() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  return Isa::kRef;
}

Isa ParseCap(const char* s, bool* ok) {
  *ok = true;
  // avx512vnni is the int8 kernels' top level (s8_dispatch.h); the fp32
  // kernels need no VNNI, so for them it means avx512.
  if (!s || !*s || std::strcmp(s, "avx512") == 0 || std::strcmp(s, "avx512vnni") == 0)
    return Isa::kAvx512;
  if (std::strcmp(s, "avx2") == 0) return Isa::kAvx2;
  if (std::strcmp(s, "ref") == 0) return Isa::kRef;
  *ok = false;
  return Isa::kAvx512;
}

constexpr int kNumIsas = static_cast<int>(Isa::kCount);
constexpr const char* kIsaNames[] = {"ref", "avx2", "avx512"};
static_assert(sizeof(kIsaNames) / sizeof(kIsaNames[0]) == kNumIsas, "one name per Isa");

bool Verbose() {
  const char* v = std::getenv("WBS_KERNEL_VERBOSE");
  return v && *v && std::strcmp(v, "0") != 0;
}

}  // namespace

const char* IsaName(Isa isa) {
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kNumIsas ? kIsaNames[i] : "?";
}

Isa DetectedIsa() {
  static const Isa isa = Detect();
  return isa;
}

Isa ActiveIsa() {
  static const Isa isa = [] {
    const Isa hw = DetectedIsa();
    bool ok = true;
    const char* env = std::getenv("WBS_ISA_CAP");
    const Isa cap = ParseCap(env, &ok);
    if (!ok) WBS_LOG_WARN("WBS_ISA_CAP='{}' is not avx512vnni|avx512|avx2|ref; ignored", env);
    const Isa active = std::min(hw, cap);
    WBS_LOG_INFO("sparse kernels: cpu isa {}, cap {}, using {}", IsaName(hw),
                 env && *env ? env : "none", IsaName(active));
    if (Verbose())
      std::fprintf(stderr, "wbs: sparse kernels: cpu isa %s, cap %s, using %s\n", IsaName(hw),
                   env && *env ? env : "none", IsaName(active));
    return active;
  }();
  return isa;
}

const std::vector<BsrConvKernel>& BsrConvKernels() {
  static const std::vector<BsrConvKernel> k = {
      {"f32_bsr8xn_conv__avx512", Isa::kAvx512, 8, f32_bsr8xn_conv__avx512, false, 48,
       f32_bsr8xn_conv_s2__avx512},
      {"f32_bsrnxn_conv__avx512", Isa::kAvx512, 0, f32_bsrnxn_conv__avx512, false, 48},
      {"f32_bsr8xn_conv__avx2", Isa::kAvx2, 8, f32_bsr8xn_conv__avx2, /*tiled_1x1=*/true},
      {"f32_bsrnxn_conv__ref", Isa::kRef, 0, f32_bsrnxn_conv__ref},
  };
  return k;
}

std::string DescribeBsrConvChoice(int br) {
  std::string s;
  const Isa active = ActiveIsa();
  for (const BsrConvKernel& k : BsrConvKernels()) {
    if (k.isa > active) {
      s += std::string(k.name) + ": declined (needs " + IsaName(k.isa) + ", active isa " +
           IsaName(active) + "); ";
    } else if (k.br != 0 && k.br != br) {
      s += std::string(k.name) + ": declined (block rows " + std::to_string(br) +
           " != " + std::to_string(k.br) + "); ";
    } else {
      return s + "chose " + k.name;
    }
  }
  return s + "none";
}

const BsrConvKernel& SelectBsrConvKernel(int br) {
  const Isa active = ActiveIsa();
  const auto& all = BsrConvKernels();
  const BsrConvKernel* chosen = &all.back();
  for (const BsrConvKernel& k : all) {
    if (k.isa <= active && (k.br == 0 || k.br == br)) {
      chosen = &k;
      break;
    }
  }
  // Log each block-row count's choice once.
  static std::mutex mu;
  static bool logged[17] = {};
  std::lock_guard<std::mutex> lock(mu);
  if (br >= 0 && br <= 16 && !logged[br]) {
    logged[br] = true;
    const std::string d = DescribeBsrConvChoice(br);
    WBS_LOG_INFO("sparse conv br={}: {}", br, d);
    if (Verbose()) std::fprintf(stderr, "wbs: sparse conv br=%d: %s\n", br, d.c_str());
  }
  return *chosen;
}

const std::vector<WinoTransformKernel>& WinoTransformKernels(int tile) {
  static const std::vector<WinoTransformKernel> k2 = {
      {"f32_wino2x3__avx512", Isa::kAvx512, f32_wino2x3_input__avx512,
       f32_wino2x3_output__avx512},
      {"f32_wino2x3__avx2", Isa::kAvx2, f32_wino2x3_input__avx2, f32_wino2x3_output__avx2},
      {"f32_wino2x3__ref", Isa::kRef, f32_wino2x3_input__ref, f32_wino2x3_output__ref},
  };
  static const std::vector<WinoTransformKernel> k4 = {
      {"f32_wino4x3__avx512", Isa::kAvx512, f32_wino4x3_input__avx512, f32_wino4x3_output__avx512,
       4},
      {"f32_wino4x3__ref", Isa::kRef, f32_wino4x3_input__ref, f32_wino4x3_output__ref, 4},
  };
  return tile == 4 ? k4 : k2;
}

namespace {
const WinoTransformKernel& ChooseWinoTransform(int tile) {
  const Isa active = ActiveIsa();
  const auto& all = WinoTransformKernels(tile);
  std::string declined;
  for (const WinoTransformKernel& k : all) {
    if (k.isa <= active) {
      WBS_LOG_INFO("winograd F({}x{}) transforms: {}chose {}", tile, tile, declined, k.name);
      if (Verbose())
        std::fprintf(stderr, "wbs: winograd F(%dx%d) transforms: %schose %s\n", tile, tile,
                     declined.c_str(), k.name);
      return k;
    }
    declined += std::string(k.name) + ": declined (needs " + IsaName(k.isa) + ", active isa " +
                IsaName(active) + "); ";
  }
  return all.back();
}
}  // namespace

const WinoTransformKernel& SelectWinoTransform(int tile) {
  static const WinoTransformKernel& chosen2 = ChooseWinoTransform(2);
  if (tile != 4) return chosen2;
  static const WinoTransformKernel& chosen4 = ChooseWinoTransform(4);
  return chosen4;
}

}  // namespace wbs::kernels::sparse
