// Datasets for training and calibration, torch-free (wbs_data: used by
// train/ and quant/). Images are kept as uint8 [N, C, H, W]; batches are made
// as normalised f32 on demand, with optional augmentation.
//
// Sources (LoadDataset spec strings, also the CLI's --data values):
//   "fashion-mnist"            /usr/share/datasets/fashion-mnist/*-ubyte.gz
//   "fashion-mnist:DIR"        the same four files in DIR (.gz or raw)
//   "idx:IMAGES,LABELS"        any IDX pair (ubyte images [N,H,W] or
//                              [N,C,H,W]... gz or raw), labels [N]
//   "folder:DIR"               DIR/<class>/<file>.png (or .pgm/.ppm); class
//                              names sorted; images resized? no: all images
//                              must share one size (error names the file)
// Bad input -> one-line error naming the file and what is wrong.
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
  Tensor images;                 // u8 [N, C, H, W]
  std::vector<int32_t> labels;   // N entries in [0, num_classes)
  int num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  std::string source;                    // for logs: file or folder
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t channels() const;
  int64_t height() const;
  int64_t width() const;
};

enum class Split { kTrain, kTest };

// spec as in the header comment; split picks train/test files where the
// source has both (a folder source has one split: kTest gives an error unless
// DIR/test exists next to DIR/train).
Result<Dataset> LoadDataset(const std::string& spec, Split split);
Result<Dataset> LoadFashionMnist(Split split, const std::string& dir = kFashionMnistDir);
Result<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path);
Result<Dataset> LoadImageFolder(const std::string& dir);

// The images at `indices` (a copy), e.g. for a subset or a split.
Dataset Subset(const Dataset& d, const std::vector<int64_t>& indices);
// A seeded, stratified-free shuffle split: returns {train, validation} with
// round(fraction * N) images in validation. Deterministic for a seed.
std::pair<Dataset, Dataset> SplitValidation(const Dataset& d, double fraction, uint64_t seed);

// Per-channel mean/stddev of images scaled to [0, 1].
struct Normalization {
  std::vector<float> mean;
  std::vector<float> stddev;
};
Normalization ComputeNormalization(const Dataset& d);
// Fashion-MNIST's train-set statistics (0.2860, 0.3530).
Normalization FashionMnistNormalization();

struct Augmentation {
  int pad_crop = 0;     // zero-pad by this many pixels, then random crop back
  bool hflip = false;   // random horizontal flip, p = 0.5
  bool enabled() const { return pad_crop > 0 || hflip; }
};

// Writes batch images (f32 [B, C, H, W], (x/255 - mean)/std) and labels for
// the dataset entries `indices[0..B)`. Augmentation uses `rng`.
void MakeBatch(const Dataset& d, const int64_t* indices, int64_t batch, const Normalization& norm,
               const Augmentation& aug, std::mt19937_64& rng, float* images, int32_t* labels);

// Epoch order: 0..N-1, shuffled with a generator seeded from (seed, epoch), so
// epoch e's order is the same whether or not the run was resumed.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch, bool shuffle = true);

}  // namespace wbs::data
