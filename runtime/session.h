// Session: a prepared, executable graph.
//
// Create() copies the graph, fixes unknown input dims from the user's
// shapes (default batch 1), runs the default passes, infers shapes, creates
// one Operator per node and plans activation memory: when every shape is
// static, all intermediate tensors live in one arena whose offsets are
// assigned by lifetime (buffers are reused once their last reader ran;
// an operator that allows it writes its output over an input whose last
// reader it is, Operator::InPlaceInput, e.g. a block-sparse conv over its
// fused residual; WBS_INPLACE=0 turns that off).
// Values whose shapes depend on data are allocated when produced. Fast
// operators then negotiate the layouts of the tensors they exchange (see
// Operator in runtime/operator.h), so consecutive oneDNN convolutions skip
// their plain <-> blocked reorders.
//
// WBS_PROFILE_STEPS=1 times every operator inside Run() and prints, when the
// session is destroyed, the median per step and the sum against the median
// Run() (session.cc: "where the time between operators goes").
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/pass.h"
#include "runtime/operator.h"

namespace wbs::runtime {

struct SessionOptions {
  Backend backend = Backend::kFast;
  int num_threads = 1;
  // Shapes for graph inputs by name; unknown dims of other inputs become 1
  // (batch) and are an error elsewhere.
  std::map<std::string, Shape> input_shapes;
  bool optimize = true;  // run the default IR passes (BN folding, fusion, ...)
  // Let fast operators exchange blocked / channels-last tensors instead of
  // reordering to plain and back between them (core/layout.h; the
  // environment switch WBS_PROPAGATE_LAYOUTS=0 turns it off everywhere).
  bool negotiate_layouts = true;
};

struct MemoryPlanStats {
  size_t arena_bytes = 0;        // bytes of the shared activation arena
  size_t unplanned_bytes = 0;    // sum of all planned tensors' sizes without reuse
  size_t num_planned = 0;
  size_t num_in_place = 0;  // planned tensors written over an input's buffer (InPlaceInput)
  bool fully_static = false;
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> Create(const ir::Graph& graph, const SessionOptions& options);
  ~Session();

  // Inputs in graph-input order. Returns outputs in graph-output order.
  Result<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs);

  const ir::Graph& graph() const;
  const MemoryPlanStats& memory_stats() const;
  // "op_type:impl" per node, for logs (e.g. "Conv:onednn").
  std::vector<std::string> NodeImplementations() const;
  // The intermediate tensors operators exchange in a non-plain layout.
  std::vector<std::pair<std::string, ActivationLayout>> NonPlainValues() const;

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Evaluates nodes with reference operators; used for constant folding.
std::unique_ptr<ir::NodeEvaluator> CreateReferenceEvaluator();

}  // namespace wbs::runtime
