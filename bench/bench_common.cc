#include "bench/bench_common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/omp_wait.h"
#include "ir/op_schema.h"

namespace wbs::bench {

void ChooseOmpWait(char** argv) {
  ApplyOmpWaitPolicy(argv, /*long_running=*/false);
  std::fprintf(stderr, "OpenMP wait: %s\n", OmpWaitDescription().c_str());
}

std::string ConvShape::Name() const {
  return fmt::format("cin{}_cout{}_k{}_s{}_p{}_{}x{}", cin, cout, k, stride, pad, h, w);
}

bool ConvShape::SameShape(const ConvShape& o) const {
  return cin == o.cin && cout == o.cout && k == o.k && stride == o.stride && pad == o.pad &&
         h == o.h && w == o.w;
}

namespace {
std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) {
    size_t a = cell.find_first_not_of(" \t\r");
    size_t b = cell.find_last_not_of(" \t\r");
    out.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
  }
  return out;
}
}  // namespace

Result<std::vector<ConvShape>> ReadConvShapes(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("{}: cannot open", path);
  std::vector<std::string> header;
  std::vector<ConvShape> shapes;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#' || line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    std::vector<std::string> cells = SplitCsv(line);
    if (header.empty()) {
      header = cells;
      for (const char* need : {"cin", "cout", "k", "stride", "pad", "h", "w"})
        if (std::find(header.begin(), header.end(), need) == header.end())
          return ParseError("{}:{}: header lacks column '{}'", path, line_no, need);
      continue;
    }
    if (cells.size() != header.size())
      return ParseError("{}:{}: {} cells, header has {}", path, line_no, cells.size(),
                        header.size());
    ConvShape s;
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string& key = header[i];
      if (key == "layer") {
        s.layer = cells[i];
        continue;
      }
      int64_t v = 0;
      try {
        size_t used = 0;
        v = std::stoll(cells[i], &used);
        if (used != cells[i].size()) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        return ParseError("{}:{}: column '{}': '{}' is not an integer", path, line_no, key,
                          cells[i]);
      }
      if (key == "cin")
        s.cin = v;
      else if (key == "cout")
        s.cout = v;
      else if (key == "k")
        s.k = v;
      else if (key == "stride")
        s.stride = v;
      else if (key == "pad")
        s.pad = v;
      else if (key == "h")
        s.h = v;
      else if (key == "w")
        s.w = v;
      else if (key == "count")
        s.count = v;
    }
    if (s.cin < 1 || s.cout < 1 || s.k < 1 || s.stride < 1 || s.pad < 0 || s.out_h() < 1 ||
        s.out_w() < 1)
      return InvalidArgument("{}:{}: invalid conv shape {}", path, line_no, s.Name());
    shapes.push_back(s);
  }
  if (shapes.empty()) return ParseError("{}: no conv shapes", path);
  return shapes;
}

Result<std::vector<ConvShape>> DistinctConvShapes(ir::Graph& graph) {
  WBS_RETURN_IF_ERROR(ir::InferShapes(graph));
  std::vector<ConvShape> out;
  for (auto& n : graph.nodes()) {
    if (n->op_type != "Conv") continue;
    const ir::Value* x = n->input(0);
    const ir::Value* wv = n->input(1);
    if (!x || !wv || !x->has_shape || !wv->has_shape || x->shape.size() != 4 ||
        wv->shape.size() != 4)
      return InvalidArgument("{}: not a static 2-D conv", n->Describe());
    std::vector<int64_t> strides = n->GetInts("strides", {1, 1});
    std::vector<int64_t> pads = n->GetInts("pads", {0, 0, 0, 0});
    if (n->GetInt("group", 1) != 1 || wv->shape[2] != wv->shape[3] || strides[0] != strides[1] ||
        pads.size() != 4 || pads[0] != pads[1] || pads[0] != pads[2] || pads[0] != pads[3])
      continue;  // grouped / non-square convs are not in the CSV format
    ConvShape s;
    s.cin = x->shape[1];
    s.cout = wv->shape[0];
    s.k = wv->shape[2];
    s.stride = strides[0];
    s.pad = pads[0];
    s.h = x->shape[2];
    s.w = x->shape[3];
    s.count = 1;
    s.layer = n->name;
    auto it =
        std::find_if(out.begin(), out.end(), [&](const ConvShape& o) { return o.SameShape(s); });
    if (it != out.end())
      ++it->count;
    else
      out.push_back(s);
  }
  return out;
}

Result<Tensor> RandomTensorOf(DType type, const Shape& shape, uint64_t seed) {
  if (type == DType::kF32) return RandomTensor(shape, seed);
  if (type != DType::kU8 && type != DType::kI8)
    return Unimplemented("random {} tensors are not generated", DTypeName(type));
  Tensor x(type, shape);
  std::mt19937_64 rng(seed);
  uint8_t* b = reinterpret_cast<uint8_t*>(x.raw());
  for (int64_t i = 0; i < x.numel(); ++i) b[i] = static_cast<uint8_t>(rng());
  return x;
}

std::unique_ptr<ir::Graph> BuildConvGraph(const ConvShape& s, uint64_t seed) {
  auto g = std::make_unique<ir::Graph>();
  g->name = "conv_" + s.Name();
  ir::Value* x = g->AddInput("x", DType::kF32, {1, s.cin, s.h, s.w});
  // He-style scale keeps activations O(1) (no denormals in the timing).
  float scale = std::sqrt(2.0f / static_cast<float>(s.cin * s.k * s.k));
  ir::Value* w = g->AddConstant("w", RandomTensor({s.cout, s.cin, s.k, s.k}, seed, scale));
  ir::Value* b = g->AddConstant("b", RandomTensor({s.cout}, seed + 1, 0.1f));
  ir::Value* y = g->AddValue("y");
  ir::Node* conv = g->AddNode("Conv", {x, w, b}, {y}, "conv");
  conv->attrs["kernel_shape"] = std::vector<int64_t>{s.k, s.k};
  conv->attrs["strides"] = std::vector<int64_t>{s.stride, s.stride};
  conv->attrs["pads"] = std::vector<int64_t>{s.pad, s.pad, s.pad, s.pad};
  g->outputs.push_back(y);
  return g;
}

Result<std::vector<Tensor>> RandomInputs(const ir::Graph& graph, uint64_t seed) {
  std::vector<Tensor> out;
  for (const ir::Value* v : graph.inputs) {
    if (v->dtype != DType::kF32)
      return Unimplemented("input '{}': only f32 inputs are generated", v->name);
    Shape shape = v->shape;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] >= 0) continue;
      if (i != 0) return InvalidArgument("input '{}': unknown dim {}", v->name, i);
      shape[i] = 1;  // batch
    }
    out.push_back(RandomTensor(shape, seed++));
  }
  return out;
}

Result<std::vector<NodeTiming>> ProfileNodes(const ir::Graph& prepared, runtime::Backend backend,
                                             int threads, int repeats) {
  std::vector<NodeTiming> out;
  uint64_t seed = 1000;
  for (const auto& np : prepared.nodes()) {
    const ir::Node& n = *np;
    ir::Graph g;
    g.opset = prepared.opset;
    std::map<const ir::Value*, ir::Value*> mapped;
    std::vector<Tensor> inputs;
    std::vector<ir::Value*> ins;
    bool skip = false;
    for (const ir::Value* v : n.inputs) {
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      auto it = mapped.find(v);
      if (it != mapped.end()) {
        ins.push_back(it->second);
        continue;
      }
      ir::Value* nv = nullptr;
      if (v->is_constant()) {
        nv = g.AddConstant(v->name, v->constant);
      } else {
        if (!v->shape_is_static()) {
          skip = true;
          break;
        }
        Result<Tensor> x = RandomTensorOf(v->dtype, v->shape, seed++);
        if (!x.ok()) {
          skip = true;
          break;
        }
        nv = g.AddInput(v->name, v->dtype, v->shape);
        inputs.push_back(std::move(x).value());
      }
      nv->quant = v->quant;
      nv->block_mask = v->block_mask;
      mapped[v] = nv;
      ins.push_back(nv);
    }
    if (skip) continue;
    std::vector<ir::Value*> outs;
    for (const ir::Value* v : n.outputs) {
      ir::Value* o = g.AddValue(v ? v->name : "");
      if (v) o->quant = v->quant;
      outs.push_back(o);
    }
    ir::Node* copy = g.AddNode(n.op_type, ins, outs, n.name);
    copy->domain = n.domain;
    copy->opset = n.opset;
    copy->attrs = n.attrs;
    for (ir::Value* v : outs) g.outputs.push_back(v);

    runtime::SessionOptions so;
    so.backend = backend;
    so.num_threads = threads;
    so.optimize = false;
    auto session = runtime::Session::Create(g, so);
    if (!session.ok()) return session.status().WithContext("profiling " + n.Describe());
    std::vector<double> times;
    for (int r = 0; r < repeats + 2; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      auto res = (*session)->Run(inputs);
      auto t1 = std::chrono::steady_clock::now();
      if (!res.ok()) return res.status().WithContext("profiling " + n.Describe());
      if (r >= 2) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(times.begin(), times.end());
    size_t m = times.size() / 2;
    double median = times.size() % 2 ? times[m] : 0.5 * (times[m - 1] + times[m]);
    std::string impl = (*session)->NodeImplementations().at(0);
    impl = impl.substr(impl.find(':') + 1);
    out.push_back({n.name, n.op_type, impl, median});
  }
  return out;
}

}  // namespace wbs::bench
