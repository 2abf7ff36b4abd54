// NumPy .npy files (format 1.0/2.0, little-endian, C order) for `wbs run`.
#pragma once

#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace wbs {

Result<Tensor> ReadNpy(const std::string& path);
// Writes atomically (temp file, then rename).
Status WriteNpy(const Tensor& t, const std::string& path);

}  // namespace wbs
