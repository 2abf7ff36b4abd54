// IDX files (the MNIST format) and Fashion-MNIST.
//
// IDX: a 4-byte magic {0, 0, type, rank}, rank big-endian uint32 dims, then
// the data in C order. We read ubyte (type 0x08) only, which is what image
// and label files use.
#include <algorithm>
#include <filesystem>

#include "data/dataset.h"

namespace wbs::data {
namespace {

namespace fs = std::filesystem;

constexpr unsigned char kIdxUbyte = 0x08;
constexpr int kMaxIdxRank = 4;

struct IdxFile {
  std::vector<int64_t> dims;
  std::string bytes;   // the whole file
  size_t data_offset;  // where the elements start
};

uint32_t ReadBigEndian32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

const char* IdxTypeName(unsigned char t) {
  switch (t) {
    case 0x08:
      return "ubyte";
    case 0x09:
      return "sbyte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return nullptr;
  }
}

Result<IdxFile> ReadIdx(const std::string& path) {
  IdxFile f;
  WBS_ASSIGN_OR_RETURN(f.bytes, ReadFileMaybeGzip(path));
  const std::string& b = f.bytes;
  if (b.size() < 4) return ParseError("{}: not an IDX file: {} bytes, no magic", path, b.size());
  const auto type = static_cast<unsigned char>(b[2]);
  const int rank = static_cast<unsigned char>(b[3]);
  if (b[0] != 0 || b[1] != 0 || IdxTypeName(type) == nullptr || rank == 0) {
    return ParseError("{}: bad IDX magic {:02x} {:02x} {:02x} {:02x} (want 00 00 <type> <rank>)",
                      path, static_cast<unsigned char>(b[0]), static_cast<unsigned char>(b[1]),
                      type, rank);
  }
  if (type != kIdxUbyte) {
    return Unimplemented("{}: IDX element type {} (0x{:02x}); only ubyte (0x08) is supported", path,
                         IdxTypeName(type), type);
  }
  if (rank > kMaxIdxRank)
    return Unimplemented("{}: IDX rank {} (at most {})", path, rank, kMaxIdxRank);
  f.data_offset = 4 + 4 * static_cast<size_t>(rank);
  if (b.size() < f.data_offset) {
    return ParseError("{}: truncated IDX header: {} bytes, the {} dims need {}", path, b.size(),
                      rank, f.data_offset);
  }
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = ReadBigEndian32(b, 4 + 4 * static_cast<size_t>(i));
    f.dims.push_back(d);
    count *= d;  // at most 4 dims of < 2^32: the product can overflow, checked below
    if (count > kMaxFileBytes)
      return ParseError("{}: IDX dims {} are too large", path, ShapeToString(f.dims));
  }
  const uint64_t have = b.size() - f.data_offset;
  if (have != count) {
    return ParseError("{}: IDX dims {} need {} data bytes, the file has {}{}", path,
                      ShapeToString(f.dims), count, have, have < count ? " (truncated)" : "");
  }
  return f;
}

// Fashion-MNIST's classes, in label order.
const std::vector<std::string>& FashionMnistClassNames() {
  static const std::vector<std::string> kNames = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                  "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};
  return kNames;
}

// DIR/NAME.gz if present, else DIR/NAME.
Result<std::string> FindMaybeGz(const std::string& dir, const std::string& name) {
  const fs::path gz = fs::path(dir) / (name + ".gz");
  const fs::path raw = fs::path(dir) / name;
  std::error_code ec;
  if (fs::is_regular_file(gz, ec)) return gz.string();
  if (fs::is_regular_file(raw, ec)) return raw.string();
  return NotFound("{}: neither {} nor {} exists", dir, gz.filename().string(), name);
}

}  // namespace

Result<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path) {
  WBS_ASSIGN_OR_RETURN(IdxFile images, ReadIdx(images_path));
  WBS_ASSIGN_OR_RETURN(IdxFile labels, ReadIdx(labels_path));
  if (images.dims.size() != 3 && images.dims.size() != 4) {
    return InvalidArgument("{}: IDX images must be [N,H,W] or [N,C,H,W], got {}", images_path,
                           ShapeToString(images.dims));
  }
  if (labels.dims.size() != 1) {
    return InvalidArgument("{}: IDX labels must be [N], got {}", labels_path,
                           ShapeToString(labels.dims));
  }
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    return InvalidArgument("{}: {} labels but {} has {} images", labels_path, labels.dims[0],
                           images_path, n);
  }
  Shape shape = images.dims;
  if (shape.size() == 3) shape.insert(shape.begin() + 1, 1);
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] == 0) {
      return InvalidArgument("{}: IDX image dims {} contain a zero", images_path,
                             ShapeToString(images.dims));
    }
  }
  Dataset d;
  d.images = Tensor(DType::kU8, shape);
  std::copy_n(images.bytes.data() + images.data_offset, d.images.nbytes(),
              static_cast<char*>(d.images.raw()));
  d.labels.resize(static_cast<size_t>(n));
  int max_label = -1;
  for (int64_t i = 0; i < n; ++i) {
    const int v = static_cast<unsigned char>(labels.bytes[labels.data_offset + i]);
    d.labels[i] = v;
    max_label = std::max(max_label, v);
  }
  d.num_classes = max_label + 1;
  for (int c = 0; c < d.num_classes; ++c) d.class_names.push_back(std::to_string(c));
  d.source = images_path;
  return d;
}

Result<Dataset> LoadFashionMnist(Split split, const std::string& dir) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  WBS_ASSIGN_OR_RETURN(std::string images, FindMaybeGz(dir, prefix + "-images-idx3-ubyte"));
  WBS_ASSIGN_OR_RETURN(std::string labels, FindMaybeGz(dir, prefix + "-labels-idx1-ubyte"));
  WBS_ASSIGN_OR_RETURN(Dataset d, LoadIdx(images, labels));
  const auto& names = FashionMnistClassNames();
  if (d.num_classes > static_cast<int>(names.size())) {
    return InvalidArgument("{}: label {} out of range for Fashion-MNIST's {} classes", labels,
                           d.num_classes - 1, names.size());
  }
  d.num_classes = static_cast<int>(names.size());
  d.class_names = names;
  d.source = fmt::format("fashion-mnist {} ({})", SplitName(split), dir);
  return d;
}

}  // namespace wbs::data
