// Scaffolding shared by the oneDNN fast-path operators (ops_dnnl_conv.cc,
// ops_dnnl_matmul.cc, ops_dnnl_pool.cc, ops_dnnl_elementwise.cc).
//
// Every fast operator follows one life cycle:
//  - its factory declines (returns nullptr, so the reference operator runs)
//    for anything it does not handle: non-f32, non-constant weights where it
//    packs them, attributes oneDNN cannot express; and, when the shapes are
//    static, when oneDNN has no non-reference implementation for them;
//  - primitives are built on the first Run() with a new input shape (and
//    thread count, which oneDNN bakes into its work split) and cached;
//  - weights are packed once per weight layout oneDNN asks for;
//  - a shape that oneDNN rejects at run time (dynamic shapes) runs on a
//    reference operator built alongside, so declining never fails a graph.
//
// Environment switches (read once, logged at info level):
//   WBS_DNNL=0                         decline every fast path (A/B runs)
//   WBS_DNNL_CONV_LAYOUT=auto|plain|any|blocked   force the conv activation
//                                      layout (kernels/dnnl/conv.h)
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "kernels/dnnl/conv.h"
#include "runtime/operator.h"

namespace wbs::runtime::dnnl_ops {

// False when WBS_DNNL=0.
bool DnnlEnabled();
// WBS_DNNL_CONV_LAYOUT, kAuto when unset or invalid (a warning names it).
kernels::onednn::ConvLayout RequestedConvLayout();

// Makes the OpenMP thread count oneDNN will use equal ctx.num_threads
// (the session does the same; direct callers such as tests need not).
void UseThreads(const ExecContext& ctx);
int CurrentThreads();

// All dims known (>= 0).
bool IsStatic(const ir::ValueInfo& v);
// The reference operator for `args`, run for shapes oneDNN rejects.
Result<std::unique_ptr<Operator>> CreateFallback(const OpCreateArgs& args);

// Cache key for one Run() configuration: the listed shapes (each prefixed by
// its rank so [2,3]+[4] and [2]+[3,4] differ) and the thread count.
std::vector<int64_t> RunKey(std::initializer_list<const Shape*> shapes, int threads);

// Packed weights shared between primitives that ask for the same layout.
// dnnl::memory is a reference-counted handle, so copies share the buffer.
class PackedWeights {
 public:
  // The packed memory for `desc`, or an empty handle.
  dnnl::memory Find(const dnnl::memory::desc& desc) const;
  void Add(const dnnl::memory::desc& desc, dnnl::memory packed);

 private:
  std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> entries_;
};

void RegisterConvOperators();    // Conv, ConvTranspose
void RegisterMatMulOperators();  // Gemm, MatMul
void RegisterPoolOperators();    // MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool
void RegisterElementwiseOperators();  // unary activations, Add/Sub/Mul/Div
void RegisterConcatOperator();       // Concat (a threaded copy, ops_dnnl_concat.cc)

}  // namespace wbs::runtime::dnnl_ops
