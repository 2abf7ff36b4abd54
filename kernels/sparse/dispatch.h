// Block-sparse kernel dispatch: chosen once per process from CPU features.
//
// Every kernel family has an ordered candidate list (fastest first) that
// ends in the reference. At first use the CPU's ISA level is detected
// (__builtin_cpu_supports), optionally capped by the environment variable
// WBS_ISA_CAP=avx512|avx2|ref (so tests and benchmarks can force the lower
// paths), and logged once at info level together with why each faster
// candidate declined. WBS_KERNEL_VERBOSE=1 prints the same to stderr.
#pragma once

#include <string>
#include <vector>

#include "kernels/sparse/bsr_conv.h"
#include "kernels/sparse/wino_transform.h"

namespace wbs::kernels::sparse {

enum class Isa : int { kRef = 0, kAvx2, kAvx512, kCount };
const char* IsaName(Isa isa);  // "ref", "avx2", "avx512"

// The detected ISA level after WBS_ISA_CAP (computed once, then cached).
Isa ActiveIsa();
// What the CPU supports, ignoring the cap.
Isa DetectedIsa();

struct BsrConvKernel {
  const char* name;  // "f32_bsr8xn_conv__avx512" (grammar: docs/KERNELS.md)
  Isa isa;           // minimum ISA
  int br;            // required block rows; 0 = any
  BsrConvFn fn;
  // Takes the tiled 1x1 input layout (BsrConvArgs::x_tile_stride; the plan
  // picks it only for kernels that do).
  bool tiled_1x1 = false;
  // Output positions of one full register tile (AVX-512 3 zmm: 48; AVX2 and
  // the reference: kBsrTileQ). BsrWinoPlan cuts its chunks in these.
  int tile_q = 24;
  // The stride-2 direct variant (BsrConvArgs::s2_*), or nullptr: the plan
  // then copies a stride-2 conv's input (bsr_conv_plan.h).
  BsrConvFn stride2 = nullptr;
};

// All f32 BSR conv kernels, fastest first; the last is the reference.
const std::vector<BsrConvKernel>& BsrConvKernels();
// The first candidate whose ISA <= ActiveIsa() and whose br fits.
const BsrConvKernel& SelectBsrConvKernel(int br);
// "f32_bsr8xn_conv__avx512 (avx2: declined, isa cap avx2)..." for logs.
std::string DescribeBsrConvChoice(int br);

// Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms (wino_transform.h): an
// input and an output transform of the same ISA and output tile.
struct WinoTransformKernel {
  const char* name;  // "f32_wino2x3__avx2": f32_wino2x3_{input,output}__avx2
  Isa isa;
  WinoInputFn input;
  WinoOutputFn output;
  int tile = 2;  // output tile edge m of F(m x m, 3x3): 2 or 4
};
// All transform pairs of output tile `tile` (2 or 4), fastest first; the
// last is the reference. F(4x4) has AVX-512 and reference kernels only.
const std::vector<WinoTransformKernel>& WinoTransformKernels(int tile = 2);
// The first pair of `tile` whose ISA <= ActiveIsa(); each tile's choice
// logged once like the conv kernels.
const WinoTransformKernel& SelectWinoTransform(int tile = 2);

}  // namespace wbs::kernels::sparse
