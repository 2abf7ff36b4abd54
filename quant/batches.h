// Image batches for calibration and evaluation (quant/, cli, tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "ir/graph.h"

namespace wbs::quant {

// The normalisation a model expects for `spec`: Fashion-MNIST's train-set
// statistics for "fashion-mnist[...]", else the statistics of `d`.
data::Normalization NormalizationFor(const std::string& spec, const data::Dataset& d);

// f32 batches [B, C, H, W] of the images at `indices` (the last batch may be
// smaller); labels in order when `labels` is not null.
std::vector<Tensor> MakeBatches(const data::Dataset& d, const std::vector<int64_t>& indices,
                                int64_t batch, const data::Normalization& norm,
                                std::vector<int32_t>* labels);

// The first `n` images of a seeded shuffle of d (all of d when n >= size).
std::vector<int64_t> SampleIndices(const data::Dataset& d, int64_t n, uint64_t seed);

// Top-1 class per image of `graph` (one input, output 0 = [B, classes]) on
// `batches`; the session runs with `optimize` (default passes, incl.
// lower-qdq) on the fast backend.
Result<std::vector<int32_t>> PredictTop1(const ir::Graph& graph, const std::vector<Tensor>& batches,
                                         int num_threads, bool optimize = true);

}  // namespace wbs::quant
