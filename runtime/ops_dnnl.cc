// oneDNN fast paths: registration and the pieces the operators share.
#include <omp.h>

#include <cstdlib>
#include <string>

#include "core/env.h"
#include "core/logging.h"
#include "runtime/operator.h"
#include "runtime/ops_dnnl_internal.h"

namespace wbs::runtime {

namespace dnnl_ops {

bool DnnlEnabled() {
  static const bool enabled =
      EnvSwitchOn("WBS_DNNL", "WBS_DNNL=0: oneDNN fast paths disabled, reference operators run");
  return enabled;
}

kernels::onednn::ConvLayout RequestedConvLayout() {
  static const kernels::onednn::ConvLayout layout = [] {
    auto l = kernels::onednn::ConvLayout::kAuto;
    const char* v = std::getenv("WBS_DNNL_CONV_LAYOUT");
    if (v == nullptr) return l;
    if (!kernels::onednn::ParseConvLayout(v, &l)) {
      WBS_LOG_WARN("WBS_DNNL_CONV_LAYOUT='{}' is not auto|plain|any|blocked; using auto", v);
      return kernels::onednn::ConvLayout::kAuto;
    }
    WBS_LOG_INFO("WBS_DNNL_CONV_LAYOUT={}: oneDNN convolutions use this activation layout", v);
    return l;
  }();
  return layout;
}

void UseThreads(const ExecContext& ctx) {
  const int n = ctx.num_threads > 0 ? ctx.num_threads : 1;
  if (omp_get_max_threads() != n) omp_set_num_threads(n);
}

int CurrentThreads() { return omp_get_max_threads(); }

bool IsStatic(const ir::ValueInfo& v) {
  if (!v.has_shape) return false;
  for (int64_t d : v.shape)
    if (d < 0) return false;
  return true;
}

Result<std::unique_ptr<Operator>> CreateFallback(const OpCreateArgs& args) {
  OpCreateArgs ref_args = args;
  ref_args.backend = Backend::kReference;
  return CreateOperator(ref_args);
}

std::vector<int64_t> RunKey(std::initializer_list<const Shape*> shapes, int threads) {
  std::vector<int64_t> key;
  for (const Shape* s : shapes) {
    if (s == nullptr) {
      key.push_back(-1);  // an absent operand
      continue;
    }
    key.push_back(static_cast<int64_t>(s->size()));
    key.insert(key.end(), s->begin(), s->end());
  }
  key.push_back(threads);
  return key;
}

dnnl::memory PackedWeights::Find(const dnnl::memory::desc& desc) const {
  for (const auto& [d, m] : entries_)
    if (d == desc) return m;
  return dnnl::memory();
}

void PackedWeights::Add(const dnnl::memory::desc& desc, dnnl::memory packed) {
  entries_.emplace_back(desc, std::move(packed));
}

}  // namespace dnnl_ops

void RegisterDnnlOperators() {
  dnnl_ops::RegisterConvOperators();
  dnnl_ops::RegisterMatMulOperators();
  dnnl_ops::RegisterPoolOperators();
  dnnl_ops::RegisterElementwiseOperators();
  dnnl_ops::RegisterConcatOperator();
}

}  // namespace wbs::runtime
