// Block importance scores: one number per block of a weight's COUT x CIN
// (x kernel) view; one-shot sparsify zeroes the lowest-scoring blocks.
//
// For block B with n = |B| numbers (n is smaller on ragged edge blocks):
//   kL2              sqrt(sum w^2)
//   kL1              sum |w|
//   kMeanAbs         sum |w| / n           (L1 normalised for ragged blocks)
//   kVarBlockMean    sum (w - mean(B))^2 / n
//   kVarTensorMean   sum (w - mean(W))^2 / n   (mean over the whole tensor)
// Sums are accumulated in double.
#pragma once

#include <string>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "core/tensor.h"

namespace wbs::sparse {

enum class Score { kL2, kL1, kMeanAbs, kVarBlockMean, kVarTensorMean };

// "l2", "l1", "mean-abs", "var-block", "var-tensor".
Result<Score> ParseScore(const std::string& name);
const char* ScoreName(Score s);

// rows*cols scores, row-major like BlockMask::keep. f32 and f64 weights.
Result<std::vector<double>> BlockScores(const Tensor& weight, MaskLayout layout, int block_rows,
                                        int block_cols, Score score);

}  // namespace wbs::sparse
