// Training checkpoints: one file per snapshot, written atomically (temp file
// in the same directory + rename), so a process killed at any moment (kill -9)
// leaves either the previous or the new checkpoint, never a torn one.
//
// A checkpoint holds the module's parameters and buffers (by their torch
// names), every block mask (EncodeBlockMask text, by weight name), the
// optimizer state (momentum/Adam moments), the CPU RNG state, and the run's
// position and bookkeeping (epochs done, step, best epoch, metrics so far, a
// fingerprint of the options that must not change on resume, the sparsity
// method's state blob). Format: LibTorch's serialize archive (a zip).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "core/status.h"
#include "train/module.h"

namespace wbs::train {

struct CheckpointState {
  int64_t epochs_done = 0;  // the next epoch to run
  int64_t step = 0;         // optimizer steps done
  int64_t best_epoch = -1;
  double best_val_accuracy = -1;
  std::string metrics_json;      // JSON array of per-epoch records
  std::string fingerprint_json;  // options that a resume must match
  std::string method_state;      // opaque bytes from TrainHooks::save_state
};

// optimizer may be null (no optimizer state saved / loaded).
Status SaveCheckpoint(const std::string& path, GraphModule& module,
                      torch::optim::Optimizer* optimizer, const CheckpointState& state);

// Restores parameters, buffers, masks, optimizer state and the RNG into
// `module`/`optimizer` (which must have the same structure) and returns the
// bookkeeping. Errors name the file and the missing or mismatched entry.
Result<CheckpointState> LoadCheckpoint(const std::string& path, GraphModule& module,
                                       torch::optim::Optimizer* optimizer);

}  // namespace wbs::train
