#include "train/methods_select.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "train/methods_data.h"

namespace wbs::train {
namespace {

// Score given to an already-zeroed block so that it is chosen again first:
// below every real score (scores are >= 0) yet small enough not to move a
// layer's mean, which global mode divides by.
constexpr double kZeroedScore = -1e-20;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The weight's [COUT, CIN, kernel] view as a contiguous tensor.
torch::Tensor OutInKernel(const torch::Tensor& t, const BlockLayer& l) {
  torch::Tensor x = t;
  if (l.layout == MaskLayout::kInOut) x = x.t();
  return x.reshape({l.view.cout, l.view.cin, -1});
}

// L2 and L1 sum over a block's numbers, so a ragged edge block (e.g. the
// 2 x 8 block of classes 8-9 in a 10-class FC with 8x8 blocks) scores low
// only because it is small, and per-layer selection zeroes almost all of
// its row first (starving those outputs). Scale such blocks to the score a
// full block with the same per-number magnitude would have (L2: by
// sqrt(full / n), L1: by full / n); full blocks are unchanged.
void NormaliseRaggedBlocks(const BlockLayer& l, sparse::Score score, std::vector<double>& s) {
  if (score != sparse::Score::kL2 && score != sparse::Score::kL1) return;
  const double full = static_cast<double>(l.block_rows) * static_cast<double>(l.block_cols);
  for (int64_t r = 0; r < l.rows; ++r) {
    const int64_t nr = std::min<int64_t>(l.block_rows, l.view.cout - r * l.block_rows);
    for (int64_t c = 0; c < l.cols; ++c) {
      const int64_t nc = std::min<int64_t>(l.block_cols, l.view.cin - c * l.block_cols);
      const double ratio = full / static_cast<double>(nr * nc);
      if (ratio == 1.0) continue;
      s[static_cast<size_t>(r * l.cols + c)] *=
          score == sparse::Score::kL2 ? std::sqrt(ratio) : ratio;
    }
  }
}

int64_t CountZero(const std::vector<uint8_t>& keep) {
  return static_cast<int64_t>(std::count(keep.begin(), keep.end(), uint8_t{0}));
}

// Per-layer selection at `level` whose total reaches round(level * all
// blocks) although keep_channels caps some layers: each round the shortfall
// is split over the layers not yet capped, in proportion to their size (as
// whole blocks; the remainder to the largest layers), until the total is
// reached or every layer is capped. floor[i]: blocks of layer i already zero
// (a monotone schedule), never asked for fewer.
Result<std::vector<std::vector<uint8_t>>> ChooseFillingTarget(
    const std::vector<sparse::LayerScores>& ls, sparse::SparsifyOptions so, double level,
    const std::vector<int64_t>& floor) {
  const size_t n = ls.size();
  std::vector<int64_t> blocks(n), asked(n);
  std::vector<std::vector<uint8_t>> keep(n);
  std::vector<uint8_t> capped(n, 0);
  int64_t all = 0;
  for (size_t i = 0; i < n; ++i) {
    blocks[i] = ls[i].rows * ls[i].cols;
    asked[i] = std::max<int64_t>(floor[i], std::llround(level * static_cast<double>(blocks[i])));
    all += blocks[i];
  }
  const int64_t want = static_cast<int64_t>(std::llround(level * static_cast<double>(all)));
  auto choose = [&](size_t i) -> Status {
    asked[i] = std::min(asked[i], blocks[i]);
    // An exact count: ChooseBlocks rounds fraction * blocks back to it.
    so.sparsity = blocks[i] ? static_cast<double>(asked[i]) / static_cast<double>(blocks[i]) : 0;
    WBS_ASSIGN_OR_RETURN(auto k, sparse::ChooseBlocks({ls[i]}, so));
    keep[i] = std::move(k[0]);
    if (CountZero(keep[i]) < asked[i] || asked[i] >= blocks[i]) capped[i] = 1;
    return Status::Ok();
  };
  for (size_t i = 0; i < n; ++i) WBS_RETURN_IF_ERROR(choose(i));
  std::vector<size_t> largest(n);
  std::iota(largest.begin(), largest.end(), size_t{0});
  std::stable_sort(largest.begin(), largest.end(),
                   [&](size_t a, size_t b) { return blocks[a] > blocks[b]; });
  for (size_t round = 0; round <= n; ++round) {
    int64_t zero = 0, open = 0;
    for (size_t i = 0; i < n; ++i) {
      zero += CountZero(keep[i]);
      if (!capped[i]) open += blocks[i];
    }
    const int64_t deficit = want - zero;
    if (deficit <= 0 || open == 0) break;
    int64_t given = 0;
    for (size_t i = 0; i < n; ++i) {
      if (capped[i]) continue;
      const int64_t share = deficit * blocks[i] / open;
      asked[i] = CountZero(keep[i]) + share;
      given += share;
    }
    for (size_t i : largest) {
      if (given >= deficit) break;
      if (capped[i]) continue;
      ++asked[i];
      ++given;
    }
    for (size_t i = 0; i < n; ++i)
      if (!capped[i]) WBS_RETURN_IF_ERROR(choose(i));
  }
  return keep;
}

}  // namespace

Result<std::vector<BlockLayer>> FindBlockLayers(const GraphModule& module,
                                                const sparse::LayerRules& rules) {
  WBS_ASSIGN_OR_RETURN(std::vector<sparse::Layer> found, sparse::FindLayers(module.graph(), rules));
  const std::vector<std::string>& names = module.weight_names();
  std::vector<BlockLayer> layers;
  for (const sparse::Layer& l : found) {
    if (!l.blockable) continue;
    if (std::find(names.begin(), names.end(), l.weight->name) == names.end()) {
      return InvalidArgument("{}: weight '{}' is not a trainable parameter of the module",
                             l.node->Describe(), l.weight->name);
    }
    BlockLayer b;
    b.node = l.node->name;
    b.weight = l.weight->name;
    b.layout = l.layout;
    b.view = l.view;
    b.block_rows = rules.block_rows;
    b.block_cols = rules.block_cols;
    b.rows = CeilDiv(l.view.cout, rules.block_rows);
    b.cols = CeilDiv(l.view.cin, rules.block_cols);
    layers.push_back(std::move(b));
  }
  return layers;
}

Status ValidateSelectOptions(const SelectOptions& o, const std::vector<BlockLayer>& layers) {
  sparse::SparsifyOptions so;
  so.sparsity = o.sparsity;
  so.min_layer = o.min_layer;
  so.max_layer = o.max_layer;
  WBS_RETURN_IF_ERROR(sparse::ValidateOptions(so));
  if (!o.per_layer.empty() && o.global) {
    return InvalidArgument("per-layer targets and --global exclude each other");
  }
  for (const auto& [name, target] : o.per_layer) {
    if (!(target >= 0.0 && target <= 1.0)) {
      return InvalidArgument("per-layer target of '{}' is {}, not in [0, 1]", name, target);
    }
    const bool known = std::any_of(layers.begin(), layers.end(), [&](const BlockLayer& l) {
      return l.node == name || l.weight == name;
    });
    if (!known) return InvalidArgument("per-layer target names '{}', not a blockable layer", name);
  }
  return Status::Ok();
}

std::vector<double> LayerTargets(const std::vector<BlockLayer>& layers, const SelectOptions& o) {
  std::vector<double> t(layers.size(), o.sparsity);
  for (size_t i = 0; i < layers.size(); ++i) {
    auto it = o.per_layer.find(layers[i].node);
    if (it == o.per_layer.end()) it = o.per_layer.find(layers[i].weight);
    if (it != o.per_layer.end()) t[i] = it->second;
  }
  return t;
}

Result<std::vector<BlockMask>> SelectMasks(const std::vector<BlockLayer>& layers,
                                           const std::vector<std::vector<double>>& scores,
                                           const SelectOptions& o, double level,
                                           const std::vector<BlockMask>* previous) {
  WBS_RETURN_IF_ERROR(ValidateSelectOptions(o, layers));
  if (scores.size() != layers.size() || (previous && previous->size() != layers.size())) {
    return Internal("SelectMasks: {} layers, {} score sets, {} previous masks", layers.size(),
                    scores.size(), previous ? previous->size() : 0);
  }
  if (!(level >= 0.0 && level <= o.sparsity + 1e-12)) {
    return InvalidArgument("sparsity level {} is not in [0, {}]", level, o.sparsity);
  }
  std::vector<sparse::LayerScores> ls(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const BlockLayer& l = layers[i];
    if (static_cast<int64_t>(scores[i].size()) != l.num_blocks()) {
      return Internal("layer '{}': {} scores for {} blocks", l.node, scores[i].size(),
                      l.num_blocks());
    }
    ls[i] = {scores[i], l.rows, l.cols};
    if (previous) {
      const BlockMask& p = (*previous)[i];
      if (p.rows != l.rows || p.cols != l.cols) {
        return Internal("layer '{}': previous mask {}x{} for {}x{} blocks", l.node, p.rows, p.cols,
                        l.rows, l.cols);
      }
      for (size_t b = 0; b < p.keep.size(); ++b)
        if (!p.keep[b]) ls[i].scores[b] = kZeroedScore;
    }
  }
  sparse::SparsifyOptions so;
  so.rules.block_rows = layers.empty() ? 8 : layers[0].block_rows;
  so.rules.block_cols = layers.empty() ? 8 : layers[0].block_cols;
  so.global = o.global;
  so.min_layer = o.min_layer;
  so.max_layer = o.max_layer;
  so.keep_channels = o.keep_channels;
  so.seed = o.seed;
  std::vector<std::vector<uint8_t>> keep;
  if (o.per_layer.empty() && o.fill_target && !o.global) {
    std::vector<int64_t> floor(layers.size(), 0);
    if (previous) {
      for (size_t i = 0; i < layers.size(); ++i) floor[i] = (*previous)[i].num_zero();
    }
    WBS_ASSIGN_OR_RETURN(keep, ChooseFillingTarget(ls, so, level, floor));
  } else if (o.per_layer.empty()) {
    so.sparsity = level;
    WBS_ASSIGN_OR_RETURN(keep, sparse::ChooseBlocks(ls, so));
  } else {
    // Each layer on its own, at its target scaled like the schedule's level.
    const std::vector<double> targets = LayerTargets(layers, o);
    const double scale = o.sparsity > 0.0 ? level / o.sparsity : 1.0;
    for (size_t i = 0; i < layers.size(); ++i) {
      so.sparsity = std::clamp(targets[i] * scale, 0.0, 1.0);
      WBS_ASSIGN_OR_RETURN(auto k, sparse::ChooseBlocks({ls[i]}, so));
      keep.push_back(std::move(k[0]));
    }
  }
  std::vector<BlockMask> masks;
  for (size_t i = 0; i < layers.size(); ++i) {
    const BlockLayer& l = layers[i];
    BlockMask m = BlockMask::AllKept(l.block_rows, l.block_cols, l.rows, l.cols, l.layout);
    m.keep = std::move(keep[i]);
    if (previous) {
      const BlockMask& p = (*previous)[i];
      for (size_t b = 0; b < p.keep.size(); ++b) {
        if (!p.keep[b] && m.keep[b]) {
          return Internal("layer '{}': level {} would revive zeroed block {}", l.node, level, b);
        }
      }
    }
    masks.push_back(std::move(m));
  }
  return masks;
}

std::optional<torch::Tensor> BatchNormScale(GraphModule& module, const BlockLayer& l) {
  const ir::Graph& g = module.graph();
  const ir::Value* w = g.FindValue(l.weight);
  if (!w || l.layout != MaskLayout::kOutIn) return std::nullopt;
  for (const ir::Node* conv : w->users) {
    if (conv->op_type != "Conv" || conv->input(1) != w || conv->outputs.empty()) continue;
    const ir::Value* y = conv->outputs[0];
    if (y->users.size() != 1) return std::nullopt;
    const ir::Node* bn = y->users[0];
    if (bn->op_type != "BatchNormalization" || bn->input(0) != y || !bn->input(1) ||
        !bn->input(4)) {
      return std::nullopt;
    }
    const auto& params = module.weight_names();
    const auto& buffers = module.buffer_names();
    const std::string& gamma = bn->input(1)->name;
    const std::string& var = bn->input(4)->name;
    if (std::find(params.begin(), params.end(), gamma) == params.end() ||
        std::find(buffers.begin(), buffers.end(), var) == buffers.end()) {
      return std::nullopt;
    }
    const double eps = bn->GetFloat("epsilon", 1e-5f);
    torch::NoGradGuard no_grad;
    torch::Tensor scale =
        module.weight(gamma).detach().to(torch::kCPU, torch::kFloat32).abs() /
        (module.buffer(var).detach().to(torch::kCPU, torch::kFloat32) + eps).sqrt();
    if (scale.numel() != l.view.cout) return std::nullopt;
    return scale;
  }
  return std::nullopt;
}

Result<std::vector<std::vector<double>>> MagnitudeScores(GraphModule& module,
                                                         const std::vector<BlockLayer>& layers,
                                                         sparse::Score score, bool bn_scaled) {
  std::vector<std::vector<double>> out;
  for (const BlockLayer& l : layers) {
    torch::Tensor w =
        module.weight(l.weight).detach().to(torch::kCPU, torch::kFloat32).contiguous();
    if (bn_scaled) {
      std::optional<torch::Tensor> scale;
      WBS_RETURN_IF_ERROR(TorchGuard("layer '" + l.node + "': BatchNorm scale", [&] {
        scale = BatchNormScale(module, l);
        if (scale) {
          std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
          shape[0] = l.view.cout;
          w = (w * scale->reshape(shape)).contiguous();
        }
        return Status::Ok();
      }));
    }
    Shape shape(w.sizes().begin(), w.sizes().end());
    // A view of the torch storage: `w` outlives the call.
    Tensor t = Tensor::Wrap(DType::kF32, shape, w.data_ptr<float>(), nullptr);
    Result<std::vector<double>> s =
        sparse::BlockScores(t, l.layout, l.block_rows, l.block_cols, score);
    if (!s.ok()) return s.status().WithContext("layer '" + l.node + "'");
    NormaliseRaggedBlocks(l, score, *s);
    out.push_back(std::move(*s));
  }
  return out;
}

std::vector<double> BlockSums(const torch::Tensor& t, const BlockLayer& l) {
  torch::NoGradGuard no_grad;
  torch::Tensor x = OutInKernel(t.detach().to(torch::kCPU, torch::kFloat64), l).sum(2);
  const int64_t pr = l.rows * l.block_rows - l.view.cout;
  const int64_t pc = l.cols * l.block_cols - l.view.cin;
  if (pr > 0 || pc > 0) x = torch::constant_pad_nd(x, {0, pc, 0, pr});
  x = x.reshape({l.rows, l.block_rows, l.cols, l.block_cols}).sum({1, 3}).contiguous();
  const double* p = x.data_ptr<double>();
  return std::vector<double>(p, p + x.numel());
}

torch::Tensor ExpandBlocks(const torch::Tensor& blocks, const BlockLayer& l,
                           const torch::Tensor& weight) {
  torch::Tensor e = blocks.repeat_interleave(l.block_rows, 0)
                        .repeat_interleave(l.block_cols, 1)
                        .narrow(0, 0, l.view.cout)
                        .narrow(1, 0, l.view.cin);
  if (l.layout == MaskLayout::kInOut) return e.t();
  std::vector<int64_t> shape = {l.view.cout, l.view.cin};
  for (int64_t d = 2; d < weight.dim(); ++d) shape.push_back(1);
  return e.reshape(shape);
}

torch::Tensor MaskTensor(const BlockMask& mask, torch::Device device) {
  torch::Tensor t = torch::empty({mask.rows, mask.cols}, torch::kFloat32);
  float* p = t.data_ptr<float>();
  for (size_t i = 0; i < mask.keep.size(); ++i) p[i] = mask.keep[i] ? 1.0f : 0.0f;
  return t.to(device);
}

double BlockSparsity(const std::vector<BlockMask>& masks) {
  int64_t zero = 0, all = 0;
  for (const BlockMask& m : masks) {
    zero += m.num_zero();
    all += m.num_blocks();
  }
  return all ? static_cast<double>(zero) / static_cast<double>(all) : 0.0;
}

}  // namespace wbs::train
