// S8BsrConvPlan / S8BsrGemmPlan: everything around the int8 BSR microkernels
// (kernels/sparse/s8_bsr_conv.h) for one concrete problem, built once and run
// many times (like BsrConvPlan, kernels/sparse/bsr_conv_plan.h): the weight
// repacked for the chosen kernel, the folded per-channel epilogue
// (bias - z_x * row_sum, multiplier, shift), the input layout, the thread split.
//
// Input layout (conv). The kernels read channel quads (nChw4c). Unless the
// input already is nChw4c u8 and the conv is 1x1, stride 1, unpadded (then x
// is read in place), Run() first copies x into scratch as the padded
// stride-phase planes of BsrConvPlan, in quads, padding with z_x (so padding
// contributes exactly 0) and flipping the top bit of an s8 input (u8 with
// zero point z_x + 128). Output: nChw or nChw4c, compact.
//
// Threads: with at least 4 block-rows per thread, thread t takes a run of
// block-rows holding ~1/T of the non-zero blocks; otherwise the flat output
// range (conv) or the rows of X (gemm) are split evenly.
#pragma once

#include <cstdint>
#include <vector>

#include "core/quant_math.h"
#include "core/status.h"
#include "kernels/ref/conv.h"
#include "kernels/sparse/s8_bsr_weight.h"
#include "kernels/sparse/s8_dispatch.h"

namespace wbs::kernels::sparse {

// The integer parameters of one QConv / QGemm (docs/int8.md section 3).
struct S8QuantParams {
  bool x_signed = false;  // s8 activations (else u8)
  int32_t x_zero_point = 0;
  int32_t y_zero_point = 0;
  int32_t lo = 0, hi = 255;      // output clamp: the type's range narrowed by a fused Relu/Clip
  std::vector<int32_t> bias;     // B_q [M], or empty (0)
  std::vector<Requant> requant;  // [M], or one for every channel
};

// Shared by both plans: validated, folded per-channel epilogue arrays.
struct S8FoldedEpilogue {
  std::vector<int32_t> bias, multiplier, shift;  // block_rows * br entries
  bool fast = false, shift_only = false;         // S8Epilogue::fast / shift_only
  std::vector<int32_t> acc_lo, acc_hi;
  std::vector<int64_t> round_zp;
  int32_t zero_point = 0, lo = 0, hi = 255;
  bool x_signed = false;
  uint8_t x_zero_u8 = 0;  // z_x as the kernels' u8 (s8: z_x + 128)
  S8Epilogue View() const;
};
Result<S8FoldedEpilogue> FoldS8Epilogue(const S8BlockSparseWeight& w, const S8QuantParams& q);

class S8BsrConvPlan {
 public:
  // p: 1-D/2-D conv, group 1, p.activation none (the clamp is q.lo/q.hi);
  // w of p's shape; `kernel` overrides the dispatcher (tests). The plan keeps
  // a pointer to w (which must outlive it) and its own folded epilogue.
  static Result<S8BsrConvPlan> Create(const ref::ConvParams& p, const S8BlockSparseWeight& w,
                                      const S8QuantParams& q, S8Layout x_layout = S8Layout::kNchw,
                                      S8Layout y_layout = S8Layout::kNchw,
                                      const S8BsrConvKernel* kernel = nullptr);

  int64_t scratch_bytes() const { return scratch_bytes_; }
  const S8BsrConvKernel& kernel() const { return *kernel_; }
  // Bytes of one image of x / y in their layouts (nChw4c rounds C up to 4).
  int64_t x_image_bytes() const;
  int64_t y_image_bytes() const;

  // y [N, M, OH, OW] = QConv(x [N, C, H, W]) in the layouts given at
  // creation; scratch holds scratch_bytes() (may be null if 0).
  void Run(const uint8_t* x, uint8_t* y, uint8_t* scratch, int threads) const;

 private:
  void Pack(const uint8_t* x, uint8_t* dst, int64_t quad_begin, int64_t quad_end) const;

  const S8BlockSparseWeight* w_ = nullptr;
  const S8BsrConvKernel* kernel_ = nullptr;
  std::vector<int16_t> packed16_;  // kQuadsS16 weights (AVX2)
  S8FoldedEpilogue ep_;
  S8Layout x_layout_ = S8Layout::kNchw, y_layout_ = S8Layout::kNchw;
  int64_t batch_ = 1, in_c_ = 1, in_h_ = 1, in_w_ = 1, out_h_ = 1, out_w_ = 1;
  int64_t sy_ = 1, sx_ = 1, pad_top_ = 0, pad_left_ = 0;
  bool direct_ = true;
  bool avx512_pack_ = false;  // Pack's rows with s8_pack_row*__avx512
  int64_t hq_ = 1, wq_ = 1, x_quad_stride_ = 0;
  std::vector<int64_t> tap_offset_;
  std::vector<int64_t> phase_slot_;
  // Shifted planes: the row phase and column offset of each stored plane
  // (empty: phase planes, phase_slot_).
  std::vector<int64_t> shift_py_, shift_off_;
  std::vector<S8LaneGroup> lanes_;
  int64_t scratch_bytes_ = 0;
};

class S8BsrGemmPlan {
 public:
  // Y[n, M] = QGemm(X[n, K]) with W [M, K] (kh = kw = 1); keeps a pointer to w.
  static Result<S8BsrGemmPlan> Create(int64_t n, const S8BlockSparseWeight& w,
                                      const S8QuantParams& q,
                                      const S8BsrGemmKernel* kernel = nullptr);
  int64_t scratch_bytes() const { return scratch_bytes_; }
  const S8BsrGemmKernel& kernel() const { return *kernel_; }
  // x [n, K] (u8 or s8 bytes), y [n, M].
  void Run(const uint8_t* x, uint8_t* y, uint8_t* scratch, int threads) const;

 private:
  const S8BlockSparseWeight* w_ = nullptr;
  const S8BsrGemmKernel* kernel_ = nullptr;
  std::vector<int8_t> packed8_;
  std::vector<int16_t> packed16_;
  S8FoldedEpilogue ep_;
  int64_t n_ = 1, kp_ = 0;  // K padded to whole blocks
  bool direct_ = true;      // x read in place
  int64_t scratch_bytes_ = 0;
};

}  // namespace wbs::kernels::sparse
