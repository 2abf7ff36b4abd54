// Post-training quantization (docs/int8.md): fp32 graph -> the quantized IR
// (QuantizeLinear at the input, QConv/QGemm/QAdd/QConcat/Q-pools on 8-bit
// tensors, f32 logits), ready for the runtime and for QDQ export.
//
// Steps: prepare (batch 1 shapes, constant folding, BN folding, Relu/Clip
// fused into Conv/Gemm; no residual fusion: the Add stays a QAdd), calibrate
// (run the prepared fp32 graph on the calibration images through a Session;
// one observer per activation tensor, quant/observer.h), plan (per-tensor u8
// or s8 activations, per-output-channel symmetric s8 weights in [-127, 127]:
// a zero block stays exactly zero and its block mask moves to the int8
// weight; s32 bias; optional power-of-two scales) and build. An op with no
// integer form runs in f32 between DequantizeLinear and QuantizeLinear.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "quant/observer.h"

namespace wbs::quant {

struct PtqOptions {
  ObserverKind observer = ObserverKind::kMinMax;
  double percentile = 99.99;
  DType activation_type = DType::kU8;  // kU8 or kI8
  bool power_of_two = false;           // every scale 2^-k, zero points 0
  int num_threads = 1;
  // Calibrate with the reference operators instead of the fast ones: slower,
  // but the observed ranges (hence every scale) no longer depend on the CPU's
  // ISA or on the fast kernels' summation order (golden tests of the AIE
  // compiler print scales to 8 digits).
  bool reference_backend = false;
};

struct LayerReport {
  std::string node;       // the fp32 node whose output this is
  std::string op_type;    // of the integer op (QConv, QAdd, ... or "f32" fallback)
  std::string value;      // output tensor name
  DType dtype = DType::kU8;
  float scale = 0.f;
  int32_t zero_point = 0;
  float observed_min = 0.f, observed_max = 0.f;
  float range_lo = 0.f, range_hi = 0.f;
  double clipped_fraction = 0.0;  // calibration values outside the range
  float weight_scale_min = 0.f, weight_scale_max = 0.f;  // per-channel weight scales
  int64_t zero_blocks = 0;        // zero 8x8 blocks kept in the int8 weight (from the mask)
  int64_t bias_clamped = 0;       // s32 bias entries that had to be clamped
  double sqnr_db = 0.0;           // vs fp32 on the evaluation images (filled by Evaluate)
  double rel_l2 = 0.0;
};

struct PtqReport {
  int64_t calibration_images = 0;
  std::vector<LayerReport> layers;
  int64_t fallback_nodes = 0;  // ops run in f32 between DQ and Q
};

// The fp32 graph the quantizer works on: batch-1 shapes resolved for
// folding, BN folded, activations fused into Conv/Gemm, inputs re-declared
// with an unknown batch dim (a Reshape whose target was folded at batch 1
// keeps batch 1).
Result<std::unique_ptr<ir::Graph>> PrepareFloatGraph(const ir::Graph& graph);

// Collects observers for every f32 activation of `prepared` over `batches`
// (each a tensor for the single graph input). Returns observers by value name.
struct Calibration {
  std::vector<std::string> names;
  std::vector<Observer> observers;
  int64_t images = 0;
  const Observer* Find(const std::string& name) const;
};
Result<Calibration> Calibrate(const ir::Graph& prepared, const std::vector<Tensor>& batches,
                              const PtqOptions& options);

// Builds the quantized graph from the prepared graph and the calibration.
Result<std::unique_ptr<ir::Graph>> BuildQuantizedGraph(const ir::Graph& prepared,
                                                       const Calibration& calibration,
                                                       const PtqOptions& options,
                                                       PtqReport* report);

// Fills sqnr_db / rel_l2 of each report layer by running both graphs on
// `batches` (dequantized integer tensors vs the fp32 tensors of the same name).
Status MeasureLayerErrors(const ir::Graph& prepared, const ir::Graph& quantized,
                          const std::vector<Tensor>& batches, int num_threads, PtqReport* report);

// Per-tensor activation parameters for a range (exposed for tests).
QuantParams ActivationParams(ActRange range, DType type, bool power_of_two);
// Per-channel symmetric weight quantization (axis 0), [-127, 127]; a zero
// weight stays 0. `scales` receives one scale per output channel.
Tensor QuantizeWeightPerChannel(const Tensor& w, bool power_of_two, std::vector<float>* scales);

}  // namespace wbs::quant
