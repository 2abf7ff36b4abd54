#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <cstring>

#include "core/block_mask.h"
#include "onnx/file_io.h"

namespace wbs::train {

namespace {

constexpr int64_t kFormatVersion = 1;

// Opaque bytes as a uint8 tensor (IValue strings are meant for text).
torch::Tensor BytesToTensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string TensorToBytes(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()),
                     static_cast<size_t>(c.numel()));
}

}  // namespace

Status SaveCheckpoint(const std::string& path, GraphModule& module,
                      torch::optim::Optimizer* optimizer, const CheckpointState& state) {
  std::ostringstream bytes;
  try {
    torch::NoGradGuard no_grad;
    torch::serialize::OutputArchive archive;
    archive.write("version", c10::IValue(kFormatVersion));
    for (const auto& p : module.named_parameters(/*recurse=*/true)) {
      archive.write("param/" + p.key(), p.value().detach().to(torch::kCPU));
    }
    for (const auto& b : module.named_buffers(/*recurse=*/true)) {
      archive.write("buffer/" + b.key(), b.value().detach().to(torch::kCPU));
    }
    for (const auto& name : module.weight_names()) {
      if (auto m = module.mask(name)) {
        archive.write("mask/" + name, c10::IValue(EncodeBlockMask(*m)));
      }
    }
    if (optimizer != nullptr) {
      torch::serialize::OutputArchive opt;
      optimizer->save(opt);
      archive.write("optimizer", opt);
    }
    archive.write("rng/cpu", at::detail::getDefaultCPUGenerator().get_state());
    archive.write("epochs_done", c10::IValue(state.epochs_done));
    archive.write("step", c10::IValue(state.step));
    archive.write("best_epoch", c10::IValue(state.best_epoch));
    archive.write("best_val_accuracy", c10::IValue(state.best_val_accuracy));
    archive.write("metrics_json", c10::IValue(state.metrics_json));
    archive.write("fingerprint_json", c10::IValue(state.fingerprint_json));
    archive.write("method_state", BytesToTensor(state.method_state));
    archive.save_to(bytes);
  } catch (const std::exception& e) {
    return Internal("checkpoint '{}': cannot serialize: {}", path, e.what());
  }
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  return onnxio::WriteFileAtomically(path, bytes.str());
}

Result<CheckpointState> LoadCheckpoint(const std::string& path, GraphModule& module,
                                       torch::optim::Optimizer* optimizer) {
  if (!std::filesystem::exists(path)) return NotFound("checkpoint '{}': no such file", path);
  CheckpointState state;
  std::string where;  // the entry being read, for the error message
  try {
    torch::NoGradGuard no_grad;
    torch::serialize::InputArchive archive;
    where = "archive";
    archive.load_from(path);
    c10::IValue v;
    where = "version";
    archive.read("version", v);
    if (v.toInt() != kFormatVersion) {
      return ParseError("checkpoint '{}': format version {} (expected {})", path, v.toInt(),
                        kFormatVersion);
    }
    for (auto& p : module.named_parameters(/*recurse=*/true)) {
      where = "param/" + p.key();
      torch::Tensor t;
      archive.read(where, t);
      if (!t.sizes().equals(p.value().sizes())) {
        return InvalidArgument("checkpoint '{}': {} has shape {} but the model's is {}", path,
                               where, fmt::format("{}", fmt::join(t.sizes(), "x")),
                               fmt::format("{}", fmt::join(p.value().sizes(), "x")));
      }
      p.value().copy_(t);
    }
    for (auto& b : module.named_buffers(/*recurse=*/true)) {
      where = "buffer/" + b.key();
      torch::Tensor t;
      archive.read(where, t, /*is_buffer=*/true);
      if (!t.sizes().equals(b.value().sizes())) {
        return InvalidArgument("checkpoint '{}': {} has a different shape than the model's", path,
                               where);
      }
      b.value().copy_(t);
    }
    module.ClearMasks();
    for (const auto& name : module.weight_names()) {
      where = "mask/" + name;
      c10::IValue m;
      if (!archive.try_read(where, m)) continue;
      WBS_ASSIGN_OR_RETURN(BlockMask mask,
                           DecodeBlockMask(m.toStringRef(), "checkpoint '" + path + "': " + where));
      WBS_RETURN_IF_ERROR(
          module.SetMask(name, mask).WithContext("checkpoint '" + path + "'"));
    }
    if (optimizer != nullptr) {
      where = "optimizer";
      torch::serialize::InputArchive opt;
      archive.read("optimizer", opt);
      optimizer->load(opt);
    }
    where = "rng/cpu";
    torch::Tensor rng;
    archive.read(where, rng);
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle
    gen.set_state(rng);
    where = "epochs_done";
    archive.read(where, v);
    state.epochs_done = v.toInt();
    where = "step";
    archive.read(where, v);
    state.step = v.toInt();
    where = "best_epoch";
    archive.read(where, v);
    state.best_epoch = v.toInt();
    where = "best_val_accuracy";
    archive.read(where, v);
    state.best_val_accuracy = v.toDouble();
    where = "metrics_json";
    archive.read(where, v);
    state.metrics_json = v.toStringRef();
    where = "fingerprint_json";
    archive.read(where, v);
    state.fingerprint_json = v.toStringRef();
    where = "method_state";
    torch::Tensor blob;
    archive.read(where, blob);
    state.method_state = TensorToBytes(blob);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    return ParseError("checkpoint '{}': cannot read {}: {}", path, where, msg);
  }
  return state;
}

}  // namespace wbs::train
