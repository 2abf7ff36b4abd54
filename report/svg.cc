#include "report/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace wbs::report {
namespace {

// Tableau 10: distinguishable, colour-blind friendlier than HSV steps.
// Tableau 10 first (charts with few series), then the lighter Tableau 20 shades
// (timelines with many layers).
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
                                    "#a0cbe8", "#ffbe7d", "#8cd17d", "#b6992d", "#f1ce63",
                                    "#86bcb6", "#d37295", "#fabfd2", "#d4a6c8", "#79706e"};
constexpr int kTicks = 5;
// Plot margins (px): room for tick labels on the left/bottom, legend on top.
constexpr int kLeft = 64, kRight = 16, kTop = 36, kBottom = 48;

bool Finite(double v) { return std::isfinite(v); }

std::string Px(double v) { return fmt::format("{:.1f}", v); }

std::string TickLabel(double v, bool percent) {
  if (percent) return FormatNumber(v * 100.0, 3) + "%";
  // Cycle counts read better as 5600 than as 5.6e+03.
  if (std::fabs(v) >= 1000 && std::fabs(v) < 1e9) return fmt::format("{:.0f}", v);
  return FormatNumber(v, 3);
}

struct Range {
  double lo = 0, hi = 1;
  double step = 0.2;  // tick spacing
};

// A 1, 2 or 5 times a power of ten giving about kTicks ticks over `span`.
double NiceStep(double span) {
  const double raw = span / kTicks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

// Tick positions: the multiples of r.step inside [lo, hi].
std::vector<double> Ticks(const Range& r) {
  std::vector<double> t;
  const double first = std::ceil(r.lo / r.step - 1e-9);
  for (int k = 0; k <= 4 * kTicks; ++k) {
    const double v = (first + k) * r.step;
    if (v > r.hi + r.step * 1e-9) break;
    t.push_back(std::fabs(v) < r.step * 1e-9 ? 0.0 : v);
  }
  return t;
}

// The data range, padded by 5% (a single value gets +-0.5 or +-5%).
Range AutoRange(const std::vector<double>& values, double want_lo, double want_hi) {
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values)
    if (Finite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!Finite(lo)) lo = 0, hi = 1;
  if (hi == lo) {
    double pad = lo == 0 ? 0.5 : std::fabs(lo) * 0.05;
    lo -= pad, hi += pad;
  } else {
    double pad = (hi - lo) * 0.05;
    lo -= pad, hi += pad;
  }
  if (Finite(want_lo)) lo = want_lo;
  if (Finite(want_hi)) hi = want_hi;
  if (hi <= lo) hi = lo + 1;
  // Free ends snap outwards to a tick, so the axis reads 0, 2, 4, ... not 2.07, 4.14.
  const double step = NiceStep(hi - lo);
  if (!Finite(want_lo)) lo = std::floor(lo / step + 1e-9) * step;
  if (!Finite(want_hi)) hi = std::ceil(hi / step - 1e-9) * step;
  return {lo, hi, step};
}

std::string Open(const ChartOptions& o, const std::string& cls) {
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {}\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\">",
      cls, o.width, o.height, o.width, o.height);
  if (!o.title.empty())
    s += fmt::format("<title>{}</title><text class=\"ct\" x=\"{}\" y=\"14\">{}</text>",
                     EscapeXml(o.title), kLeft, EscapeXml(o.title));
  return s;
}

// Axes box, grid lines, tick labels and axis titles.
std::string Axes(const ChartOptions& o, Range y, const Range* x, bool y_percent, bool x_percent) {
  const double pw = o.width - kLeft - kRight, ph = o.height - kTop - kBottom;
  std::string s;
  for (double v : Ticks(y)) {
    double py = kTop + ph - ph * (v - y.lo) / (y.hi - y.lo);
    s += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>", kLeft,
                     Px(py), Px(kLeft + pw), Px(py));
    s += fmt::format("<text class=\"tk\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                     kLeft - 4, Px(py + 4), TickLabel(v, y_percent));
  }
  if (x) {
    std::vector<double> ticks = o.x_ticks;
    if (ticks.empty()) ticks = Ticks(*x);
    for (double v : ticks) {
      if (v < x->lo || v > x->hi) continue;
      double px = kLeft + pw * (v - x->lo) / (x->hi - x->lo);
      s += fmt::format("<text class=\"tk\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                       Px(px), Px(kTop + ph + 16), TickLabel(v, x_percent));
    }
  }
  s += fmt::format("<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>", kLeft,
                   kTop, Px(pw), Px(ph));
  if (!o.x_label.empty())
    s += fmt::format("<text class=\"al\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                     Px(kLeft + pw / 2), o.height - 6, EscapeXml(o.x_label));
  if (!o.y_label.empty())
    s += fmt::format(
        "<text class=\"al\" transform=\"translate(12,{}) rotate(-90)\" "
        "text-anchor=\"middle\">{}</text>",
        Px(kTop + ph / 2), EscapeXml(o.y_label));
  return s;
}

// One legend entry per name along the top edge, after the title.
std::string Legend(const std::vector<std::pair<std::string, std::string>>& entries, int width) {
  std::string s;
  double x = kLeft;
  const double y = 28;
  for (const auto& [name, color] : entries) {
    if (x > width - 60) break;  // no room: the chart's <title> still names every series
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text class=\"lg\" "
        "x=\"{}\" y=\"{}\">{}</text>",
        Px(x), Px(y - 9), color, Px(x + 13), Px(y), EscapeXml(name));
    x += 24 + 6.5 * static_cast<double>(name.size());
  }
  return s;
}

std::string Missing(const std::string& what) {
  return fmt::format("<p class=\"missing\">{}: no data</p>", EscapeXml(what));
}

}  // namespace

std::string EscapeXml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatNumber(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";  // also folds -0
  return fmt::format("{:.{}g}", v, digits);
}

std::string PaletteColor(size_t i) { return kPalette[i % std::size(kPalette)]; }

std::string LineChart(const std::vector<Series>& series, const ChartOptions& o) {
  std::vector<double> xs, ys;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points)
      if (Finite(x) && Finite(y)) xs.push_back(x), ys.push_back(y);
  if (xs.empty()) return Missing(o.title.empty() ? "chart" : o.title);
  const Range xr = AutoRange(xs, o.x_min, o.x_max), yr = AutoRange(ys, o.y_min, o.y_max);
  const double pw = o.width - kLeft - kRight, ph = o.height - kTop - kBottom;
  auto X = [&](double v) { return kLeft + (v - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto Y = [&](double v) { return kTop + ph - (v - yr.lo) / (yr.hi - yr.lo) * ph; };
  std::string s = Open(o, "line") + Axes(o, yr, &xr, o.y_percent, o.x_percent);
  std::vector<std::pair<std::string, std::string>> legend;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& se = series[i];
    const std::string color = se.color.empty() ? PaletteColor(i) : se.color;
    legend.emplace_back(se.name, color);
    std::string pts;
    for (const auto& [x, y] : se.points)
      if (Finite(x) && Finite(y)) pts += Px(X(x)) + "," + Px(Y(y)) + " ";
    if (se.line && !pts.empty())
      s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>",
                       color, se.dashed ? " stroke-dasharray=\"5,3\"" : "", pts);
    for (const auto& [x, y] : se.points) {
      if (!Finite(x) || !Finite(y)) continue;
      s += fmt::format(
          "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"><title>{}: ({}, {})</title></circle>",
          Px(X(x)), Px(Y(y)), color, EscapeXml(se.name), TickLabel(x, o.x_percent),
          TickLabel(y, o.y_percent));
    }
  }
  return s + Legend(legend, o.width) + "</svg>";
}

std::string BarChart(const std::vector<std::string>& categories,
                     const std::vector<BarSeries>& series, const ChartOptions& o) {
  std::vector<double> ys;
  for (const BarSeries& s : series)
    for (double v : s.values)
      if (Finite(v)) ys.push_back(v);
  if (categories.empty() || ys.empty()) return Missing(o.title.empty() ? "chart" : o.title);
  // Bars start at zero unless told otherwise (a bar's length is its value).
  ys.push_back(0);
  const Range yr = AutoRange(ys, Finite(o.y_min) ? o.y_min : 0.0, o.y_max);
  ChartOptions oo = o;
  const bool rotate = categories.size() > 8;
  size_t longest = 0;
  for (const std::string& c : categories) longest = std::max(longest, c.size());
  // Rotated labels need vertical room: grow the chart rather than clip them.
  const int label_px = rotate ? static_cast<int>(std::min<size_t>(longest, 28) * 5) : 0;
  oo.height = o.height + label_px;
  const double pw = oo.width - kLeft - kRight, ph = o.height - kTop - kBottom;
  auto Y = [&](double v) {
    return kTop + ph - (std::clamp(v, yr.lo, yr.hi) - yr.lo) / (yr.hi - yr.lo) * ph;
  };
  ChartOptions axes = oo;
  axes.height = o.height;  // the plot box keeps its size; labels go below
  axes.x_label.clear();
  std::string s = Open(oo, "bar") + Axes(axes, yr, nullptr, o.y_percent, false);
  size_t bar_series = 0;
  for (const BarSeries& se : series) bar_series += se.tick ? 0 : 1;
  const double group = pw / static_cast<double>(categories.size());
  const double bw = group * 0.8 / static_cast<double>(std::max<size_t>(bar_series, 1));
  std::vector<std::pair<std::string, std::string>> legend;
  size_t bar_index = 0;
  for (size_t si = 0; si < series.size(); ++si) {
    const BarSeries& se = series[si];
    const std::string color = se.color.empty() ? PaletteColor(si) : se.color;
    legend.emplace_back(se.name, color);
    for (size_t c = 0; c < categories.size() && c < se.values.size(); ++c) {
      const double v = se.values[c];
      if (!Finite(v)) continue;
      const double g0 = kLeft + group * static_cast<double>(c);
      const std::string tip = fmt::format("<title>{} {}: {}</title>", EscapeXml(categories[c]),
                                          EscapeXml(se.name), TickLabel(v, o.y_percent));
      if (se.tick) {
        s += fmt::format(
            "<line class=\"tick\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\">{}</line>",
            Px(g0 + group * 0.05), Px(Y(v)), Px(g0 + group * 0.95), Px(Y(v)), color, tip);
      } else {
        const double x = g0 + group * 0.1 + bw * static_cast<double>(bar_index);
        const double top = Y(v), base = Y(std::max(yr.lo, 0.0));
        s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">{}</rect>",
                         Px(x), Px(std::min(top, base)), Px(std::max(bw - 1, 1.0)),
                         Px(std::fabs(base - top)), color, tip);
      }
    }
    if (!se.tick) ++bar_index;
  }
  for (size_t c = 0; c < categories.size(); ++c) {
    const double cx = kLeft + group * (static_cast<double>(c) + 0.5);
    const double ly = kTop + ph + 12;
    std::string label =
        categories[c].size() > 28 ? categories[c].substr(0, 27) + "…" : categories[c];
    if (rotate)
      s += fmt::format(
          "<text class=\"tk\" transform=\"translate({},{}) rotate(-60)\" "
          "text-anchor=\"end\">{}</text>",
          Px(cx + 3), Px(ly - 4), EscapeXml(label));
    else
      s += fmt::format("<text class=\"tk\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                       Px(cx), Px(ly), EscapeXml(label));
  }
  if (!o.x_label.empty())
    s += fmt::format("<text class=\"al\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                     Px(kLeft + pw / 2), oo.height - 6, EscapeXml(o.x_label));
  return s + Legend(legend, oo.width) + "</svg>";
}

std::string MaskHeatMap(const BlockMask& mask, const std::string& title, int max_side, int max_px) {
  if (mask.rows <= 0 || mask.cols <= 0 ||
      static_cast<int64_t>(mask.keep.size()) != mask.rows * mask.cols)
    return Missing(title);
  max_side = std::max(max_side, 1);
  // Pool factor per edge: the smallest integer that brings the edge to <= max_side.
  const int64_t pr = (mask.rows + max_side - 1) / max_side,
                pc = (mask.cols + max_side - 1) / max_side;
  const int64_t rows = (mask.rows + pr - 1) / pr, cols = (mask.cols + pc - 1) / pc;
  const double cell = std::max(1.0, std::min(14.0, double(max_px) / double(std::max(rows, cols))));
  const int w = static_cast<int>(std::ceil(cell * double(cols))),
            h = static_cast<int>(std::ceil(cell * double(rows)));
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"mask\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\"><title>{}: {}x{} blocks{}</title><rect width=\"{}\" height=\"{}\" "
      "fill=\"#f3efe6\"/>",
      w, h, w, h, EscapeXml(title), mask.rows, mask.cols,
      pr > 1 || pc > 1 ? fmt::format(", pooled {}x{}", pr, pc) : "", w, h);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      int64_t kept = 0, total = 0;
      for (int64_t i = r * pr; i < std::min(mask.rows, (r + 1) * pr); ++i)
        for (int64_t j = c * pc; j < std::min(mask.cols, (c + 1) * pc); ++j)
          kept += mask.Get(i, j), ++total;
      if (kept == 0) continue;  // the background is the zero colour
      const double f = double(kept) / double(total);
      s += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#1f4e79\" "
          "fill-opacity=\"{}\"/>",
          Px(double(c) * cell), Px(double(r) * cell), Px(cell), Px(cell), FormatNumber(f, 3));
    }
  }
  return s + "</svg>";
}

std::vector<TimelineBar> DownsampleTimeline(const Timeline& t, int bins, double end) {
  std::vector<TimelineBar> bars;
  if (bins <= 0 || !(end > 0) || t.rows.empty()) return bars;
  const double bin_w = end / bins;
  for (int row = 0; row < static_cast<int>(t.rows.size()); ++row) {
    // busy[bin][label] = time of `label` inside the bin.
    std::vector<std::map<int, double>> busy(static_cast<size_t>(bins));
    for (const TimelineEvent& e : t.events) {
      if (e.row != row || !(e.duration > 0) || !Finite(e.start)) continue;
      const double a = std::max(0.0, e.start), b = std::min(end, e.start + e.duration);
      if (b <= a) continue;
      int first = std::clamp(static_cast<int>(a / bin_w), 0, bins - 1);
      int last = std::clamp(static_cast<int>(b / bin_w), 0, bins - 1);
      for (int k = first; k <= last; ++k) {
        const double lo = std::max(a, k * bin_w), hi = std::min(b, (k + 1) * bin_w);
        if (hi > lo) busy[static_cast<size_t>(k)][e.label] += hi - lo;
      }
    }
    TimelineBar cur{row, -1, 0, 0};
    for (int k = 0; k < bins; ++k) {
      int label = -1;
      double best = 0.0, total = 0.0;
      for (const auto& [l, v] : busy[static_cast<size_t>(k)]) {
        total += v;
        if (v > best) best = v, label = l;
      }
      // A bin less than 10% busy reads as idle at this resolution.
      if (total < 0.1 * bin_w) label = -1;
      if (label == cur.label && cur.label >= 0) {
        ++cur.bins;
        continue;
      }
      if (cur.label >= 0) bars.push_back(cur);
      cur = TimelineBar{row, label, k, 1};
    }
    if (cur.label >= 0) bars.push_back(cur);
  }
  return bars;
}

std::string TimelineChart(const Timeline& t, const std::string& title, const std::string& unit,
                          int width) {
  double end = 0;
  for (const TimelineEvent& e : t.events)
    if (Finite(e.start) && Finite(e.duration)) end = std::max(end, e.start + e.duration);
  if (t.rows.empty() || !(end > 0)) return Missing(title);
  constexpr int kLabelW = 170, kRowH = 12, kAxisH = 28;
  const int bins = std::max(width - kLabelW - kRight, 10);
  const std::vector<TimelineBar> bars = DownsampleTimeline(t, bins, end);
  const int height = kTop + static_cast<int>(t.rows.size()) * kRowH + kAxisH;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart timeline\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\"><title>{}</title><text class=\"ct\" x=\"{}\" "
      "y=\"14\">{}</text>",
      width, height, width, height, EscapeXml(title), kLabelW, EscapeXml(title));
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const int y = kTop + static_cast<int>(r) * kRowH;
    if (r % 2 == 0)
      s += fmt::format("<rect class=\"band\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                       kLabelW, y, bins, kRowH);
    s += fmt::format("<text class=\"tk\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                     kLabelW - 4, y + kRowH - 2, EscapeXml(t.rows[r]));
  }
  const double us_per_bin = end / bins;
  for (const TimelineBar& b : bars) {
    const std::string& label =
        b.label < static_cast<int>(t.labels.size()) ? t.labels[static_cast<size_t>(b.label)] : "";
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} {}: {}..{} "
        "{}</title></rect>",
        kLabelW + b.first_bin, kTop + b.row * kRowH + 1, b.bins, kRowH - 2,
        PaletteColor(static_cast<size_t>(b.label)), EscapeXml(t.rows[static_cast<size_t>(b.row)]),
        EscapeXml(label), FormatNumber(b.first_bin * us_per_bin, 4),
        FormatNumber((b.first_bin + b.bins) * us_per_bin, 4), EscapeXml(unit));
  }
  const int ay = kTop + static_cast<int>(t.rows.size()) * kRowH;
  for (int i = 0; i <= kTicks; ++i) {
    const double x = kLabelW + double(bins) * i / kTicks;
    s += fmt::format(
        "<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/><text class=\"tk\" "
        "x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} {}</text>",
        Px(x), kTop, Px(x), ay + 3, Px(x), ay + 16, FormatNumber(end * i / kTicks, 4),
        EscapeXml(unit));
  }
  return s + "</svg>";
}

}  // namespace wbs::report
