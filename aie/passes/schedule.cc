// Pass 1: schedule. Walks the quantized IR in topological order and makes
// the layer list: QConv/QGemm -> conv layers (the int8 weight, bias and the
// per-channel requantization resolved exactly as the runtime does), QAdd,
// pools, QConcat inputs whose quantization differs from the output's ->
// rescale layers (equal parameters: the input is stored straight into its
// channel slot of the output, no work). Flatten/Reshape/Squeeze/Unsqueeze/
// Identity alias their input (NCHW batch 1 keeps the bytes). QuantizeLinear
// at a graph input and DequantizeLinear at a graph output are the host's
// (the program's input/output symbols carry their scale and zero point).
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "aie/passes/cache.h"
#include "aie/passes/compiler.h"
#include "runtime/ops_quant.h"

namespace wbs::aie {

namespace {

OutType TypeOf(DType t) { return t == DType::kI8 ? OutType::kS8 : OutType::kU8; }

std::string Sanitize(const std::string& s) {
  std::string r;
  for (char ch : s) r += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-') ? ch : '_';
  return r.empty() ? "_" : r;
}

Result<int> TensorFor(CompileState& s, const ir::Node& node, const ir::Value* v) {
  const auto it = s.tensor_of.find(v);
  if (it != s.tensor_of.end()) return it->second;
  if (!v->has_shape) return InvalidArgument("{}: value '{}' has no shape", node.Describe(), v->name);
  Shape sh = v->shape;
  if (!sh.empty() && sh[0] < 0) sh[0] = 1;  // an unknown batch runs as 1
  for (int64_t d : sh)
    if (d < 0) return InvalidArgument("{}: value '{}' has a dynamic shape", node.Describe(), v->name);
  ActTensor t;
  t.name = Sanitize(v->name);
  if (sh.size() == 4) {
    if (sh[0] != 1) return InvalidArgument("{}: '{}' has batch {} (the AIE compiler takes batch 1)", node.Describe(), v->name, sh[0]);
    t.c = sh[1], t.h = sh[2], t.w = sh[3];
  } else if (sh.size() == 2) {
    if (sh[0] != 1) return InvalidArgument("{}: '{}' has batch {} (the AIE compiler takes batch 1)", node.Describe(), v->name, sh[0]);
    t.c = sh[1];
  } else {
    return InvalidArgument("{}: '{}' has rank {} (expected 2 or 4)", node.Describe(), v->name, sh.size());
  }
  if (v->quant) {
    WBS_ASSIGN_OR_RETURN(const runtime::TensorQuant q, runtime::PerTensorQuant(node, v, "tensor"));
    t.type = TypeOf(q.dtype);
    t.scale = q.scale;
    t.zero_point = q.zero_point;
    t.pot = q.power_of_two;
  } else {
    t.type = OutType::kS32;
    t.elem = 4;
  }
  const int idx = static_cast<int>(s.tensors.size());
  s.tensors.push_back(t);
  s.tensor_of[v] = idx;
  return idx;
}

void ConvGeometry(const ir::Node& n, Layer& l) {
  const auto k = n.GetInts("kernel_shape", {});
  if (k.size() == 2) l.kh = k[0], l.kw = k[1];
  const auto st = n.GetInts("strides", {1, 1});
  l.sh = st[0], l.sw = st[1];
  const auto d = n.GetInts("dilations", {1, 1});
  l.dh = d[0], l.dw = d[1];
  const auto p = n.GetInts("pads", {0, 0, 0, 0});
  l.pad_t = p[0], l.pad_l = p[1], l.pad_b = p[2], l.pad_r = p[3];
}

void BlockStats(Layer& l) {
  const int64_t cpg = l.c / l.groups;
  l.block_rows = (l.m + l.br - 1) / l.br;
  l.block_cols = (cpg + l.bc - 1) / l.bc;
  l.row_nnz.assign(static_cast<size_t>(l.block_rows), 0);
  const int64_t taps = l.kh * l.kw;
  l.macs = 0;
  for (int64_t i = 0; i < l.block_rows; ++i) {
    for (int64_t j = 0; j < l.block_cols; ++j) {
      bool nz = false;
      int64_t real = 0;  // real (row, channel) pairs of the block
      for (int64_t r = i * l.br; r < std::min(l.m, (i + 1) * l.br); ++r) {
        for (int64_t k = j * l.bc; k < std::min(cpg, (j + 1) * l.bc); ++k) {
          ++real;
          for (int64_t t = 0; t < taps && !nz; ++t) nz = l.weight[static_cast<size_t>((r * cpg + k) * taps + t)] != 0;
        }
      }
      if (nz) {
        ++l.row_nnz[static_cast<size_t>(i)];
        l.macs += real * taps * l.oh * l.ow;
      }
    }
  }
  l.macs_dense = l.m * cpg * taps * l.oh * l.ow;
}

}  // namespace

const char* LayerKindName(LayerKind k) {
  switch (k) {
    case LayerKind::kConv: return "conv";
    case LayerKind::kAdd: return "add";
    case LayerKind::kMaxPool: return "maxpool";
    case LayerKind::kAvgPool: return "avgpool";
    case LayerKind::kRescale: return "rescale";
  }
  return "?";
}

Status RunSchedule(CompileState& s) {
  if (!s.graph) return InvalidArgument("compile: no graph");
  const ir::Graph& g = *s.graph;
  // Up to the fusions below the layers are a function of the graph alone:
  // the trial compiles of one Compile() start from the first one's.
  const bool fresh = s.layers.empty() && s.tensors.empty() && s.tensor_of.empty() &&
                     s.inputs.empty() && s.outputs.empty() && s.dequant_scales.empty();
  if (s.cache && fresh) {
    std::shared_ptr<const CompileCache::Scheduled> c;
    {
      std::lock_guard<std::mutex> lock(s.cache->mu);
      c = s.cache->scheduled;
    }
    if (c && c->graph == s.graph) {
      s.tensors = c->tensors, s.layers = c->layers, s.tensor_of = c->tensor_of;
      s.inputs = c->inputs, s.outputs = c->outputs, s.dequant_scales = c->dequant_scales;
      FuseSiblings(s);
      FusePools(s);
      MoveAddPartners(s);
      return Status::Ok();
    }
  }
  for (const auto& np : g.nodes()) {
    const ir::Node& n = *np;
    const std::string& op = n.op_type;
    if (op == "QuantizeLinear") {
      const ir::Value* x = n.input(0);
      if (std::find(g.inputs.begin(), g.inputs.end(), x) == g.inputs.end())
        return Unimplemented("{}: QuantizeLinear inside the graph has no AIE form (only at a graph input)", n.Describe());
      WBS_ASSIGN_OR_RETURN(const int t, TensorFor(s, n, n.outputs[0]));
      s.inputs.push_back(t);
      continue;
    }
    if (op == "DequantizeLinear") {
      if (!g.IsOutput(n.outputs[0]))
        return Unimplemented("{}: DequantizeLinear inside the graph has no AIE form (an f32 fallback op?)", n.Describe());
      WBS_ASSIGN_OR_RETURN(const int t, TensorFor(s, n, n.input(0)));
      s.outputs.push_back(t);
      continue;
    }
    if (op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity") {
      WBS_ASSIGN_OR_RETURN(const int t, TensorFor(s, n, n.input(0)));
      const ir::Value* out = n.outputs[0];
      const ActTensor& x = s.tensors[static_cast<size_t>(t)];
      if (x.h * x.w > 1 && out->has_shape && out->shape.size() == 2) {
        // [C, H, W] -> [C*H*W]: the same bytes, but a consumer (VGG-16's
        // classifier after a 7x7 map) reads them as C*H*W channels of a 1x1
        // plane; sharing the [C, H, W] tensor made it read channel k at plane
        // stride H*W (found by the simulator: VGG-16 not bit-exact). A fresh
        // tensor with that geometry aliased at offset 0 keeps the bytes.
        ActTensor f = x;
        f.name = Sanitize(n.name.empty() ? out->name : n.name);
        f.c = x.c * x.h * x.w;
        f.h = f.w = 1;
        f.alias_of = t;
        f.channel_offset = 0;
        f.producer = -1;
        f.consumers.clear();
        s.tensor_of[out] = static_cast<int>(s.tensors.size());
        s.tensors.push_back(f);
        continue;
      }
      s.tensor_of[out] = t;  // same bytes (NCHW, batch 1)
      continue;
    }
    if (op == "QConcat") {
      if (n.GetInt("axis", 1) != 1) return Unimplemented("{}: QConcat on axis {} (AIE: channels only)", n.Describe(), n.GetInt("axis", 1));
      WBS_ASSIGN_OR_RETURN(const int yt, TensorFor(s, n, n.outputs[0]));
      int64_t off = 0;
      for (size_t i = 0; i < n.num_inputs(); ++i) {
        const ir::Value* v = n.input(i);
        WBS_ASSIGN_OR_RETURN(const int xt, TensorFor(s, n, v));
        // Copies: the rescale below appends to s.tensors, which may move it.
        const ActTensor x = s.tensors[static_cast<size_t>(xt)];
        const ActTensor y = s.tensors[static_cast<size_t>(yt)];
        const bool same = x.type == y.type && x.scale == y.scale && x.zero_point == y.zero_point &&
                          x.alias_of < 0 && s.tensors[static_cast<size_t>(xt)].consumers.empty() &&
                          std::find(s.inputs.begin(), s.inputs.end(), xt) == s.inputs.end() &&
                          v->users.size() == 1;
        if (same) {
          ActTensor& xm = s.tensors[static_cast<size_t>(xt)];
          xm.alias_of = yt;
          xm.channel_offset = off;
        } else {
          Layer l;
          l.name = Sanitize(n.name.empty() ? v->name : n.name) + fmt::format(".in{}", i);
          l.op = op;
          l.kind = LayerKind::kRescale;
          l.inputs = {xt};
          // The rescaled copy is a fresh tensor aliased into the output.
          ActTensor r = y;
          r.name = l.name;
          r.c = x.c;
          r.alias_of = yt;
          r.channel_offset = off;
          const int rt = static_cast<int>(s.tensors.size());
          s.tensors.push_back(r);
          l.output = rt;
          l.c = l.m = x.c, l.h = l.oh = x.h, l.w = l.ow = x.w;
          const Requant q = runtime::RatioMultiplier(static_cast<double>(x.scale) / y.scale, x.pot && y.pot);
          l.amult = q.multiplier, l.ashift = q.shift;
          l.out_zero = y.zero_point;
          l.lo = y.type == OutType::kS8 ? -128 : 0, l.hi = y.type == OutType::kS8 ? 127 : 255;
          l.macs_dense = l.macs = 0;
          s.tensors[static_cast<size_t>(xt)].consumers.push_back(static_cast<int>(s.layers.size()));
          s.tensors[static_cast<size_t>(rt)].producer = static_cast<int>(s.layers.size());
          s.layers.push_back(std::move(l));
        }
        off += x.c;
      }
      continue;
    }
    Layer l;
    l.name = Sanitize(n.name.empty() ? n.outputs[0]->name : n.name);
    l.op = op;
    if (op == "QConv" || op == "QGemm") {
      l.kind = LayerKind::kConv;
      const ir::Value* wv = n.input(1);
      if (!wv || !wv->is_constant()) return InvalidArgument("{}: weight is not a constant", n.Describe());
      const Tensor& w = wv->constant;
      if (w.dtype() != DType::kI8) return InvalidArgument("{}: weight dtype is not i8", n.Describe());
      const int8_t* wp = w.data<int8_t>();
      l.weight.assign(wp, wp + w.numel());
      if (op == "QConv") {
        ConvGeometry(n, l);
        l.groups = n.GetInt("group", 1);
        if (n.GetString("auto_pad", "NOTSET") != "NOTSET")
          return Unimplemented("{}: auto_pad (run shape inference / explicit pads first)", n.Describe());
      }
      if (op == "QGemm" && (n.GetInt("transB", 0) != 1))
        return InvalidArgument("{}: QGemm expects transB=1", n.Describe());
      const ir::Value* bv = n.input(2);
      const int64_t m = w.shape()[0];
      l.bias.assign(static_cast<size_t>(m), 0);
      if (bv) {
        if (!bv->is_constant() || bv->constant.dtype() != DType::kI32)
          return InvalidArgument("{}: bias is not an i32 constant", n.Describe());
        const int32_t* bp = bv->constant.data<int32_t>();
        std::copy(bp, bp + m, l.bias.begin());
      }
      WBS_ASSIGN_OR_RETURN(const runtime::QLinearQuant q, runtime::ResolveQLinearQuant(n, m));
      l.mult.resize(static_cast<size_t>(m));
      l.shift.resize(static_cast<size_t>(m));
      for (int64_t i = 0; i < m; ++i) {
        l.mult[static_cast<size_t>(i)] = q.float_output ? 0 : q.requant[static_cast<size_t>(i)].multiplier;
        l.shift[static_cast<size_t>(i)] = q.float_output ? 0 : q.requant[static_cast<size_t>(i)].shift;
      }
      l.lo = q.lo, l.hi = q.hi, l.out_zero = q.float_output ? 0 : q.y.zero_point;
      WBS_ASSIGN_OR_RETURN(const int xt, TensorFor(s, n, n.input(0)));
      WBS_ASSIGN_OR_RETURN(const int yt, TensorFor(s, n, n.outputs[0]));
      l.inputs = {xt};
      l.output = yt;
      const ActTensor& x = s.tensors[static_cast<size_t>(xt)];
      const ActTensor& y = s.tensors[static_cast<size_t>(yt)];
      l.c = x.c, l.h = x.h, l.w = x.w, l.m = y.c, l.oh = y.h, l.ow = y.w;
      if (op == "QGemm") l.c = x.c * x.h * x.w, l.h = l.w = 1;
      if (l.m != m) return InvalidArgument("{}: weight has {} outputs, output has {} channels", n.Describe(), m, l.m);
      if (l.groups > 1 && (l.m % l.groups != 0 || l.br % (l.m / l.groups) != 0))
        return Unimplemented("{}: grouped conv with {} outputs per group (AIE: a divisor of {})", n.Describe(),
                             l.m / std::max<int64_t>(1, l.groups), l.br);
      if (static_cast<int64_t>(l.weight.size()) != m * (l.c / l.groups) * l.kh * l.kw)
        return InvalidArgument("{}: weight size {} does not match the geometry", n.Describe(), l.weight.size());
      if (q.float_output) {
        // The logits: s32 accumulators, dequantized on the host with (f32)(s_x * s_w[c]).
        l.lo = INT32_MIN, l.hi = INT32_MAX;
        s.dequant_scales[yt] = q.dequant_scale;
      }
      BlockStats(l);
      s.layers.push_back(std::move(l));
    } else {
      WBS_ASSIGN_OR_RETURN(const int xt, TensorFor(s, n, n.input(0)));
      WBS_ASSIGN_OR_RETURN(const int yt, TensorFor(s, n, n.outputs[0]));
      l.inputs = {xt};
      l.output = yt;
      const ActTensor& x = s.tensors[static_cast<size_t>(xt)];
      const ActTensor& y = s.tensors[static_cast<size_t>(yt)];
      l.c = x.c, l.h = x.h, l.w = x.w, l.m = y.c, l.oh = y.h, l.ow = y.w;
      l.groups = l.c;
      l.out_zero = y.zero_point;
      l.lo = y.type == OutType::kS8 ? -128 : 0, l.hi = y.type == OutType::kS8 ? 127 : 255;
      if (op == "QAdd") {
        l.kind = LayerKind::kAdd;
        WBS_ASSIGN_OR_RETURN(const int bt, TensorFor(s, n, n.input(1)));
        const ActTensor& b = s.tensors[static_cast<size_t>(bt)];
        if (b.c != x.c || b.h != x.h || b.w != x.w || y.c != x.c)
          return Unimplemented("{}: QAdd with broadcasting (AIE: equal shapes only)", n.Describe());
        l.inputs.push_back(bt);
        const RequantPair r = QuantizeMultiplierPair(static_cast<double>(x.scale) / y.scale,
                                                     static_cast<double>(b.scale) / y.scale);
        l.amult = r.multiplier_a, l.amult2 = r.multiplier_b, l.ashift = r.shift;
        runtime::TensorQuant yq;
        yq.dtype = y.type == OutType::kS8 ? DType::kI8 : DType::kU8;
        yq.scale = y.scale, yq.zero_point = y.zero_point;
        WBS_ASSIGN_OR_RETURN(const auto bounds, runtime::QuantClampBounds(n, yq));
        l.lo = bounds.first, l.hi = bounds.second;
      } else if (op == "QMaxPool" || op == "QAveragePool") {
        l.kind = op == "QMaxPool" ? LayerKind::kMaxPool : LayerKind::kAvgPool;
        ConvGeometry(n, l);
        l.count_include_pad = n.GetInt("count_include_pad", 0) != 0;
        l.pool_pad_b = l.pad_b, l.pool_pad_r = l.pad_r;
        // ceil_mode: the output shape already has the extra row/column;
        // extend the end padding so the window is inside the padded input.
        l.pad_b = std::max(l.pad_b, (l.oh - 1) * l.sh + (l.kh - 1) * l.dh + 1 - l.h - l.pad_t);
        l.pad_r = std::max(l.pad_r, (l.ow - 1) * l.sw + (l.kw - 1) * l.dw + 1 - l.w - l.pad_l);
      } else if (op == "QGlobalAveragePool") {
        l.kind = LayerKind::kAvgPool;
        l.kh = l.h, l.kw = l.w;
      } else {
        return Unimplemented("{}: op {} has no AIE form", n.Describe(), op);
      }
      l.macs_dense = l.macs = 0;
      s.layers.push_back(std::move(l));
    }
    Layer& back = s.layers.back();
    const int li = static_cast<int>(s.layers.size()) - 1;
    for (int t : back.inputs) s.tensors[static_cast<size_t>(t)].consumers.push_back(li);
    s.tensors[static_cast<size_t>(back.output)].producer = li;
  }
  for (const ir::Value* v : g.outputs) {
    const auto it = s.tensor_of.find(v);
    if (it != s.tensor_of.end() && std::find(s.outputs.begin(), s.outputs.end(), it->second) == s.outputs.end())
      s.outputs.push_back(it->second);
  }
  if (s.inputs.empty()) return InvalidArgument("compile: the graph has no quantized input (run wbs quantize first)");
  if (s.layers.empty()) return InvalidArgument("compile: the graph has no layers");
  if (s.cache && fresh) {
    auto c = std::make_shared<CompileCache::Scheduled>();
    c->graph = s.graph, c->tensors = s.tensors, c->layers = s.layers, c->tensor_of = s.tensor_of;
    c->inputs = s.inputs, c->outputs = s.outputs, c->dequant_scales = s.dequant_scales;
    std::lock_guard<std::mutex> lock(s.cache->mu);
    s.cache->scheduled = std::move(c);
  }
  FuseSiblings(s);
  FusePools(s);
  MoveAddPartners(s);
  return Status::Ok();
}

std::string DumpSchedule(const CompileState& s) {
  std::string r = "# schedule: layers in order (kind, input -> output, geometry, MACs dense/effective)\n";
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const Layer& l = s.layers[i];
    std::string ins, outs;
    for (int t : l.inputs) ins += (ins.empty() ? "" : ",") + s.tensors[static_cast<size_t>(t)].name;
    for (const Layer::OutSlice& o : l.out_slices)
      outs += fmt::format("{}{}[{},{})", outs.empty() ? "" : ",", s.tensors[static_cast<size_t>(o.tensor)].name, o.m0, o.m1);
    if (outs.empty()) outs = s.tensors[static_cast<size_t>(l.output)].name;
    r += fmt::format("{:3} {:<8} {:<28} {} -> {}  {}x{}x{} -> {}x{}x{}  k{}x{} s{} g{}  macs {} / {}\n", i,
                     LayerKindName(l.kind), l.name, ins, outs, l.c, l.h,
                     l.w, l.m, l.oh, l.ow, l.kh, l.kw, l.sh, l.groups, l.macs_dense, l.macs);
  }
  return r;
}

}  // namespace wbs::aie
