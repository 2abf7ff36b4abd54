#include "runtime/ops_nn_common.h"

#include <optional>

namespace wbs::runtime {

Result<kernels::ref::Activation> FusedActivationOf(const ir::Node& node) {
  const std::string op = node.GetString("wbs.activation", "");
  auto param = [&](const char* name) -> std::optional<float> {
    if (!node.Has(name)) return std::nullopt;
    return node.GetFloat(name, 0.0f);
  };
  auto act = kernels::ref::MakeActivation(op, param("wbs.activation_alpha"),
                                          param("wbs.activation_beta"));
  if (!act.ok()) return act.status().WithContext(node.Describe());
  return act;
}

}  // namespace wbs::runtime
