#include "train/fisher.h"

#include "train/methods_data.h"

namespace wbs::train {

Result<std::vector<torch::Tensor>> AccumulateFisher(GraphModule& m,
                                                    const std::vector<BlockLayer>& layers,
                                                    const data::Dataset& d,
                                                    const data::Normalization& norm,
                                                    const FisherOptions& o, torch::Device device) {
  if (o.samples < 1) return InvalidArgument("Fisher samples {} must be >= 1", o.samples);
  if (o.micro_batch < 1)
    return InvalidArgument("Fisher micro-batch {} must be >= 1", o.micro_batch);
  std::vector<torch::Tensor> fisher;
  const bool was_training = m.is_training();
  int64_t micro_batches = 0;
  Status st = TorchGuard("Fisher accumulation", [&]() -> Status {
    for (const BlockLayer& l : layers)
      fisher.push_back(torch::zeros_like(m.weight(l.weight)).detach());
    m.eval();
    return ForEachBatch(d, norm, o.samples, o.micro_batch, o.seed, device,
                        [&](const torch::Tensor& x, const torch::Tensor& y) {
                          m.zero_grad();
                          torch::Tensor loss =
                              torch::nn::functional::cross_entropy(m.forward(x), y);
                          loss.backward();
                          torch::NoGradGuard no_grad;
                          for (size_t i = 0; i < layers.size(); ++i) {
                            const torch::Tensor& g = m.weight(layers[i].weight).grad();
                            if (g.defined()) fisher[i].add_(g * g);
                          }
                          ++micro_batches;
                          return Status::Ok();
                        });
  });
  m.zero_grad();
  m.train(was_training);
  WBS_RETURN_IF_ERROR(st);
  for (torch::Tensor& f : fisher) f.div_(static_cast<double>(micro_batches));
  return fisher;
}

std::vector<std::vector<double>> FisherBlockScores(GraphModule& m,
                                                   const std::vector<BlockLayer>& layers,
                                                   const std::vector<torch::Tensor>& fisher,
                                                   bool weighted) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<double>> scores;
  for (size_t i = 0; i < layers.size(); ++i) {
    torch::Tensor s = fisher[i];
    if (weighted) {
      const torch::Tensor w = m.weight(layers[i].weight).detach();
      s = s * w * w * 0.5;
    }
    scores.push_back(BlockSums(s, layers[i]));
  }
  return scores;
}

}  // namespace wbs::train
