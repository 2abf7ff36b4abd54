// The report library (report/): SVG chart builders, the stage-file parsers
// and the summary on tiny fixtures. The end-to-end page (real commands,
// headless Chromium) is tests/report/report_test.sh.
#include "report/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "report/inputs.h"
#include "report/svg.h"

namespace wbs::report {
namespace {

namespace fs = std::filesystem;

size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

TEST(ReportSvg, EscapesAndFormats) {
  EXPECT_EQ(EscapeXml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(FormatNumber(0.25), "0.25");
  EXPECT_EQ(FormatNumber(-0.0), "0");
  EXPECT_EQ(FormatNumber(1234567.0, 3), "1.23e+06");
  EXPECT_EQ(FormatNumber(std::nan("")), "nan");
  EXPECT_NE(PaletteColor(0), PaletteColor(1));
  EXPECT_EQ(PaletteColor(0), PaletteColor(20));  // the palette cycles
}

TEST(ReportSvg, LineChartDrawsFinitePointsAndEscapesNames) {
  ChartOptions o;
  o.title = "acc <vs> sparsity";
  std::vector<Series> s = {{"l2 & co", {{0, 0.9}, {0.5, 0.8}, {NAN, 0.1}}, "", true, false}};
  const std::string svg = LineChart(s, o);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(Count(svg, "<circle"), 2u);  // the NaN point is skipped
  EXPECT_EQ(Count(svg, "<polyline"), 1u);
  EXPECT_NE(svg.find("acc &lt;vs&gt; sparsity"), std::string::npos);
  EXPECT_NE(svg.find("l2 &amp; co"), std::string::npos);
  EXPECT_EQ(svg.find("l2 & co"), std::string::npos);
  // Axis ends snap to round ticks: y data 0.8..0.9 (padded 5%) -> 0.75, 0.8, ... 0.95.
  for (const char* tick : {">0.75<", ">0.8<", ">0.85<", ">0.9<", ">0.95<"})
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  EXPECT_EQ(svg.find(">0.7<"), std::string::npos);
  EXPECT_EQ(svg.find(">1<"), std::string::npos);
  // No data: a note instead of an empty chart.
  EXPECT_NE(LineChart({}, o).find("class=\"missing\""), std::string::npos);
}

TEST(ReportSvg, BarChartBarsAndTicks) {
  ChartOptions o;
  o.height = 200;
  const std::string svg = BarChart(
      {"a", "b", "c"}, {{"time", {1, 2, NAN}, "", false}, {"roof", {0.5, 1, 1}, "", true}}, o);
  EXPECT_EQ(Count(svg, "</rect>"), 2u);  // two finite bars (legend swatches have no <title>)
  EXPECT_EQ(Count(svg, "<line class=\"tick\""), 3u);
  // The tallest bar reaches the top of the padded range, the plot bottom is y = 200 - 48.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      svg, m,
      std::regex(
          "<rect x=\"[0-9.]+\" y=\"([0-9.]+)\" width=\"[0-9.]+\" height=\"([0-9.]+)\" fill")));
  EXPECT_NEAR(std::stod(m[1]) + std::stod(m[2]), 152.0, 0.11);
}

TEST(ReportSvg, MaskHeatMapOneCellPerKeptBlockOrPooled) {
  BlockMask m = BlockMask::AllKept(8, 8, 4, 6);
  m.Set(0, 0, false);
  m.Set(3, 5, false);
  const std::string svg = MaskHeatMap(m, "conv");
  EXPECT_EQ(Count(svg, "fill=\"#1f4e79\""), 22u);  // 24 blocks, 2 zero
  EXPECT_NE(svg.find("4x6 blocks"), std::string::npos);
  // 100x10 blocks pooled to at most 8 per edge: 13x2 pooled factor -> 8x5 cells... all kept.
  BlockMask big = BlockMask::AllKept(8, 8, 100, 10);
  const std::string pooled = MaskHeatMap(big, "big", 8);
  EXPECT_NE(pooled.find("pooled 13x2"), std::string::npos);
  EXPECT_EQ(Count(pooled, "fill=\"#1f4e79\""), 8u * 5u);
  // A half-kept pooled cell is shaded by its kept fraction.
  BlockMask half = BlockMask::AllKept(8, 8, 2, 2);
  half.Set(0, 0, false), half.Set(1, 1, false);
  EXPECT_NE(MaskHeatMap(half, "h", 1).find("fill-opacity=\"0.5\""), std::string::npos);
}

TEST(ReportSvg, TimelineDownsamplingKeepsTheBusiestLabelPerBin) {
  Timeline t;
  t.rows = {"core", "dma"};
  t.labels = {"conv1", "conv2"};
  // Row 0: conv1 on [0, 6), conv2 on [6, 10). Row 1: conv2 on [0, 1) only (10% of one bin of 1).
  t.events = {{0, 0, 6, 0}, {0, 6, 4, 1}, {1, 0, 0.05, 1}};
  std::vector<TimelineBar> bars = DownsampleTimeline(t, 10, 10.0);
  ASSERT_EQ(bars.size(), 2u);  // row 1's event is under 10% of its bin: idle
  EXPECT_EQ(bars[0].label, 0);
  EXPECT_EQ(bars[0].first_bin, 0);
  EXPECT_EQ(bars[0].bins, 6);
  EXPECT_EQ(bars[1].label, 1);
  EXPECT_EQ(bars[1].first_bin, 6);
  EXPECT_EQ(bars[1].bins, 4);
  // Coarser: 2 bins of 5; bin 1 = conv1 for 1, conv2 for 4 -> conv2.
  bars = DownsampleTimeline(t, 2, 10.0);
  ASSERT_EQ(bars.size(), 2u);
  EXPECT_EQ(bars[1].label, 1);
  // Many events, few bins: the SVG has at most bins rects per row.
  Timeline dense;
  dense.rows = {"r"};
  dense.labels = {"a", "b"};
  for (int i = 0; i < 10000; ++i) dense.events.push_back({0, i * 1.0, 1.0, i % 2});
  EXPECT_LE(DownsampleTimeline(dense, 100, 10000.0).size(), 100u);
  EXPECT_NE(TimelineChart(dense, "t", "us", 300).find("<svg"), std::string::npos);
}

TEST(ReportInputs, LayersTsv) {
  const std::string tsv =
      "# m on paper-4x4 (4x4): estimate 0.1862 ms, roofline 0.0360 ms, efficiency 0.193\n"
      "layer\tkind\tsubvolume\tsplit\timbalance\tddr_rd\tddr_wr\tstream_in\tstream_out\tmacs_"
      "dense\tmacs\t"
      "time_us\troofline_us\tbinds\tefficiency\n"
      "conv1\tconv\t1x28x7 "
      "1/1\t4x4\t0\t1\t2\t3\t4\t225792\t225792\t2.261\t0.784\tddr-write\t0.347\n"
      "fc\tconv\t1x1x1\t2x1\t0.882\t1\t2\t3\t4\t1280\t1040\t0.744\t0.049\tddr-read\t0.065\n";
  Result<AieLayers> a = ParseLayersTsv(tsv, "layers.tsv");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_DOUBLE_EQ(a->estimate_ms, 0.1862);
  EXPECT_DOUBLE_EQ(a->roofline_ms, 0.0360);
  ASSERT_EQ(a->layers.size(), 2u);
  EXPECT_EQ(a->layers[1].name, "fc");
  EXPECT_DOUBLE_EQ(a->layers[1].macs, 1040);
  EXPECT_DOUBLE_EQ(a->layers[0].roofline_us, 0.784);
  // Errors name the file, line and column.
  std::string bad = tsv;
  bad.replace(bad.find("2.261"), 5, "2.2x1");
  EXPECT_EQ(ParseLayersTsv(bad, "layers.tsv").status().message(),
            "layers.tsv:3: column 'time_us': '2.2x1' is not a number");
  EXPECT_EQ(ParseLayersTsv("layer\tkind\n", "t").status().message(),
            "t:1: header has no column 'macs_dense'");
}

TEST(ReportInputs, SweepTsvStopsAtTheSummaryTable) {
  const std::string tsv =
      "model\tarray\tsparsity\tused\testimate_ms\troofline_ms\tefficiency\tcompile_s\n"
      "m\t2x2\t0\t2x2\t0.4126\t0.1102\t0.267\t0.01\n"
      "m\t2x2\t0.5\t2x2\t0.4058\t0.0771\t0.190\t0.00\n"
      "\n"
      "model\tarray\tdense_ms\tsparse_ms\tspeedup\n"
      "m\t2x2\t0.4126\t0.4058\t1.02\n";
  Result<std::vector<SweepRow>> r = ParseSweepTsv(tsv, "sweep.tsv");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_DOUBLE_EQ((*r)[1].sparsity, 0.5);
  EXPECT_DOUBLE_EQ((*r)[1].roofline_ms, 0.0771);
  EXPECT_FALSE(ParseSweepTsv("", "s").ok());
}

TEST(ReportInputs, SimReport) {
  const std::string text =
      "#    layer                    op             sim cycles       estimate  sim/est   core%   "
      "link%\n"
      "0    conv1                    QConv                2765           1136    2.434     2.0     "
      "7.4\n"
      "21   avgpool                  QGlobalAveragePool           1292            796    1.623     "
      "0.0     2.9\n"
      "total: 110414 cycles (0.110 ms at 1 GHz), estimate 81320 cycles, sim/est 1.358; 2488 "
      "instructions\n";
  Result<SimReport> r = ParseSimReport(text, "report.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(r->sim_cycles, 110414);
  EXPECT_DOUBLE_EQ(r->estimate_cycles, 81320);
  ASSERT_EQ(r->layers.size(), 2u);
  EXPECT_EQ(r->layers[1].op, "QGlobalAveragePool");
  EXPECT_DOUBLE_EQ(r->layers[1].estimate_cycles, 796);
  EXPECT_EQ(ParseSimReport("0 a b 1 2\n", "r").status().message(),
            "r: no 'total: N cycles ..., estimate M cycles' line");
}

TEST(ReportInputs, ChromeTraceRowsAndFolding) {
  nlohmann::json trace = nlohmann::json::parse(R"({"traceEvents":[
    {"ph":"M","name":"process_name","pid":0,"args":{"name":"DDR"}},
    {"ph":"M","name":"thread_name","pid":0,"tid":1,"args":{"name":"shim0.mm2s0"}},
    {"ph":"M","name":"thread_name","pid":0,"tid":2,"args":{"name":"shim1.mm2s0"}},
    {"ph":"M","name":"thread_name","pid":2,"tid":3,"args":{"name":"c0.0.core"}},
    {"ph":"X","name":"LOADW conv1","pid":0,"tid":1,"ts":10,"dur":2,"args":{"layer":0}},
    {"ph":"X","name":"LOADW fc","pid":0,"tid":2,"ts":12,"dur":2,"args":{"layer":1}},
    {"ph":"X","name":"COMP conv1","pid":2,"tid":3,"ts":11,"dur":5,"args":{"layer":0}},
    {"ph":"X","name":"","pid":2,"tid":3,"ts":16,"dur":1,"args":{"layer":"fc"}}]})");
  Result<Timeline> t = ParseChromeTrace(trace, "trace.json", 40);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->rows, (std::vector<std::string>{"shim0.mm2s0", "shim1.mm2s0", "c0.0.core"}));
  EXPECT_EQ(t->labels, (std::vector<std::string>{"conv1", "fc"}));
  ASSERT_EQ(t->events.size(), 4u);
  EXPECT_DOUBLE_EQ(t->events[0].start, 0);  // times start at the first event
  EXPECT_EQ(t->events[3].label, 1);         // args.layer when the name has no layer
  // Over max_rows: the core keeps its row, the DDR channels share one.
  t = ParseChromeTrace(trace, "trace.json", 2);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->rows, (std::vector<std::string>{"DDR (2 channels)", "c0.0.core"}));
  EXPECT_EQ(t->events[1].row, 0);
  EXPECT_FALSE(ParseChromeTrace(nlohmann::json::object(), "x", 4).ok());
  EXPECT_EQ(
      ParseChromeTrace(nlohmann::json::parse(R"({"traceEvents":[]})"), "x", 4).status().message(),
      "x: no complete ('X') events");
}

class ReportDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("wbs_report_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  fs::path dir_;
};

TEST_F(ReportDir, EmptyFolderIsAllNotRun) {
  ReportOptions o;
  o.source_dir = dir_.string();  // no docs/results/accuracy.json here
  Result<nlohmann::json> s = BuildSummary(dir_.string(), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (const auto& [k, v] : (*s)["key"].items()) EXPECT_TRUE(v.is_null()) << k;
  EXPECT_EQ((*s)["stages"]["aie"]["status"], "not run");
  EXPECT_FALSE((*s)["demo_schedule"].get<bool>());
  ASSERT_TRUE(WriteReport(dir_.string(), o).ok());
  std::ifstream in(dir_ / "report.html");
  std::string html((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(Count(html, "data-value=\"\">not run</td>"), (*s)["key"].size());
  // Nothing fetched from a network: no src/href to http(s), no @import or url().
  for (const char* ext : {"src=", "href=\"http", "@import", "url("})
    EXPECT_EQ(html.find(ext), std::string::npos) << ext;
  EXPECT_TRUE(fs::exists(dir_ / "summary.json"));
  EXPECT_FALSE(BuildSummary((dir_ / "missing").string(), o).ok());
}

TEST_F(ReportDir, StageFilesBecomeKeyNumbersAndBadFilesProblems) {
  Write("dense/stage.json", R"({"stage":"dense","status":"done","seconds":3,"demo_schedule":true,
                                "test":{"accuracy":0.9,"loss":0.3}})");
  Write("sparse/finetune.json",
        R"({"method":"oneshot","block_sparsity":0.5,"test":{"accuracy":0.85}})");
  Write("bench/cpu.json", R"({"threads":1,"repeats":3,"runs":[
      {"name":"dense fp32","model":"a","median_ms":2.0,"min_ms":1,"max_ms":3},
      {"name":"sparse fp32","model":"b","median_ms":1.0,"min_ms":1,"max_ms":3}]})");
  Write("sim/stage.json",
        R"({"status":"done","bit_exact":true,"sim_cycles":120,"estimate_cycles":100})");
  Write("int8/dense.json", "{not json");
  Write("results.json", R"([{"method":"learned","block_sparsity":0.75,"test":{"accuracy":0.8},
                             "dense_test":{"accuracy":0.91}}])");
  Write("pipeline.json",
        R"({"report":{"accuracy_results":")" + (dir_ / "results.json").string() + R"("}})");
  ReportOptions o;
  o.source_dir = dir_.string();
  Result<nlohmann::json> s = BuildSummary(dir_.string(), o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const nlohmann::json& k = (*s)["key"];
  EXPECT_DOUBLE_EQ(k["dense_accuracy"].get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(k["sparse_accuracy"].get<double>(), 0.85);
  EXPECT_DOUBLE_EQ(k["block_sparsity"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(k["cpu_speedup_fp32"].get<double>(), 2.0);
  EXPECT_TRUE(k["cpu_speedup_int8"].is_null());
  EXPECT_TRUE(k["sim_bit_exact"].get<bool>());
  EXPECT_DOUBLE_EQ(k["sim_vs_estimate"].get<double>(), 1.2);
  EXPECT_TRUE((*s)["demo_schedule"].get<bool>());
  ASSERT_EQ((*s)["problems"].size(), 1u);
  EXPECT_NE((*s)["problems"][0].get<std::string>().find("int8/dense.json: not valid JSON"),
            std::string::npos);
  ASSERT_EQ((*s)["accuracy_points"].size(), 2u);  // learned 75% and its dense baseline
  Result<std::string> html = RenderHtml(*s, dir_.string(), o);
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("data-key=\"sparse_accuracy\" data-value=\"0.85\">85.00%<"),
            std::string::npos);
  EXPECT_NE(html->find("data-key=\"sim_bit_exact\" data-value=\"true\">yes<"), std::string::npos);
  EXPECT_NE(html->find("id=\"demo-note\""), std::string::npos);
  EXPECT_NE(html->find("ACCURACY.md"), std::string::npos);
  // A configured accuracy_results file that is missing is skipped (and named);
  // pipeline.json's stage statuses win over the files' presence.
  Write("pipeline.json", R"({"config":{"report":{"accuracy_results":["nope.json"]}},
      "stages":[{"name":"aie","status":"failed","message":"wbs compile: boom"}]})");
  s = BuildSummary(dir_.string(), o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["problems"].size(), 1u);
  ASSERT_EQ((*s)["accuracy_results_missing"].size(), 1u);
  EXPECT_EQ((*s)["stages"]["aie"]["pipeline"], "failed");
  EXPECT_EQ((*s)["config"]["report"]["accuracy_results"][0], "nope.json");
  html = RenderHtml(*s, dir_.string(), o);
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("failed: wbs compile: boom"), std::string::npos);
  EXPECT_NE(html->find("nope.json not found"), std::string::npos);
}

TEST(ReportInputs, SimReportJson) {
  nlohmann::json j = nlohmann::json::parse(R"({"sim_cycles": 120.5, "estimate_cycles": 100,
      "bit_exact": true, "layers": [{"name": "conv1", "op": "QConv", "sim_cycles": 20, "est_cycles": 10}]})");
  Result<SimReport> r = SimReportFromJson(j, "report.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_DOUBLE_EQ(r->sim_cycles, 120.5);
  ASSERT_TRUE(r->bit_exact.has_value());
  EXPECT_TRUE(*r->bit_exact);
  ASSERT_EQ(r->layers.size(), 1u);
  EXPECT_DOUBLE_EQ(r->layers[0].estimate_cycles, 10);
  j["bit_exact"] = nullptr;
  EXPECT_FALSE(SimReportFromJson(j, "r").value().bit_exact.has_value());
  j.erase("sim_cycles");
  EXPECT_FALSE(SimReportFromJson(j, "r").ok());
}

}  // namespace
}  // namespace wbs::report
