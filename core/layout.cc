#include "core/layout.h"

#include <array>

namespace wbs {

namespace {

constexpr std::array<const char*, static_cast<size_t>(ActivationLayout::kCount)> kNames = {
    "plain", "blocked16", "channels_last"};
static_assert(kNames.size() == static_cast<size_t>(ActivationLayout::kCount),
              "one name per ActivationLayout");

// The block of kBlocked16 (oneDNN's f32 block on AVX-512).
constexpr int64_t kChannelBlock = 16;

}  // namespace

const char* ActivationLayoutName(ActivationLayout layout) {
  const auto i = static_cast<size_t>(layout);
  return i < kNames.size() ? kNames[i] : "?";
}

bool LayoutFits(ActivationLayout layout, const Shape& shape) {
  if (layout == ActivationLayout::kPlain) return true;
  if (shape.size() < 3 || shape.size() > 5) return false;
  for (int64_t d : shape)
    if (d < 0) return false;
  if (layout == ActivationLayout::kBlocked16) return shape[1] % kChannelBlock == 0;
  return layout == ActivationLayout::kChannelsLast;
}

}  // namespace wbs
