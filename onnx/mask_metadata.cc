#include "onnx/mask_metadata.h"

#include <algorithm>
#include <memory>

#include "core/block_mask.h"

namespace wbs::onnxio {

bool IsMaskMetadataKey(const std::string& key) {
  return key.rfind(kBlockMaskKeyPrefix, 0) == 0 || key == kBlockShapeKey;
}

Result<std::vector<std::pair<std::string, std::string>>> MaskMetadata(
    const std::vector<const ir::Value*>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string block;
  for (const ir::Value* v : values) {
    if (!v || !v->block_mask) continue;
    const std::string what = fmt::format("weight '{}'", v->name);
    if (!v->is_constant()) {
      return InvalidArgument("{}: has a block mask but is not a constant", what);
    }
    WBS_RETURN_IF_ERROR(CheckMaskAgainstWeight(*v->block_mask, v->constant, what));
    out.emplace_back(kBlockMaskKeyPrefix + v->name, EncodeBlockMask(*v->block_mask));
    const std::string b =
        fmt::format("{}x{}", v->block_mask->block_rows, v->block_mask->block_cols);
    block = block.empty() || block == b ? b : "mixed";
  }
  std::sort(out.begin(), out.end());
  if (!block.empty()) out.emplace_back(kBlockShapeKey, block);
  return out;
}

Status RestoreBlockMasks(ir::Graph& graph, const std::string& path) {
  for (auto it = graph.metadata.begin(); it != graph.metadata.end();) {
    const std::string& key = it->first;
    if (!IsMaskMetadataKey(key)) {
      ++it;
      continue;
    }
    if (key != kBlockShapeKey) {
      const std::string name = key.substr(std::string(kBlockMaskKeyPrefix).size());
      const std::string what = fmt::format("{}: weight '{}'", path, name);
      ir::Value* v = graph.FindValue(name);
      if (!v || !v->is_constant()) {
        return InvalidArgument("{}: metadata '{}' names no initializer", what, key);
      }
      WBS_ASSIGN_OR_RETURN(BlockMask mask, DecodeBlockMask(it->second, what));
      WBS_RETURN_IF_ERROR(CheckMaskAgainstWeight(mask, v->constant, what));
      v->block_mask = std::make_shared<BlockMask>(std::move(mask));
    }
    it = graph.metadata.erase(it);
  }
  return Status::Ok();
}

}  // namespace wbs::onnxio
