// Block masks (Value::block_mask) in ONNX metadata_props.
//
// The weights in the file hold the zeros themselves, so any ONNX tool runs the
// model; the masks ride along as metadata so wbs recovers them exactly:
//   "wbs.block_mask.<weight name>" = EncodeBlockMask(mask)
//                                  ("8x8:64x32:oi:<hex bit matrix>", core/block_mask.h)
//   "wbs.block_shape"              = "8x8" (the block shape of every mask),
//                                    or "mixed"; informational, rederived on export.
// Import moves these entries from Graph::metadata onto the values; export
// writes them from the values (stale entries in Graph::metadata are dropped).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace wbs::onnxio {

inline constexpr const char* kBlockMaskKeyPrefix = "wbs.block_mask.";
inline constexpr const char* kBlockShapeKey = "wbs.block_shape";

// True for the metadata keys owned by the mask code.
bool IsMaskMetadataKey(const std::string& key);

// Metadata entries for the masks of `values` (values without a mask are
// skipped), sorted by key. Error if a masked value is not a constant or its
// mask disagrees with its weights (a masked block holding non-zeros).
Result<std::vector<std::pair<std::string, std::string>>> MaskMetadata(
    const std::vector<const ir::Value*>& values);

// Decodes every "wbs.block_mask.*" entry of graph.metadata onto its
// constant, checks it against the weights and removes the mask entries from
// the metadata. Errors start with `path` and name the weight.
Status RestoreBlockMasks(ir::Graph& graph, const std::string& path);

}  // namespace wbs::onnxio
