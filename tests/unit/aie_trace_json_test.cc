// TraceJson (aie/passes/report.cc) writes the Chrome trace directly; its bytes
// must be those of the nlohmann::json tree it replaced (kept here as the
// reference). Random events: names with quotes, backslashes, control bytes
// and UTF-8, empty layers, times across magnitudes (tiny, integral, huge,
// negative zero, NaN and infinities, which nlohmann writes as null).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "aie/passes/compiler.h"

namespace wbs::aie {
namespace {

std::string ReferenceTraceJson(const CompileState& s) {
  nlohmann::json ev = nlohmann::json::array();
  std::map<std::string, int> tids;
  for (const auto& e : s.events) {
    const auto it = tids.emplace(e.resource, static_cast<int>(tids.size())).first;
    ev.push_back({{"name", e.name}, {"cat", e.cat}, {"ph", "X"}, {"pid", 0}, {"tid", it->second},
                  {"ts", e.start_s * 1e6}, {"dur", e.dur_s * 1e6},
                  {"args", {{"layer", e.layer >= 0 ? s.layers[static_cast<size_t>(e.layer)].name : ""}}}});
  }
  for (const auto& [name, tid] : tids)
    ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 0}, {"tid", tid}, {"args", {{"name", name}}}});
  nlohmann::json j = {{"traceEvents", ev}, {"displayTimeUnit", "ns"}};
  return j.dump() + "\n";
}

std::string RandomName(std::mt19937_64& rng) {
  static const std::string kPieces[] = {"LOADW", " ", "conv1+maxpool.w0", "core(1,2)", "\"q\"", "a\\b",
                                        "\n",    "\t", std::string(1, '\x01'), "\x7f", "\xc3\xa9", "", "layer4.0.add"};
  std::string r;
  const int n = static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) r += kPieces[rng() % std::size(kPieces)];
  return r;
}

double RandomTime(std::mt19937_64& rng) {
  switch (rng() % 10) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return static_cast<double>(rng() % 1000) * 1e-6;  // integral microseconds
    case 3: return std::ldexp(static_cast<double>(rng() >> 11), -static_cast<int>(rng() % 200));
    case 4: return static_cast<double>(rng() % 100000) * 1e-9;
    case 5: return std::numeric_limits<double>::quiet_NaN();
    case 6: return (rng() % 2 ? 1 : -1) * std::numeric_limits<double>::infinity();
    case 7: return static_cast<double>(rng() >> 11) * 1e3;  // large: exponent notation
    default: return static_cast<double>(rng() % 1000000) / 2.45e9;  // cycles at 2.45 GHz
  }
}

TEST(AieTraceJson, MatchesNlohmannTree) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 50; ++round) {
    CompileState s;
    const int layers = static_cast<int>(rng() % 5);
    for (int i = 0; i < layers; ++i) {
      Layer l;
      l.name = RandomName(rng);
      s.layers.push_back(l);
    }
    const int events = static_cast<int>(rng() % 200);
    for (int i = 0; i < events; ++i) {
      CompileState::Event e;
      e.name = RandomName(rng);
      e.cat = rng() % 2 ? "core" : RandomName(rng);
      e.resource = RandomName(rng);
      e.layer = layers > 0 ? static_cast<int>(rng() % (layers + 1)) - 1 : -1;
      e.start_s = RandomTime(rng);
      e.dur_s = RandomTime(rng);
      s.events.push_back(e);
    }
    ASSERT_EQ(TraceJson(s), ReferenceTraceJson(s)) << "round " << round;
  }
}

}  // namespace
}  // namespace wbs::aie
