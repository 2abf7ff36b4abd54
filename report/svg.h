// Inline SVG charts for the pipeline report (report/report.h).
//
// Every function returns one self-contained <svg> element (no scripts, no
// external fonts or styles beyond the page's CSS classes), sized in pixels,
// so the page renders offline and the same markup can be unit-tested. Inputs
// are never trusted to be finite: NaN/Inf points are skipped, labels are XML
// escaped. Charts with no data return a short <p class="missing"> note.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/block_mask.h"

namespace wbs::report {

// &, <, >, " and ' escaped for text and attribute values.
std::string EscapeXml(std::string_view text);
// Shortest of %.{digits}g without trailing zeros ("0.25", "1.2e+03").
std::string FormatNumber(double v, int digits = 4);
// Categorical colour i (cycles through a 10-colour palette).
std::string PaletteColor(size_t i);

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y); drawn in the given order
  std::string color;                              // empty: palette by series index
  bool line = true;                               // connect the points
  bool dashed = false;
};

struct ChartOptions {
  static constexpr double kAuto = std::numeric_limits<double>::quiet_NaN();
  std::string title;
  std::string x_label, y_label;
  int width = 640, height = 320;
  // Axis ranges; unset (NaN) = from the data, padded by 5%.
  double x_min = kAuto, x_max = kAuto, y_min = kAuto, y_max = kAuto;
  // y values shown as percentages (0.5 -> "50%").
  bool y_percent = false, x_percent = false;
  // Explicit x tick positions (e.g. array edges 2..8); empty = 5 even ticks.
  std::vector<double> x_ticks;
};

// An x/y chart: one polyline and one marker per point and series, a legend,
// and 5 ticks per axis.
std::string LineChart(const std::vector<Series>& series, const ChartOptions& options);

struct BarSeries {
  std::string name;
  std::vector<double> values;  // one per category; NaN = no bar
  std::string color;           // empty: palette by series index
  // Drawn as a short horizontal tick over the category instead of a bar
  // (e.g. a roofline bound over the measured bars).
  bool tick = false;
};

// Vertical grouped bars: categories along x (labels rotated when many), one
// bar per non-tick series in each group, ticks over the whole group.
std::string BarChart(const std::vector<std::string>& categories,
                     const std::vector<BarSeries>& series, const ChartOptions& options);

// Γ as a heat map: one cell per block (dark = kept, light = zero). Masks with
// more than max_side blocks along an edge are pooled into max_side cells
// whose shade is the kept fraction of the pooled blocks, so a ResNet-50 layer
// stays a few hundred rects.
std::string MaskHeatMap(const BlockMask& mask, const std::string& title, int max_side = 64,
                        int max_px = 160);

// A timeline downsampled to pixel bins: each row's events are folded into
// `bins` equal time bins that take the label (layer) holding most busy time
// in the bin; runs of equal bins become one rect. Events are in the trace's
// time unit (µs for Chrome traces).
struct TimelineEvent {
  int row = 0;
  double start = 0, duration = 0;
  int label = 0;  // index into Timeline::labels
};
struct Timeline {
  std::vector<std::string> rows;
  std::vector<std::string> labels;  // e.g. layer names, coloured by index
  std::vector<TimelineEvent> events;
};
struct TimelineBar {
  int row = 0, label = 0;
  int first_bin = 0, bins = 0;  // [first_bin, first_bin + bins)
};
// The downsampled bars (the SVG draws exactly these); end = the time axis end.
std::vector<TimelineBar> DownsampleTimeline(const Timeline& timeline, int bins, double end);
std::string TimelineChart(const Timeline& timeline, const std::string& title,
                          const std::string& time_unit, int width = 1100);

}  // namespace wbs::report
