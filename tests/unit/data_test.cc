#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "data/dataset.h"

namespace wbs::data {
namespace {

namespace fs = std::filesystem;

bool HaveFashionMnist() {
  return fs::exists(fs::path(kFashionMnistDir) / "train-images-idx3-ubyte.gz");
}

// IDX bytes: magic {0, 0, 0x08, rank}, big-endian dims, data.
std::string IdxBytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                     unsigned char type = 0x08) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int k = 3; k >= 0; --k) s += static_cast<char>((d >> (8 * k)) & 0xff);
  }
  s.append(reinterpret_cast<const char*>(data.data()), data.size());
  return s;
}

std::string Gzip(const std::string& raw) {
  uLongf cap = compressBound(raw.size()) + 64;
  std::string out(cap, '\0');
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(cap);
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A dataset whose image i has every pixel of channel c equal to (i * 7 + c) % 256
// and label i % classes, so subsets can be traced back to their source.
Dataset Synthetic(int64_t n, int64_t c, int64_t h, int64_t w, int classes) {
  Dataset d;
  d.images = Tensor(DType::kU8, {n, c, h, w});
  uint8_t* p = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t k = 0; k < h * w; ++k)
        p[(i * c + ch) * h * w + k] = static_cast<uint8_t>((i * 7 + ch) % 256);
    }
    d.labels.push_back(static_cast<int32_t>(i % classes));
  }
  d.num_classes = classes;
  for (int k = 0; k < classes; ++k) d.class_names.push_back(std::to_string(k));
  d.source = "synthetic";
  return d;
}

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("wbs_data_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string Write(const std::string& name, const std::string& bytes) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(Path(name), std::ios::binary) << bytes;
    return Path(name);
  }
  // Writes an 8-bit PNG (channels 1 or 3) from CHW `chw` with libpng.
  std::string WritePng(const std::string& name, int c, int h, int w,
                       const std::vector<uint8_t>& chw) {
    fs::create_directories((dir_ / name).parent_path());
    std::vector<uint8_t> hwc(chw.size());
    for (int ch = 0; ch < c; ++ch) {
      for (int k = 0; k < h * w; ++k) hwc[k * c + ch] = chw[ch * h * w + k];
    }
    png_image img;
    std::memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    img.width = static_cast<png_uint_32>(w);
    img.height = static_cast<png_uint_32>(h);
    img.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    EXPECT_TRUE(png_image_write_to_file(&img, Path(name).c_str(), 0, hwc.data(), 0, nullptr))
        << img.message;
    return Path(name);
  }
  static std::vector<uint8_t> Ramp(size_t n, int start) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((start + 13 * i) % 256);
    return v;
  }
  fs::path dir_;
};

// ---- Fashion-MNIST (the real files) ----

TEST_F(DataTest, FashionMnistTrainAndTest) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto train = LoadFashionMnist(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(train->images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(train->images.dtype(), DType::kU8);
  EXPECT_EQ(train->num_classes, 10);
  ASSERT_EQ(train->class_names.size(), 10u);
  EXPECT_EQ(train->class_names[9], "Ankle boot");
  // First labels and the first image's pixel sum, read from the file with
  // Python's gzip module.
  const std::vector<int32_t> first_train = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  EXPECT_EQ(std::vector<int32_t>(train->labels.begin(), train->labels.begin() + 10), first_train);
  const uint8_t* p = train->images.data<uint8_t>();
  EXPECT_EQ(std::accumulate(p, p + 784, int64_t{0}), 76247);
  std::vector<int64_t> per_class(10, 0);
  for (int32_t l : train->labels) ++per_class[l];
  for (int64_t c : per_class) EXPECT_EQ(c, 6000);  // Fashion-MNIST is balanced

  auto test = LoadDataset("fashion-mnist", Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status().ToString();
  EXPECT_EQ(test->size(), 10000);
  EXPECT_EQ(test->images.shape(), (Shape{10000, 1, 28, 28}));
  const std::vector<int32_t> first_test = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  EXPECT_EQ(std::vector<int32_t>(test->labels.begin(), test->labels.begin() + 10), first_test);
  const uint8_t* q = test->images.data<uint8_t>();
  EXPECT_EQ(std::accumulate(q, q + 784, int64_t{0}), 33456);

  // The published statistics are the train set's.
  const Normalization norm = ComputeNormalization(*train);
  const Normalization ref = FashionMnistNormalization();
  ASSERT_EQ(norm.mean.size(), 1u);
  EXPECT_NEAR(norm.mean[0], ref.mean[0], 1e-3);
  EXPECT_NEAR(norm.stddev[0], ref.stddev[0], 1e-3);
}

// ---- IDX ----

TEST_F(DataTest, IdxGzipAndRawGiveTheSameDataset) {
  const std::vector<uint8_t> pixels = Ramp(5 * 3 * 4, 1);
  const std::vector<uint8_t> labels = {2, 0, 1, 2, 0};
  const std::string img = IdxBytes({5, 3, 4}, pixels), lab = IdxBytes({5}, labels);
  Write("raw/img", img);
  Write("raw/lab", lab);
  Write("gz/img.gz", Gzip(img));
  Write("gz/lab.gz", Gzip(lab));
  auto raw = LoadIdx(Path("raw/img"), Path("raw/lab"));
  auto gz = LoadIdx(Path("gz/img.gz"), Path("gz/lab.gz"));
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  ASSERT_TRUE(gz.ok()) << gz.status().ToString();
  for (const Dataset* d : {&*raw, &*gz}) {
    EXPECT_EQ(d->images.shape(), (Shape{5, 1, 3, 4}));
    EXPECT_EQ(d->images.ToVector<uint8_t>(), pixels);
    EXPECT_EQ(d->labels, (std::vector<int32_t>{2, 0, 1, 2, 0}));
    EXPECT_EQ(d->num_classes, 3);
  }
  // The spec string form.
  auto spec = LoadDataset("idx:" + Path("gz/img.gz") + "," + Path("raw/lab"), Split::kTrain);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->images.ToVector<uint8_t>(), pixels);
  auto no_test = LoadDataset("idx:" + Path("gz/img.gz") + "," + Path("raw/lab"), Split::kTest);
  EXPECT_FALSE(no_test.ok());
}

TEST_F(DataTest, IdxFourDimsAreNCHW) {
  const std::vector<uint8_t> pixels = Ramp(2 * 3 * 2 * 2, 5);
  Write("img", IdxBytes({2, 3, 2, 2}, pixels));
  Write("lab", IdxBytes({2}, {1, 0}));
  auto d = LoadIdx(Path("img"), Path("lab"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->images.shape(), (Shape{2, 3, 2, 2}));
  EXPECT_EQ(d->images.ToVector<uint8_t>(), pixels);
}

TEST_F(DataTest, FashionMnistDirWithRawFiles) {
  // A stand-in Fashion-MNIST directory with raw (not gzipped) files.
  for (const char* prefix : {"train", "t10k"}) {
    Write(std::string(prefix) + "-images-idx3-ubyte", IdxBytes({3, 2, 2}, Ramp(12, 0)));
    Write(std::string(prefix) + "-labels-idx1-ubyte", IdxBytes({3}, {9, 0, 4}));
  }
  auto d = LoadDataset("fashion-mnist:" + dir_.string(), Split::kTest);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->size(), 3);
  EXPECT_EQ(d->num_classes, 10);
  EXPECT_EQ(d->class_names[4], "Coat");
  auto missing = LoadDataset("fashion-mnist:" + Path("nowhere"), Split::kTrain);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("train-images-idx3-ubyte"), std::string::npos)
      << missing.status().message();
}

TEST_F(DataTest, CorruptIdxFilesGiveErrorsNamingTheFile) {
  const std::string good_img = IdxBytes({4, 2, 2}, Ramp(16, 0));
  const std::string good_lab = IdxBytes({4}, {0, 1, 2, 3});
  Write("good_img", good_img);
  Write("good_lab", good_lab);
  ASSERT_TRUE(LoadIdx(Path("good_img"), Path("good_lab")).ok());

  struct Case {
    std::string name, bytes, want;
    bool is_labels;
  };
  std::string bad_magic = good_img;
  bad_magic[0] = 1;
  std::string truncated = good_img.substr(0, good_img.size() - 3);
  std::string gz = Gzip(good_img);
  // A plain array, not a std::vector: GCC 12 warns (dangling-pointer) on an
  // initializer_list of structs holding strings.
  const Case cases[] = {
      {"bad_magic", bad_magic, "bad IDX magic", false},
      {"float_type", IdxBytes({4, 2, 2}, std::vector<uint8_t>(64, 0), 0x0D), "float32", false},
      {"truncated", truncated, "truncated", false},
      {"trailing", good_img + "xx", "the file has 18", false},
      {"short_header", good_img.substr(0, 9), "truncated IDX header", false},
      {"tiny", "ab", "no magic", false},
      {"truncated_gz", gz.substr(0, gz.size() / 2), "truncated gzip", false},
      {"rank2_images", IdxBytes({4, 4}, Ramp(16, 0)), "[N,H,W] or [N,C,H,W]", false},
      {"count_mismatch", IdxBytes({3}, {0, 1, 2}), "3 labels but", true},
      {"rank2_labels", IdxBytes({4, 1}, {0, 1, 2, 3}), "labels must be [N]", true},
  };
  for (const Case& c : cases) {
    const std::string path = Write(c.name, c.bytes);
    auto r = c.is_labels ? LoadIdx(Path("good_img"), path) : LoadIdx(path, Path("good_lab"));
    ASSERT_FALSE(r.ok()) << c.name;
    const std::string msg = r.status().message();
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.want), std::string::npos) << c.name << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name << ": " << msg;
  }
  // A missing file.
  auto missing = LoadIdx(Path("nope"), Path("good_lab"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(DataTest, BadSpecStrings) {
  for (const std::string spec :
       {"", "mnist", "idx:a", "idx:a,b,c", "idx:a,", "folder:", "fashion-mnist:"}) {
    auto r = LoadDataset(spec, Split::kTrain);
    ASSERT_FALSE(r.ok()) << spec;
    EXPECT_NE(r.status().message().find("data spec"), std::string::npos) << r.status().message();
  }
}

// ---- Image folders ----

TEST_F(DataTest, ImageFolderGrayPngs) {
  // Classes are sorted ("cat" < "dog"), files sorted within a class.
  const auto a = Ramp(5 * 6, 0), b = Ramp(5 * 6, 100), c = Ramp(5 * 6, 200);
  WritePng("f/dog/x.png", 1, 5, 6, c);
  WritePng("f/cat/2.png", 1, 5, 6, b);
  WritePng("f/cat/1.png", 1, 5, 6, a);
  Write("f/README.txt", "top-level files are not classes");
  Write("f/cat/.hidden", "skipped");
  auto d = LoadImageFolder(Path("f"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->images.shape(), (Shape{3, 1, 5, 6}));
  EXPECT_EQ(d->class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d->labels, (std::vector<int32_t>{0, 0, 1}));
  std::vector<uint8_t> want = a;
  want.insert(want.end(), b.begin(), b.end());
  want.insert(want.end(), c.begin(), c.end());
  EXPECT_EQ(d->images.ToVector<uint8_t>(), want);
}

TEST_F(DataTest, ImageFolderRgbPngsAndPnm) {
  const auto a = Ramp(3 * 4 * 2, 7), b = Ramp(3 * 4 * 2, 50);
  WritePng("f/a/img.png", 3, 4, 2, a);
  // The same size as binary PPM (P6, HWC raster).
  std::string ppm = "P6\n# a comment\n2 4\n255\n";
  for (int k = 0; k < 8; ++k) {
    for (int ch = 0; ch < 3; ++ch) ppm += static_cast<char>(b[ch * 8 + k]);
  }
  Write("f/b/img.ppm", ppm);
  auto d = LoadImageFolder(Path("f"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->images.shape(), (Shape{2, 3, 4, 2}));
  std::vector<uint8_t> want = a;
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(d->images.ToVector<uint8_t>(), want);
}

TEST_F(DataTest, ImageFolderErrorsNameTheFile) {
  WritePng("size/a/1.png", 1, 4, 4, Ramp(16, 0));
  const std::string odd = WritePng("size/b/2.png", 1, 5, 4, Ramp(20, 0));
  auto r = LoadImageFolder(Path("size"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(odd), std::string::npos) << r.status().message();

  WritePng("chan/a/1.png", 1, 4, 4, Ramp(16, 0));
  const std::string rgb = WritePng("chan/a/2.png", 3, 4, 4, Ramp(48, 0));
  r = LoadImageFolder(Path("chan"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(rgb), std::string::npos) << r.status().message();

  WritePng("stray/a/1.png", 1, 4, 4, Ramp(16, 0));
  const std::string txt = Write("stray/a/notes.txt", "x");
  r = LoadImageFolder(Path("stray"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(txt), std::string::npos) << r.status().message();

  const std::string bad = Write("badpng/a/1.png", "not a png at all");
  r = LoadImageFolder(Path("badpng"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();

  fs::create_directories(dir_ / "empty" / "a");
  EXPECT_FALSE(LoadImageFolder(Path("empty")).ok());
  EXPECT_FALSE(LoadImageFolder(Path("missing")).ok());
}

TEST_F(DataTest, FolderSpecWithTrainAndTestSplits) {
  WritePng("s/train/a/1.png", 1, 2, 2, Ramp(4, 0));
  WritePng("s/train/b/1.png", 1, 2, 2, Ramp(4, 1));
  WritePng("s/test/a/1.png", 1, 2, 2, Ramp(4, 2));
  auto train = LoadDataset("folder:" + Path("s"), Split::kTrain);
  auto test = LoadDataset("folder:" + Path("s"), Split::kTest);
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  ASSERT_TRUE(test.ok()) << test.status().ToString();
  EXPECT_EQ(train->size(), 2);
  EXPECT_EQ(test->size(), 1);
  // A single folder has no test split.
  WritePng("one/a/1.png", 1, 2, 2, Ramp(4, 0));
  EXPECT_TRUE(LoadDataset("folder:" + Path("one"), Split::kTrain).ok());
  EXPECT_FALSE(LoadDataset("folder:" + Path("one"), Split::kTest).ok());
}

// ---- Subsets, splits, order ----

TEST(DataSplitTest, SubsetCopiesImagesAndLabels) {
  const Dataset d = Synthetic(10, 2, 3, 3, 4);
  const Dataset s = Subset(d, {7, 2, 2});
  EXPECT_EQ(s.images.shape(), (Shape{3, 2, 3, 3}));
  EXPECT_EQ(s.labels, (std::vector<int32_t>{3, 2, 2}));
  EXPECT_EQ(s.images.data<uint8_t>()[0], 49);   // image 7, channel 0
  EXPECT_EQ(s.images.data<uint8_t>()[9], 50);   // image 7, channel 1
  EXPECT_EQ(s.images.data<uint8_t>()[18], 14);  // image 2
  EXPECT_EQ(s.num_classes, 4);
}

// Recovers each image's source index from the Synthetic pixel code.
std::vector<int64_t> SourceIndices(const Dataset& d) {
  std::vector<int64_t> idx;
  const int64_t per = d.channels() * d.height() * d.width();
  for (int64_t i = 0; i < d.size(); ++i) {
    const int v = d.images.data<uint8_t>()[i * per];
    idx.push_back(v * 183 % 256);  // 7 * 183 = 1281 = 1 (mod 256)
  }
  return idx;
}

TEST(DataSplitTest, SplitValidationIsDeterministicAndPartitions) {
  const Dataset d = Synthetic(200, 1, 2, 2, 10);
  auto [t1, v1] = SplitValidation(d, 0.1, 42);
  auto [t2, v2] = SplitValidation(d, 0.1, 42);
  auto [t3, v3] = SplitValidation(d, 0.1, 43);
  EXPECT_EQ(v1.size(), 20);
  EXPECT_EQ(t1.size(), 180);
  EXPECT_EQ(SourceIndices(v1), SourceIndices(v2));
  EXPECT_TRUE(t1.images.Identical(t2.images));
  EXPECT_NE(SourceIndices(v1), SourceIndices(v3));
  // Train and validation partition the dataset (each part in dataset order).
  std::vector<int64_t> tv = SourceIndices(t1), vv = SourceIndices(v1);
  EXPECT_TRUE(std::is_sorted(tv.begin(), tv.end()));
  EXPECT_TRUE(std::is_sorted(vv.begin(), vv.end()));
  std::set<int64_t> all(tv.begin(), tv.end());
  all.insert(vv.begin(), vv.end());
  EXPECT_EQ(all.size(), 200u);
  // Labels travel with their images.
  for (int64_t i = 0; i < v1.size(); ++i) EXPECT_EQ(v1.labels[i], vv[i] % 10);
  // Rounding and clamping.
  EXPECT_EQ(SplitValidation(d, 0.0025, 1).second.size(), 1);  // round(0.5) = 1
  EXPECT_EQ(SplitValidation(d, 0.0, 1).second.size(), 0);
  EXPECT_EQ(SplitValidation(d, 2.0, 1).second.size(), 200);
}

TEST(DataSplitTest, EpochOrderIsASeededPermutation) {
  const auto a = EpochOrder(1000, 7, 3);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(a, iota);
  EXPECT_EQ(EpochOrder(1000, 7, 3), a);  // a resumed run sees the same order
  EXPECT_NE(EpochOrder(1000, 7, 4), a);
  EXPECT_NE(EpochOrder(1000, 8, 3), a);
  EXPECT_EQ(EpochOrder(1000, 7, 3, /*shuffle=*/false), iota);
  EXPECT_TRUE(EpochOrder(0, 7, 3).empty());
}

// ---- Batches and augmentation ----

TEST(DataBatchTest, MakeBatchNormalises) {
  Dataset d = Synthetic(4, 2, 3, 3, 2);
  const Normalization norm{{0.5f, 0.25f}, {0.2f, 0.4f}};
  std::mt19937_64 rng(1);
  const std::vector<int64_t> idx = {3, 0};
  std::vector<float> x(2 * 2 * 9);
  std::vector<int32_t> y(2);
  MakeBatch(d, idx.data(), 2, norm, Augmentation{}, rng, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<int32_t>{1, 0}));
  EXPECT_NEAR(x[0], (21 / 255.0 - 0.5) / 0.2, 1e-5);       // image 3, channel 0
  EXPECT_NEAR(x[9], (22 / 255.0 - 0.25) / 0.4, 1e-5);      // image 3, channel 1
  EXPECT_NEAR(x[18 + 9], (1 / 255.0 - 0.25) / 0.4, 1e-5);  // image 0, channel 1
  // One normalisation entry applies to every channel.
  MakeBatch(d, idx.data(), 2, Normalization{{0.5f}, {0.2f}}, Augmentation{}, rng, x.data(),
            y.data());
  EXPECT_NEAR(x[9], (22 / 255.0 - 0.5) / 0.2, 1e-5);
}

TEST(DataBatchTest, AugmentationIsAShiftOrFlipWithinRange) {
  // Random distinct pixels, so each output identifies its shift and flip.
  const int64_t n = 8, c = 2, h = 6, w = 7;
  Dataset d;
  d.images = Tensor(DType::kU8, {n, c, h, w});
  std::mt19937_64 fill(5);
  for (int64_t k = 0; k < d.images.numel(); ++k)
    d.images.data<uint8_t>()[k] = static_cast<uint8_t>(1 + fill() % 255);
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(0);
  d.num_classes = 1;
  const Normalization norm{{0.3f, 0.6f}, {0.5f, 0.2f}};
  const Augmentation aug{/*pad_crop=*/2, /*hflip=*/true};
  ASSERT_TRUE(aug.enabled());
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> x(n * c * h * w), x2(x.size());
  std::vector<int32_t> y(n);
  int flips = 0, shifts = 0;
  for (int rep = 0; rep < 20; ++rep) {
    std::mt19937_64 rng(rep), rng2(rep);
    MakeBatch(d, idx.data(), n, norm, aug, rng, x.data(), y.data());
    MakeBatch(d, idx.data(), n, norm, aug, rng2, x2.data(), y.data());
    EXPECT_EQ(x, x2);  // the generator's state fixes the batch
    for (int64_t i = 0; i < n; ++i) {
      // Find the (dy, dx, flip) that explains image i, channel by channel.
      bool found = false;
      for (int flip = 0; flip < 2 && !found; ++flip) {
        for (int dy = -2; dy <= 2 && !found; ++dy) {
          for (int dx = -2; dx <= 2 && !found; ++dx) {
            bool match = true;
            for (int64_t ch = 0; ch < c && match; ++ch) {
              const float lo = -norm.mean[ch] / norm.stddev[ch];
              const float hi = (1 - norm.mean[ch]) / norm.stddev[ch];
              for (int64_t yy = 0; yy < h && match; ++yy) {
                for (int64_t xx = 0; xx < w && match; ++xx) {
                  const float v = x[((i * c + ch) * h + yy) * w + xx];
                  EXPECT_GE(v, lo - 1e-5f);
                  EXPECT_LE(v, hi + 1e-5f);
                  const int64_t sy = yy + dy, sx = (flip ? w - 1 - xx : xx) + dx;
                  const bool in = sy >= 0 && sy < h && sx >= 0 && sx < w;
                  const float raw =
                      in ? d.images.data<uint8_t>()[((i * c + ch) * h + sy) * w + sx] : 0;
                  match = std::abs(v - (raw / 255.0f - norm.mean[ch]) / norm.stddev[ch]) < 1e-5f;
                }
              }
            }
            if (match) {
              found = true;
              flips += flip;
              shifts += (dy != 0 || dx != 0);
            }
          }
        }
      }
      EXPECT_TRUE(found) << "image " << i << " of repeat " << rep << " is not a shift/flip";
    }
  }
  // 160 draws: both outcomes of each random choice occur.
  EXPECT_GT(flips, 0);
  EXPECT_LT(flips, 160);
  EXPECT_GT(shifts, 0);
}

TEST(DataBatchTest, ComputeNormalizationPerChannel) {
  Dataset d = Synthetic(2, 2, 1, 2, 1);  // channel 0: 0, 7; channel 1: 1, 8
  const Normalization n = ComputeNormalization(d);
  ASSERT_EQ(n.mean.size(), 2u);
  EXPECT_NEAR(n.mean[0], 3.5 / 255, 1e-6);
  EXPECT_NEAR(n.stddev[0], 3.5 / 255, 1e-6);
  EXPECT_NEAR(n.mean[1], 4.5 / 255, 1e-6);
  // A constant channel gets stddev 1 (no division by zero).
  Dataset flat = Synthetic(1, 1, 2, 2, 1);
  EXPECT_EQ(ComputeNormalization(flat).stddev[0], 1.0f);
}

}  // namespace
}  // namespace wbs::data
