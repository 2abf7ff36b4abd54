#include "core/progress.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/jsonl.h"

namespace wbs {
namespace {

namespace fs = std::filesystem;

// A fake clock and a sink that records everything written.
struct Harness {
  double now = 100.0;
  std::string out;
  ProgressOptions Options(ProgressMode mode) {
    ProgressOptions o;
    o.mode = mode;
    o.sink = [this](std::string_view s) { out += s; };
    o.clock = [this] { return now; };
    return o;
  }
  int Count(const std::string& what) const {
    int n = 0;
    for (size_t at = out.find(what); at != std::string::npos; at = out.find(what, at + 1)) ++n;
    return n;
  }
};

class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("WBS_PROGRESS"); }
  void TearDown() override { SetProgressEnabled(true); }
};

TEST_F(ProgressTest, LineShowsStageCountsRateEtaAndMetrics) {
  Harness h;
  ProgressOptions o = h.Options(ProgressMode::kPlain);
  o.stage = 2;
  o.stage_count = 5;
  o.unit = "img";
  Progress p("train epoch 3", 100, o);
  h.now += 10;
  p.Update(50, {Metric("loss", 0.3124), PercentMetric("acc", 0.9123),
                PercentMetric("sparsity", 0.5, 0)});
  const std::string line = p.Line();
  EXPECT_NE(line.find("[2/5] train epoch 3 ["), std::string::npos) << line;
  EXPECT_NE(line.find("[##########..........]"), std::string::npos) << line;
  EXPECT_NE(line.find(" 50/100  50%"), std::string::npos) << line;
  EXPECT_NE(line.find("5.00 img/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 0:10"), std::string::npos) << line;
  EXPECT_NE(line.find("loss=0.312 acc=91.2% sparsity=50%"), std::string::npos) << line;
  p.Finish();
  EXPECT_NE(h.out.find("in 0:10"), std::string::npos) << h.out;
}

TEST_F(ProgressTest, PlainModePrintsEveryTenPercentAndAtTheEnd) {
  Harness h;
  ProgressOptions o = h.Options(ProgressMode::kPlain);
  o.plain_every_s = 0;
  {
    Progress p("calibrate", 200, o);
    for (int i = 1; i <= 200; ++i) {
      h.now += 0.01;
      p.Update(i);
    }
  }                                       // the destructor finishes
  EXPECT_EQ(h.Count("\n"), 11) << h.out;  // 10%, 20%, ..., 100%, then the final line
  EXPECT_EQ(h.Count("\r"), 0);
  EXPECT_NE(h.out.find(" 20/200  10%"), std::string::npos) << h.out;
}

TEST_F(ProgressTest, PlainModeAlsoPrintsEveryFewSeconds) {
  Harness h;
  ProgressOptions o = h.Options(ProgressMode::kPlain);
  o.plain_every_percent = 0;
  o.plain_every_s = 5;
  Progress p("slow", 0, o);  // unknown total
  for (int i = 1; i <= 20; ++i) {
    h.now += 1;
    p.Advance();
  }
  EXPECT_EQ(h.Count("\n"), 4) << h.out;
  EXPECT_EQ(p.Line().find('%'), std::string::npos);  // no percent without a total
}

TEST_F(ProgressTest, TtyModeRedrawsInPlaceAtMostTenTimesASecond) {
  Harness h;
  Progress p("stage", 1000, h.Options(ProgressMode::kTty));
  for (int i = 1; i <= 1000; ++i) {
    h.now += 0.001;  // one second in total
    p.Update(i);
  }
  p.Finish();
  const int draws = h.Count("\r");
  EXPECT_GE(draws, 10);
  EXPECT_LE(draws, 12) << h.out;  // ~10 redraws + the final line
  EXPECT_EQ(h.Count("\n"), 1);    // only the final line ends the row
  EXPECT_EQ(h.Count("\x1b[K"), draws);
}

// A line printed while the bar runs: on a terminal the bar is erased before
// it and drawn again after it, so the line starts a row of its own; in plain
// mode nothing is added around it.
TEST_F(ProgressTest, PrintAboveMovesTheTtyBarOutOfTheWay) {
  Harness h;
  Progress p("sweep", 4, h.Options(ProgressMode::kTty));
  p.Update(1);
  h.now += 1;
  p.PrintAbove([&] { h.out += "row 1\n"; });
  const size_t row = h.out.find("row 1\n");
  ASSERT_NE(row, std::string::npos) << h.out;
  EXPECT_EQ(h.out.substr(row - 4, 4), "\r\x1b[K") << h.out;        // erased first
  const std::string after = h.out.substr(row + 6);
  EXPECT_EQ(after.rfind("\rsweep [#####", 0), 0u) << h.out;         // redrawn at once
  p.Finish();

  Harness plain;
  Progress q("sweep", 4, plain.Options(ProgressMode::kPlain));
  q.PrintAbove([&] { plain.out += "row 1\n"; });
  EXPECT_EQ(plain.out, "row 1\n");
  q.Finish();
  EXPECT_EQ(plain.Count("\r"), 0);
}

TEST_F(ProgressTest, SilencedPrintsNothing) {
  Harness h;
  {
    Progress p("quiet", 10, h.Options(ProgressMode::kSilent));
    p.Update(10);
  }
  SetProgressEnabled(false);
  {
    Progress p("global off", 10, h.Options(ProgressMode::kTty));
    EXPECT_EQ(p.mode(), ProgressMode::kSilent);
    p.Update(10);
  }
  SetProgressEnabled(true);
  ::setenv("WBS_PROGRESS", "0", 1);
  {
    Progress p("env off", 10, h.Options(ProgressMode::kPlain));
    p.Update(10);
  }
  ::unsetenv("WBS_PROGRESS");
  EXPECT_EQ(h.out, "");
}

TEST_F(ProgressTest, ConcurrentAdvanceCountsEveryStep) {
  Harness h;
  std::atomic<int> ticks{0};
  ProgressOptions o = h.Options(ProgressMode::kTty);
  o.clock = [&ticks] { return 0.001 * ticks.fetch_add(1); };
  Progress p("threads", 4000, o);
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&p] {
      for (int i = 0; i < 1000; ++i) p.Advance();
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_NE(p.Line().find("4000/4000 100%"), std::string::npos) << p.Line();
}

TEST(FormatDurationTest, Formats) {
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(65.4), "1:05");
  EXPECT_EQ(FormatDuration(3723), "1:02:03");
  EXPECT_EQ(FormatDuration(-1), "?");
}

class JsonlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wbs_jsonl_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(JsonlTest, AppendsOneFlushedLinePerRecord) {
  const std::string path = Path("m.jsonl");
  {
    auto w = JsonlWriter::Open(path, /*truncate=*/true);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Write({{"epoch", 1}, {"loss", 0.5}, {"note", "multi\nline"}}).ok());
    // Flushed per line: visible before the writer closes.
    auto partial = ReadJsonl(path);
    ASSERT_TRUE(partial.ok()) << partial.status().ToString();
    EXPECT_EQ(partial->size(), 1u);
    ASSERT_TRUE((*w)->Write({{"epoch", 2}, {"bad_utf8", std::string("\xff")}}).ok());
  }
  {
    auto w = JsonlWriter::Open(path);  // append
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write({{"epoch", 3}}).ok());
  }
  auto r = ReadJsonl(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0]["note"], "multi\nline");
  EXPECT_EQ((*r)[2]["epoch"], 3);
  {
    auto w = JsonlWriter::Open(path, /*truncate=*/true);
    ASSERT_TRUE(w.ok());
  }
  EXPECT_TRUE(ReadJsonl(path)->empty());
}

TEST_F(JsonlTest, ErrorsNameTheFileAndLine) {
  std::ofstream(Path("bad.jsonl")) << "{\"a\": 1}\n\n{oops\n";
  auto r = ReadJsonl(Path("bad.jsonl"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad.jsonl:3"), std::string::npos) << r.status().message();

  std::ofstream(Path("cut.jsonl")) << "{\"a\": 1}\n{\"a\": 2";
  EXPECT_FALSE(ReadJsonl(Path("cut.jsonl")).ok());
  auto tail = ReadJsonl(Path("cut.jsonl"), /*allow_partial_tail=*/true);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 1u);

  EXPECT_FALSE(JsonlWriter::Open(Path("no/such/dir/m.jsonl")).ok());
}

}  // namespace
}  // namespace wbs
