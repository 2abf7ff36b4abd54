#include "kernels/ref/activation.h"

#include <array>
#include <string>

namespace wbs::kernels::ref {

namespace {
constexpr std::array<const char*, static_cast<size_t>(ActivationKind::kCount)> kNames = {
    "", "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "Tanh"};
static_assert(kNames.size() == static_cast<size_t>(ActivationKind::kCount),
              "one name per ActivationKind");
}  // namespace

const char* ActivationName(ActivationKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < kNames.size() ? kNames[i] : "?";
}

Result<Activation> MakeActivation(std::string_view op_type, std::optional<float> alpha,
                                  std::optional<float> beta) {
  Activation a;
  if (op_type.empty()) return a;
  for (size_t i = 1; i < kNames.size(); ++i) {
    if (op_type == kNames[i]) a.kind = static_cast<ActivationKind>(i);
  }
  switch (a.kind) {
    case ActivationKind::kNone:
      return InvalidArgument("unsupported fused activation '{}'", std::string(op_type));
    case ActivationKind::kLeakyRelu: a.alpha = alpha.value_or(0.01f); break;
    case ActivationKind::kClip:
      a.alpha = alpha.value_or(-std::numeric_limits<float>::infinity());
      a.beta = beta.value_or(std::numeric_limits<float>::infinity());
      if (a.alpha > a.beta)
        return InvalidArgument("fused Clip has min {} > max {}", a.alpha, a.beta);
      break;
    case ActivationKind::kHardSigmoid:
      a.alpha = alpha.value_or(0.2f);
      a.beta = beta.value_or(0.5f);
      break;
    default: break;
  }
  return a;
}

}  // namespace wbs::kernels::ref
