// ai.onnx opsets 1..6 -> opset 7, node by node (see onnx/legacy_opset.h).
//
// The rewrites, with the versions that changed each op (onnx/defs/*/old.cc):
//   every op      `consumed_inputs` (opset-1 in-place hint, no meaning): dropped.
//   Add Sub Mul Div Pow And Or Xor Equal Greater Less (< 7): `broadcast` and
//                 `axis` (legacy broadcasting, B to A only) -> numpy
//                 broadcasting; B gets trailing 1-dims when `axis` puts it
//                 before A's trailing dims.
//   Gemm (< 7)    `broadcast` dropped: C broadcasting from opset 7 is a superset.
//   BatchNormalization, Dropout (< 7): `is_test`=1 dropped; 0 (training, the
//                 legacy default) is Unimplemented.
//   PRelu (< 7)   a 1-D slope of X's channel count is per channel (the Caffe2
//                 meaning the op was taken from, and what PyTorch exported).
//   Upsample (< 7) `height_scale`/`width_scale` on NCHW -> `scales`
//                 [1, 1, h, w]; mode "bilinear" -> "linear".
//   Cast (< 6)    `to` as a type name -> the TensorProto type code.
//   Tile (< 6)    inputs (input, tiles, axis) -> (input, repeats).
//   Selu (< 6)    defaults alpha = 1.6732, gamma = 1.0507 made explicit (opset
//                 6 changed them to 1.67326..., 1.05070...).
//   Reshape (< 5) `shape` attribute -> a constant second input.
//   Concat (< 4)  `axis` optional with default 1 -> explicit.
//   Split (< 2)   `split` as a second input -> the attribute; `axis` had no
//                 documented default, so a Split without it is Unimplemented.
//   Pad (< 2)     `paddings` -> `pads`.
//   LpPool, GlobalLpPool (< 2): float `p` -> int.
//   GRU, LSTM, RNN (< 7): Unimplemented (their attributes changed at opset 7).
// Every other op's opset-1 (or opset-6) schema equals the one opset 7 uses.
#include "onnx/legacy_opset.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <vector>

#include "ir/op_schema.h"
#include "onnx/model_io.h"
#include "onnx/tensor_proto.h"

namespace wbs::onnxio {
namespace {

using ir::Node;
using ir::Value;
using ir::ValueInfo;

// The opset the rewritten graph speaks.
constexpr int64_t kTargetOpset = kMinOpset;
// Bound on integers read from legacy float-typed inputs and attributes, so
// the conversion to int64 is exact and defined.
constexpr double kMaxLegacyInt = 9007199254740992.0;  // 2^53
// Selu's defaults before opset 6 (Selu-1).
constexpr float kSelu1Alpha = 1.6732f;
constexpr float kSelu1Gamma = 1.0507f;

bool IsLegacyBroadcastOp(const std::string& op) {
  static const std::set<std::string> kOps = {"Add", "Sub", "Mul",   "Div",     "Pow", "And",
                                             "Or",  "Xor", "Equal", "Greater", "Less"};
  return kOps.count(op) != 0;
}

// Unknown dims (< 0) match anything.
bool SameShape(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] >= 0 && b[i] >= 0 && a[i] != b[i]) return false;
  return true;
}

// True if `b` broadcasts to `a` in the numpy sense without changing `a`'s
// shape (unknown dims match anything).
bool BroadcastsTo(const Shape& b, const Shape& a) {
  if (b.size() > a.size()) return false;
  for (size_t i = 1; i <= b.size(); ++i) {
    const int64_t bd = b[b.size() - i], ad = a[a.size() - i];
    if (bd < 0 || ad < 0 || bd == 1 || bd == ad) continue;
    return false;
  }
  return true;
}

bool IsSingleElement(const ValueInfo& v) {
  if (!v.has_shape) return false;
  for (int64_t d : v.shape)
    if (d != 1) return false;
  return true;
}

class Normalizer {
 public:
  Normalizer(ir::Graph& graph, int64_t opset, const std::string& path,
             const std::map<const Node*, std::string>& where)
      : g_(graph), opset_(opset), path_(path), where_(where) {}

  Status Run();

 private:
  // "<path>: node 'n' (Op)".
  std::string At(const Node& n) const;
  ValueInfo Info(const Value* v) const;
  // Records the output shapes of `n` for the rank checks of later nodes. A
  // failure is left for the importer's own shape inference to report.
  void Infer(const Node& n);
  std::string FreshNodeName(const std::string& base);
  // Gives input `i` of `n` `count` trailing 1-dims: reshapes a constant used
  // only here, else a reshaped copy or an Unsqueeze node.
  Status AppendOnes(Node* n, size_t i, int count);
  Result<int64_t> IntAttr(const Node& n, const std::string& name, int64_t def) const;
  // A constant input read as integers (the legacy schemas type some integer
  // inputs as floats); error if absent, not constant or not integral.
  Result<std::vector<int64_t>> ConstantInts(const Node& n, size_t i, const char* what) const;

  Status Rewrite(Node* n);
  Status Broadcast(Node* n);
  Status TestMode(Node* n);
  Status PRelu(Node* n);
  Status Upsample(Node* n);
  Status Cast(Node* n);
  Status Tile(Node* n);
  Status Reshape(Node* n);
  Status Split(Node* n);
  Status Pad(Node* n);
  Status LpPoolP(Node* n);

  ir::Graph& g_;
  const int64_t opset_;
  const std::string& path_;
  const std::map<const Node*, std::string>& where_;
  std::map<const Value*, ValueInfo> info_;
  std::set<std::string> node_names_;
};

std::string Normalizer::At(const Node& n) const {
  auto it = where_.find(&n);
  if (it != where_.end()) return fmt::format("{}: {}", path_, it->second);
  return fmt::format("{}: node '{}' ({})", path_, n.name, n.op_type);
}

ValueInfo Normalizer::Info(const Value* v) const {
  auto it = info_.find(v);
  return it != info_.end() ? it->second : ValueInfo::FromValue(v);
}

void Normalizer::Infer(const Node& n) {
  std::vector<ValueInfo> ins;
  for (const Value* v : n.inputs) ins.push_back(Info(v));
  std::vector<ValueInfo> outs;
  if (!ir::InferNode(n, ins, outs).ok()) return;
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    const Value* o = n.outputs[i];
    if (!o || !outs[i].has_shape) continue;
    outs[i].value = nullptr;
    info_[o] = outs[i];
  }
}

std::string Normalizer::FreshNodeName(const std::string& base) {
  std::string name = base;
  for (int k = 1; node_names_.count(name); ++k) name = fmt::format("{}_{}", base, k);
  node_names_.insert(name);
  return name;
}

Status Normalizer::AppendOnes(Node* n, size_t i, int count) {
  if (count <= 0) return Status::Ok();
  Value* b = n->inputs[i];
  const ValueInfo info = Info(b);
  Shape shape = info.shape;
  shape.insert(shape.end(), count, 1);
  if (b->is_constant()) {
    WBS_ASSIGN_OR_RETURN(Tensor t, b->constant.Reshaped(shape));
    const bool only_here = b->users.size() == 1 &&
                           std::find(g_.outputs.begin(), g_.outputs.end(), b) == g_.outputs.end();
    if (only_here) {
      b->constant = std::move(t);
      b->shape = shape;
    } else {
      g_.SetInput(n, i, g_.AddConstant(b->name + "_legacy_broadcast", std::move(t)));
    }
    return Status::Ok();
  }
  std::vector<int64_t> axes;
  for (int k = 0; k < count; ++k) axes.push_back(info.rank() + k);
  Value* out = g_.AddValue(b->name + "_unsqueezed");
  Node* u = g_.AddNode("Unsqueeze", {b}, {out}, FreshNodeName(n->name + "_legacy_unsqueeze"));
  u->attrs["axes"] = axes;
  u->opset = kTargetOpset;
  Infer(*u);
  g_.SetInput(n, i, out);
  return Status::Ok();
}

Result<int64_t> Normalizer::IntAttr(const Node& n, const std::string& name, int64_t def) const {
  auto it = n.attrs.find(name);
  if (it == n.attrs.end()) return def;
  if (const auto* v = std::get_if<int64_t>(&it->second)) return *v;
  return InvalidArgument("{}: legacy attribute '{}' must be an int", At(n), name);
}

Result<std::vector<int64_t>> Normalizer::ConstantInts(const Node& n, size_t i,
                                                      const char* what) const {
  const Value* v = n.input(i);
  if (!v) return InvalidArgument("{}: legacy input '{}' is missing", At(n), what);
  if (!v->is_constant()) {
    return Unimplemented("{}: legacy input '{}' must be a constant to be rewritten for opset 7",
                         At(n), what);
  }
  std::vector<int64_t> out;
  for (double d : v->constant.ToVector<double>()) {
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > kMaxLegacyInt) {
      return InvalidArgument("{}: legacy input '{}' holds {}, not an exact integer", At(n), what,
                             d);
    }
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

Status Normalizer::Run() {
  std::vector<Node*> order;
  for (const auto& n : g_.nodes()) {
    order.push_back(n.get());
    node_names_.insert(n->name);
  }
  for (Node* n : order) {
    WBS_RETURN_IF_ERROR(Rewrite(n));
    n->opset = kTargetOpset;
    Infer(*n);
  }
  g_.opset = kTargetOpset;
  return Status::Ok();
}

Status Normalizer::Rewrite(Node* n) {
  n->attrs.erase("consumed_inputs");
  const std::string& op = n->op_type;
  if (IsLegacyBroadcastOp(op)) return Broadcast(n);
  if (op == "Gemm") {
    n->attrs.erase("broadcast");
    return Status::Ok();
  }
  if (op == "BatchNormalization" || op == "Dropout") return TestMode(n);
  if (op == "PRelu") return PRelu(n);
  if (op == "Upsample") return Upsample(n);
  if (op == "GRU" || op == "LSTM" || op == "RNN") {
    return Unimplemented(
        "{}: recurrent ops of opset {} (attributes changed at opset 7) are not "
        "supported",
        At(*n), opset_);
  }
  if (opset_ < 6) {
    if (op == "Cast") return Cast(n);
    if (op == "Tile") return Tile(n);
    if (op == "Selu") {
      n->attrs.emplace("alpha", kSelu1Alpha);
      n->attrs.emplace("gamma", kSelu1Gamma);
    }
  }
  if (opset_ < 5 && op == "Reshape") return Reshape(n);
  if (opset_ < 4 && op == "Concat") n->attrs.emplace("axis", int64_t{1});
  if (opset_ < 2) {
    if (op == "Split") return Split(n);
    if (op == "Pad") return Pad(n);
    if (op == "LpPool" || op == "GlobalLpPool") return LpPoolP(n);
  }
  return Status::Ok();
}

// Legacy broadcasting (old.cc kBroadcastDoc_old): without `broadcast`=1 the
// shapes must be equal; with it, B broadcasts to A, either being a single
// element or matching a contiguous run of A's dims that starts at `axis`
// (default: A's trailing dims, which is numpy's alignment).
Status Normalizer::Broadcast(Node* n) {
  WBS_ASSIGN_OR_RETURN(const int64_t broadcast, IntAttr(*n, "broadcast", 0));
  const bool has_axis = n->Has("axis");
  WBS_ASSIGN_OR_RETURN(const int64_t axis, IntAttr(*n, "axis", 0));
  n->attrs.erase("broadcast");
  n->attrs.erase("axis");
  if (n->num_inputs() != 2 || !n->input(0) || !n->input(1)) return Status::Ok();  // arity: schema
  const ValueInfo a = Info(n->input(0)), b = Info(n->input(1));
  if (broadcast == 0) {
    if (a.has_shape && b.has_shape && !SameShape(a.shape, b.shape)) {
      return InvalidArgument(
          "{}: inputs of shapes {} and {} differ, which opset {} allows only with legacy attribute "
          "'broadcast'=1",
          At(*n), DimsToString(a.shape), DimsToString(b.shape), opset_);
    }
    return Status::Ok();
  }
  if (broadcast != 1) {
    return InvalidArgument("{}: legacy attribute 'broadcast' must be 0 or 1, got {}", At(*n),
                           broadcast);
  }
  if (has_axis) {
    if (!a.has_shape || !b.has_shape) {
      return Unimplemented(
          "{}: legacy attribute 'axis'={} needs the ranks of both inputs, which are not known at "
          "import",
          At(*n), axis);
    }
    const int ra = a.rank(), rb = b.rank();
    // A single-element B broadcasts from anywhere; numpy agrees when its rank fits.
    if (!(IsSingleElement(b) && rb <= ra)) {
      if (axis < 0 || axis > ra - rb) {
        return InvalidArgument("{}: legacy attribute 'axis'={} does not place B {} inside A {}",
                               At(*n), axis, DimsToString(b.shape), DimsToString(a.shape));
      }
      WBS_RETURN_IF_ERROR(AppendOnes(n, 1, ra - static_cast<int>(axis) - rb));
    }
  }
  const ValueInfo b2 = Info(n->input(1));
  if (a.has_shape && b2.has_shape && !BroadcastsTo(b2.shape, a.shape)) {
    return InvalidArgument(
        "{}: B {} does not broadcast to A {} (legacy attribute 'broadcast'=1 broadcasts B to A "
        "only)",
        At(*n), DimsToString(b2.shape), DimsToString(a.shape));
  }
  return Status::Ok();
}

// BatchNormalization and Dropout before opset 7 run in training mode unless
// `is_test` is set; opset 7 has no flag (Dropout is then the identity, and
// BatchNormalization with one output uses the given statistics).
Status Normalizer::TestMode(Node* n) {
  WBS_ASSIGN_OR_RETURN(const int64_t is_test, IntAttr(*n, "is_test", 0));
  if (is_test == 0) {
    return Unimplemented(
        "{}: legacy attribute 'is_test'=0 (training mode, the default before opset 7) is not "
        "supported (inference only)",
        At(*n));
  }
  n->attrs.erase("is_test");
  // Test-mode outputs beyond Y are "not filled" before opset 7, but from
  // opset 7 on extra outputs mean training mode.
  if (n->op_type == "BatchNormalization" && n->outputs.size() > 1) {
    return Unimplemented(
        "{}: legacy attribute 'is_test'=1 with {} outputs has no opset-7 form (extra outputs mean "
        "training mode from opset 7)",
        At(*n), n->outputs.size());
  }
  return Status::Ok();
}

Status Normalizer::PRelu(Node* n) {
  if (n->num_inputs() != 2 || !n->input(0) || !n->input(1)) return Status::Ok();  // arity: schema
  const ValueInfo x = Info(n->input(0)), slope = Info(n->input(1));
  if (IsSingleElement(slope)) return Status::Ok();  // shared across channels
  if (!x.has_shape || !slope.has_shape) {
    return Unimplemented(
        "{}: a PRelu slope of opset {} needs the shapes of X and slope (per channel or "
        "elementwise), which are not known at import",
        At(*n), opset_);
  }
  if (slope.rank() == 1 && x.rank() >= 3) {
    if (x.shape[1] < 0) {
      return Unimplemented(
          "{}: a 1-D PRelu slope of opset {} is per channel, but X {} has an unknown channel count",
          At(*n), opset_, DimsToString(x.shape));
    }
    if (slope.shape[0] == x.shape[1]) return AppendOnes(n, 1, x.rank() - 2);
  }
  if (!BroadcastsTo(slope.shape, x.shape)) {
    return InvalidArgument("{}: PRelu slope {} is neither per channel nor broadcastable to X {}",
                           At(*n), DimsToString(slope.shape), DimsToString(x.shape));
  }
  return Status::Ok();
}

Status Normalizer::Upsample(Node* n) {
  const bool has_h = n->Has("height_scale"), has_w = n->Has("width_scale");
  if (!has_h && !has_w) return Status::Ok();  // already opset-7 form; the schema checks it
  if (!has_h || !has_w || n->Has("scales")) {
    return InvalidArgument(
        "{}: legacy attributes 'height_scale' and 'width_scale' must come together and without "
        "'scales'",
        At(*n));
  }
  const auto* h = std::get_if<float>(&n->attrs["height_scale"]);
  const auto* w = std::get_if<float>(&n->attrs["width_scale"]);
  if (!h || !w) {
    return InvalidArgument("{}: legacy attributes 'height_scale' and 'width_scale' must be floats",
                           At(*n));
  }
  const std::vector<float> scales = {1.0f, 1.0f, *h, *w};
  std::string mode = n->GetString("mode", "nearest");
  if (mode == "bilinear") {
    mode = "linear";
  } else if (mode != "nearest") {
    return InvalidArgument("{}: legacy attribute 'mode' must be 'nearest' or 'bilinear', got '{}'",
                           At(*n), mode);
  }
  const ValueInfo x = Info(n->input(0));
  if (x.has_shape && x.rank() != 4) {
    return InvalidArgument(
        "{}: legacy attributes 'height_scale'/'width_scale' need a 4-D input (N,C,H,W), got {}",
        At(*n), DimsToString(x.shape));
  }
  n->attrs.erase("height_scale");
  n->attrs.erase("width_scale");
  n->attrs["scales"] = scales;
  n->attrs["mode"] = mode;
  return Status::Ok();
}

Status Normalizer::Cast(Node* n) {
  auto it = n->attrs.find("to");
  if (it == n->attrs.end()) return Status::Ok();  // the schema reports it
  const auto* name = std::get_if<std::string>(&it->second);
  if (!name) return Status::Ok();  // already a type code
  std::string upper = *name;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  // The types Cast-1 lists (no strings, no complex, no bfloat16).
  static const std::set<std::string> kCast1Types = {"FLOAT",  "DOUBLE", "FLOAT16", "INT8",
                                                    "INT16",  "INT32",  "INT64",   "UINT8",
                                                    "UINT16", "UINT32", "UINT64",  "BOOL"};
  ::onnx::TensorProto_DataType code;
  if (!kCast1Types.count(upper) || !::onnx::TensorProto_DataType_Parse(upper, &code)) {
    return InvalidArgument("{}: legacy attribute 'to'='{}' is not a type Cast of opset {} casts to",
                           At(*n), *name, opset_);
  }
  it->second = static_cast<int64_t>(code);
  return Status::Ok();
}

// Tile-1 repeats the input `tiles` times along `axis` (both scalar inputs).
Status Normalizer::Tile(Node* n) {
  if (n->num_inputs() != 3) {
    return InvalidArgument("{}: Tile of opset {} takes inputs (input, tiles, axis), got {}", At(*n),
                           opset_, n->num_inputs());
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> tiles, ConstantInts(*n, 1, "tiles"));
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> axis, ConstantInts(*n, 2, "axis"));
  if (tiles.size() != 1 || axis.size() != 1 || tiles[0] < 0) {
    return InvalidArgument("{}: legacy inputs 'tiles' and 'axis' must be scalars, tiles >= 0",
                           At(*n));
  }
  const ValueInfo x = Info(n->input(0));
  if (!x.has_shape) {
    return Unimplemented(
        "{}: legacy inputs 'tiles'/'axis' need the input's rank, which is not "
        "known at import",
        At(*n));
  }
  const int64_t r = x.rank();
  const int64_t a = axis[0] < 0 ? axis[0] + r : axis[0];
  if (a < 0 || a >= r) {
    return InvalidArgument("{}: legacy input 'axis'={} is out of range for input {}", At(*n),
                           axis[0], DimsToString(x.shape));
  }
  std::vector<int64_t> repeats(static_cast<size_t>(r), 1);
  repeats[static_cast<size_t>(a)] = tiles[0];
  Value* rep = g_.AddConstant(n->name + "_repeats", Tensor::FromVector<int64_t>({r}, repeats));
  g_.SetInput(n, 1, rep);
  g_.SetInput(n, 2, nullptr);
  n->inputs.pop_back();
  return Status::Ok();
}

Status Normalizer::Reshape(Node* n) {
  if (!n->Has("shape")) return Status::Ok();  // the schema reports a missing shape
  if (n->input(1)) {
    return InvalidArgument("{}: legacy attribute 'shape' and a shape input are both given", At(*n));
  }
  const auto* shape = std::get_if<std::vector<int64_t>>(&n->attrs["shape"]);
  if (!shape) return InvalidArgument("{}: legacy attribute 'shape' must be ints", At(*n));
  const int64_t rank = static_cast<int64_t>(shape->size());
  Value* c = g_.AddConstant(n->name + "_shape", Tensor::FromVector<int64_t>({rank}, *shape));
  n->attrs.erase("shape");
  g_.SetInput(n, 1, c);
  return Status::Ok();
}

Status Normalizer::Split(Node* n) {
  if (n->input(1)) {
    if (n->Has("split")) {
      return InvalidArgument("{}: legacy input 'split' and attribute 'split' are both given",
                             At(*n));
    }
    WBS_ASSIGN_OR_RETURN(std::vector<int64_t> split, ConstantInts(*n, 1, "split"));
    n->attrs["split"] = split;
  }
  if (n->num_inputs() == 2) {
    g_.SetInput(n, 1, nullptr);
    n->inputs.pop_back();
  }
  if (!n->Has("axis")) {
    return Unimplemented("{}: Split of opset 1 without attribute 'axis' (no documented default)",
                         At(*n));
  }
  return Status::Ok();
}

Status Normalizer::Pad(Node* n) {
  if (!n->Has("paddings")) return Status::Ok();
  if (n->Has("pads")) {
    return InvalidArgument("{}: legacy attribute 'paddings' and attribute 'pads' are both given",
                           At(*n));
  }
  n->attrs["pads"] = n->attrs["paddings"];
  n->attrs.erase("paddings");
  return Status::Ok();
}

Status Normalizer::LpPoolP(Node* n) {
  auto it = n->attrs.find("p");
  if (it == n->attrs.end()) return Status::Ok();  // both defaults are 2
  const auto* p = std::get_if<float>(&it->second);
  if (!p) return Status::Ok();
  if (!std::isfinite(*p) || *p != std::floor(*p) || *p < 1 || *p > kMaxLegacyInt) {
    return Unimplemented(
        "{}: legacy attribute 'p'={} is not a positive integer (opset 2+ needs one)", At(*n), *p);
  }
  it->second = static_cast<int64_t>(*p);
  return Status::Ok();
}

}  // namespace

Status NormalizeLegacyOpset(ir::Graph& graph, int64_t model_opset, const std::string& path,
                            const std::map<const ir::Node*, std::string>& where) {
  return Normalizer(graph, model_opset, path, where).Run();
}

}  // namespace wbs::onnxio
