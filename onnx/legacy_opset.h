// Import of ai.onnx opsets 1..6 by normalisation to opset 7 (internal to onnx/).
//
// wbs's schemas, passes and operators speak opsets 7..17. A model of an older
// opset is imported by rewriting every node whose op changed meaning or
// signature before opset 7 into its opset-7 form (legacy broadcasting, Cast's
// string `to`, Reshape's `shape` attribute, Pad's `paddings`, Upsample's
// height/width scales, test-mode flags, ...). Afterwards the graph is an
// opset-7 graph: graph.opset and every node's opset are 7, and export writes a
// valid opset-7 model.
//
// Only exact rewrites are made. A legacy construct with no exact opset-7 form
// (training-mode BatchNormalization/Dropout, an `axis` broadcast whose input
// ranks are unknown, ...) is Unimplemented, and a construct the legacy schema
// itself forbids is InvalidArgument; either message names the file, the node,
// the op and the legacy attribute. The source of truth for the legacy
// meanings is libonnx's old schemas (onnx/defs/*/old.cc).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"
#include "ir/graph.h"

namespace wbs::onnxio {

// Rewrites `graph`, imported from a model of ai.onnx opset `model_opset` < 7,
// into opset-7 form. The graph must be topologically sorted, with its input
// shapes resolved and the model's declared types applied (input ranks decide
// some rewrites). `where` describes nodes for messages ("node 'conv1' (Conv)");
// `path` starts every message. Nodes it inserts (Unsqueeze) are appended, so
// the graph must be sorted again afterwards.
Status NormalizeLegacyOpset(ir::Graph& graph, int64_t model_opset, const std::string& path,
                            const std::map<const ir::Node*, std::string>& where);

}  // namespace wbs::onnxio
