#include "core/progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace wbs {
namespace {

std::atomic<bool> g_enabled{true};

double SteadySeconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void WriteStderr(std::string_view s) {
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

// Columns of the terminal on stderr (0 if unknown). A TTY line longer than
// the terminal would wrap, and "\r" would then redraw only its last row.
int TerminalColumns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

ProgressMode ResolveMode(ProgressMode requested) {
  if (!g_enabled.load()) return ProgressMode::kSilent;
  if (const char* env = std::getenv("WBS_PROGRESS")) {
    if (std::strcmp(env, "0") == 0 || std::strcmp(env, "off") == 0) return ProgressMode::kSilent;
    if (std::strcmp(env, "plain") == 0) return ProgressMode::kPlain;
    if (std::strcmp(env, "tty") == 0) return ProgressMode::kTty;
  }
  if (requested != ProgressMode::kAuto) return requested;
  return ::isatty(STDERR_FILENO) ? ProgressMode::kTty : ProgressMode::kPlain;
}

// "112 it/s", "3.4 it/s", "0.52 it/s": about three significant digits.
std::string FormatRate(double rate, const std::string& unit) {
  if (rate >= 100) return fmt::format("{:.0f} {}/s", rate, unit);
  if (rate >= 10) return fmt::format("{:.1f} {}/s", rate, unit);
  return fmt::format("{:.2f} {}/s", rate, unit);
}

}  // namespace

void SetProgressEnabled(bool enabled) { g_enabled.store(enabled); }
bool ProgressEnabled() { return g_enabled.load(); }

ProgressMetric Metric(std::string name, double value, int precision) {
  return {std::move(name), fmt::format("{:.{}f}", value, std::max(0, precision))};
}

ProgressMetric PercentMetric(std::string name, double fraction, int precision) {
  return {std::move(name), fmt::format("{:.{}f}%", fraction * 100.0, std::max(0, precision))};
}

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || std::isinf(seconds)) return "?";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
  return fmt::format("{}:{:02}", m, s);
}

struct Progress::State {
  mutable std::mutex mu;
  std::string label;
  int64_t total;
  ProgressOptions opt;
  ProgressMode mode;
  std::vector<ProgressMetric> metrics;
  int64_t done = 0;
  double start = 0;
  double last_draw = -1e300;      // TTY redraw throttle
  double last_plain = 0;          // time of the last plain line
  int64_t last_plain_bucket = 0;  // percent bucket of the last plain line
  bool finished = false;
  int terminal_columns = 0;

  double Now() const { return opt.clock ? opt.clock() : SteadySeconds(); }
  void Emit(std::string_view s) const {
    if (opt.sink) {
      opt.sink(s);
    } else {
      WriteStderr(s);
    }
  }

  std::string LineLocked(double now) const {
    std::string line;
    if (opt.stage_count > 0) line += fmt::format("[{}/{}] ", opt.stage, opt.stage_count);
    line += label;
    const double elapsed = std::max(0.0, now - start);
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    if (total > 0) {
      const double frac =
          std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0);
      const int width = std::max(1, opt.bar_width);
      const int filled = static_cast<int>(std::floor(frac * width));
      line += " [" + std::string(static_cast<size_t>(filled), '#') +
              std::string(static_cast<size_t>(width - filled), '.') + "]";
      const int digits = static_cast<int>(std::to_string(total).size());
      line += fmt::format(" {:>{}}/{} {:3.0f}%", done, digits, total, std::floor(frac * 100.0));
    } else {
      line += fmt::format(" {}", done);
    }
    if (done > 0 && elapsed > 0) line += "  " + FormatRate(rate, opt.unit);
    if (finished) {
      line += "  in " + FormatDuration(elapsed);
    } else if (total > 0 && done > 0 && rate > 0) {
      line +=
          "  ETA " + FormatDuration(static_cast<double>(std::max<int64_t>(0, total - done)) / rate);
    }
    if (!metrics.empty()) {
      line += " ";
      for (const auto& m : metrics) line += " " + m.name + "=" + m.value;
    }
    return line;
  }

  // Cuts a TTY line to the terminal width (only when drawing to the real
  // stderr; a test sink gets the whole line).
  std::string FitLocked(std::string line) const {
    if (!opt.sink && terminal_columns > 1 && static_cast<int>(line.size()) >= terminal_columns) {
      line.resize(static_cast<size_t>(terminal_columns - 1));
    }
    return line;
  }

  // Decides whether the new state is worth printing, and prints it.
  void MaybeDrawLocked(bool force) {
    if (mode == ProgressMode::kSilent || finished) return;
    const double now = Now();
    if (mode == ProgressMode::kTty) {
      if (!force && now - last_draw < opt.redraw_interval_s) return;
      last_draw = now;
      Emit(fmt::format("\r{}\x1b[K", FitLocked(LineLocked(now))));
      return;
    }
    bool print = force;
    if (total > 0 && opt.plain_every_percent > 0) {
      const auto bucket =
          static_cast<int64_t>(std::floor(static_cast<double>(done) * 100.0 /
                                          static_cast<double>(total) / opt.plain_every_percent));
      if (bucket > last_plain_bucket) {
        print = true;
        last_plain_bucket = bucket;
      }
    }
    if (opt.plain_every_s > 0 && now - last_plain >= opt.plain_every_s) print = true;
    if (!print) return;
    last_plain = now;
    Emit(fmt::format("{}\n", LineLocked(now)));
  }
};

Progress::Progress(std::string label, int64_t total, ProgressOptions options)
    : s_(std::make_unique<State>()) {
  s_->label = std::move(label);
  s_->total = total;
  s_->opt = std::move(options);
  s_->mode = ResolveMode(s_->opt.mode);
  if (s_->mode == ProgressMode::kTty) s_->terminal_columns = TerminalColumns();
  s_->start = s_->Now();
  s_->last_plain = s_->start;
}

Progress::~Progress() { Finish(); }

void Progress::Update(int64_t done) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->done = done;
  s_->MaybeDrawLocked(false);
}

void Progress::Update(int64_t done, std::vector<ProgressMetric> metrics) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->done = done;
  s_->metrics = std::move(metrics);
  s_->MaybeDrawLocked(false);
}

void Progress::Advance(int64_t delta) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->done += delta;
  s_->MaybeDrawLocked(false);
}

void Progress::SetMetrics(std::vector<ProgressMetric> metrics) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->metrics = std::move(metrics);
}

void Progress::SetLabel(std::string label) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->label = std::move(label);
}

void Progress::Finish() {
  std::lock_guard<std::mutex> lock(s_->mu);
  if (s_->finished) return;
  s_->finished = true;
  if (s_->mode == ProgressMode::kSilent) return;
  const std::string line = s_->LineLocked(s_->Now());
  s_->Emit(s_->mode == ProgressMode::kTty ? fmt::format("\r{}\x1b[K\n", s_->FitLocked(line))
                                          : line + "\n");
}

void Progress::PrintAbove(const std::function<void()>& write) {
  std::lock_guard<std::mutex> lock(s_->mu);
  const bool tty = s_->mode == ProgressMode::kTty && !s_->finished;
  if (tty) s_->Emit("\r\x1b[K");
  write();
  if (tty) s_->MaybeDrawLocked(/*force=*/true);
}

std::string Progress::Line() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->LineLocked(s_->Now());
}

ProgressMode Progress::mode() const { return s_->mode; }

}  // namespace wbs
