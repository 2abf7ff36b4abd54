#include "quant/batches.h"

#include <algorithm>
#include <map>
#include <memory>
#include <random>

#include "runtime/session.h"

namespace wbs::quant {

data::Normalization NormalizationFor(const std::string& spec, const data::Dataset& d) {
  if (spec.rfind("fashion-mnist", 0) == 0) return data::FashionMnistNormalization();
  return data::ComputeNormalization(d);
}

std::vector<Tensor> MakeBatches(const data::Dataset& d, const std::vector<int64_t>& indices,
                                int64_t batch, const data::Normalization& norm,
                                std::vector<int32_t>* labels) {
  std::vector<Tensor> out;
  std::mt19937_64 rng(0);
  if (labels) labels->clear();
  for (size_t start = 0; start < indices.size(); start += static_cast<size_t>(batch)) {
    const int64_t b = std::min<int64_t>(batch, static_cast<int64_t>(indices.size() - start));
    Tensor t(DType::kF32, {b, d.channels(), d.height(), d.width()});
    std::vector<int32_t> l(static_cast<size_t>(b));
    data::MakeBatch(d, indices.data() + start, b, norm, data::Augmentation{}, rng, t.data<float>(),
                    l.data());
    if (labels) labels->insert(labels->end(), l.begin(), l.end());
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<int64_t> SampleIndices(const data::Dataset& d, int64_t n, uint64_t seed) {
  std::vector<int64_t> order = data::EpochOrder(d.size(), seed, 0, /*shuffle=*/true);
  if (n < static_cast<int64_t>(order.size())) order.resize(static_cast<size_t>(n));
  return order;
}

Result<std::vector<int32_t>> PredictTop1(const ir::Graph& graph, const std::vector<Tensor>& batches,
                                         int num_threads, bool optimize) {
  if (graph.inputs.size() != 1 || graph.outputs.empty())
    return InvalidArgument("graph '{}': expected one input and an output", graph.name);
  std::map<Shape, std::unique_ptr<runtime::Session>> sessions;
  std::vector<int32_t> top;
  for (const Tensor& b : batches) {
    auto& s = sessions[b.shape()];
    if (!s) {
      runtime::SessionOptions o;
      o.num_threads = num_threads;
      o.optimize = optimize;
      o.input_shapes[graph.inputs[0]->name] = b.shape();
      WBS_ASSIGN_OR_RETURN(s, runtime::Session::Create(graph, o));
    }
    WBS_ASSIGN_OR_RETURN(std::vector<Tensor> out, s->Run({b}));
    const Tensor& y = out[0];
    if (y.rank() != 2 || y.dtype() != DType::kF32 || y.dim(0) != b.dim(0))
      return InvalidArgument("output {} is not f32 [batch, classes]", y.Describe());
    const int64_t c = y.dim(1);
    for (int64_t i = 0; i < y.dim(0); ++i) {
      const float* r = y.data<float>() + i * c;
      top.push_back(static_cast<int32_t>(std::max_element(r, r + c) - r));
    }
  }
  return top;
}

}  // namespace wbs::quant
