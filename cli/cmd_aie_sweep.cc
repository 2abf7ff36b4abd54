// wbs aie-sweep: the paper's table — estimated time of zoo models on paper
// arrays, dense vs block sparse (seeded weights, L2 8x8 block masks, PTQ on
// random calibration data), through the AIE compiler (aie/passes/).
// A larger array may leave cores idle: the estimate for an NxN array is the
// best compile on any kxk sub-array with k <= N (reported as "used").
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>

#include "aie/passes/compiler.h"
#include "cli/command.h"
#include "core/progress.h"
#include "onnx/file_io.h"
#include "zoo/zoo.h"

namespace wbs::cli {

Result<std::unique_ptr<ir::Graph>> BuildInt8ZooModel(const std::string& name, double sparsity, uint64_t seed);

namespace {

struct SweepArgs {
  std::string models = "resnet50,inception_v3,vgg16", arrays = "2x2..8x8", sparsity = "0,0.5", out;
  uint64_t seed = 1;
  bool quiet = false;
};

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) v.push_back(x);
  return v;
}

// "NxN" (square, N >= 1) with nothing after it.
Result<int> ParseSquare(const std::string& x) {
  int r = 0, c = 0, end = 0;
  if (std::sscanf(x.c_str(), "%dx%d%n", &r, &c, &end) != 2 || static_cast<size_t>(end) != x.size() ||
      r != c || r < 1)
    return InvalidArgument("--arrays: '{}' is not NxN (a square array, N >= 1)", x);
  return r;
}

Result<std::vector<int>> ParseArrays(const std::string& s) {
  std::vector<int> v;
  if (const size_t dots = s.find(".."); dots != std::string::npos) {
    WBS_ASSIGN_OR_RETURN(const int a, ParseSquare(s.substr(0, dots)));
    WBS_ASSIGN_OR_RETURN(const int b, ParseSquare(s.substr(dots + 2)));
    if (b < a) return InvalidArgument("--arrays: '{}' runs backwards (write {}x{}..{}x{})", s, b, b, a, a);
    for (int n = a; n <= b; ++n) v.push_back(n);
    return v;
  }
  for (const std::string& x : SplitList(s)) {
    WBS_ASSIGN_OR_RETURN(const int n, ParseSquare(x));
    v.push_back(n);
  }
  if (v.empty()) return InvalidArgument("--arrays: no array given");
  return v;
}

Result<std::vector<double>> ParseSparsities(const std::string& s) {
  std::vector<double> v;
  for (const std::string& x : SplitList(s)) {
    char* end = nullptr;
    const double sp = std::strtod(x.c_str(), &end);
    if (end != x.c_str() + x.size() || !(sp >= 0 && sp <= 1))
      return InvalidArgument("--sparsity: '{}' is not a number in [0, 1]", x);
    v.push_back(sp);
  }
  if (v.empty()) return InvalidArgument("--sparsity: no sparsity given");
  return v;
}

Status RunSweep(const SweepArgs& a) {
  WBS_ASSIGN_OR_RETURN(const std::vector<int> arrays, ParseArrays(a.arrays));
  WBS_ASSIGN_OR_RETURN(const std::vector<double> sps, ParseSparsities(a.sparsity));
  const std::vector<std::string> models = SplitList(a.models);
  if (models.empty()) return InvalidArgument("--models: no model given");
  const std::vector<std::string> known = zoo::ModelNames();
  for (const std::string& m : models)
    if (std::find(known.begin(), known.end(), m) == known.end())
      return InvalidArgument("--models: unknown model '{}' (known: {})", m, fmt::join(known, ", "));
  // One step per compile; rows go to stdout as they finish, the bar to stderr.
  if (a.quiet) SetProgressEnabled(false);
  ProgressOptions po;
  po.unit = "compile";
  Progress progress("aie-sweep", static_cast<int64_t>(models.size() * sps.size() * arrays.size()), po);
  std::string table = "model\tarray\tsparsity\tused\testimate_ms\troofline_ms\tefficiency\tcompile_s\n";
  fmt::print("{}", table);  // the header
  std::fflush(stdout);
  // best[model][sparsity][n]
  std::map<std::string, std::map<double, std::map<int, double>>> best;
  int failures = 0;
  int64_t progress_done = 0;
  for (const std::string& m : models) {
    for (double sp : sps) {
      auto g = BuildInt8ZooModel(m, sp, a.seed);
      if (!g.ok()) return g.status().WithContext(fmt::format("{} sparsity {}", m, sp));
      std::map<int, std::pair<double, double>> own;  // n -> (estimate, roofline) on the full n x n array
      double best_so_far = INFINITY, best_bound = 0;
      int used = 0;
      for (int n : arrays) {
        aie::CompileState s;
        s.target = aie::Target::Paper(n, n);
        s.target.name = fmt::format("paper-{}x{}", n, n);
        s.graph = g->get();
        progress.SetLabel(fmt::format("aie-sweep {} {}x{} sparsity {}", m, n, n, sp));
        progress.Update(progress_done);
        const auto t0 = std::chrono::steady_clock::now();
        Status st = aie::Compile(s);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++progress_done;
        if (!st.ok()) {
          ++failures;
          progress.PrintAbove(
              [&] { fmt::print(stderr, "{} {}x{} sparsity {}: {}\n", m, n, n, sp, st.message()); });
          progress.Update(progress_done);
          continue;
        }
        if (s.total_s < best_so_far) best_so_far = s.total_s, best_bound = s.bound_s, used = n;
        best[m][sp][n] = best_so_far;
        const std::string row = fmt::format("{}\t{}x{}\t{}\t{}x{}\t{:.4f}\t{:.4f}\t{:.3f}\t{:.2f}\n", m, n, n, sp, used, used,
                                            best_so_far * 1e3, best_bound * 1e3, best_bound / best_so_far, secs);
        progress.PrintAbove([&] {
          fmt::print("{}", row);
          std::fflush(stdout);
        });
        progress.Update(progress_done);
        table += row;
      }
    }
  }
  std::string summary = "\nmodel\tarray\tdense_ms\tsparse_ms\tspeedup\n";
  for (const auto& [m, bysp] : best) {
    if (bysp.size() < 2) continue;
    const auto& d = bysp.begin()->second;
    const auto& sp = bysp.rbegin()->second;
    for (const auto& [n, td] : d) {
      const auto it = sp.find(n);
      if (it == sp.end()) continue;
      summary += fmt::format("{}\t{}x{}\t{:.4f}\t{:.4f}\t{:.2f}\n", m, n, n, td * 1e3, it->second * 1e3, td / it->second);
    }
  }
  progress.SetLabel("aie-sweep");
  progress.Finish();
  fmt::print("{}", summary);
  fmt::print("failures: {}\n", failures);
  if (!a.out.empty()) WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.out, table + summary));
  if (failures) return Internal("aie-sweep: {} compiles failed", failures);
  return Status::Ok();
}

}  // namespace

Command AddAieSweepCommand(CLI::App& parent) {
  auto a = std::make_shared<SweepArgs>();
  CLI::App* app = parent.add_subcommand("aie-sweep", "Estimate zoo models on paper AIE arrays, dense vs block sparse (the paper's table)");
  app->add_option("--models", a->models, "Comma-separated zoo models (default resnet50,inception_v3,vgg16)");
  app->add_option("--arrays", a->arrays, "NxN..MxM or a comma list of NxN (default 2x2..8x8)");
  app->add_option("--sparsity", a->sparsity, "Comma-separated block sparsities (default 0,0.5)");
  app->add_option("--seed", a->seed, "Weight and calibration seed");
  app->add_option("-o,--out", a->out, "Write the table (TSV) to this file");
  app->add_flag("-q,--quiet", a->quiet, "No progress display");
  app->footer("Example:\n  wbs aie-sweep --models resnet50 --arrays 2x2..8x8 --sparsity 0,0.5");
  return {app, [a] { return RunSweep(*a); }};
}

}  // namespace wbs::cli
