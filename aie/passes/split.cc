// Pass 3: split. Each layer's work goes over the core grid: output width in
// contiguous ranges across the columns and output channels in groups across
// the rows (activations are broadcast down a column, weights along a row),
// streaming over output rows with ping/pong inside each core. When the output
// is narrower than the array (late layers, Gemm) the split falls back to
// output channels over every core; a tile too large for a core was already
// cut into CIN parts (accumulated in s32) by pass 2. Cores without work stay
// idle (a larger array is never forced to be slower). The channel ranges of
// the groups are chosen by pass 4 (balance); here every core gets its group
// and width range.
#include <fmt/format.h>

#include <algorithm>

#include "aie/passes/compiler.h"

namespace wbs::aie {

// Height slices per column in the wide split: `rows` cores cut each of the
// `cols_used` column shares into rows / ys width slices x ys height slices
// of equal height; the ys whose busiest core gets the fewest output pixels
// (ties: fewer height slices). Only 1x1 convs without a fused pool (no
// vertical halo to read twice), and only where oh divides evenly.
int64_t WideHeightSlices(const Layer& l, int64_t cols_used, int64_t rows, bool allow) {
  if (!allow || l.kh != 1 || l.kw != 1 || l.post_pool.on || l.pre_pool.on || rows < 2) return 1;
  int64_t widest = 0;
  for (int64_t c = 0; c < cols_used; ++c)
    widest = std::max(widest, l.ow * (c + 1) / cols_used - l.ow * c / cols_used);
  int64_t best_ys = 1, best = -1;
  for (int64_t ys = 1; ys <= rows; ++ys) {
    if (rows % ys != 0 || l.oh % ys != 0) continue;
    const int64_t xs = rows / ys;
    const int64_t pixels = (widest + xs - 1) / xs * (l.oh / ys);
    if (best < 0 || pixels < best) best = pixels, best_ys = ys;
  }
  return best_ys;
}

int NumChannelGroups(const Layer& l) {
  const int64_t units = l.kind == LayerKind::kConv ? l.block_rows : l.m;
  if (l.wide) return 1;
  const int64_t g = l.cout_only ? int64_t{l.rows_used} * l.cols_used : l.rows_used;
  return static_cast<int>(std::min(g, units));
}

Status RunSplit(CompileState& s) {
  const Target& t = s.target;
  for (Layer& l : s.layers) {
    const int64_t units = l.kind == LayerKind::kConv ? l.block_rows : l.m;
    l.cores.clear();
    if (l.cout_only) {
      // Channels over every core, column-major so a column's cores share input rows.
      const int64_t groups = std::min<int64_t>(units, int64_t{t.rows} * t.cols);
      l.cols_used = static_cast<int>(std::min<int64_t>(t.cols, (groups + t.rows - 1) / t.rows));
      l.rows_used = static_cast<int>(std::min<int64_t>(t.rows, groups));
      // Spread the groups over the used columns evenly (column-major fill).
      int64_t gi = 0;
      for (int c = 0; c < l.cols_used; ++c) {
        for (int r = 0; r < l.rows_used && gi < groups; ++r, ++gi) {
          CoreWork w;
          w.row = r, w.col = c, w.x0 = 0, w.x1 = l.ow, w.y0 = 0, w.y1 = l.oh;
          l.cores.push_back(w);
        }
      }
    } else if (l.wide) {
      // The 2-D split's column shares, each cut over the rows.
      l.cols_used = static_cast<int>(std::min<int64_t>(t.cols, l.ow));
      int64_t narrowest = l.ow;
      for (int c = 0; c < l.cols_used; ++c) narrowest = std::min(narrowest, l.ow * (c + 1) / l.cols_used - l.ow * c / l.cols_used);
      l.rows_used = static_cast<int>(std::min<int64_t>(t.rows, narrowest));
      // Row r: width slice r / ys, height slice r % ys (Layer::wide_ys).
      const int64_t ys = l.wide_ys, nx = l.rows_used / ys;
      if (ys < 1 || l.rows_used % ys != 0 || l.oh % ys != 0)
        return Internal("{}: {} height slices do not divide {} rows of cores and {} output rows", l.name, ys,
                        l.rows_used, l.oh);
      for (int r = 0; r < l.rows_used; ++r) {
        for (int c = 0; c < l.cols_used; ++c) {
          const int64_t xs = l.ow * c / l.cols_used, n = l.ow * (c + 1) / l.cols_used - xs;
          const int64_t xi = r / ys, yi = r % ys;
          CoreWork w;
          w.row = r, w.col = c;
          w.x0 = xs + n * xi / nx;
          w.x1 = xs + n * (xi + 1) / nx;
          w.y0 = l.oh * yi / ys;
          w.y1 = l.oh * (yi + 1) / ys;
          l.cores.push_back(w);
        }
      }
    } else {
      l.rows_used = static_cast<int>(std::min<int64_t>(t.rows, units));
      l.cols_used = static_cast<int>(std::min<int64_t>(t.cols, l.ow));
      for (int r = 0; r < l.rows_used; ++r) {
        for (int c = 0; c < l.cols_used; ++c) {
          CoreWork w;
          w.row = r, w.col = c;
          w.x0 = l.ow * c / l.cols_used;
          w.x1 = l.ow * (c + 1) / l.cols_used;
          w.y0 = 0, w.y1 = l.oh;
          l.cores.push_back(w);
        }
      }
    }
  }
  return Status::Ok();
}

std::string DumpSplit(const CompileState& s) {
  std::string r = "# split: grid use per layer (rows x cols, mode), width ranges\n";
  for (const Layer& l : s.layers) {
    std::string ranges;
    int last_col = -1;
    for (const CoreWork& w : l.cores) {
      if (w.col == last_col && !l.wide) continue;
      last_col = w.col;
      ranges += fmt::format(" [{},{})", w.x0, w.x1);
      if (l.wide_ys > 1) ranges += fmt::format("y[{},{})", w.y0, w.y1);
    }
    r += fmt::format("{:<28} {}x{} {}{}\n", l.name, l.rows_used, l.cols_used,
                     l.cout_only ? "channels-over-all-cores" : l.wide ? "width-over-all-cores" : "channels-over-rows width-over-cols",
                     l.cout_only ? "" : ranges);
  }
  return r;
}

}  // namespace wbs::aie
