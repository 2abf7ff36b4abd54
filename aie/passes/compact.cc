// Pass 5: compact weights. For every core, channel chunk (mt_rows block rows
// of the core's range) and CIN part, one contiguous blob in the format of
// docs/AIE_PROGRAM.md ("The weight blob"): header, BSR index (row_ptr,
// col_idx), per-channel bias with the input zero point folded in
// (B_q - z_x * row_sum over all the layer's input channels), requantization
// (M, S), and the non-zero blocks in S8BlockSparseWeight's quad layout. A
// CIN split stores the bias only in part 0 (it starts the accumulation) and
// (M, S) only in the last part (it requantizes): the middle parts are index
// and values only, so a split layer moves each per-channel word once. One
// blob = one DMA (LOADW, LOADWM). All blobs of a layer are concatenated into
// one DDR constant.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "aie/passes/cache.h"
#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {

void Put32(std::vector<uint8_t>& b, int32_t v) {
  const size_t n = b.size();
  b.resize(n + 4);
  std::memcpy(b.data() + n, &v, 4);
}

}  // namespace

// Block rows of a core's channel chunk k: [first, last).
void ChunkRows(const Layer& l, const CoreWork& w, int64_t k, int64_t* first, int64_t* last) {
  const int64_t unit = l.kind == LayerKind::kConv ? l.br : 1;
  const int64_t b0 = w.m0 / unit, b1 = (w.m1 + unit - 1) / unit;
  *first = std::min(b1, b0 + k * l.mt_rows);
  *last = std::min(b1, *first + l.mt_rows);
}

// Input channels [k0, k1) (within a group) of CIN part p.
void PartChannels(const Layer& l, int64_t p, int64_t* k0, int64_t* k1) {
  const int64_t cpg = l.c / l.groups;
  *k0 = std::min(cpg, p * l.ct);
  *k1 = std::min(cpg, *k0 + l.ct);
}

// The blob, and its effective MACs per output pixel. `row_sum` (RowSums):
// per output channel the sum of its weights over every input channel of its
// group, computed once per layer rather than once per blob.
std::vector<uint8_t> MakeBlob(const Layer& l, int32_t z_x, int64_t r0, int64_t r1, int64_t p,
                              const std::vector<int64_t>& row_sum, int64_t* macs_per_pixel) {
  const int64_t cpg = l.c / l.groups, taps = l.wkh() * l.wkw();
  int64_t k0 = 0, k1 = 0;
  PartChannels(l, p, &k0, &k1);
  const int64_t c0 = k0 / l.bc, c1 = (k1 + l.bc - 1) / l.bc;
  const int64_t rows = (r1 - r0) * l.br;
  const int8_t* wt = l.weight.data();
  std::vector<int32_t> row_ptr{0}, col_idx;
  std::vector<int64_t> blocks;  // (i, j) flattened
  int64_t macs = 0;
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t ra = i * l.br, rb = std::min(l.m, (i + 1) * l.br);
    for (int64_t j = c0; j < c1; ++j) {
      // The block's weights of one output channel are contiguous in memory
      // ([m][k][tap]), so a block is non-zero when any of its row ranges is.
      const int64_t ka = std::max(k0, j * l.bc), kb = std::min(k1, (j + 1) * l.bc);
      if (kb <= ka || rb <= ra) continue;
      bool nz = false;
      for (int64_t r = ra; r < rb && !nz; ++r) {
        const int8_t* q = wt + (r * cpg + ka) * taps;
        nz = std::any_of(q, q + (kb - ka) * taps, [](int8_t v) { return v != 0; });
      }
      if (nz) {
        col_idx.push_back(static_cast<int32_t>(j - c0));
        blocks.push_back(i * (c1 + 1) + j);
        macs += (rb - ra) * (kb - ka) * taps;
      }
    }
    row_ptr.push_back(static_cast<int32_t>(col_idx.size()));
  }
  *macs_per_pixel = macs;
  const int32_t flags = (p == 0 ? kBlobBias : 0) | (p == l.parts - 1 ? kBlobRequant : 0);
  const int64_t block_bytes = (l.bc / 4) * taps * l.br * 4;
  std::vector<uint8_t> b;
  b.reserve(static_cast<size_t>(4 * (9 + row_ptr.size() + col_idx.size() + 3 * rows) +
                                blocks.size() * block_bytes + 4));
  Put32(b, kBlobMagic);
  for (int64_t v : {int64_t{l.br}, int64_t{l.bc}, l.wkh(), l.wkw(), r1 - r0, static_cast<int64_t>(col_idx.size()), k1 - k0,
                    int64_t{flags}})
    Put32(b, static_cast<int32_t>(v));
  for (int32_t v : row_ptr) Put32(b, v);
  for (int32_t v : col_idx) Put32(b, v);
  if (flags & kBlobBias) {
    for (int64_t q = 0; q < rows; ++q) {
      const int64_t m = r0 * l.br + q;
      int32_t v = 0;
      // row_sum: every input channel of the group (all parts; zero blocks hold zeros).
      if (m < l.m)
        v = static_cast<int32_t>(
            static_cast<uint32_t>(l.bias[static_cast<size_t>(m)] -
                                  int64_t{z_x} * row_sum[static_cast<size_t>(m)]));  // mod 2^32
      Put32(b, v);
    }
  }
  if (flags & kBlobRequant) {
    for (int64_t q = 0; q < rows; ++q) {
      const int64_t m = r0 * l.br + q;
      Put32(b, m < l.m ? l.mult[static_cast<size_t>(m)] : 0);
    }
    for (int64_t q = 0; q < rows; ++q) {
      const int64_t m = r0 * l.br + q;
      Put32(b, m < l.m ? l.shift[static_cast<size_t>(m)] : 0);
    }
  }
  // Values in S8BlockSparseWeight's quad layout: [k quad][tap][row][lane];
  // rows past the layer's channels and lanes outside the part hold 0.
  for (int64_t bi : blocks) {
    const int64_t i = bi / (c1 + 1), j = bi % (c1 + 1);
    size_t n = b.size();
    b.resize(n + static_cast<size_t>(block_bytes), 0);
    for (int64_t qq = 0; qq < l.bc / 4; ++qq)
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t r = 0; r < l.br; ++r, n += 4) {
          const int64_t m = i * l.br + r;
          if (m >= l.m) continue;
          for (int64_t ln = 0; ln < 4; ++ln) {
            const int64_t k = j * l.bc + qq * 4 + ln;
            if (k >= k0 && k < k1)
              b[n + static_cast<size_t>(ln)] = static_cast<uint8_t>(wt[(m * cpg + k) * taps + t]);
          }
        }
  }
  while (b.size() % 4) b.push_back(0);
  return b;
}

namespace {

// Per output channel, the sum of its weights over every input channel of its group.
std::vector<int64_t> RowSums(const Layer& l) {
  const int64_t n = l.c / l.groups * l.wkh() * l.wkw();
  std::vector<int64_t> sums(static_cast<size_t>(l.m), 0);
  for (int64_t m = 0; m < l.m; ++m) {
    const int8_t* q = l.weight.data() + m * n;
    int64_t v = 0;
    for (int64_t e = 0; e < n; ++e) v += q[e];
    sums[static_cast<size_t>(m)] = v;
  }
  return sums;
}

// The cache's blobs of layer l (a variant made for it when none matches).
std::shared_ptr<CompileCache::LayerBlobs> CachedBlobs(CompileCache& cache, const Layer& l,
                                                      int32_t z_x) {
  std::lock_guard<std::mutex> lock(cache.mu);
  auto& variants = cache.blobs[l.name];
  for (const auto& v : variants)
    if (v->z_x == z_x && v->m == l.m && v->c == l.c && v->groups == l.groups && v->kh == l.wkh() &&
        v->kw == l.wkw() && v->br == l.br && v->bc == l.bc && v->weight == l.weight &&
        v->bias == l.bias && v->mult == l.mult && v->shift == l.shift)
      return v;
  auto v = std::make_shared<CompileCache::LayerBlobs>();
  v->weight = l.weight, v->bias = l.bias, v->mult = l.mult, v->shift = l.shift;
  v->m = l.m, v->c = l.c, v->groups = l.groups, v->kh = l.wkh(), v->kw = l.wkw();
  v->br = l.br, v->bc = l.bc, v->z_x = z_x;
  if (variants.size() >= CompileCache::kBlobVariants) variants.erase(variants.begin());
  variants.push_back(v);
  return v;
}

}  // namespace

Status RunCompact(CompileState& s) {
  for (Layer& l : s.layers) {
    l.blobs.clear();
    l.chunks = 0;
    const int64_t unit = l.kind == LayerKind::kConv ? l.br : 1;
    for (const CoreWork& w : l.cores) {
      const int64_t n = (w.m1 + unit - 1) / unit - w.m0 / unit;
      l.chunks = std::max(l.chunks, (n + l.mt_rows - 1) / l.mt_rows);
    }
    if (l.kind != LayerKind::kConv) continue;
    const int32_t z_x = s.tensors[static_cast<size_t>(l.inputs[0])].zero_point;
    std::vector<int64_t> row_sum;  // RowSums, when a blob is built here
    // Earlier trial compiles of this Compile() built most blobs already.
    const std::shared_ptr<CompileCache::LayerBlobs> cached =
        s.cache ? CachedBlobs(*s.cache, l, z_x) : nullptr;
    auto blob = [&](int64_t r0, int64_t r1, int64_t p) {
      int64_t k0 = 0, k1 = 0;
      PartChannels(l, p, &k0, &k1);
      const CompileCache::BlobKey key{
          r0, r1, k0, k1, (p == 0 ? kBlobBias : 0) | (p == l.parts - 1 ? kBlobRequant : 0)};
      if (cached) {
        std::lock_guard<std::mutex> lock(s.cache->mu);
        const auto it = cached->blobs.find(key);
        if (it != cached->blobs.end()) return SharedArray<uint8_t>(it->second);
      }
      if (row_sum.empty()) row_sum = RowSums(l);
      int64_t mpp = 0;
      auto b =
          std::make_shared<const std::vector<uint8_t>>(MakeBlob(l, z_x, r0, r1, p, row_sum, &mpp));
      if (cached) {
        std::lock_guard<std::mutex> lock(s.cache->mu);
        cached->blobs.emplace(key, b);
      }
      return SharedArray<uint8_t>(std::move(b));
    };
    // The cores of a row share their channel range, so most blobs repeat:
    // each (rows, part) is built once and copied.
    std::map<std::tuple<int64_t, int64_t, int64_t>, size_t> built;
    for (const CoreWork& w : l.cores) {
      for (int64_t k = 0; k < l.chunks; ++k) {
        int64_t r0 = 0, r1 = 0;
        ChunkRows(l, w, k, &r0, &r1);
        for (int64_t p = 0; p < l.parts; ++p) {
          if (r1 <= r0) {
            l.blobs.emplace_back();
          } else if (auto it = built.find({r0, r1, p}); it != built.end()) {
            l.blobs.push_back(l.blobs[it->second]);
          } else {
            built[{r0, r1, p}] = l.blobs.size();
            l.blobs.push_back(blob(r0, r1, p));
          }
          if (static_cast<int64_t>(l.blobs.back().size()) > l.w_bytes)
            return Internal("{}: blob of {} bytes exceeds its {}-byte core slot", l.name,
                            l.blobs.back().size(), l.w_bytes);
        }
      }
    }
  }
  return Status::Ok();
}

std::string DumpCompact(const CompileState& s) {
  std::string r = "# compact: weight blobs per layer (count, bytes total / largest / dense int8 bytes)\n";
  for (const Layer& l : s.layers) {
    if (l.kind != LayerKind::kConv) continue;
    int64_t total = 0, mx = 0, n = 0;
    for (const auto& b : l.blobs) {
      if (b.empty()) continue;
      ++n;
      total += static_cast<int64_t>(b.size());
      mx = std::max<int64_t>(mx, static_cast<int64_t>(b.size()));
    }
    r += fmt::format("{:<28} blobs {:4} bytes {:9} largest {:6} dense {:9}\n", l.name, n, total, mx,
                     static_cast<int64_t>(l.weight.size()));
  }
  return r;
}

}  // namespace wbs::aie
