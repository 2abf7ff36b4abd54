// Datasets for training and calibration, torch-free (wbs_data: used by
// train/ and quant/). Images are kept as uint8 [N, C, H, W]; batches are made
// as normalised f32 on demand, with optional augmentation.
//
// Sources (LoadDataset spec strings, also the CLI's --data values; docs/DATA.md):
//   "fashion-mnist"            /usr/share/datasets/fashion-mnist/*-ubyte.gz
//   "fashion-mnist:DIR"        the same four files in DIR (.gz or raw)
//   "idx:IMAGES,LABELS"        one IDX pair (ubyte images [N,H,W] or [N,C,H,W],
//                              labels [N]; gz or raw): the train split only
//   "idx:TRI,TRL,TEI,TEL"      train pair, then test pair
//   "folder:DIR"               DIR/<class>/<file>.png (or binary .pgm/.ppm);
//                              class names sorted, files sorted by name; all
//                              images must share one size and channel count
//                              (no resizing: the error names the odd file).
//                              If DIR/train and DIR/test exist they are the
//                              two splits; otherwise DIR is the train split
//                              and asking for the test split is an error.
// Bad input -> one-line error naming the file and what is wrong.
//
// Randomness (EpochOrder, SplitValidation, MakeBatch's augmentation) uses
// std::mt19937_64 (whose output sequence the standard fixes) and our own
// bounded draws and shuffle, never std::shuffle/std::uniform_int_distribution
// (implementation-defined), so a seed gives the same result on every platform.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace wbs::data {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct Dataset {
  Tensor images;                // u8 [N, C, H, W]
  std::vector<int32_t> labels;  // N entries in [0, num_classes)
  int num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  std::string source;                    // for logs: file or folder
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t channels() const;  // 0 for an empty (undefined) dataset
  int64_t height() const;
  int64_t width() const;
  // "fashion-mnist train: 60000 x [1,28,28], 10 classes"-style one-liner.
  std::string Describe() const;
};

enum class Split { kTrain, kTest };
const char* SplitName(Split split);  // "train" / "test"

// spec as in the header comment; split picks train/test files where the
// source has both.
Result<Dataset> LoadDataset(const std::string& spec, Split split);
Result<Dataset> LoadFashionMnist(Split split, const std::string& dir = kFashionMnistDir);
// Labels must be < 256 classes; num_classes = max label + 1 and class names
// are "0".."K-1".
Result<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path);
Result<Dataset> LoadImageFolder(const std::string& dir);

// The whole file, gunzipped through zlib if it starts with the gzip magic,
// as is otherwise. A truncated or corrupt gzip stream is an error naming the
// file. Files (after decompression) larger than kMaxFileBytes are refused.
inline constexpr size_t kMaxFileBytes = size_t{4} << 30;
Result<std::string> ReadFileMaybeGzip(const std::string& path);

// The images at `indices` (a copy), e.g. for a subset or a split. Indices
// must be in [0, size()) (asserted).
Dataset Subset(const Dataset& d, const std::vector<int64_t>& indices);
// A seeded shuffle split (not stratified): returns {train, validation} with
// round(fraction * N) images in validation (fraction clamped to [0, 1]); each
// part keeps the dataset's order. Deterministic for a seed.
std::pair<Dataset, Dataset> SplitValidation(const Dataset& d, double fraction, uint64_t seed);

// Per-channel mean/stddev of images scaled to [0, 1].
struct Normalization {
  std::vector<float> mean;
  std::vector<float> stddev;
};
// Population statistics over every pixel; a constant channel gets stddev 1
// (so normalising never divides by zero).
Normalization ComputeNormalization(const Dataset& d);
// Fashion-MNIST's train-set statistics (0.2860, 0.3530).
Normalization FashionMnistNormalization();

struct Augmentation {
  int pad_crop = 0;    // zero-pad by this many pixels, then random crop back
  bool hflip = false;  // random horizontal flip, p = 0.5
  bool enabled() const { return pad_crop > 0 || hflip; }
};

// Writes batch images (f32 [B, C, H, W], (x/255 - mean)/std) and labels for
// the dataset entries `indices[0..B)`. Augmentation uses `rng` (the padding
// is raw pixel 0, so it normalises to -mean/std). `norm` has one entry per
// channel, or one entry used for every channel (asserted).
void MakeBatch(const Dataset& d, const int64_t* indices, int64_t batch, const Normalization& norm,
               const Augmentation& aug, std::mt19937_64& rng, float* images, int32_t* labels);

// Epoch order: 0..N-1, shuffled with a generator seeded from (seed, epoch), so
// epoch e's order is the same whether or not the run was resumed.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch, bool shuffle = true);

// A uniform draw in [0, n) from `rng` (n > 0), the same on every platform.
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n);

}  // namespace wbs::data
