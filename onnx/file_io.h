// Whole-file reads and atomic writes for the ONNX reader/writer (internal to
// onnx/).
#pragma once

#include <string>

#include "core/status.h"

namespace wbs::onnxio {

// Files larger than this cannot be parsed by protobuf anyway (2 GiB limit).
inline constexpr size_t kMaxFileBytes = size_t{2} << 30;

// Reads a regular file into memory. Errors name `path`.
Result<std::string> ReadFileBytes(const std::string& path);

// Writes `bytes` to a fresh temp file in the directory of `path`, then
// renames it over `path`, so readers see either the old file or the complete
// new one. On any failure the temp file is removed and `path` is untouched.
// Errors name `path`.
Status WriteFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace wbs::onnxio
