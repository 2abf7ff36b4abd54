// Dataset utilities: spec strings, subsets, splits, normalisation, batches,
// epoch order.
#include "data/dataset.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

namespace wbs::data {
namespace {

namespace fs = std::filesystem;

// SplitMix64's finaliser: turns structured seeds (0, 1, 2, ... or
// (seed, epoch) pairs) into well-mixed generator seeds.
uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Salts keep the split's permutation independent of any epoch's order.
constexpr uint64_t kEpochSalt = 0x45504f4348ull;  // "EPOCH"
constexpr uint64_t kSplitSalt = 0x53504c4954ull;  // "SPLIT"

void Shuffle(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1], v[UniformBelow(rng, i)]);
  }
}

std::vector<std::string> SplitOn(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return parts;
}

Result<Dataset> LoadFolderSpec(const std::string& dir, Split split) {
  std::error_code ec;
  const fs::path train = fs::path(dir) / "train", test = fs::path(dir) / "test";
  if (fs::is_directory(train, ec) && fs::is_directory(test, ec)) {
    return LoadImageFolder((split == Split::kTrain ? train : test).string());
  }
  if (split == Split::kTest) {
    return NotFound("{}: no test split (want {}/train and {}/test sub-folders)", dir, dir, dir);
  }
  return LoadImageFolder(dir);
}

}  // namespace

int64_t Dataset::channels() const { return images.defined() ? images.dim(1) : 0; }
int64_t Dataset::height() const { return images.defined() ? images.dim(2) : 0; }
int64_t Dataset::width() const { return images.defined() ? images.dim(3) : 0; }

std::string Dataset::Describe() const {
  return fmt::format("{}: {} x [{},{},{}], {} classes", source, size(), channels(), height(),
                     width(), num_classes);
}

const char* SplitName(Split split) { return split == Split::kTrain ? "train" : "test"; }

uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  assert(n > 0);
  // Rejection sampling: exact, and the same on every platform.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

Result<Dataset> LoadDataset(const std::string& spec, Split split) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "fashion-mnist") {
    if (colon != std::string::npos && arg.empty()) {
      return InvalidArgument("data spec '{}': empty directory after 'fashion-mnist:'", spec);
    }
    return LoadFashionMnist(split, arg.empty() ? kFashionMnistDir : arg);
  }
  if (kind == "idx") {
    const std::vector<std::string> files = SplitOn(arg, ',');
    const bool any_empty =
        std::any_of(files.begin(), files.end(), [](const std::string& f) { return f.empty(); });
    if ((files.size() != 2 && files.size() != 4) || any_empty) {
      return InvalidArgument(
          "data spec '{}': want idx:IMAGES,LABELS or idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,"
          "TEST_LABELS",
          spec);
    }
    if (split == Split::kTest && files.size() == 2) {
      return InvalidArgument(
          "data spec '{}': one IDX pair is the train split only; give four "
          "files for a test split",
          spec);
    }
    const size_t at = split == Split::kTrain ? 0 : 2;
    return LoadIdx(files[at], files[at + 1]);
  }
  if (kind == "folder") {
    if (arg.empty()) return InvalidArgument("data spec '{}': want folder:DIR", spec);
    return LoadFolderSpec(arg, split);
  }
  return InvalidArgument(
      "data spec '{}': unknown source '{}' (want fashion-mnist[:DIR], idx:IMAGES,LABELS[,...] or "
      "folder:DIR)",
      spec, kind);
}

Dataset Subset(const Dataset& d, const std::vector<int64_t>& indices) {
  Dataset s;
  s.num_classes = d.num_classes;
  s.class_names = d.class_names;
  s.source = d.source;
  const int64_t n = static_cast<int64_t>(indices.size());
  if (!d.images.defined()) return s;
  s.images = Tensor(DType::kU8, {n, d.channels(), d.height(), d.width()});
  const int64_t per = d.channels() * d.height() * d.width();
  const uint8_t* src = d.images.data<uint8_t>();
  uint8_t* dst = s.images.data<uint8_t>();
  s.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = indices[i];
    assert(j >= 0 && j < d.size());
    std::memcpy(dst + i * per, src + j * per, static_cast<size_t>(per));
    s.labels[i] = d.labels[j];
  }
  return s;
}

std::pair<Dataset, Dataset> SplitValidation(const Dataset& d, double fraction, uint64_t seed) {
  fraction = std::clamp(std::isnan(fraction) ? 0.0 : fraction, 0.0, 1.0);
  const int64_t n = d.size();
  const auto n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(Mix64(seed ^ Mix64(kSplitSalt)));
  Shuffle(perm, rng);
  std::vector<int64_t> val(perm.begin(), perm.begin() + n_val);
  std::vector<int64_t> train(perm.begin() + n_val, perm.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  Dataset t = Subset(d, train), v = Subset(d, val);
  t.source += " (train part)";
  v.source += " (validation part)";
  return {std::move(t), std::move(v)};
}

Normalization ComputeNormalization(const Dataset& d) {
  Normalization norm;
  const int64_t c = d.channels(), per = d.height() * d.width(), n = d.size();
  const uint8_t* src = d.images.defined() ? d.images.data<uint8_t>() : nullptr;
  for (int64_t ch = 0; ch < c; ++ch) {
    // Integer sums are exact (255^2 * 2^32 pixels still fits in 64 bits).
    uint64_t sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* p = src + (i * c + ch) * per;
      for (int64_t k = 0; k < per; ++k) {
        sum += p[k];
        sum_sq += uint64_t{p[k]} * p[k];
      }
    }
    const double count = static_cast<double>(n * per) * 255.0;
    const double mean = count > 0 ? static_cast<double>(sum) / count : 0.0;
    const double ex2 = count > 0 ? static_cast<double>(sum_sq) / (count * 255.0) : 0.0;
    const double var = std::max(0.0, ex2 - mean * mean);
    const double sd = std::sqrt(var);
    norm.mean.push_back(static_cast<float>(mean));
    norm.stddev.push_back(sd > 1e-12 ? static_cast<float>(sd) : 1.0f);
  }
  return norm;
}

Normalization FashionMnistNormalization() { return {{0.2860f}, {0.3530f}}; }

void MakeBatch(const Dataset& d, const int64_t* indices, int64_t batch, const Normalization& norm,
               const Augmentation& aug, std::mt19937_64& rng, float* images, int32_t* labels) {
  const int64_t c = d.channels(), h = d.height(), w = d.width();
  assert(norm.mean.size() == norm.stddev.size());
  assert(norm.mean.size() == 1 || static_cast<int64_t>(norm.mean.size()) == c);
  // Per channel: y = x * scale + bias with scale = 1/(255 std), bias = -mean/std.
  std::vector<float> scale(static_cast<size_t>(c)), bias(static_cast<size_t>(c));
  for (int64_t ch = 0; ch < c; ++ch) {
    const size_t k = norm.mean.size() == 1 ? 0 : static_cast<size_t>(ch);
    scale[ch] = 1.0f / (255.0f * norm.stddev[k]);
    bias[ch] = -norm.mean[k] / norm.stddev[k];
  }
  const uint8_t* src = d.images.data<uint8_t>();
  const int64_t pad = std::max(0, aug.pad_crop);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t j = indices[b];
    assert(j >= 0 && j < d.size());
    labels[b] = d.labels[j];
    // Crop offsets in [0, 2*pad] of the padded image, then an optional flip;
    // drawn in this order per image so a seed fixes the whole batch.
    int64_t dy = 0, dx = 0;
    if (pad > 0) {
      dy = static_cast<int64_t>(UniformBelow(rng, 2 * pad + 1)) - pad;
      dx = static_cast<int64_t>(UniformBelow(rng, 2 * pad + 1)) - pad;
    }
    const bool flip = aug.hflip && UniformBelow(rng, 2) == 1;
    for (int64_t ch = 0; ch < c; ++ch) {
      const uint8_t* s = src + (j * c + ch) * h * w;
      float* o = images + (b * c + ch) * h * w;
      const float sc = scale[ch], bi = bias[ch];
      if (dy == 0 && dx == 0 && !flip) {
        for (int64_t k = 0; k < h * w; ++k) o[k] = static_cast<float>(s[k]) * sc + bi;
        continue;
      }
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y + dy;
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sx = (flip ? w - 1 - x : x) + dx;
          const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
          o[y * w + x] = inside ? static_cast<float>(s[sy * w + sx]) * sc + bi : bi;
        }
      }
    }
  }
}

std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  std::mt19937_64 rng(Mix64(Mix64(seed ^ kEpochSalt) + static_cast<uint64_t>(epoch)));
  Shuffle(order, rng);
  return order;
}

}  // namespace wbs::data
