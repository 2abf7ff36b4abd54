// Fused activations: the "wbs.activation" contract of ir/graph.h as a value
// that kernels apply to their output while it is still in cache.
//
// Every kernel that fuses an activation (reference and fast) uses Activate()
// below, so a fused graph computes exactly what the unfused one does
// (elementwise ops in ONNX semantics, in the output's precision).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "core/status.h"

namespace wbs::kernels::ref {

enum class ActivationKind : int32_t {
  kNone = 0,
  kRelu,
  kLeakyRelu,    // alpha: slope for x < 0 (default 0.01)
  kClip,         // alpha: min, beta: max (defaults -inf, +inf)
  kSigmoid,
  kHardSigmoid,  // alpha (default 0.2), beta (default 0.5)
  kTanh,
  kCount,
};

struct Activation {
  ActivationKind kind = ActivationKind::kNone;
  float alpha = 0.0f;
  float beta = 0.0f;

  bool is_none() const { return kind == ActivationKind::kNone; }
};

// The ONNX op type ("Relu", ...); "" for kNone.
const char* ActivationName(ActivationKind kind);

// Builds an activation from its ONNX op type ("" = none) and optional
// parameters; absent parameters take the ONNX defaults listed above.
// InvalidArgument for an unknown op type or Clip with min > max; callers add
// the node to the message.
Result<Activation> MakeActivation(std::string_view op_type, std::optional<float> alpha,
                                  std::optional<float> beta);

template <typename T>
inline T Activate(const Activation& a, T x) {
  switch (a.kind) {
    case ActivationKind::kNone: return x;
    case ActivationKind::kRelu: return x < T(0) ? T(0) : x;
    case ActivationKind::kLeakyRelu: return x < T(0) ? static_cast<T>(a.alpha) * x : x;
    case ActivationKind::kClip:
      return std::min(std::max(x, static_cast<T>(a.alpha)), static_cast<T>(a.beta));
    case ActivationKind::kSigmoid: return T(1) / (T(1) + std::exp(-x));
    case ActivationKind::kHardSigmoid:
      return std::max(T(0), std::min(T(1), static_cast<T>(a.alpha) * x + static_cast<T>(a.beta)));
    case ActivationKind::kTanh: return std::tanh(x);
    case ActivationKind::kCount: break;
  }
  return x;
}

// data[i] = Activate(a, data[i]) for i in [0, n).
template <typename T>
inline void ApplyActivation(const Activation& a, T* data, int64_t n) {
  if (a.kind == ActivationKind::kNone) return;
  if (a.kind == ActivationKind::kRelu) {
    for (int64_t i = 0; i < n; ++i) data[i] = data[i] < T(0) ? T(0) : data[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) data[i] = Activate(a, data[i]);
}

}  // namespace wbs::kernels::ref
