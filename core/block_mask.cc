#include "core/block_mask.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace wbs {
namespace {

// Masks larger than this many blocks are refused when decoding (a 2 GiB
// weight in 1x1 blocks of a 16-bit type stays below it).
constexpr int64_t kMaxMaskBlocks = int64_t{1} << 31;

// True when element i of a tensor of type T is zero (+0 or -0).
template <typename T>
bool ElemIsZero(const T* data, int64_t i) {
  return data[i] == T(0);
}

// f16 and bf16: zero when all bits but the sign are clear.
bool Half16IsZero(const uint16_t* data, int64_t i) { return (data[i] & 0x7FFF) == 0; }

// True when every element of block (r, c) is zero (stops at the first
// non-zero one). One instance per element type, so the element test inlines.
template <typename T, bool (*kIsZero)(const T*, int64_t)>
bool BlockIsZero(const void* raw, const WeightView& v, int br, int bc, int64_t r, int64_t c) {
  const T* data = static_cast<const T*>(raw);
  const int64_t o_end = std::min(v.cout, (r + 1) * br);
  const int64_t i_end = std::min(v.cin, (c + 1) * bc);
  for (int64_t o = r * br; o < o_end; ++o)
    for (int64_t i = c * bc; i < i_end; ++i) {
      const int64_t at = o * v.out_stride + i * v.in_stride;
      for (int64_t k = 0; k < v.kernel; ++k)
        if (!kIsZero(data, at + k)) return false;
    }
  return true;
}

using BlockZeroFn = bool (*)(const void*, const WeightView&, int, int, int64_t, int64_t);

Result<BlockZeroFn> ZeroTestFor(DType t, const std::string& what) {
  BlockZeroFn fn = nullptr;
  if (t == DType::kF16 || t == DType::kBF16) return BlockZeroFn(&BlockIsZero<uint16_t, &Half16IsZero>);
  if (!VisitDType(t, [&]<typename T>() { fn = &BlockIsZero<T, &ElemIsZero<T>>; })) {
    return Unimplemented("{}: block masks are not supported for element type {}", what,
                         DTypeName(t));
  }
  return fn;
}

Result<int64_t> ParseInt(std::string_view s, const std::string& what, const char* field) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0) {
    return InvalidArgument("{}: bad {} '{}'", what, field, s);
  }
  return v;
}

Result<std::pair<int64_t, int64_t>> ParsePair(std::string_view s, const std::string& what,
                                              const char* field) {
  const size_t x = s.find('x');
  if (x == std::string_view::npos) {
    return InvalidArgument("{}: bad {} '{}' (expected AxB)", what, field, s);
  }
  WBS_ASSIGN_OR_RETURN(int64_t a, ParseInt(s.substr(0, x), what, field));
  WBS_ASSIGN_OR_RETURN(int64_t b, ParseInt(s.substr(x + 1), what, field));
  return std::make_pair(a, b);
}

int HexDigit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  return -1;
}

bool EdgeOk(int64_t e) { return e >= kMinBlockEdge && e <= kMaxBlockEdge; }

}  // namespace

BlockMask BlockMask::AllKept(int block_rows, int block_cols, int64_t rows, int64_t cols,
                             MaskLayout layout) {
  BlockMask m;
  m.block_rows = block_rows;
  m.block_cols = block_cols;
  m.rows = rows;
  m.cols = cols;
  m.layout = layout;
  m.keep.assign(static_cast<size_t>(rows * cols), 1);
  return m;
}

int64_t BlockMask::num_kept() const {
  return static_cast<int64_t>(std::count(keep.begin(), keep.end(), uint8_t{1}));
}

Result<WeightView> MakeWeightView(const Shape& shape, MaskLayout layout, const std::string& what) {
  WeightView v;
  if (layout == MaskLayout::kOutIn) {
    if (shape.size() < 2) {
      return InvalidArgument("{}: a block mask needs a weight of rank >= 2, got {}", what,
                             ShapeToString(shape));
    }
    v.cout = shape[0];
    v.cin = shape[1];
    for (size_t d = 2; d < shape.size(); ++d) v.kernel *= shape[d];
    v.in_stride = v.kernel;
    v.out_stride = v.cin * v.kernel;
    return v;
  }
  if (shape.size() != 2) {
    return InvalidArgument("{}: an input-major (io) block mask needs a 2-D weight, got {}", what,
                           ShapeToString(shape));
  }
  v.cin = shape[0];
  v.cout = shape[1];
  v.out_stride = 1;
  v.in_stride = v.cout;
  return v;
}

Result<std::pair<int, int>> ParseBlockShape(const std::string& text) {
  const std::string what = fmt::format("block shape '{}'", text);
  WBS_ASSIGN_OR_RETURN(auto rc, ParsePair(text, what, "block shape"));
  if (!EdgeOk(rc.first) || !EdgeOk(rc.second)) {
    return InvalidArgument("{}: block edges must be in {}..{}", what, kMinBlockEdge, kMaxBlockEdge);
  }
  return std::make_pair(static_cast<int>(rc.first), static_cast<int>(rc.second));
}

Result<BlockMask> MaskFromZeroBlocks(const Tensor& weight, int block_rows, int block_cols,
                                     MaskLayout layout) {
  const std::string what = "weight " + weight.Describe();
  if (!EdgeOk(block_rows) || !EdgeOk(block_cols)) {
    return InvalidArgument("{}: block {}x{} out of range {}..{}", what, block_rows, block_cols,
                           kMinBlockEdge, kMaxBlockEdge);
  }
  WBS_ASSIGN_OR_RETURN(WeightView v, MakeWeightView(weight.shape(), layout, what));
  WBS_ASSIGN_OR_RETURN(BlockZeroFn block_is_zero, ZeroTestFor(weight.dtype(), what));
  BlockMask m = BlockMask::AllKept(block_rows, block_cols, (v.cout + block_rows - 1) / block_rows,
                                   (v.cin + block_cols - 1) / block_cols, layout);
  const void* data = weight.raw();
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c)
      m.Set(r, c, !block_is_zero(data, v, block_rows, block_cols, r, c));
  }
  return m;
}

Result<int64_t> CountZeroElements(const Tensor& tensor) {
  const int64_t n = tensor.numel();
  int64_t zeros = 0;
  const DType t = tensor.dtype();
  if (t == DType::kF16 || t == DType::kBF16) {
    const auto* d = static_cast<const uint16_t*>(tensor.raw());
    for (int64_t i = 0; i < n; ++i) zeros += Half16IsZero(d, i) ? 1 : 0;
    return zeros;
  }
  const bool known = VisitDType(t, [&]<typename T>() {
    const T* d = static_cast<const T*>(tensor.raw());
    for (int64_t i = 0; i < n; ++i) zeros += ElemIsZero<T>(d, i) ? 1 : 0;
  });
  if (!known) {
    return Unimplemented("tensor {}: zero counts are not supported for element type {}", tensor.Describe(),
                         DTypeName(t));
  }
  return zeros;
}

Status CheckMaskAgainstWeight(const BlockMask& mask, const Tensor& weight,
                              const std::string& what) {
  if (!EdgeOk(mask.block_rows) || !EdgeOk(mask.block_cols)) {
    return InvalidArgument("{}: block {}x{} out of range {}..{}", what, mask.block_rows,
                           mask.block_cols, kMinBlockEdge, kMaxBlockEdge);
  }
  WBS_ASSIGN_OR_RETURN(WeightView v, MakeWeightView(weight.shape(), mask.layout, what));
  const int64_t rows = (v.cout + mask.block_rows - 1) / mask.block_rows;
  const int64_t cols = (v.cin + mask.block_cols - 1) / mask.block_cols;
  if (mask.rows != rows || mask.cols != cols ||
      static_cast<int64_t>(mask.keep.size()) != rows * cols) {
    return InvalidArgument(
        "{}: mask of {}x{} blocks does not fit weight {} in {}x{} blocks "
        "(expected {}x{})",
        what, mask.rows, mask.cols, ShapeToString(weight.shape()), mask.block_rows, mask.block_cols,
        rows, cols);
  }
  WBS_ASSIGN_OR_RETURN(BlockZeroFn block_is_zero, ZeroTestFor(weight.dtype(), what));
  const void* data = weight.raw();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      if (mask.Get(r, c)) continue;
      if (!block_is_zero(data, v, mask.block_rows, mask.block_cols, r, c)) {
        return InvalidArgument("{}: block ({}, {}) is masked as zero but holds non-zero weights",
                               what, r, c);
      }
    }
  }
  return Status::Ok();
}

std::string EncodeBlockMask(const BlockMask& m) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = fmt::format("{}x{}:{}x{}:{}:", m.block_rows, m.block_cols, m.rows, m.cols,
                                m.layout == MaskLayout::kOutIn ? "oi" : "io");
  const size_t n = m.keep.size();
  out.reserve(out.size() + (n + 7) / 8 * 2);
  for (size_t b = 0; b < n; b += 8) {
    unsigned byte = 0;
    for (size_t j = 0; j < 8; ++j) byte = (byte << 1) | (b + j < n && m.keep[b + j] ? 1u : 0u);
    out += kHex[byte >> 4];
    out += kHex[byte & 0xF];
  }
  return out;
}

Result<BlockMask> DecodeBlockMask(const std::string& text, const std::string& what) {
  std::vector<std::string_view> f;
  std::string_view rest = text;
  for (size_t p; (p = rest.find(':')) != std::string_view::npos;) {
    f.push_back(rest.substr(0, p));
    rest.remove_prefix(p + 1);
  }
  f.push_back(rest);
  if (f.size() != 4) {
    return InvalidArgument("{}: block mask '{}' is not <br>x<bc>:<rows>x<cols>:<oi|io>:<hex>", what,
                           text.substr(0, 40));
  }
  WBS_ASSIGN_OR_RETURN(auto block, ParsePair(f[0], what, "block shape"));
  WBS_ASSIGN_OR_RETURN(auto grid, ParsePair(f[1], what, "mask size"));
  if (!EdgeOk(block.first) || !EdgeOk(block.second)) {
    return InvalidArgument("{}: block {}x{} out of range {}..{}", what, block.first, block.second,
                           kMinBlockEdge, kMaxBlockEdge);
  }
  if (grid.first > kMaxMaskBlocks || grid.second > kMaxMaskBlocks ||
      (grid.second != 0 && grid.first > kMaxMaskBlocks / grid.second)) {
    return InvalidArgument("{}: mask of {}x{} blocks is too large", what, grid.first, grid.second);
  }
  MaskLayout layout;
  if (f[2] == "oi") {
    layout = MaskLayout::kOutIn;
  } else if (f[2] == "io") {
    layout = MaskLayout::kInOut;
  } else {
    return InvalidArgument("{}: bad mask layout '{}' (expected oi or io)", what, f[2]);
  }
  const int64_t n = grid.first * grid.second;
  const std::string_view hex = f[3];
  if (static_cast<int64_t>(hex.size()) != (n + 7) / 8 * 2) {
    return InvalidArgument("{}: mask of {}x{} blocks needs {} hex digits, has {}", what, grid.first,
                           grid.second, (n + 7) / 8 * 2, hex.size());
  }
  BlockMask m = BlockMask::AllKept(static_cast<int>(block.first), static_cast<int>(block.second),
                                   grid.first, grid.second, layout);
  for (size_t d = 0; d < hex.size(); d += 2) {
    const int hi = HexDigit(hex[d]), lo = HexDigit(hex[d + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgument("{}: bad hex digit in block mask at offset {}", what, d);
    }
    const unsigned byte = static_cast<unsigned>(hi * 16 + lo);
    for (int j = 0; j < 8; ++j) {
      const int64_t b = static_cast<int64_t>(d / 2) * 8 + j;
      const bool bit = (byte >> (7 - j)) & 1u;
      if (b < n) {
        m.keep[static_cast<size_t>(b)] = bit ? 1 : 0;
      } else if (bit) {
        return InvalidArgument("{}: block mask has non-zero padding bits", what);
      }
    }
  }
  return m;
}

}  // namespace wbs
