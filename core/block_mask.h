// BlockMask: the block mask Γ of one weight (the paper's notation).
//
// A weight W is viewed as a COUT x CIN matrix whose entries are kernels of
// `kernel` numbers (Conv: W is COUT x CIN x kh x kw, kernel = kh*kw; Gemm and
// MatMul: kernel = 1). Γ has rows = ceil(COUT/block_rows) by cols =
// ceil(CIN/block_cols) entries; Γ(i,j) = 0 means the whole block
// (block_rows x block_cols x kernel numbers, fewer on the ragged last block
// row/column) is zero. Any block shape 1x1..16x16 is allowed, rectangular
// included.
//
// Which tensor axis is COUT is part of the mask (`layout`): a Conv weight and
// a Gemm weight with transB=1 are [COUT, CIN, ...] (kOutIn); a MatMul weight
// and a Gemm weight with transB=0 are [CIN, COUT] (kInOut). So a mask and its
// tensor are self-describing: checking or applying a mask needs no graph.
//
// Γ is a bit matrix; it is held one byte per block (`keep`, row-major) so
// that kernels and passes can index it directly, and serialized with one bit
// per block (EncodeBlockMask).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace wbs {

inline constexpr int kMinBlockEdge = 1;
inline constexpr int kMaxBlockEdge = 16;

enum class MaskLayout : uint8_t {
  kOutIn = 0,  // tensor axis 0 = COUT, axis 1 = CIN, further axes = kernel (Conv, Gemm transB=1)
  kInOut = 1,  // rank-2 tensor [CIN, COUT] (MatMul, Gemm transB=0)
};

struct BlockMask {
  int block_rows = 8;         // output channels per block
  int block_cols = 8;         // input channels per block
  int64_t rows = 0;           // ceil(COUT / block_rows)
  int64_t cols = 0;           // ceil(CIN / block_cols)
  std::vector<uint8_t> keep;  // rows*cols entries, row-major, 1 = keep
  MaskLayout layout = MaskLayout::kOutIn;

  // rows x cols blocks, all kept.
  static BlockMask AllKept(int block_rows, int block_cols, int64_t rows, int64_t cols,
                           MaskLayout layout = MaskLayout::kOutIn);

  bool Get(int64_t r, int64_t c) const { return keep[static_cast<size_t>(r * cols + c)] != 0; }
  void Set(int64_t r, int64_t c, bool k) { keep[static_cast<size_t>(r * cols + c)] = k ? 1 : 0; }
  int64_t num_blocks() const { return rows * cols; }
  int64_t num_kept() const;
  int64_t num_zero() const { return num_blocks() - num_kept(); }
  bool operator==(const BlockMask&) const = default;
};

// The COUT x CIN x kernel view of a weight tensor under a layout: element
// (o, i, k) is at flat index o*out_stride + i*in_stride + k.
struct WeightView {
  int64_t cout = 0;
  int64_t cin = 0;
  int64_t kernel = 1;
  int64_t out_stride = 0;
  int64_t in_stride = 0;
};

// kOutIn needs rank >= 2, kInOut exactly rank 2; `what` starts the error.
Result<WeightView> MakeWeightView(const Shape& shape, MaskLayout layout, const std::string& what);

// Parses "RxC" (e.g. "8x8", "16x4"); each edge in [kMinBlockEdge, kMaxBlockEdge].
Result<std::pair<int, int>> ParseBlockShape(const std::string& text);

// The mask of `weight`'s zero blocks: Γ(i,j) = 0 exactly when every number of
// block (i,j) is zero (-0.0 counts as zero). f32, f64, f16, bf16 and integer
// tensors.
Result<BlockMask> MaskFromZeroBlocks(const Tensor& weight, int block_rows, int block_cols,
                                     MaskLayout layout);

// Number of elements of `tensor` that are zero by MaskFromZeroBlocks' rule
// (-0.0 counts; f16/bf16 by their bits): its 1x1-block mask's zero count,
// without building the mask.
Result<int64_t> CountZeroElements(const Tensor& tensor);

// OK when `mask` fits `weight` (rows/cols match the view, block edges in
// range) and every masked block of `weight` is all zero (kept blocks may hold
// zeros). Errors are one line starting with `what` (e.g. "weight 'conv1.w'")
// and name the first offending block.
Status CheckMaskAgainstWeight(const BlockMask& mask, const Tensor& weight, const std::string& what);

// Compact text form, used as ONNX metadata:
//   "<br>x<bc>:<rows>x<cols>:<oi|io>:<hex>"
// where <hex> is the row-major bit matrix, 8 blocks per byte, the first block
// in the most significant bit, the last byte padded with zero bits.
std::string EncodeBlockMask(const BlockMask& mask);
// Inverse of EncodeBlockMask; rejects malformed text (wrong field count, bad
// numbers, block edges out of range, wrong hex length, non-zero padding).
// `what` starts the error message.
Result<BlockMask> DecodeBlockMask(const std::string& text, const std::string& what);

// Quantization parameters of a value (filled by the quantization issue).
struct QuantParams {
  int32_t dtype = 0;         // wbs::DType of the quantized tensor
  std::vector<float> scale;  // one per tensor, or one per channel along `axis`
  std::vector<int32_t> zero_point;
  int axis = -1;              // -1 = per tensor
  bool power_of_two = false;  // scales are 2^-k (AIE "fix position" mode)
  bool operator==(const QuantParams&) const = default;
};

}  // namespace wbs
