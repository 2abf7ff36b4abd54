// c10d's Gloo headers are guarded by USE_C10D_GLOO, which Debian's libtorch
// was built with but does not export to users.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif

#include "train/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <charconv>
#include <cstdlib>
#include <map>

namespace wbs::train {

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

namespace {

// Gloo's messages can span lines; keep the first one.
std::string FirstLine(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

Result<std::pair<std::string, int>> ParseMaster(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgument("--master '{}': expected host:port", text);
  }
  std::string host = text.substr(0, colon);
  std::string port_text = text.substr(colon + 1);
  int port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return InvalidArgument("--master '{}': port '{}' is not in 1..65535", text, port_text);
  }
  return std::make_pair(host, port);
}

Result<std::unique_ptr<Distributed>> Distributed::Connect(const DistributedOptions& options) {
  if (options.world_size < 1) {
    return InvalidArgument("--world-size {}: must be >= 1", options.world_size);
  }
  if (options.rank < 0 || options.rank >= options.world_size) {
    return InvalidArgument("--rank {}: must be in [0, {})", options.rank, options.world_size);
  }
  WBS_ASSIGN_OR_RETURN(auto hp, ParseMaster(options.master));
  std::unique_ptr<Distributed> d(new Distributed());
  d->options_ = options;
  d->impl_ = std::make_unique<Impl>();
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(hp.second);
    so.isServer = options.rank == 0;
    so.numWorkers = static_cast<size_t>(options.world_size);
    so.waitWorkers = true;
    so.timeout = options.timeout;
    d->impl_->store = c10::make_intrusive<c10d::TCPStore>(hp.first, so);
    auto go = c10d::ProcessGroupGloo::Options::create(options.timeout);
    // Ranks on one machine talk over loopback; otherwise bind to the
    // interface of this host's name (GLOO_SOCKET_IFNAME overrides).
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (IsLoopback(hp.first)) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    go->threads = 1;
    d->impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        d->impl_->store, options.rank, options.world_size, go);
  } catch (const std::exception& e) {
    return IoError("rank {}/{}: cannot join the process group at {} within {} s: {}",
                   options.rank, options.world_size, options.master,
                   options.timeout.count() / 1000.0, FirstLine(e.what()));
  }
  return d;
}

Distributed::~Distributed() = default;

namespace {

// Runs one c10d work item to completion; failures (a dead peer, a timeout)
// become one-line errors.
template <typename F>
Status RunCollective(const DistributedOptions& o, const char* what, F&& start) {
  try {
    auto work = start();
    work->wait(o.timeout);
  } catch (const std::exception& e) {
    return IoError("rank {}/{}: {} failed (a peer died or did not answer within {} s): {}", o.rank,
                   o.world_size, what, o.timeout.count() / 1000.0, FirstLine(e.what()));
  }
  return Status::Ok();
}

// All tensors as one flat f32/f64 CPU buffer (one collective instead of one
// per tensor), and back.
torch::Tensor Flatten(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.detach().to(torch::kCPU).reshape({-1}));
  return torch::cat(flat).contiguous();
}

void Unflatten(const torch::Tensor& buffer, std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& t : tensors) {
    int64_t n = t.numel();
    t.copy_(buffer.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

}  // namespace

Status Distributed::Broadcast(std::vector<torch::Tensor>& tensors, int root) {
  if (tensors.empty() || options_.world_size == 1) return Status::Ok();
  // Group by dtype: one flat buffer per dtype.
  std::map<c10::ScalarType, std::vector<size_t>> by_type;
  for (size_t i = 0; i < tensors.size(); ++i) by_type[tensors[i].scalar_type()].push_back(i);
  for (auto& [type, idx] : by_type) {
    std::vector<torch::Tensor> group;
    for (size_t i : idx) group.push_back(tensors[i]);
    std::vector<torch::Tensor> buf = {Flatten(group)};
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    bo.timeout = options_.timeout;
    WBS_RETURN_IF_ERROR(
        RunCollective(options_, "broadcast", [&] { return impl_->group->broadcast(buf, bo); }));
    Unflatten(buf[0], group);
  }
  return Status::Ok();
}

Status Distributed::AllReduceSum(std::vector<torch::Tensor>& tensors) {
  if (tensors.empty() || options_.world_size == 1) return Status::Ok();
  std::map<c10::ScalarType, std::vector<size_t>> by_type;
  for (size_t i = 0; i < tensors.size(); ++i) by_type[tensors[i].scalar_type()].push_back(i);
  for (auto& [type, idx] : by_type) {
    std::vector<torch::Tensor> group;
    for (size_t i : idx) group.push_back(tensors[i]);
    std::vector<torch::Tensor> buf = {Flatten(group)};
    c10d::AllreduceOptions ao;
    ao.reduceOp = c10d::ReduceOp::SUM;
    ao.timeout = options_.timeout;
    WBS_RETURN_IF_ERROR(
        RunCollective(options_, "all-reduce", [&] { return impl_->group->allreduce(buf, ao); }));
    Unflatten(buf[0], group);
  }
  return Status::Ok();
}

Status Distributed::AllReduceMean(std::vector<torch::Tensor>& tensors) {
  WBS_RETURN_IF_ERROR(AllReduceSum(tensors));
  if (options_.world_size == 1) return Status::Ok();
  torch::NoGradGuard no_grad;
  for (auto& t : tensors) {
    if (t.is_floating_point()) {
      t.div_(options_.world_size);
    } else {
      t.div_(options_.world_size, "floor");
    }
  }
  return Status::Ok();
}

Status Distributed::Barrier() {
  if (options_.world_size == 1) return Status::Ok();
  c10d::BarrierOptions bo;
  bo.timeout = options_.timeout;
  return RunCollective(options_, "barrier", [&] { return impl_->group->barrier(bo); });
}

}  // namespace wbs::train
