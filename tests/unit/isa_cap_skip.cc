// The ISA-capped ctest entries (tests/CMakeLists.txt: block_sparse_conv_isa_*,
// ops_quant_fast_isa_*, int8_novnni_isa_avx2, dnnl_f32_isa_avx2) rerun test
// groups with WBS_ISA_CAP / ONEDNN_MAX_CPU_ISA lowered so an AVX-512 machine
// also covers the AVX2 and reference paths. On a CPU whose own ISA already is
// the cap, such a run repeats the uncapped run exactly (same kernels, same
// oneDNN implementations). With WBS_SKIP_IF_CAP_IS_NATIVE=1 set by those
// entries, the binary then says so and exits 77 before any test runs
// (ctest's SKIP_RETURN_CODE), which saves minutes of the sanitizer tier.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/sparse/dispatch.h"
#include "kernels/sparse/s8_dispatch.h"

namespace {

namespace ks = wbs::kernels::sparse;

// True when the capped run would execute exactly what the uncapped one does.
bool CapIsNative(std::string* why) {
  const char* dnnl_cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (ks::ActiveIsa() != ks::DetectedIsa()) return false;
  if (ks::S8ActiveIsa() != ks::S8DetectedIsa()) return false;
  // The ONEDNN_MAX_CPU_ISA caps these entries use are AVX2 (or none):
  // a no-op on a CPU without AVX-512 and without AVX-VNNI (which oneDNN
  // uses as avx2_vnni, and the AVX2 cap turns off).
  if (dnnl_cap != nullptr && *dnnl_cap != '\0') {
    if (std::string(dnnl_cap) != "AVX2" && std::string(dnnl_cap) != "avx2") return false;
    if (ks::DetectedIsa() > ks::Isa::kAvx2) return false;
    if (__builtin_cpu_supports("avxvnni")) return false;
  }
  *why = std::string("WBS_ISA_CAP=") + (std::getenv("WBS_ISA_CAP") ? std::getenv("WBS_ISA_CAP") : "") +
         (dnnl_cap ? std::string(" ONEDNN_MAX_CPU_ISA=") + dnnl_cap : std::string()) +
         " is this CPU's own ISA (sparse " + ks::IsaName(ks::DetectedIsa()) + ", int8 " +
         ks::S8IsaName(ks::S8DetectedIsa()) + "): the uncapped run already covers it";
  return true;
}

class SkipIfCapIsNative : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* on = std::getenv("WBS_SKIP_IF_CAP_IS_NATIVE");
    if (on == nullptr || std::string(on) != "1") return;
    std::string why;
    if (!CapIsNative(&why)) return;
    std::printf("skipped: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
  }
};

[[maybe_unused]] ::testing::Environment* const kSkipIfCapIsNative =
    ::testing::AddGlobalTestEnvironment(new SkipIfCapIsNative);

}  // namespace
