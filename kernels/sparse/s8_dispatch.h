// Int8 block-sparse kernel dispatch (the f32 table is kernels/sparse/dispatch.h).
//
// The ISA ladder for int8 is ref < avx2 < avx512 < avx512vnni: the VNNI
// kernels need AVX-512 F/BW/VL + VNNI (vpdpbusd), the AVX2 ones AVX2. The
// level is detected once (__builtin_cpu_supports), capped by
// WBS_ISA_CAP=avx512vnni|avx512|avx2|ref (the f32 dispatcher reads the same
// variable; `avx512` there is the top f32 level), and each family's choice is
// logged once at info level with why the faster candidates declined
// (WBS_KERNEL_VERBOSE=1 also prints it to stderr). There is no plain-AVX-512
// int8 kernel: under WBS_ISA_CAP=avx512 the AVX2 ones run.
#pragma once

#include <string>
#include <vector>

#include "kernels/sparse/s8_bsr_conv.h"

namespace wbs::kernels::sparse {

enum class S8Isa : int { kRef = 0, kAvx2, kAvx512, kAvx512Vnni, kCount };
const char* S8IsaName(S8Isa isa);  // "ref", "avx2", "avx512", "avx512vnni"

S8Isa S8DetectedIsa();  // what the CPU has
S8Isa S8ActiveIsa();    // after WBS_ISA_CAP (computed once, logged)

struct S8BsrConvKernel {
  const char* name;  // "s8_bsr8xn_conv__avx512vnni" (grammar: docs/KERNELS.md)
  S8Isa isa;         // minimum ISA
  int br;            // required block rows; 0 = any
  S8WeightFormat format;
  S8BsrConvFn fn;
};
struct S8BsrGemmKernel {
  const char* name;
  S8Isa isa;
  int br, bc;  // required block shape; 0 = any
  S8WeightFormat format;
  S8BsrGemmFn fn;
};

// Fastest first; the last is the reference.
const std::vector<S8BsrConvKernel>& S8BsrConvKernels();
const std::vector<S8BsrGemmKernel>& S8BsrGemmKernels();
// The first candidate whose ISA <= S8ActiveIsa() and whose block shape fits
// (logged once per block shape).
const S8BsrConvKernel& SelectS8BsrConvKernel(int br, int bc);
const S8BsrGemmKernel& SelectS8BsrGemmKernel(int br, int bc);
// "s8_bsr8xn_conv__avx512vnni: declined (needs avx512vnni, active isa avx2); chose ..."
std::string DescribeS8BsrConvChoice(int br, int bc);
std::string DescribeS8BsrGemmChoice(int br, int bc);

}  // namespace wbs::kernels::sparse
