#include "sparse/scores.h"

#include <algorithm>
#include <cmath>

namespace wbs::sparse {
namespace {

struct ScoreName_ {
  Score score;
  const char* name;
};
constexpr ScoreName_ kScoreNames[] = {{Score::kL2, "l2"},
                                      {Score::kL1, "l1"},
                                      {Score::kMeanAbs, "mean-abs"},
                                      {Score::kVarBlockMean, "var-block"},
                                      {Score::kVarTensorMean, "var-tensor"}};

template <typename T>
std::vector<double> Scores(const T* w, int64_t numel, const WeightView& v, int br, int bc,
                           int64_t rows, int64_t cols, Score score) {
  double tensor_mean = 0.0;
  if (score == Score::kVarTensorMean && numel > 0) {
    for (int64_t i = 0; i < numel; ++i) tensor_mean += static_cast<double>(w[i]);
    tensor_mean /= static_cast<double>(numel);
  }
  std::vector<double> out(static_cast<size_t>(rows * cols), 0.0);
  std::vector<double> vals;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      vals.clear();
      const int64_t o_end = std::min(v.cout, (r + 1) * br);
      const int64_t i_end = std::min(v.cin, (c + 1) * bc);
      for (int64_t o = r * br; o < o_end; ++o)
        for (int64_t i = c * bc; i < i_end; ++i)
          for (int64_t k = 0; k < v.kernel; ++k)
            vals.push_back(static_cast<double>(w[o * v.out_stride + i * v.in_stride + k]));
      const double n = static_cast<double>(std::max<size_t>(vals.size(), 1));
      double s = 0.0;
      switch (score) {
        case Score::kL2:
          for (double x : vals) s += x * x;
          s = std::sqrt(s);
          break;
        case Score::kL1:
        case Score::kMeanAbs:
          for (double x : vals) s += std::fabs(x);
          if (score == Score::kMeanAbs) s /= n;
          break;
        case Score::kVarBlockMean:
        case Score::kVarTensorMean: {
          double mean = tensor_mean;
          if (score == Score::kVarBlockMean) {
            mean = 0.0;
            for (double x : vals) mean += x;
            mean /= n;
          }
          for (double x : vals) s += (x - mean) * (x - mean);
          s /= n;
          break;
        }
      }
      out[static_cast<size_t>(r * cols + c)] = s;
    }
  }
  return out;
}

}  // namespace

Result<Score> ParseScore(const std::string& name) {
  std::string list;
  for (const auto& s : kScoreNames) {
    if (name == s.name) return s.score;
    list += (list.empty() ? "" : ", ") + std::string(s.name);
  }
  return InvalidArgument("unknown block score '{}' (scores: {})", name, list);
}

const char* ScoreName(Score score) {
  for (const auto& s : kScoreNames)
    if (s.score == score) return s.name;
  return "?";
}

Result<std::vector<double>> BlockScores(const Tensor& weight, MaskLayout layout, int block_rows,
                                        int block_cols, Score score) {
  const std::string what = "weight " + ShapeToString(weight.shape());
  if (block_rows < kMinBlockEdge || block_rows > kMaxBlockEdge || block_cols < kMinBlockEdge ||
      block_cols > kMaxBlockEdge) {
    return InvalidArgument("{}: block {}x{} out of range", what, block_rows, block_cols);
  }
  WBS_ASSIGN_OR_RETURN(WeightView v, MakeWeightView(weight.shape(), layout, what));
  const int64_t rows = (v.cout + block_rows - 1) / block_rows;
  const int64_t cols = (v.cin + block_cols - 1) / block_cols;
  switch (weight.dtype()) {
    case DType::kF32:
      return Scores(weight.data<float>(), weight.numel(), v, block_rows, block_cols, rows, cols,
                    score);
    case DType::kF64:
      return Scores(weight.data<double>(), weight.numel(), v, block_rows, block_cols, rows, cols,
                    score);
    default:
      return Unimplemented("{}: block scores need f32 or f64 weights, got {}", what,
                           DTypeName(weight.dtype()));
  }
}

}  // namespace wbs::sparse
