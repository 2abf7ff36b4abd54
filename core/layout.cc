#include "core/layout.h"

#include <array>

namespace wbs {

namespace {

constexpr std::array<const char*, static_cast<size_t>(ActivationLayout::kCount)> kNames = {
    "plain", "blocked16", "channels_last", "quad4", "blocked8"};
static_assert(kNames.size() == static_cast<size_t>(ActivationLayout::kCount),
              "one name per ActivationLayout");

// The blocks of kBlocked16 and kBlocked8 (oneDNN's f32 blocks with
// AVX-512 and with AVX2 or less: one vector of floats).
constexpr int64_t kChannelBlock16 = 16;
constexpr int64_t kChannelBlock8 = 8;
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
  if (layout == ActivationLayout::kBlocked16) return shape[1] % kChannelBlock16 == 0;
  if (layout == ActivationLayout::kBlocked8) return shape[1] % kChannelBlock8 == 0;
  if (layout == ActivationLayout::kQuad4) return shape[1] % kQuad == 0;
  return layout == ActivationLayout::kChannelsLast;
}

namespace {

// Moves every group of 4 channel planes between plain (c, h, w) and
// interleaved (h, w, c4) order; one loop for both directions.
template <bool kToQuad>
void CopyQuads(const uint8_t* x, uint8_t* y, int64_t images, int64_t channels, int64_t plane) {
  for (int64_t q = 0; q < images * channels / kQuad; ++q) {
    const uint8_t* s = x + q * kQuad * plane;
    uint8_t* d = y + q * kQuad * plane;
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t l = 0; l < kQuad; ++l) {
        if constexpr (kToQuad) {
          d[i * kQuad + l] = s[l * plane + i];
        } else {
          d[l * plane + i] = s[i * kQuad + l];
        }
      }
  }
}

}  // namespace

void PlainToQuad4(const uint8_t* x, uint8_t* y, int64_t images, int64_t channels, int64_t plane) {
  CopyQuads<true>(x, y, images, channels, plane);
}

void Quad4ToPlain(const uint8_t* x, uint8_t* y, int64_t images, int64_t channels, int64_t plane) {
  CopyQuads<false>(x, y, images, channels, plane);
}

}  // namespace wbs
