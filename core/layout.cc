#include "core/layout.h"

#include <array>

namespace wbs {

namespace {

constexpr std::array<const char*, static_cast<size_t>(ActivationLayout::kCount)> kNames = {
    "plain", "blocked16", "channels_last", "quad4"};
static_assert(kNames.size() == static_cast<size_t>(ActivationLayout::kCount),
              "one name per ActivationLayout");

// The block of kBlocked16 (oneDNN's f32 block on AVX-512).
constexpr int64_t kChannelBlock = 16;
// The block of kQuad4 (the 4 bytes one VNNI vpdpbusd lane reads).
constexpr int64_t kQuad = 4;

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
  if (layout == ActivationLayout::kQuad4) return shape[1] % kQuad == 0;
  return layout == ActivationLayout::kChannelsLast;
}

void PlainToQuad4(const uint8_t* x, uint8_t* y, int64_t images, int64_t channels, int64_t plane) {
  for (int64_t q = 0; q < images * channels / kQuad; ++q) {
    const uint8_t* s = x + q * kQuad * plane;
    uint8_t* d = y + q * kQuad * plane;
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t l = 0; l < kQuad; ++l) d[i * kQuad + l] = s[l * plane + i];
  }
}

void Quad4ToPlain(const uint8_t* x, uint8_t* y, int64_t images, int64_t channels, int64_t plane) {
  for (int64_t q = 0; q < images * channels / kQuad; ++q) {
    const uint8_t* s = x + q * kQuad * plane;
    uint8_t* d = y + q * kQuad * plane;
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t l = 0; l < kQuad; ++l) d[l * plane + i] = s[i * kQuad + l];
  }
}

}  // namespace wbs
