#include "train/methods_data.h"

#include <algorithm>
#include <exception>
#include <numeric>
#include <random>
#include <vector>

namespace wbs::train {

Status TorchGuard(const std::string& what, const std::function<Status()>& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    return Internal("{}: {}", what, e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Internal("{}: {}", what, e.what());
  }
}

Status ForEachBatch(const data::Dataset& d, const data::Normalization& norm, int64_t max_images,
                    int batch_size, uint64_t seed, torch::Device device, const BatchFn& f) {
  if (batch_size < 1) return InvalidArgument("batch size {} must be >= 1", batch_size);
  const int64_t n = max_images > 0 ? std::min(max_images, d.size()) : d.size();
  if (n == 0) return InvalidArgument("{}: no images", d.source);
  std::vector<int64_t> order;
  if (seed == 0) {
    order.resize(static_cast<size_t>(d.size()));
    std::iota(order.begin(), order.end(), int64_t{0});
  } else {
    order = data::EpochOrder(d.size(), seed, 0);
  }
  const int64_t c = d.channels(), h = d.height(), w = d.width();
  std::mt19937_64 rng(seed);  // unused without augmentation; MakeBatch wants one
  const data::Augmentation none;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t b = std::min<int64_t>(batch_size, n - start);
    torch::Tensor images = torch::empty({b, c, h, w}, torch::kFloat32);
    std::vector<int32_t> labels(static_cast<size_t>(b));
    data::MakeBatch(d, order.data() + start, b, norm, none, rng, images.data_ptr<float>(),
                    labels.data());
    torch::Tensor lab = torch::from_blob(labels.data(), {b}, torch::kInt32).to(torch::kInt64);
    WBS_RETURN_IF_ERROR(f(images.to(device), lab.to(device)));
  }
  return Status::Ok();
}

Status RecalibrateBatchNorm(GraphModule& m, const data::Dataset& d, const data::Normalization& norm,
                            int batches, int batch_size, uint64_t seed, torch::Device device) {
  if (batches <= 0) return Status::Ok();
  const bool was_training = m.is_training();
  Status st = TorchGuard("BatchNorm recalibration", [&]() -> Status {
    torch::NoGradGuard no_grad;
    m.train();
    return ForEachBatch(d, norm, static_cast<int64_t>(batches) * batch_size, batch_size, seed,
                        device, [&](const torch::Tensor& x, const torch::Tensor&) {
                          m.forward(x);
                          return Status::Ok();
                        });
  });
  m.train(was_training);
  return st;
}

Result<EvalResult> EvaluateModule(GraphModule& m, const data::Dataset& d,
                                  const data::Normalization& norm, int64_t max_images,
                                  int batch_size, torch::Device device) {
  const bool was_training = m.is_training();
  double loss = 0;
  int64_t correct = 0, count = 0;
  Status st = TorchGuard("evaluation", [&]() -> Status {
    torch::NoGradGuard no_grad;
    m.eval();
    return ForEachBatch(
        d, norm, max_images, batch_size, 0, device,
        [&](const torch::Tensor& x, const torch::Tensor& y) {
          torch::Tensor logits = m.forward(x);
          loss += torch::nn::functional::cross_entropy(
                      logits, y,
                      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                      .item<double>();
          correct += logits.argmax(1).eq(y).sum().item<int64_t>();
          count += y.size(0);
          return Status::Ok();
        });
  });
  m.train(was_training);
  WBS_RETURN_IF_ERROR(st);
  EvalResult r;
  r.count = count;
  r.loss = count ? loss / static_cast<double>(count) : 0.0;
  r.accuracy = count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
  return r;
}

}  // namespace wbs::train
