// ReadFileMaybeGzip: whole-file reads with transparent gzip decompression.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "data/dataset.h"

namespace wbs::data {
namespace {

constexpr unsigned char kGzipMagic0 = 0x1f;
constexpr unsigned char kGzipMagic1 = 0x8b;
// The first output reservation when there is no size hint; it then doubles.
constexpr size_t kInflateChunk = size_t{1} << 20;
constexpr size_t kMaxDeflateRatio = 1032;

// Fills `bytes` (an out-parameter rather than a Result: GCC 12 reports a
// false maybe-uninitialized on the SSO buffer of a string moved out of a Result).
Status ReadRaw(const std::string& path, std::string* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open: {}", path, std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return IoError("{}: cannot determine the file size", path);
  if (static_cast<uint64_t>(size) > kMaxFileBytes) {
    return InvalidArgument("{}: file is {} bytes, more than the {} byte limit", path, size,
                           kMaxFileBytes);
  }
  in.seekg(0, std::ios::beg);
  bytes->assign(static_cast<size_t>(size), '\0');
  if (!in.read(bytes->data(), size)) return IoError("{}: read failed", path);
  return Status::Ok();
}

// Inflates every gzip member of `in` (gzip allows concatenated members).
Result<std::string> Gunzip(const std::string& in, const std::string& path) {
  std::string out;
  // The trailer's ISIZE (size mod 2^32 of the last member) is a good first
  // guess for single-member files; it is only a reservation hint.
  if (in.size() >= 18) {
    uint32_t isize = 0;
    std::memcpy(&isize, in.data() + in.size() - 4, 4);
    // Deflate expands by at most ~1032x, which bounds a corrupt trailer.
    out.reserve(std::min<size_t>({isize, kMaxFileBytes, in.size() * kMaxDeflateRatio}));
  }
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return Internal("{}: inflateInit2 failed", path);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  size_t consumed = 0;
  Status status;
  while (true) {
    const size_t avail_in =
        std::min<size_t>(in.size() - consumed, std::numeric_limits<uInt>::max());
    zs.avail_in = static_cast<uInt>(avail_in);
    if (out.size() == out.capacity()) out.reserve(std::max(out.size() * 2, kInflateChunk));
    const size_t old_size = out.size();
    const size_t room =
        std::min<size_t>(out.capacity() - old_size, std::numeric_limits<uInt>::max());
    out.resize(old_size + room);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + old_size);
    zs.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    consumed += avail_in - zs.avail_in;
    out.resize(old_size + (room - zs.avail_out));
    if (out.size() > kMaxFileBytes) {
      status =
          InvalidArgument("{}: decompresses to more than the {} byte limit", path, kMaxFileBytes);
      break;
    }
    if (rc == Z_STREAM_END) {
      if (consumed == in.size()) break;
      // Another member follows (or trailing garbage, which inflate rejects).
      if (inflateReset(&zs) != Z_OK) {
        status = Internal("{}: inflateReset failed", path);
        break;
      }
      continue;
    }
    if (rc == Z_BUF_ERROR && consumed == in.size()) {
      status = ParseError("{}: truncated gzip stream (ends after {} decompressed bytes)", path,
                          out.size());
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      status = ParseError("{}: corrupt gzip stream: {}", path, zs.msg ? zs.msg : zError(rc));
      break;
    }
  }
  inflateEnd(&zs);
  if (!status.ok()) return status;
  return out;
}

}  // namespace

Result<std::string> ReadFileMaybeGzip(const std::string& path) {
  std::string bytes;
  WBS_RETURN_IF_ERROR(ReadRaw(path, &bytes));
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == kGzipMagic0 &&
      static_cast<unsigned char>(bytes[1]) == kGzipMagic1) {
    return Gunzip(bytes, path);
  }
  return bytes;
}

}  // namespace wbs::data
