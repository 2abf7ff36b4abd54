#include <gtest/gtest.h>

#include <algorithm>

#include "aie/target.h"

namespace wbs::aie {
namespace {

using json = nlohmann::json;

TEST(AieTargetTest, EveryPresetLoadsAndValidates) {
  const std::vector<std::string> names = PresetNames();
  for (const char* want : {"paper-2x2", "paper-3x3", "paper-4x4", "paper-5x5", "paper-6x6",
                           "paper-7x7", "paper-8x8", "phoenix"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  for (const std::string& n : names) {
    auto t = Target::Load(n);
    ASSERT_TRUE(t.ok()) << n << ": " << t.status().ToString();
    EXPECT_TRUE(t->Validate().ok());
    EXPECT_EQ(t->name, n);
    EXPECT_FALSE(t->Summary().empty());
  }
}

TEST(AieTargetTest, PaperPresetsSpellOutThePaperAssumptions) {
  for (int n = 2; n <= 8; ++n) {
    auto t = Target::Load(ConfigDir() + "/paper-" + std::to_string(n) + "x" + std::to_string(n) +
                          ".json");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->ToJson(), Target::Paper(n, n).ToJson()) << n;
    EXPECT_EQ(t->num_cores(), n * n);
    EXPECT_EQ(t->num_memtiles(), n);  // one per column
    EXPECT_EQ(t->clock_ghz, 1.0);
    EXPECT_EQ(t->macs_per_cycle(MacType::kInt8), 256);
    EXPECT_EQ(t->link_gbps(Link::kDdrToMemtile), 4.0);
    EXPECT_EQ(t->link_channels(Link::kDdrToMemtile), 2);
    EXPECT_EQ(t->link_channels(Link::kMemtileToDdr), 2);
    EXPECT_EQ(t->link_gbps(Link::kMemtileToCore), 4.0);
    EXPECT_EQ(t->activation_broadcast, Broadcast::kColumn);
    EXPECT_EQ(t->weight_broadcast, Broadcast::kRow);
  }
  auto phoenix = Target::Load("phoenix");
  ASSERT_TRUE(phoenix.ok()) << phoenix.status().ToString();
  EXPECT_EQ(phoenix->rows, 4);
  EXPECT_EQ(phoenix->cols, 4);
  EXPECT_EQ(phoenix->num_memtiles(), 4);
}

TEST(AieTargetTest, DerivedQuantities) {
  const Target t = Target::Paper(4, 4);
  ASSERT_TRUE(t.Validate().ok());
  EXPECT_EQ(t.core_bank_bytes(), 8192);
  EXPECT_EQ(t.core_buffer_bytes(), 6 * 8192);  // 2 of 8 banks are scratch
  EXPECT_EQ(t.memtile_bank_bytes(), 32768);
  EXPECT_EQ(t.total_memtile_bytes(), 4 * 512 * 1024);
  EXPECT_DOUBLE_EQ(t.peak_macs_per_second(), 16 * 256 * 1e9);
  // 4 GB/s at 1 GHz is 4 bytes per cycle.
  EXPECT_DOUBLE_EQ(t.transfer_cycles(Link::kDdrToMemtile, 4096), 1024);
  Target slow = t;
  slow.clock_ghz = 2.0;                     // the same GB/s is 2 bytes per cycle at 2 GHz
  slow.stream.transfer_setup_cycles = 100;  // plus the fixed cost
  EXPECT_DOUBLE_EQ(slow.transfer_cycles(Link::kMemtileToCore, 4096), 2048 + 100);
  EXPECT_DOUBLE_EQ(t.cycles_to_seconds(1e9), 1.0);
  // Reach 1: a column's own memtile first, then the neighbours (lower first).
  EXPECT_EQ(t.memtiles_for_column(0), (std::vector<int>{0, 1}));
  EXPECT_EQ(t.memtiles_for_column(2), (std::vector<int>{2, 1, 3}));
  EXPECT_TRUE(t.memtile_reaches(3, 2));
  EXPECT_FALSE(t.memtile_reaches(3, 1));
  EXPECT_FALSE(t.memtile_reaches(0, 4));  // no such core column
  // Memtiles in columns 1 and 3 only still reach every column.
  Target sparse = t;
  sparse.memtile.columns = {1, 3};
  EXPECT_TRUE(sparse.Validate().ok());
  EXPECT_EQ(sparse.memtiles_for_column(0), (std::vector<int>{1}));
  EXPECT_EQ(sparse.memtiles_for_column(2), (std::vector<int>{1, 3}));
  EXPECT_FALSE(sparse.memtile_reaches(2, 2));  // column 2 has no memtile
}

TEST(AieTargetTest, JsonRoundTripsAndDefaultsFillMissingKeys) {
  Target t = Target::Paper(3, 5);
  t.memtile.columns = {0, 2, 4};
  t.core.mac_efficiency = 0.75;
  t.core.vector_ops_per_cycle = 32;
  t.weight_broadcast = Broadcast::kNone;
  auto back = Target::FromJson(json::parse(t.ToJson().dump()), "rt");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), t.ToJson());

  // A minimal config: the rest are the AIE-ML defaults.
  auto minimal = Target::Parse(R"({"name": "mini", "array": {"rows": 2, "cols": 3}})", "mini.json");
  ASSERT_TRUE(minimal.ok()) << minimal.status().ToString();
  Target want = Target::Paper(2, 3);
  want.name = "mini";
  want.description = "";
  EXPECT_EQ(minimal->ToJson(), want.ToJson());
}

// Applies `patch` (a JSON merge patch) to paper-4x4 and expects an error
// "t.json: <path>: ...<what>...".
void ExpectBad(const json& patch, const std::string& path, const std::string& what) {
  json j = json::parse(Target::Paper(4, 4).ToJson().dump());
  j.merge_patch(patch);
  auto r = Target::FromJson(j, "t.json");
  ASSERT_FALSE(r.ok()) << patch.dump() << " was accepted";
  const std::string msg = r.status().message();
  EXPECT_EQ(msg.rfind("t.json: " + path + ": ", 0), 0u) << patch.dump() << " -> " << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << patch.dump() << " -> " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(AieTargetTest, UnknownKeysAreErrorsWithTheirPath) {
  ExpectBad({{"nmae", "x"}}, "nmae", "unknown key");
  ExpectBad({{"core", {{"bankz", 8}}}}, "core.bankz", "unknown key");
  ExpectBad({{"core", {{"macs_per_cycle", {{"int16", 64}}}}}}, "core.macs_per_cycle.int16",
            "unknown key");
  ExpectBad({{"broadcast", {{"psums", "row"}}}}, "broadcast.psums", "unknown key");
}

TEST(AieTargetTest, WrongTypesAreErrorsWithTheirPath) {
  ExpectBad({{"array", {{"rows", "4"}}}}, "array.rows", "must be an integer, got a string");
  ExpectBad({{"array", {{"rows", 4.5}}}}, "array.rows", "must be an integer, got 4.5");
  ExpectBad({{"array", {{"clock_ghz", true}}}}, "array.clock_ghz", "must be a number");
  ExpectBad({{"core", 5}}, "core", "must be an object");
  ExpectBad({{"name", 7}}, "name", "must be a string");
  ExpectBad({{"memtile", {{"columns", "some"}}}}, "memtile.columns", "\"all\" or an array");
  ExpectBad({{"memtile", {{"columns", {0, "x"}}}}}, "memtile.columns[1]", "column index");
  ExpectBad({{"core", {{"locks", 1e12}}}}, "core.locks", "must be an integer");
  ExpectBad({{"core", {{"locks", int64_t{1} << 40}}}}, "core.locks", "out of range");
  ExpectBad({{"broadcast", {{"weights", "diagonal"}}}}, "broadcast.weights",
            "not one of none, column, row");
}

TEST(AieTargetTest, ImpossibleValuesAreErrorsWithTheirPath) {
  ExpectBad({{"name", ""}}, "name", "must not be empty");
  ExpectBad({{"array", {{"rows", 0}}}}, "array.rows", "must be in [1, 64]");
  ExpectBad({{"array", {{"cols", 65}}}}, "array.cols", "must be in [1, 64]");
  ExpectBad({{"array", {{"clock_ghz", 0}}}}, "array.clock_ghz", "must be > 0");
  ExpectBad({{"core", {{"data_memory_bytes", -1}}}}, "core.data_memory_bytes", ">= 1");
  ExpectBad({{"core", {{"banks", 7}}}}, "core.banks", "do not divide");
  ExpectBad({{"core", {{"scratch_banks", 8}}}}, "core.scratch_banks", "at least one bank");
  ExpectBad({{"core", {{"macs_per_cycle", {{"int8", 0}}}}}}, "core.macs_per_cycle.int8", ">= 1");
  ExpectBad({{"core", {{"macs_per_cycle", {{"bf16", -1}}}}}}, "core.macs_per_cycle.bf16", ">= 0");
  ExpectBad({{"core", {{"mac_efficiency", 1.5}}}}, "core.mac_efficiency", "<= 1");
  ExpectBad({{"core", {{"vector_ops_per_cycle", 0}}}}, "core.vector_ops_per_cycle", ">= 1");
  ExpectBad({{"core", {{"buffer_descriptors", 0}}}}, "core.buffer_descriptors", ">= 1");
  ExpectBad({{"memtile", {{"columns", json::array()}}}}, "memtile.columns", "at least one");
  ExpectBad({{"memtile", {{"columns", {0, 4}}}}}, "memtile.columns[1]", "outside the array's 4");
  ExpectBad({{"memtile", {{"columns", {2, 1}}}}}, "memtile.columns[1]", "ascending");
  ExpectBad({{"memtile", {{"columns", {0}}}}}, "memtile.columns",
            "core column 2 is not reached by any memtile (reach 1)");
  ExpectBad({{"memtile", {{"reach", -1}}}}, "memtile.reach", "must be in [0, 64]");
  ExpectBad({{"memtile", {{"bytes", 32768}, {"banks", 1}}}}, "memtile.bytes",
            "smaller than one core's data memory");
  ExpectBad({{"memtile", {{"banks", 3}}}}, "memtile.banks", "do not divide");
  ExpectBad({{"memtile", {{"read_gbps", -30}}}}, "memtile.read_gbps", "must be > 0");
  ExpectBad({{"ddr", {{"read_channels_per_memtile", 7}}}}, "ddr.read_channels_per_memtile",
            "memtile.dma_in_channels = 6");
  ExpectBad({{"ddr", {{"write_channels_per_memtile", 0}}}}, "ddr.write_channels_per_memtile",
            "must be in [1,");
  ExpectBad({{"ddr", {{"channel_gbps", 0}}}}, "ddr.channel_gbps", "must be > 0");
  ExpectBad({{"ddr", {{"total_gbps", -1}}}}, "ddr.total_gbps", "0 = no limit");
  ExpectBad({{"stream", {{"memtile_to_core_gbps", 0}}}}, "stream.memtile_to_core_gbps",
            "must be > 0");
  ExpectBad({{"stream", {{"transfer_setup_cycles", -5}}}}, "stream.transfer_setup_cycles", "-5");
}

TEST(AieTargetTest, BadFilesAndNames) {
  auto r = Target::Parse("{\"array\": {\"rows\": 4,}}", "bad.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("bad.json: not valid JSON", 0), 0u) << r.status().message();
  r = Target::Parse(R"({"array": {"rows": 4, "rows": 5}})", "dup.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "dup.json: duplicate key 'rows'");
  r = Target::Parse("[1, 2]", "arr.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("must be a JSON object"), std::string::npos);
  r = Target::Load("paper-9x9");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("paper-4x4"), std::string::npos) << r.status().message();
  r = Target::Load("/nonexistent/t.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace wbs::aie
