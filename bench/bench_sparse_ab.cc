// Paired A/B of the f32 block-sparse conv: the kernel and plan of an older
// commit (A, compiled into this process under namespace
// wbs::kernels::sparse::ab_old by scripts/bench_sparse_ab.sh) against the
// current ones (B, this build's libwbs_kernels), on ResNet-50's conv shapes
// (bench/data/resnet50_convs.csv), batch 1, bias + ReLU, 1 thread by default.
//
//   bash scripts/bench_sparse_ab.sh BUILD COMMIT [--layers=0,3] [--sp=50,75,90]
//        [--rounds=7] [--block_ms=10] [--threads=1] [--noop]
//        [--private-a=auto|on|off] [--private-b=auto|on|off]
//
// Both sides run the same weights (a random mask with exactly sp% zero 8x8
// blocks) and input; each round times A, then B, in blocks of back-to-back
// calls (~block_ms each, the first call of a block not counted) and takes
// each side's median; printed: the medians over the rounds and the median
// of the per-round ratios A/B (> 1: B faster). The outputs of A and B are
// compared first. --noop replaces both kernels by one that returns at once:
// what is left is the input copy and the plan. On a shared machine run each
// comparison in two processes: the placement of a process's buffers moves
// single layers by a few percent. Both plans get private input copies
// (BsrConvPlan::EnablePrivateCopies) as the runtime operator sets them
// (auto: BsrConvPlan::PrivateCopiesDefault, WBS_PRIVATE_COPIES) unless
// --private-a/--private-b force them; with COMMIT = HEAD that compares
// the two settings paired (COMMIT must have EnablePrivateCopies, 5a8cdfd on).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/random_weights.h"
#include "core/block_sparse.h"
#include "kernels/sparse/bsr_conv_plan.h"
#include "kernels/sparse/dispatch.h"
#include WBS_AB_OLD_PLAN_H

#ifndef WBS_SOURCE_DIR
#define WBS_SOURCE_DIR "."
#endif

namespace wbs::kernels::sparse::ab_old {
void f32_bsr8xn_conv__avx512(const BsrConvArgs& a);
}  // namespace wbs::kernels::sparse::ab_old

namespace {

using namespace wbs;
namespace ks = wbs::kernels::sparse;

struct Layer {
  int64_t cin = 0, cout = 0, k = 1, stride = 1, pad = 0, h = 0, w = 0;
  std::string name;
  int64_t oh() const { return (h + 2 * pad - k) / stride + 1; }
  int64_t ow() const { return (w + 2 * pad - k) / stride + 1; }
};

// cin,cout,k,stride,pad,h,w,count,layer (bench/data/resnet50_convs.csv).
std::vector<Layer> ReadLayers(const std::string& path) {
  std::vector<Layer> out;
  std::ifstream in(path);
  std::string line;
  bool header = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      header = true;
      continue;
    }
    std::stringstream ss(line);
    std::string f[9];
    for (auto& s : f) std::getline(ss, s, ',');
    Layer l;
    l.cin = std::stoll(f[0]);
    l.cout = std::stoll(f[1]);
    l.k = std::stoll(f[2]);
    l.stride = std::stoll(f[3]);
    l.pad = std::stoll(f[4]);
    l.h = std::stoll(f[5]);
    l.w = std::stoll(f[6]);
    l.name = f[8];
    out.push_back(l);
  }
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<int> List(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(std::stoi(item));
  return v;
}

void Noop(const ks::BsrConvArgs&) {}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> layers, sps = {50, 75, 90};
  int rounds = 7, threads = 1;
  double block_s = 0.01;
  bool noop = false;
  bool private_a = ks::BsrConvPlan::PrivateCopiesDefault(), private_b = private_a;
  auto on_off = [](const std::string& v, bool* out) {
    if (v != "auto" && v != "on" && v != "off") return false;
    if (v != "auto") *out = v == "on";
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::string v = a.substr(a.find('=') + 1);
    if (a.rfind("--layers=", 0) == 0) {
      layers = List(v);
    } else if (a.rfind("--sp=", 0) == 0) {
      sps = List(v);
    } else if (a.rfind("--rounds=", 0) == 0) {
      rounds = std::stoi(v);
    } else if (a.rfind("--block_ms=", 0) == 0) {
      block_s = std::stod(v) * 1e-3;
    } else if (a.rfind("--threads=", 0) == 0) {
      threads = std::stoi(v);
    } else if (a == "--noop") {
      noop = true;
    } else if (a.rfind("--private-a=", 0) == 0 && on_off(v, &private_a)) {
    } else if (a.rfind("--private-b=", 0) == 0 && on_off(v, &private_b)) {
    } else {
      std::fprintf(stderr,
                   "usage: bench_sparse_ab [--layers=0,3] [--sp=50,75,90] [--rounds=7] "
                   "[--block_ms=10] [--threads=1] [--noop] [--private-a=auto|on|off] "
                   "[--private-b=auto|on|off]\n");
      return 2;
    }
  }
  const std::vector<Layer> all = ReadLayers(WBS_SOURCE_DIR "/bench/data/resnet50_convs.csv");
  if (layers.empty())
    for (size_t i = 0; i < all.size(); ++i) layers.push_back(static_cast<int>(i));
  omp_set_num_threads(threads);
  const ks::BsrConvKernel& cur = ks::SelectBsrConvKernel(8);
  const ks::BsrConvKernel old_kernel{"ab_old", ks::Isa::kAvx512, 8,
                                     &ks::ab_old::f32_bsr8xn_conv__avx512};
  const ks::BsrConvKernel noop_kernel{"noop", ks::Isa::kAvx512, 8, &Noop};
  std::printf(
      "%-26s %4s %10s %10s %7s   (A: old commit, B: this build; private copies A %s, B %s%s)\n",
      "layer", "sp", "A_us", "B_us", "A/B", private_a ? "on" : "off", private_b ? "on" : "off",
      noop ? "; kernels replaced by a no-op" : "");
  std::vector<double> ratios;
  for (int li : layers) {
    if (li < 0 || li >= static_cast<int>(all.size())) continue;
    const Layer& l = all[static_cast<size_t>(li)];
    kernels::ref::ConvParams p;
    p.in_channels = l.cin;
    p.out_channels = l.cout;
    p.in = {1, l.h, l.w};
    p.out = {1, l.oh(), l.ow()};
    p.kernel = {1, l.k, l.k};
    p.stride = {1, l.stride, l.stride};
    p.pad_begin = {0, l.pad, l.pad};
    p.pad_end = {0, l.pad, l.pad};
    p.activation.kind = kernels::ref::ActivationKind::kRelu;
    const Tensor b = wbs::bench::RandomTensor({l.cout}, 12);
    const Tensor x = wbs::bench::RandomTensor({1, l.cin, l.h, l.w}, 13);
    for (int sp : sps) {
      Tensor wz = wbs::bench::RandomTensor({l.cout, l.cin, l.k, l.k}, 11, 0.05f);
      wbs::bench::ZeroRandomBlocks(wz, sp / 100.0, 8, 8, 11 + static_cast<uint64_t>(sp));
      auto sw = BlockSparseWeight::FromDense(wz, 8, 8);
      if (!sw.ok()) return 1;
      auto pa = ks::ab_old::BsrConvPlan::Create(p, *sw, noop ? &noop_kernel : &old_kernel);
      auto pb = ks::BsrConvPlan::Create(p, *sw, noop ? &noop_kernel : &cur);
      if (!pa.ok() || !pb.ok()) return 1;
      pa->EnablePrivateCopies(private_a);
      pb->EnablePrivateCopies(private_b);
      // B (the current plan) also takes the runtime's split settings.
      pb->SetSplitRule(ks::BsrConvPlan::SplitRuleDefault());
      pb->SetMinCalls(ks::BsrConvPlan::MinCallsDefault());
      std::vector<float> sa(static_cast<size_t>(pa->scratch_floats(threads)) + 64),
          sb(static_cast<size_t>(pb->scratch_floats(threads)) + 64);
      std::vector<float> ya(static_cast<size_t>(l.cout * l.oh() * l.ow())), yb(ya.size());
      auto run_a = [&] {
        pa->Run(x.data<float>(), b.data<float>(), ya.data(), sa.data(), threads);
      };
      auto run_b = [&] {
        pb->Run(x.data<float>(), b.data<float>(), yb.data(), sb.data(), threads);
      };
      auto seconds = [](auto& f) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      };
      const double t = std::max(seconds(run_a), seconds(run_b));
      if (!noop) {
        double worst = 0;
        for (size_t i = 0; i < ya.size(); ++i)
          worst = std::max(worst, std::fabs(double(ya[i]) - yb[i]) / (1.0 + std::fabs(ya[i])));
        if (worst > 1e-4) std::printf("%s sp %d: outputs differ (%g)\n", l.name.c_str(), sp, worst);
      }
      const int reps = std::clamp(static_cast<int>(block_s / std::max(t, 1e-7)), 3, 2000);
      std::vector<double> ma, mb, r;
      for (int round = 0; round < rounds; ++round) {
        std::vector<double> ta, tb;
        for (int i = 0; i <= reps; ++i) {
          const double e = seconds(run_a);
          if (i > 0) ta.push_back(e);
        }
        for (int i = 0; i <= reps; ++i) {
          const double e = seconds(run_b);
          if (i > 0) tb.push_back(e);
        }
        ma.push_back(Median(ta));
        mb.push_back(Median(tb));
        r.push_back(Median(ta) / Median(tb));
      }
      std::printf("%-26s %4d %10.2f %10.2f %7.3f\n", l.name.c_str(), sp, Median(ma) * 1e6,
                  Median(mb) * 1e6, Median(r));
      std::fflush(stdout);
      ratios.push_back(Median(r));
    }
  }
  std::printf("median A/B: %.3f\n", Median(ratios));
  return 0;
}
