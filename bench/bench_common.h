// Shared helpers for the Google Benchmark binaries in bench/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/random_weights.h"  // RandomTensor
#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "runtime/session.h"

namespace wbs::bench {

// First line of every bench main(): chooses how idle OpenMP threads wait
// exactly as `wbs` does (core/omp_wait.h; may re-execute the process) and
// prints the choice on stderr ("OpenMP wait: spin (...)"), so each result
// says which policy produced it.
void ChooseOmpWait(char** argv);

// One row of a conv-shape data file (bench/data/*_convs.csv). h, w are the
// input's spatial size; count = how many of the model's Conv nodes have it.
struct ConvShape {
  int64_t cin = 0, cout = 0, k = 0, stride = 1, pad = 0, h = 0, w = 0;
  int64_t count = 1;
  std::string layer;  // a representative layer name, for reports

  int64_t out_h() const { return (h + 2 * pad - k) / stride + 1; }
  int64_t out_w() const { return (w + 2 * pad - k) / stride + 1; }
  // Multiply-adds count as 2 FLOPs; bias not counted. Batch 1.
  double flops() const { return 2.0 * cin * cout * k * k * out_h() * out_w(); }
  // "cin64_cout256_k1_s1_p0_56x56"
  std::string Name() const;
  bool SameShape(const ConvShape& o) const;
};

// Reads a CSV whose header names at least cin,cout,k,stride,pad,h,w (count
// and layer optional); lines starting with '#' are comments.
Result<std::vector<ConvShape>> ReadConvShapes(const std::string& path);

// The distinct Conv shapes of a graph (batch-1 inputs, square kernels,
// symmetric pads, group 1), in first-seen order, with counts.
Result<std::vector<ConvShape>> DistinctConvShapes(ir::Graph& graph);

// A one-node graph: x f32[1,cin,h,w] -> Conv(+bias) -> y, seeded weights.
std::unique_ptr<ir::Graph> BuildConvGraph(const ConvShape& s, uint64_t seed);

// Random values of a type the graphs exchange: f32 standard normal, u8/s8
// over their whole range. Other types are an error.
Result<Tensor> RandomTensorOf(DType type, const Shape& shape, uint64_t seed);

// Random inputs for every graph input (f32 only), seeded per input.
Result<std::vector<Tensor>> RandomInputs(const ir::Graph& graph, uint64_t seed);

// Per-node profile of a prepared graph (e.g. Session::graph(), after the
// default passes): each node runs alone in a one-node session (optimize off,
// same backend and threads) on random inputs of its inferred shapes;
// time = median of `repeats` runs after 2 warm-ups. Isolated timings miss
// cache reuse between nodes and include allocating the node's outputs (a
// one-node session's outputs are graph outputs), so they approximate the
// node's share of the whole run; their sum vs the model's latency shows the
// runtime's own overhead. Inputs keep their quantization parameters and
// block masks (int8 graphs profile too); nodes with runtime inputs other than
// f32/u8/s8 (e.g. computed shapes) are skipped.
struct NodeTiming {
  std::string name, op_type, impl;
  double ms = 0;
};
Result<std::vector<NodeTiming>> ProfileNodes(const ir::Graph& prepared, runtime::Backend backend,
                                             int threads, int repeats);

}  // namespace wbs::bench
