// Work shared by the trial compiles of one Compile() (pipeline.cc runs the
// pass pipeline up to a few dozen times on one graph, each trial with a few
// choices changed): results of pure functions of a pass's inputs, kept so
// that a later trial asking the same question gets the answer without
// recomputing it. Every entry is keyed by everything its result depends on
// and compared exactly (no hashes), so a compile produces the same program
// with or without the cache. Compile() makes one (CompileState::cache) and
// every trial state shares it; a state without one (a test running single
// passes) computes everything. Thread-safe: trials may run concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "aie/passes/compiler.h"

namespace wbs::aie {

struct CompileCache {
  std::mutex mu;

  // Pass 1 up to sibling and pool fusion: a function of the graph alone.
  struct Scheduled {
    const ir::Graph* graph = nullptr;
    std::vector<ActTensor> tensors;
    std::vector<Layer> layers;
    std::map<const ir::Value*, int> tensor_of;
    std::vector<int> inputs, outputs;
    std::map<int, std::vector<float>> dequant_scales;
  };
  std::shared_ptr<const Scheduled> scheduled;

  // Pass 4 (balance.cc BalancedOrder): the block-row order of a layer, a
  // function of its per-row, per-part non-zero blocks, the rows' totals,
  // the group sizes and the chunk length.
  struct Order {
    std::vector<int64_t> v, row_nnz, sizes;
    int64_t mt_rows = 0, parts = 0;
    std::vector<int64_t> perm;
  };
  std::map<std::string, std::vector<Order>> orders;  // by layer name

  // Pass 5 (compact.cc MakeBlob): a conv's blobs, a function of its
  // weights, bias, requantization, geometry and input zero point (one
  // variant per distinct set: the layer permuted or not, its input
  // channels permuted by its producer or not), then of the blob's block
  // rows [r0, r1), input channels [k0, k1) and flags.
  struct BlobKey {
    int64_t r0, r1, k0, k1;
    int32_t flags;
    bool operator<(const BlobKey& o) const {
      return std::tie(r0, r1, k0, k1, flags) < std::tie(o.r0, o.r1, o.k0, o.k1, o.flags);
    }
  };
  struct LayerBlobs {
    SharedArray<int8_t> weight;
    std::vector<int32_t> bias, mult, shift;
    int64_t m = 0, c = 0, groups = 0, kh = 0, kw = 0;
    int br = 0, bc = 0;
    int32_t z_x = 0;
    std::map<BlobKey, std::shared_ptr<const std::vector<uint8_t>>> blobs;
  };
  // By layer name, at most kBlobVariants each (the oldest dropped).
  static constexpr size_t kBlobVariants = 4;
  std::map<std::string, std::vector<std::shared_ptr<LayerBlobs>>> blobs;
};

}  // namespace wbs::aie
