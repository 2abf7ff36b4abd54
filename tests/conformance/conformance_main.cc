// ONNX backend node-test conformance runner (test tier 2).
//
// Runs every case in the libonnx-testdata suites (node, pytorch-converted,
// pytorch-operator, simple) whose ops wbs supports, on one backend, and
// compares with the expected outputs (ONNX backend-test tolerances:
// |out - exp| <= atol + rtol * |exp|). A case that uses only supported ops
// must pass, or be listed in known_failures.txt with a reason; a listed case
// that passes is an error too (stale entry), so the list stays honest.
//
// usage: wbs_conformance --backend reference|fast [--filter SUBSTR] [-v]
//                        [--data DIR] [--known-failures FILE]
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ir/op_schema.h"
#include "onnx/model_io.h"
#include "runtime/operator.h"
#include "runtime/session.h"

namespace fs = std::filesystem;
using namespace wbs;

namespace {

constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-5;

struct KnownFailure {
  std::string backend;  // "reference", "fast" or "*"
  std::string reason;
};

// Lines: "<suite>/<case> <backend|*> # reason". Blank lines and lines
// starting with '#' are ignored.
Result<std::map<std::string, KnownFailure>> LoadKnownFailures(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open known-failures list {}", path);
  std::map<std::string, KnownFailure> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    auto hash = line.find('#');
    if (hash == std::string::npos)
      return InvalidArgument("{}:{}: entry without a '# reason'", path, lineno);
    std::istringstream head(line.substr(0, hash));
    std::string name, backend;
    head >> name >> backend;
    std::string reason = line.substr(hash + 1);
    reason.erase(0, reason.find_first_not_of(' '));
    if (name.empty() || backend.empty() || reason.empty())
      return InvalidArgument("{}:{}: expected '<suite>/<case> <backend|*> # reason'", path, lineno);
    out[name + " " + backend] = {backend, reason};
  }
  return out;
}

const KnownFailure* FindKnown(const std::map<std::string, KnownFailure>& known, const std::string& name,
                              const std::string& backend) {
  auto it = known.find(name + " " + backend);
  if (it != known.end()) return &it->second;
  it = known.find(name + " *");
  return it == known.end() ? nullptr : &it->second;
}

// Op types used by a model file (parsed directly, before our importer).
Result<std::set<std::string>> ModelOps(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  onnx::ModelProto model;
  if (!model.ParseFromString(ss.str())) return ParseError("{}: cannot parse", path);
  std::set<std::string> ops;
  for (const auto& n : model.graph().node()) {
    std::string d = n.domain();
    ops.insert(d.empty() || d == "ai.onnx" ? n.op_type() : d + "." + n.op_type());
  }
  return ops;
}

std::string CompareTensors(const Tensor& got, const Tensor& exp, size_t index) {
  if (got.dtype() != exp.dtype())
    return fmt::format("output {}: dtype {} vs expected {}", index, DTypeName(got.dtype()), DTypeName(exp.dtype()));
  if (got.shape() != exp.shape())
    return fmt::format("output {}: shape {} vs expected {}", index, ShapeToString(got.shape()),
                       ShapeToString(exp.shape()));
  if (IsFloat(exp.dtype())) {
    std::vector<double> g = got.ToVector<double>(), e = exp.ToVector<double>();
    for (size_t i = 0; i < e.size(); ++i) {
      if (std::isnan(e[i]) && std::isnan(g[i])) continue;
      if (std::isinf(e[i]) && g[i] == e[i]) continue;
      if (!(std::fabs(g[i] - e[i]) <= kAtol + kRtol * std::fabs(e[i])))
        return fmt::format("output {}: element {} = {} vs expected {}", index, i, g[i], e[i]);
    }
    return "";
  }
  if (!got.Identical(exp)) {
    std::vector<int64_t> g = got.ToVector<int64_t>(), e = exp.ToVector<int64_t>();
    for (size_t i = 0; i < e.size(); ++i)
      if (g[i] != e[i]) return fmt::format("output {}: element {} = {} vs expected {}", index, i, g[i], e[i]);
    return fmt::format("output {}: bytes differ", index);
  }
  return "";
}

// Runs one case; returns "" on success or a one-line reason.
std::string RunCase(const fs::path& dir, runtime::Backend backend) {
  const fs::path data = dir / "test_data_set_0";
  std::vector<Tensor> inputs, expected;
  for (int i = 0;; ++i) {
    fs::path p = data / fmt::format("input_{}.pb", i);
    if (!fs::exists(p)) break;
    auto t = onnxio::ReadTensorProtoFile(p.string());
    if (!t.ok()) return "reading " + p.filename().string() + ": " + t.status().ToString();
    inputs.push_back(*t);
  }
  for (int i = 0;; ++i) {
    fs::path p = data / fmt::format("output_{}.pb", i);
    if (!fs::exists(p)) break;
    auto t = onnxio::ReadTensorProtoFile(p.string());
    if (!t.ok()) return "reading " + p.filename().string() + ": " + t.status().ToString();
    expected.push_back(*t);
  }
  // First import without shapes to learn the input names, then with the
  // test's actual input shapes.
  onnxio::ImportOptions probe;
  probe.infer_shapes = false;
  auto g0 = onnxio::ImportModel((dir / "model.onnx").string(), probe);
  if (!g0.ok()) return g0.status().ToString();
  if ((*g0)->inputs.size() != inputs.size())
    return fmt::format("model has {} inputs, test data {}", (*g0)->inputs.size(), inputs.size());
  onnxio::ImportOptions opts;
  for (size_t i = 0; i < inputs.size(); ++i) opts.input_shapes[(*g0)->inputs[i]->name] = inputs[i].shape();
  auto g = onnxio::ImportModel((dir / "model.onnx").string(), opts);
  if (!g.ok()) return g.status().ToString();
  runtime::SessionOptions so;
  so.backend = backend;
  so.num_threads = 2;
  // The reference path runs the graph as imported; the fast path also runs
  // the optimisation passes, so both are covered.
  so.optimize = backend == runtime::Backend::kFast;
  auto session = runtime::Session::Create(**g, so);
  if (!session.ok()) return session.status().ToString();
  auto outs = (*session)->Run(inputs);
  if (!outs.ok()) return outs.status().ToString();
  if (outs->size() != expected.size())
    return fmt::format("{} outputs vs {} expected", outs->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    std::string diff = CompareTensors((*outs)[i], expected[i], i);
    if (!diff.empty()) return diff;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend_name = "fast", filter, data_dir = "/usr/share/libonnx-testdata/data";
  std::string known_path = std::string(WBS_SOURCE_DIR) + "/tests/conformance/known_failures.txt";
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "wbs_conformance: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--backend") backend_name = next();
    else if (a == "--filter") filter = next();
    else if (a == "--data") data_dir = next();
    else if (a == "--known-failures") known_path = next();
    else if (a == "-v") verbose = true;
    else {
      std::cerr << "usage: wbs_conformance --backend reference|fast [--filter S] [--data DIR] "
                   "[--known-failures FILE] [-v]\n";
      return 2;
    }
  }
  if (backend_name != "reference" && backend_name != "fast") {
    std::cerr << "wbs_conformance: --backend must be reference or fast\n";
    return 2;
  }
  const runtime::Backend backend =
      backend_name == "fast" ? runtime::Backend::kFast : runtime::Backend::kReference;
  auto known = LoadKnownFailures(known_path);
  if (!known.ok()) {
    std::cerr << "wbs_conformance: " << known.status().ToString() << "\n";
    return 2;
  }
  std::set<std::string> supported;
  for (const auto& op : runtime::RegisteredOperators())
    if (ir::FindSchema(op)) supported.insert(op);

  int passed = 0, failed = 0, known_failed = 0, unsupported = 0, stale = 0;
  std::map<std::string, int> missing_ops;
  std::set<std::string> seen_known;
  const auto t0 = std::chrono::steady_clock::now();
  for (const char* suite : {"node", "pytorch-converted", "pytorch-operator", "simple"}) {
    fs::path root = fs::path(data_dir) / suite;
    if (!fs::exists(root)) continue;
    std::vector<fs::path> cases;
    for (auto& e : fs::directory_iterator(root))
      if (fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const fs::path& dir : cases) {
      const std::string name = std::string(suite) + "/" + dir.filename().string();
      if (!filter.empty() && name.find(filter) == std::string::npos) continue;
      auto ops = ModelOps((dir / "model.onnx").string());
      std::vector<std::string> missing;
      if (ops.ok()) {
        for (const auto& op : *ops)
          if (!supported.count(op)) missing.push_back(op);
      } else {
        missing.push_back("<unparsable>");
      }
      if (!missing.empty()) {
        ++unsupported;
        for (auto& m : missing) ++missing_ops[m];
        if (verbose) std::cout << "SKIP  " << name << " (unsupported: " << fmt::format("{}", fmt::join(missing, ",")) << ")\n";
        continue;
      }
      const std::string reason = RunCase(dir, backend);
      const KnownFailure* kf = FindKnown(*known, name, backend_name);
      if (kf) seen_known.insert(name);
      if (reason.empty()) {
        if (kf) {
          ++stale;
          std::cout << "STALE " << name << ": passes but is listed as a known failure (" << kf->reason << ")\n";
        } else {
          ++passed;
          if (verbose) std::cout << "PASS  " << name << "\n";
        }
      } else if (kf) {
        ++known_failed;
        if (verbose) std::cout << "KNOWN " << name << ": " << kf->reason << " [" << reason << "]\n";
      } else {
        ++failed;
        std::cout << "FAIL  " << name << ": " << reason << "\n";
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << fmt::format(
      "conformance[{}]: {} cases with supported ops: {} passed, {} failed, {} known failures (listed with "
      "reasons), {} stale known-failure entries; {} cases skipped for unsupported ops; {:.1f} s\n",
      backend_name, passed + failed + known_failed + stale, passed, failed, known_failed, stale, unsupported, secs);
  if (verbose) {
    std::vector<std::pair<int, std::string>> top;
    for (auto& [op, n] : missing_ops) top.emplace_back(n, op);
    std::sort(top.rbegin(), top.rend());
    std::cout << "unsupported ops by number of cases:";
    for (auto& [n, op] : top) std::cout << " " << op << "(" << n << ")";
    std::cout << "\n";
  }
  std::cout << fmt::format("{} passed, {} failed\n", passed, failed + stale);
  return failed + stale == 0 ? 0 : 1;
}
