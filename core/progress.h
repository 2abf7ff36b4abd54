// Progress display for long work (training epochs, calibration, pipeline
// stages): one line with an optional "[k/n]" stage, a label, a bar,
// done/total, percent, rate, ETA and caller-supplied metrics:
//
//   [2/5] train epoch 3 [#########...........]  450/938  48%  112 it/s  ETA 0:04  loss=0.312
//   acc=91.2%
//
// On a terminal (stderr is a TTY) the line is redrawn in place ("\r" + erase
// to end of line) at most every `redraw_interval_s`; otherwise (logs, CI) a
// plain line is printed every `plain_every_percent` percent of the total or
// every `plain_every_s` seconds, whichever comes first, and once at the end.
// The environment variable WBS_PROGRESS=0|plain|tty overrides the automatic
// choice (0 = silent); SetProgressEnabled(false) (the CLI's --quiet) silences
// every display. All methods are thread-safe: workers may call Advance()
// concurrently; output is written under the display's lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wbs {

struct ProgressMetric {
  std::string name;
  std::string value;  // already formatted
};
// "name=0.312" with `precision` decimals.
ProgressMetric Metric(std::string name, double value, int precision = 3);
// "name=91.2%" from a fraction (0.912).
ProgressMetric PercentMetric(std::string name, double fraction, int precision = 1);

enum class ProgressMode {
  kAuto,    // kTty if stderr is a terminal, else kPlain (WBS_PROGRESS overrides)
  kTty,     // redraw in place
  kPlain,   // occasional full lines
  kSilent,  // nothing
};

struct ProgressOptions {
  ProgressMode mode = ProgressMode::kAuto;
  int stage = 0;  // shown as "[stage/stage_count]" when stage_count > 0
  int stage_count = 0;
  std::string unit = "it";  // rate unit: "it/s", "img/s", ...
  int bar_width = 20;
  double redraw_interval_s = 0.1;
  double plain_every_percent = 10;  // <= 0: no percent-based lines
  double plain_every_s = 30;        // <= 0: no time-based lines
  // Where lines go (default: stderr, flushed). Receives the exact bytes,
  // including "\r", the erase sequence and "\n".
  std::function<void(std::string_view)> sink;
  // Seconds on a monotonic clock (default: std::chrono::steady_clock); tests
  // inject a fake clock.
  std::function<double()> clock;
};

// Process-wide switch (default on); a silenced process prints no progress.
void SetProgressEnabled(bool enabled);
bool ProgressEnabled();

class Progress {
 public:
  // total <= 0: unknown total (no bar, percent or ETA).
  Progress(std::string label, int64_t total, ProgressOptions options = {});
  ~Progress();  // calls Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Update(int64_t done);
  void Update(int64_t done, std::vector<ProgressMetric> metrics);
  void Advance(int64_t delta = 1);
  void SetMetrics(std::vector<ProgressMetric> metrics);
  void SetLabel(std::string label);
  // Prints the final state (a newline ends the TTY line); later calls are no-ops.
  void Finish();
  // Runs `write` (which prints a line of its own to stdout or stderr) with
  // the bar out of its way: on a terminal the bar's line is erased before
  // and drawn again after, so lines printed while the bar runs (a table's
  // rows) stay whole. `write` runs under the display's lock: it must not
  // call this Progress.
  void PrintAbove(const std::function<void()>& write);

  // The current line without control characters (for tests and logs).
  std::string Line() const;
  // The mode actually used (kAuto resolved).
  ProgressMode mode() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// "1:02:03" / "4:05" (h:mm:ss when >= 1 hour, else m:ss); "?" if negative.
std::string FormatDuration(double seconds);

}  // namespace wbs
