// Data-parallel ranks over LibTorch's c10d: a TCPStore on rank 0's
// host:port for rendezvous and a ProcessGroupGloo for the collectives (the
// engine PyTorch DDP uses on CPU).
//
// Every collective waits at most `timeout`; a rank that died (or never came)
// makes the others fail with a clear error instead of hanging. Errors are
// Status values; c10d/Gloo exceptions are caught here.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace wbs::train {

struct DistributedOptions {
  int world_size = 1;
  int rank = 0;
  std::string master = "127.0.0.1:29500";  // host:port; rank 0 listens there
  std::chrono::milliseconds timeout{60000};
};

// Parses "host:port" (port 1..65535).
Result<std::pair<std::string, int>> ParseMaster(const std::string& text);

class Distributed {
 public:
  // Blocks until all world_size ranks have joined (or timeout).
  static Result<std::unique_ptr<Distributed>> Connect(const DistributedOptions& options);
  ~Distributed();

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

  // In place, on every rank. Tensors must be contiguous CPU tensors of the
  // same shapes on every rank (a device tensor is staged through the CPU).
  Status Broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  Status AllReduceSum(std::vector<torch::Tensor>& tensors);
  Status AllReduceMean(std::vector<torch::Tensor>& tensors);
  Status Barrier();

 private:
  Distributed() = default;
  struct Impl;
  DistributedOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wbs::train
