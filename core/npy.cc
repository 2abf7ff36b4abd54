#include "core/npy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

namespace wbs {

// Data bytes are copied as they are, which is only right on little-endian hosts.
static_assert(std::endian::native == std::endian::little, "npy I/O assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
// numpy pads the preamble + header to a multiple of 64 bytes so the data is
// aligned for memory mapping; we do the same when writing.
constexpr size_t kHeaderAlignment = 64;
// Any real header is a few hundred bytes; this bounds what a corrupt length
// field can make us parse.
constexpr size_t kMaxHeaderLen = 1 << 20;

struct DescrEntry {
  const char* descr;
  DType dtype;
};
// The '<' and '|' spellings numpy writes; 1-byte types are also accepted with
// '<' (and '=' is never written by numpy, so not accepted).
constexpr DescrEntry kDescrs[] = {
    {"<f4", DType::kF32}, {"<f8", DType::kF64}, {"<f2", DType::kF16}, {"<i8", DType::kI64},
    {"<i4", DType::kI32}, {"<i2", DType::kI16}, {"|i1", DType::kI8},  {"<u8", DType::kU64},
    {"<u4", DType::kU32}, {"<u2", DType::kU16}, {"|u1", DType::kU8},  {"|b1", DType::kBool},
};

struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// A parser for the Python dict literal numpy writes:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

  Result<Header> Parse() {
    Header h;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    if (!Consume('{')) return Error("header does not start with '{'");
    while (true) {
      SkipSpace();
      if (Consume('}')) break;
      WBS_ASSIGN_OR_RETURN(std::string key, ParseString());
      if (!Consume(':')) return Error("expected ':' after key '" + key + "'");
      if (key == "descr") {
        WBS_ASSIGN_OR_RETURN(h.descr, ParseString());
        seen_descr = true;
      } else if (key == "fortran_order") {
        WBS_ASSIGN_OR_RETURN(h.fortran_order, ParseBool());
        seen_order = true;
      } else if (key == "shape") {
        WBS_ASSIGN_OR_RETURN(h.shape, ParseTuple());
        seen_shape = true;
      } else {
        return Error("unexpected key '" + key + "'");
      }
      SkipSpace();
      if (Consume(',')) continue;
      if (Consume('}')) break;
      return Error("expected ',' or '}'");
    }
    if (!seen_descr || !seen_order || !seen_shape)
      return Error("header lacks one of 'descr', 'fortran_order', 'shape'");
    return h;
  }

 private:
  Status Error(const std::string& what) const {
    return ParseError("{}: bad .npy header at byte {}: {}", path_, pos_, what);
  }
  void SkipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool ConsumeWord(std::string_view w) {
    SkipSpace();
    if (s_.substr(pos_, w.size()) == w) {
      pos_ += w.size();
      return true;
    }
    return false;
  }
  Result<std::string> ParseString() {
    SkipSpace();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"'))
      return Error("expected a string");
    char quote = s_[pos_++];
    size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) return Error("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  Result<bool> ParseBool() {
    if (ConsumeWord("True")) return true;
    if (ConsumeWord("False")) return false;
    return Error("expected True or False");
  }
  Result<Shape> ParseTuple() {
    if (!Consume('(')) return Error("expected '(' for shape");
    Shape shape;
    while (true) {
      SkipSpace();
      if (Consume(')')) break;
      size_t start = pos_;
      int64_t v = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[pos_] - '0', &v))
          return Error("shape dimension overflows int64");
        ++pos_;
      }
      // numpy may write 'L' suffixes (Python 2 longs).
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;
      if (pos_ == start) return Error("expected a non-negative integer in shape");
      shape.push_back(v);
      if (Consume(',')) continue;
      if (Consume(')')) break;
      return Error("expected ',' or ')' in shape");
    }
    return shape;
  }

  std::string_view s_;
  const std::string& path_;
  size_t pos_ = 0;
};

Result<DType> DTypeFromDescr(const std::string& descr, const std::string& path) {
  for (const DescrEntry& e : kDescrs)
    if (descr == e.descr) return e.dtype;
  // One-byte types are endian-free; accept '<i1' etc. as numpy does.
  if (descr.size() == 3 && descr[0] == '<' && descr[2] == '1') {
    std::string alt = descr;
    alt[0] = '|';
    for (const DescrEntry& e : kDescrs)
      if (alt == e.descr) return e.dtype;
  }
  if (!descr.empty() && descr[0] == '>')
    return Unimplemented("{}: big-endian dtype '{}' is not supported", path, descr);
  return Unimplemented("{}: dtype '{}' is not supported", path, descr);
}

uint32_t ReadLE(const unsigned char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Result<Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open: {}", path, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return IoError("{}: read failed", path);
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());

  if (bytes.size() < kMagicLen + 2 || std::memcmp(bytes.data(), kMagic, kMagicLen) != 0)
    return ParseError("{}: not a .npy file (bad magic)", path);
  const int major = u[kMagicLen];
  const int minor = u[kMagicLen + 1];
  if (major < 1 || major > 3 || minor != 0)
    return Unimplemented("{}: .npy format version {}.{} is not supported", path, major, minor);
  const int len_bytes = major == 1 ? 2 : 4;
  const size_t preamble = kMagicLen + 2 + len_bytes;
  if (bytes.size() < preamble) return ParseError("{}: truncated .npy header", path);
  const size_t header_len = ReadLE(u + kMagicLen + 2, len_bytes);
  if (header_len > kMaxHeaderLen)
    return ParseError("{}: .npy header length {} is implausible", path, header_len);
  if (bytes.size() < preamble + header_len)
    return ParseError("{}: truncated .npy header ({} of {} bytes)", path, bytes.size() - preamble,
                      header_len);

  std::string_view text(bytes.data() + preamble, header_len);
  WBS_ASSIGN_OR_RETURN(Header h, HeaderParser(text, path).Parse());
  WBS_ASSIGN_OR_RETURN(DType dtype, DTypeFromDescr(h.descr, path));
  if (h.fortran_order)
    return Unimplemented("{}: fortran_order=True arrays are not supported (save C-ordered)", path);

  int64_t numel = 1;
  for (int64_t d : h.shape)
    if (__builtin_mul_overflow(numel, d, &numel))
      return ParseError("{}: shape {} overflows", path, ShapeToString(h.shape));
  int64_t data_bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(DTypeSize(dtype)), &data_bytes))
    return ParseError("{}: shape {} overflows", path, ShapeToString(h.shape));
  const size_t have = bytes.size() - preamble - header_len;
  if (have < static_cast<uint64_t>(data_bytes))
    return ParseError("{}: truncated: {}{} needs {} data bytes, file has {}", path,
                      DTypeName(dtype), ShapeToString(h.shape), data_bytes, have);
  if (have > static_cast<uint64_t>(data_bytes))
    return ParseError("{}: {} unexpected bytes after the {}{} data", path,
                      have - static_cast<uint64_t>(data_bytes), DTypeName(dtype),
                      ShapeToString(h.shape));

  Tensor t(dtype, h.shape);
  if (data_bytes > 0) std::memcpy(t.raw(), bytes.data() + preamble + header_len, data_bytes);
  if (dtype == DType::kBool) {
    // A byte other than 0/1 is not a valid C++ bool; numpy treats it as true.
    auto* b = static_cast<unsigned char*>(t.raw());
    for (int64_t i = 0; i < numel; ++i) b[i] = b[i] != 0;
  }
  return t;
}

Status WriteNpy(const Tensor& t, const std::string& path) {
  if (!t.defined()) return InvalidArgument("{}: cannot write an undefined tensor", path);
  const char* descr = nullptr;
  for (const DescrEntry& e : kDescrs)
    if (e.dtype == t.dtype()) descr = e.descr;
  if (!descr)
    return Unimplemented("{}: dtype {} cannot be written as .npy", path, DTypeName(t.dtype()));

  std::string shape;
  for (int i = 0; i < t.rank(); ++i) shape += (i ? ", " : "") + std::to_string(t.dim(i));
  if (t.rank() == 1) shape += ",";  // a Python 1-tuple: "(5,)"
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, shape);
  // Version 1.0 stores the header length in 16 bits; 2.0 in 32.
  int major = 1;
  size_t preamble = kMagicLen + 2 + 2;
  if (header.size() + 1 + preamble > 0xffff) {
    major = 2;
    preamble = kMagicLen + 2 + 4;
  }
  size_t total = preamble + header.size() + 1;
  header.append((kHeaderAlignment - total % kHeaderAlignment) % kHeaderAlignment, ' ');
  header += '\n';

  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(major);
  out += '\0';
  const uint32_t len = static_cast<uint32_t>(header.size());
  for (size_t i = 0; i < preamble - kMagicLen - 2; ++i)
    out += static_cast<char>((len >> (8 * i)) & 0xff);
  out += header;

  // Atomic: write a temporary file next to the target, then rename over it.
  std::string tmp = path + ".tmpXXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) return IoError("{}: cannot create a temporary file: {}", path, std::strerror(errno));
  ::fchmod(fd, 0644);  // mkstemp creates 0600; outputs are ordinary data files
  auto write_all = [fd](const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  };
  bool ok = write_all(out.data(), out.size()) && write_all(t.raw(), t.nbytes());
  int err = errno;
  ok = (::close(fd) == 0) && ok;
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ok = false;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    return IoError("{}: write failed: {}", path, std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace wbs
