#include "kernels/sparse/s8_bsr_conv_plan.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kGroup = 16;                  // positions per S8LaneGroup
constexpr int64_t kChunkBudgetBytes = 1 << 18;  // input bytes per position chunk (~L2)
constexpr int kMinRowsPerThread = 4;
constexpr int64_t kChunkQuantum = 48;  // the AVX-512 tile (AVX2: 8 divides it)
// Shifted input planes (no dropped columns) for convs whose output columns
// times the column stride are at most this, on the VNNI kernel; phase
// planes otherwise.
constexpr int64_t kShiftedMaxOw = 14;

int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Block-rows [r0, r1) of thread tid of nt holding ~1/nt of the work
// (non-zero blocks + one unit per row for its stores).
void RowShare(const std::vector<int32_t>& row_ptr, int tid, int nt, int64_t* r0, int64_t* r1) {
  const int64_t rows = static_cast<int64_t>(row_ptr.size()) - 1;
  const int64_t work = row_ptr.back() + rows;
  auto start_of = [&](int64_t target) {
    int64_t r = 0;
    while (r < rows && row_ptr[static_cast<size_t>(r)] + r < target) ++r;
    return r;
  };
  *r0 = start_of(work * tid / nt);
  *r1 = tid == nt - 1 ? rows : start_of(work * (tid + 1) / nt);
}

}  // namespace

S8Epilogue S8FoldedEpilogue::View() const {
  S8Epilogue e;
  e.bias = bias.data();
  e.multiplier = multiplier.data();
  e.shift = shift.data();
  e.zero_point = zero_point;
  e.lo = lo;
  e.hi = hi;
  e.fast = fast;
  e.shift_only = shift_only;
  e.acc_lo = acc_lo.data();
  e.acc_hi = acc_hi.data();
  e.round_zp = round_zp.data();
  return e;
}

namespace {

// Output before the clamp, exactly (int64: no saturation).
int64_t Unclamped(int32_t acc, Requant r, int32_t zp) {
  return int64_t{RequantizeRaw(acc, r)} + zp;
}

// acc_lo = max{acc : out(acc) <= lo} (or INT32_MIN), acc_hi = min{acc : out(acc)
// >= hi} (or INT32_MAX), by bisection (out() is monotone in acc). False unless
// they pin the output exactly to lo / hi (true when the multiplier is <= 1:
// steps of at most 1), so clamping acc to them replaces the output clamp.
bool SaturationBounds(Requant r, int32_t zp, int32_t lo, int32_t hi, int32_t* acc_lo,
                      int32_t* acc_hi) {
  int64_t a = INT32_MIN, b = INT32_MAX;
  if (Unclamped(INT32_MIN, r, zp) > lo) {
    *acc_lo = INT32_MIN;
  } else {
    while (a < b) {  // invariant: out(a) <= lo
      const int64_t mid = a + (b - a + 1) / 2;
      if (Unclamped(static_cast<int32_t>(mid), r, zp) <= lo)
        a = mid;
      else
        b = mid - 1;
    }
    *acc_lo = static_cast<int32_t>(a);
  }
  a = INT32_MIN;
  b = INT32_MAX;
  if (Unclamped(INT32_MAX, r, zp) < hi) {
    *acc_hi = INT32_MAX;
  } else {
    while (a < b) {  // invariant: out(b) >= hi
      const int64_t mid = a + (b - a) / 2;
      if (Unclamped(static_cast<int32_t>(mid), r, zp) >= hi)
        b = mid;
      else
        a = mid + 1;
    }
    *acc_hi = static_cast<int32_t>(b);
  }
  if (*acc_lo > *acc_hi) return false;
  for (int32_t acc : {*acc_lo, *acc_hi}) {
    const int64_t v = Unclamped(acc, r, zp);
    if (v < lo || v > hi) return false;
  }
  return true;
}

// S8Epilogue::fast constants of one channel; false if it does not qualify.
bool FastChannel(Requant r, int32_t zp, int32_t lo, int32_t hi, int32_t* acc_lo, int32_t* acc_hi,
                 int64_t* round_zp) {
  if (r.shift < 32 || r.shift > 53 || r.multiplier <= 0) return false;
  if (!SaturationBounds(r, zp, lo, hi, acc_lo, acc_hi)) return false;
  *round_zp = (int64_t{1} << (r.shift - 1)) + (int64_t{zp} << r.shift);
  return true;
}

// S8Epilogue::shift_only constants (M = 1: a power-of-two scale); false if it
// does not qualify or (acc + round_zp) could leave int32.
bool ShiftChannel(Requant r, int32_t zp, int32_t lo, int32_t hi, int32_t* acc_lo, int32_t* acc_hi,
                  int64_t* round_zp) {
  if (r.multiplier != 1 || r.shift < 0 || r.shift > 24) return false;
  if (!SaturationBounds(r, zp, lo, hi, acc_lo, acc_hi)) return false;
  *round_zp = (r.shift > 0 ? int64_t{1} << (r.shift - 1) : 0) + (int64_t{zp} << r.shift);
  return int64_t{*acc_lo} + *round_zp >= INT32_MIN && int64_t{*acc_hi} + *round_zp <= INT32_MAX;
}

}  // namespace

Result<S8FoldedEpilogue> FoldS8Epilogue(const S8BlockSparseWeight& w, const S8QuantParams& q) {
  const int64_t m = w.out_channels();
  const int32_t xmin = q.x_signed ? -128 : 0, xmax = q.x_signed ? 127 : 255;
  if (q.x_zero_point < xmin || q.x_zero_point > xmax)
    return InvalidArgument("int8 sparse: input zero point {} outside [{}, {}]", q.x_zero_point,
                           xmin, xmax);
  if (q.lo > q.hi || q.lo < -128 || q.hi > 255 || (q.lo < 0 && q.hi > 127))
    return InvalidArgument("int8 sparse: clamp [{}, {}] is not inside the u8 or s8 range", q.lo,
                           q.hi);
  if (!q.bias.empty() && static_cast<int64_t>(q.bias.size()) != m)
    return InvalidArgument("int8 sparse: {} biases for {} output channels", q.bias.size(), m);
  if (q.requant.size() != 1 && static_cast<int64_t>(q.requant.size()) != m)
    return InvalidArgument("int8 sparse: {} requantization multipliers for {} output channels",
                           q.requant.size(), m);
  S8FoldedEpilogue e;
  e.x_signed = q.x_signed;
  e.x_zero_u8 = static_cast<uint8_t>(q.x_zero_point + (q.x_signed ? 128 : 0));
  e.zero_point = q.y_zero_point;
  e.lo = q.lo;
  e.hi = q.hi;
  const size_t padded = static_cast<size_t>(w.block_rows() * w.br());
  e.bias.assign(padded, 0);
  e.multiplier.assign(padded, 0);
  e.shift.assign(padded, 0);
  for (int64_t c = 0; c < m; ++c) {
    const Requant r = q.requant.size() == 1 ? q.requant[0] : q.requant[static_cast<size_t>(c)];
    if (r.multiplier < 0 || r.shift < 0 || r.shift > 62)
      return InvalidArgument(
          "int8 sparse: channel {}: multiplier {} shift {} (want M >= 0, S in [0, 62])", c,
          r.multiplier, r.shift);
    // acc = B - z*sum(W) + sum W*x, modulo 2^32 (docs/int8.md).
    const uint32_t b = static_cast<uint32_t>(q.bias.empty() ? 0 : q.bias[static_cast<size_t>(c)]);
    const uint32_t corr = static_cast<uint32_t>(e.x_zero_u8) *
                          static_cast<uint32_t>(w.row_sums()[static_cast<size_t>(c)]);
    e.bias[static_cast<size_t>(c)] = static_cast<int32_t>(b - corr);
    e.multiplier[static_cast<size_t>(c)] = r.multiplier;
    e.shift[static_cast<size_t>(c)] = r.shift;
  }
  // Padded rows (never stored) get harmless fast constants: M = 0 -> 0.
  e.acc_lo.assign(padded, 0);
  e.acc_hi.assign(padded, 0);
  e.round_zp.assign(padded, 0);
  e.fast = e.shift_only = true;
  for (size_t c = 0; c < padded && (e.fast || e.shift_only); ++c) {
    if (static_cast<int64_t>(c) >= m) {
      e.shift[c] = 32;
      continue;
    }
    const Requant r{e.multiplier[c], e.shift[c]};
    if (e.fast &&
        !FastChannel(r, e.zero_point, e.lo, e.hi, &e.acc_lo[c], &e.acc_hi[c], &e.round_zp[c]))
      e.fast = false;
    if (e.shift_only &&
        !ShiftChannel(r, e.zero_point, e.lo, e.hi, &e.acc_lo[c], &e.acc_hi[c], &e.round_zp[c]))
      e.shift_only = false;
  }
  if (e.shift_only)  // padded rows: shift 0 keeps the int32 shift in range
    for (size_t c = static_cast<size_t>(m); c < padded; ++c) e.shift[c] = 0;
  return e;
}

// ---------------------------------------------------------------- conv

Result<S8BsrConvPlan> S8BsrConvPlan::Create(const ref::ConvParams& p, const S8BlockSparseWeight& w,
                                            const S8QuantParams& q, S8Layout x_layout,
                                            S8Layout y_layout, const S8BsrConvKernel* kernel) {
  if (p.group != 1) return Unimplemented("int8 block-sparse conv: group {} (only 1)", p.group);
  if (p.spatial_rank > 2 || p.in[0] != 1 || p.kernel[0] != 1)
    return Unimplemented("int8 block-sparse conv: only 1-D and 2-D convolutions");
  if (p.activation.kind != ref::ActivationKind::kNone)
    return InvalidArgument("int8 block-sparse conv: fold the activation into the clamp bounds");
  if (w.out_channels() != p.out_channels || w.in_channels() != p.in_channels ||
      w.kh() != p.kernel[1] || w.kw() != p.kernel[2])
    return InvalidArgument("int8 block-sparse conv: weight [{},{},{},{}] does not fit the conv",
                           w.out_channels(), w.in_channels(), w.kh(), w.kw());
  S8BsrConvPlan plan;
  WBS_ASSIGN_OR_RETURN(plan.ep_, FoldS8Epilogue(w, q));
  plan.w_ = &w;
  plan.kernel_ = kernel ? kernel : &SelectS8BsrConvKernel(w.br(), w.bc());
  if (plan.kernel_->br != 0 && plan.kernel_->br != w.br())
    return InvalidArgument("int8 block-sparse conv: kernel {} does not take {}-row blocks",
                           plan.kernel_->name, w.br());
  if (plan.kernel_->format == S8WeightFormat::kQuadsS16) {
    const int64_t n = w.nnz_blocks() * w.block_size();
    plan.packed16_.assign(static_cast<size_t>(n + 64), 0);
    for (int64_t i = 0; i < n; i += 4) {  // {w0, w1, w2, w3} -> {w0, w2, w1, w3}
      plan.packed16_[static_cast<size_t>(i)] = w.values()[i];
      plan.packed16_[static_cast<size_t>(i + 1)] = w.values()[i + 2];
      plan.packed16_[static_cast<size_t>(i + 2)] = w.values()[i + 1];
      plan.packed16_[static_cast<size_t>(i + 3)] = w.values()[i + 3];
    }
  } else if (plan.kernel_->format != S8WeightFormat::kQuads) {
    return InvalidArgument("int8 block-sparse conv: kernel {} is not a conv kernel",
                           plan.kernel_->name);
  }
  plan.x_layout_ = x_layout;
  plan.y_layout_ = y_layout;
  // The AVX-512 row copies live with the VNNI kernel (same compile flags).
  plan.avx512_pack_ = plan.kernel_->isa >= S8Isa::kAvx512Vnni;
  plan.batch_ = p.batch;
  plan.in_c_ = p.in_channels;
  plan.in_h_ = p.in[1];
  plan.in_w_ = p.in[2];
  plan.out_h_ = p.out[1];
  plan.out_w_ = p.out[2];
  plan.sy_ = p.stride[1];
  plan.sx_ = p.stride[2];
  plan.pad_top_ = p.pad_begin[1];
  plan.pad_left_ = p.pad_begin[2];
  const int64_t kh = p.kernel[1], kw = p.kernel[2], dy = p.dilation[1], dx = p.dilation[2];
  const int64_t quads = (p.in_channels + 3) / 4;
  plan.direct_ = x_layout == S8Layout::kNchw4c && !q.x_signed && kh == 1 && kw == 1 &&
                 plan.sy_ == 1 && plan.sx_ == 1 && plan.pad_top_ == 0 && plan.pad_left_ == 0 &&
                 plan.out_h_ == plan.in_h_ && plan.out_w_ == plan.in_w_;
  int64_t pitch;
  if (plan.direct_) {
    plan.hq_ = plan.in_h_;
    plan.wq_ = plan.in_w_;
    plan.x_quad_stride_ = plan.in_h_ * plan.in_w_;
    plan.tap_offset_ = {0};
    pitch = plan.out_w_;
  } else if (kw > 1 && plan.out_w_ * plan.sx_ <= kShiftedMaxOw &&
             plan.kernel_->isa >= S8Isa::kAvx512Vnni) {
    // Shifted planes (as BsrConvPlan's, bsr_conv_plan.h): one plane per (row
    // phase py, kernel column kx) holding padded (r * sy + py, ox * sx +
    // kx*dx), pitch OW, so no dropped columns: a 7x7 output is 48 + 1
    // positions (its 49th fused into the VNNI kernel's tile) instead of 63
    // with pitch 9, a 14x14 one 4 x 48 + 4 instead of 224. Worth the
    // kw-fold copy only on small planes: measured (wbs_bench_s8, 50%) 3x3
    // to 7x7 stride 1 1.22x -> 1.60x, stride 2 1.11-1.20x -> 1.45-1.54x,
    // 14x14 stride 1 1.48x -> 1.62x, but 14x14 stride 2 (phase pitch 15)
    // 1.32x -> 1.25x: hence OW * stride <= kShiftedMaxOw.
    const int64_t hp = (plan.out_h_ - 1) * plan.sy_ + (kh - 1) * dy + 1;
    plan.hq_ = (hp + plan.sy_ - 1) / plan.sy_;
    plan.wq_ = plan.out_w_;
    const int64_t plane = plan.hq_ * plan.wq_;
    std::vector<int64_t> row_phases;  // in first-use order
    for (int64_t ky = 0; ky < kh; ++ky) {
      const int64_t py = (ky * dy) % plan.sy_;
      if (std::find(row_phases.begin(), row_phases.end(), py) == row_phases.end())
        row_phases.push_back(py);
    }
    for (int64_t py : row_phases)
      for (int64_t kx = 0; kx < kw; ++kx) {
        plan.shift_py_.push_back(py);
        plan.shift_off_.push_back(kx * dx);
      }
    for (int64_t ky = 0; ky < kh; ++ky) {
      const int64_t py = (ky * dy) % plan.sy_;
      const auto pi = static_cast<int64_t>(std::find(row_phases.begin(), row_phases.end(), py) -
                                           row_phases.begin());
      for (int64_t kx = 0; kx < kw; ++kx)
        plan.tap_offset_.push_back((pi * kw + kx) * plane + (ky * dy / plan.sy_) * plan.wq_);
    }
    plan.x_quad_stride_ = static_cast<int64_t>(plan.shift_off_.size()) * plane;
    pitch = plan.wq_;
    plan.scratch_bytes_ = (quads * plan.x_quad_stride_ + 2 * plan.wq_ + 4 * kChunkQuantum) * 4;
  } else {
    const int64_t hp = (plan.out_h_ - 1) * plan.sy_ + (kh - 1) * dy + 1;
    const int64_t wp = (plan.out_w_ - 1) * plan.sx_ + (kw - 1) * dx + 1;
    plan.hq_ = (hp + plan.sy_ - 1) / plan.sy_;
    plan.wq_ = (wp + plan.sx_ - 1) / plan.sx_;
    const int64_t plane = plan.hq_ * plan.wq_;
    plan.phase_slot_.assign(static_cast<size_t>(plan.sy_ * plan.sx_), -1);
    int64_t used = 0;
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        const int64_t phase = ((ky * dy) % plan.sy_) * plan.sx_ + (kx * dx) % plan.sx_;
        int64_t& slot = plan.phase_slot_[static_cast<size_t>(phase)];
        if (slot < 0) slot = used++;
        plan.tap_offset_.push_back(slot * plane + (ky * dy / plan.sy_) * plan.wq_ +
                                   kx * dx / plan.sx_);
      }
    plan.x_quad_stride_ = used * plane;
    pitch = plan.wq_;
    // Slack: dropped lanes of the last row read up to a row plus a tile past
    // the last plane.
    plan.scratch_bytes_ = (quads * plan.x_quad_stride_ + 2 * plan.wq_ + 4 * kChunkQuantum) * 4;
  }
  if (pitch != plan.out_w_) {
    const int64_t total = plan.out_h_ * pitch;
    plan.lanes_.resize(static_cast<size_t>(RoundUp(total, kGroup) / kGroup));
    int64_t y_index = 0;
    for (size_t g = 0; g < plan.lanes_.size(); ++g) {
      S8LaneGroup& lg = plan.lanes_[g];
      lg.y_index = y_index;
      for (int64_t l = 0; l < kGroup; ++l) {
        const int64_t qpos = static_cast<int64_t>(g) * kGroup + l;
        if (qpos < total && qpos % pitch < plan.out_w_) {
          lg.mask = static_cast<uint16_t>(lg.mask | (1u << l));
          ++y_index;
        }
      }
    }
  }
  return plan;
}

int64_t S8BsrConvPlan::x_image_bytes() const {
  const int64_t c = x_layout_ == S8Layout::kNchw4c ? RoundUp(in_c_, 4) : in_c_;
  return c * in_h_ * in_w_;
}
int64_t S8BsrConvPlan::y_image_bytes() const {
  const int64_t m = w_->out_channels();
  return (y_layout_ == S8Layout::kNchw4c ? RoundUp(m, 4) : m) * out_h_ * out_w_;
}

void S8BsrConvPlan::Pack(const uint8_t* x, uint8_t* dst, int64_t quad_begin,
                         int64_t quad_end) const {
  const int64_t plane = hq_ * wq_, in_plane = in_h_ * in_w_;
  const uint32_t fill = uint32_t{ep_.x_zero_u8} * 0x01010101u;
  const uint32_t flip = ep_.x_signed ? 0x80808080u : 0u;
  const bool identity = avx512_pack_ && shift_off_.empty() && sy_ == 1 && sx_ == 1 &&
                        pad_top_ == 0 && pad_left_ == 0 && hq_ == in_h_ && wq_ == in_w_ &&
                        x_quad_stride_ == plane;
  for (int64_t cq = quad_begin; cq < quad_end; ++cq) {
    uint32_t* out = reinterpret_cast<uint32_t*>(dst) + cq * x_quad_stride_;
    // Plain layout: the (up to) 4 channel planes of this quad.
    const uint8_t* src[4] = {};
    bool full = true;
    for (int l = 0; l < 4; ++l) {
      const int64_t c = cq * 4 + l;
      src[l] = c < in_c_ ? x + c * in_plane : nullptr;
      full = full && src[l];
    }
    // The vector rows read a missing channel (the last quad of C % 4 != 0)
    // from the first one: its weights are zero-padded, so the byte is never
    // used (the zero-point fold sums the real weights only), as the padding
    // words show (z_x in all 4 bytes). ResNet-50's conv1 (C = 3) copied its
    // input through the scalar loop below: 2% of the 50% model's time.
    const uint8_t* srcv[4] = {src[0], src[1], src[2], src[3]};
    for (int l = 1; l < 4; ++l)
      if (!srcv[l]) srcv[l] = srcv[0];
    const uint32_t* src4 = reinterpret_cast<const uint32_t*>(x) + cq * in_plane;
    // One stored plane: padded row r * sy_ + py, columns col * sx + off
    // (phase planes: off = the column phase; shifted planes: sx = 1, off =
    // the kernel column's offset).
    auto pack_plane = [&](int64_t slot, int64_t py, int64_t off, int64_t sx) {
      uint32_t* pl = out + slot * plane;
      // Columns whose source ix = col*sx + off - pad_left is inside the row.
      const int64_t lo = std::clamp<int64_t>((pad_left_ - off + sx - 1) / sx, 0, wq_);
      const int64_t hi = std::clamp<int64_t>((in_w_ + pad_left_ - off + sx - 1) / sx, lo, wq_);
      for (int64_t r = 0; r < hq_; ++r) {
        uint32_t* row = pl + r * wq_;
        const int64_t iy = r * sy_ + py - pad_top_;
        if (iy < 0 || iy >= in_h_) {
          std::fill(row, row + wq_, fill);
          continue;
        }
        std::fill(row, row + lo, fill);
        std::fill(row + hi, row + wq_, fill);
        const int64_t base = iy * in_w_ + off - pad_left_;  // + col * sx = source index
        if (avx512_pack_ && sx <= 2 && (x_layout_ == S8Layout::kNchw4c || srcv[0])) {
          if (x_layout_ == S8Layout::kNchw4c) {
            s8_pack_row4c__avx512(src4 + base + lo * sx, sx, hi - lo, flip, row + lo);
          } else {
            const uint8_t* const s[4] = {srcv[0] + base + lo * sx, srcv[1] + base + lo * sx,
                                         srcv[2] + base + lo * sx, srcv[3] + base + lo * sx};
            s8_pack_row__avx512(s, sx, hi - lo, flip, row + lo);
          }
        } else if (x_layout_ == S8Layout::kNchw4c) {
          const uint32_t* s = src4 + base;
          if (sx == 1) {
            for (int64_t col = lo; col < hi; ++col) row[col] = s[col] ^ flip;
          } else if (sx == 2) {  // a constant stride vectorizes (shuffles); stride-2 layers
            for (int64_t col = lo; col < hi; ++col) row[col] = s[col * 2] ^ flip;
          } else {
            for (int64_t col = lo; col < hi; ++col) row[col] = s[col * sx] ^ flip;
          }
        } else if (full) {
          const uint8_t *s0 = src[0] + base, *s1 = src[1] + base, *s2 = src[2] + base,
                        *s3 = src[3] + base;
          if (sx == 1) {  // vectorizes: 4 byte streams -> one word stream
            for (int64_t col = lo; col < hi; ++col)
              row[col] = (uint32_t{s0[col]} | uint32_t{s1[col]} << 8 | uint32_t{s2[col]} << 16 |
                          uint32_t{s3[col]} << 24) ^
                         flip;
          } else if (sx == 2) {
            for (int64_t col = lo; col < hi; ++col) {
              const int64_t i = col * 2;
              row[col] = (uint32_t{s0[i]} | uint32_t{s1[i]} << 8 | uint32_t{s2[i]} << 16 |
                          uint32_t{s3[i]} << 24) ^
                         flip;
            }
          } else {
            for (int64_t col = lo; col < hi; ++col) {
              const int64_t i = col * sx;
              row[col] = (uint32_t{s0[i]} | uint32_t{s1[i]} << 8 | uint32_t{s2[i]} << 16 |
                          uint32_t{s3[i]} << 24) ^
                         flip;
            }
          }
        } else {  // the last quad of C % 4 != 0 channels: missing ones read 0
          for (int64_t col = lo; col < hi; ++col) {
            uint32_t v = 0;
            for (int l = 0; l < 4; ++l)
              if (src[l])
                v |= uint32_t{static_cast<uint8_t>(src[l][base + col * sx] ^ flip)} << (8 * l);
            row[col] = v;
          }
        }
      }
    };
    if (identity && (x_layout_ == S8Layout::kNchw4c || srcv[0])) {
      // The plane is the input plane (stride 1, no padding: every 1x1
      // stride-1 layer fed plain NCHW): one row of H * W positions. Row by
      // row, a 7x7 plane of 2048 channels cost more than the layer's MACs at
      // 75%.
      if (x_layout_ == S8Layout::kNchw4c)
        s8_pack_row4c__avx512(src4, 1, in_plane, flip, out);
      else
        s8_pack_row__avx512(srcv, 1, in_plane, flip, out);
    } else if (!shift_off_.empty()) {
      for (size_t slot = 0; slot < shift_off_.size(); ++slot)
        pack_plane(static_cast<int64_t>(slot), shift_py_[slot], shift_off_[slot], sx_);
    } else {
      for (int64_t py = 0; py < sy_; ++py)
        for (int64_t px = 0; px < sx_; ++px) {
          const int64_t slot = phase_slot_[static_cast<size_t>(py * sx_ + px)];
          if (slot >= 0) pack_plane(slot, py, px, sx_);
        }
    }
  }
}

void S8BsrConvPlan::Run(const uint8_t* x, uint8_t* y, uint8_t* scratch, int threads) const {
  const S8BlockSparseWeight& w = *w_;
  const int64_t rows = w.block_rows();
  const int64_t quads = (in_c_ + 3) / 4;
  const int64_t pitch = lanes_.empty() ? out_w_ : wq_;
  const int64_t total = out_h_ * pitch;
  const int64_t max_off = *std::max_element(tap_offset_.begin(), tap_offset_.end());
  const int64_t chunk =
      RoundUp(std::max<int64_t>(kChunkBudgetBytes / (quads * 4) - max_off, 1), kChunkQuantum);
  const std::vector<int32_t>& row_ptr = w.row_ptr();
  threads = std::max(1, threads);

  S8BsrConvArgs base;
  base.row_ptr = row_ptr.data();
  base.col_idx = w.col_idx().data();
  if (kernel_->format == S8WeightFormat::kQuadsS16) {
    base.packed = packed16_.data();
    base.block_bytes = w.block_size() * 2;
  } else {
    base.packed = w.values();
    base.block_bytes = w.block_size();
  }
  base.br = w.br();
  base.bc = w.bc();
  base.out_channels = w.out_channels();
  base.in_channels = in_c_;
  base.taps = static_cast<int>(tap_offset_.size());
  base.tap_offset = tap_offset_.data();
  base.x_quad_stride = x_quad_stride_;
  base.y_layout = y_layout_;
  base.y_plane = out_h_ * out_w_;
  base.pitch = pitch;
  base.out_w = out_w_;
  base.out_h = out_h_;
  base.lanes = lanes_.empty() ? nullptr : lanes_.data();
  base.ep = ep_.View();
  const bool split_rows = rows >= int64_t{kMinRowsPerThread} * threads;
  const int64_t x_image = x_image_bytes(), y_image = y_image_bytes();

  for (int64_t n = 0; n < batch_; ++n) {
    const uint8_t* xn = x + n * x_image;
    uint8_t* yn = y + n * y_image;
#pragma omp parallel num_threads(threads)
    {
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      if (!direct_) {
        Pack(xn, scratch, quads * tid / nt, quads * (tid + 1) / nt);
#pragma omp barrier
      }
      S8BsrConvArgs a = base;
      a.x = direct_ ? xn : scratch;
      a.y = yn;
      int64_t r0 = 0, r1 = rows, q0 = 0, q1 = total;
      if (nt > 1 && split_rows) {
        RowShare(row_ptr, tid, nt, &r0, &r1);
      } else if (nt > 1) {
        const int64_t groups = RoundUp(total, kGroup) / kGroup;
        q0 = std::min(total, groups * tid / nt * kGroup);
        q1 = std::min(total, groups * (tid + 1) / nt * kGroup);
      }
      a.row_begin = r0;
      a.row_end = r1;
      for (int64_t q = q0; q < q1 && r0 < r1; q = a.q_end) {
        // A remainder shorter than a tile joins the chunk before it (as in
        // BsrConvPlan::Run): the VNNI kernel fuses a few tail positions into
        // its full tiles instead of streaming the weights again for them.
        a.q_begin = q;
        a.q_end = q1 - q < chunk + kChunkQuantum ? q1 : q + chunk;
        kernel_->fn(a);
      }
    }
    // nChw4c channels past M that no block-row covers (br not a multiple of 4).
    const int64_t m = w.out_channels(), plane = out_h_ * out_w_;
    if (y_layout_ == S8Layout::kNchw4c && rows * w.br() < RoundUp(m, 4)) {
      uint8_t* last = yn + (m / 4) * plane * 4;
      for (int64_t i = 0; i < plane; ++i)
        for (int64_t c = std::max(m, rows * w.br()) % 4; c < 4; ++c) last[i * 4 + c] = 0;
    }
  }
}

// ---------------------------------------------------------------- gemm

Result<S8BsrGemmPlan> S8BsrGemmPlan::Create(int64_t n, const S8BlockSparseWeight& w,
                                            const S8QuantParams& q, const S8BsrGemmKernel* kernel) {
  if (w.kh() != 1 || w.kw() != 1)
    return InvalidArgument("int8 block-sparse gemm: weight has a {}x{} kernel", w.kh(), w.kw());
  if (n < 1) return InvalidArgument("int8 block-sparse gemm: {} rows", n);
  S8BsrGemmPlan plan;
  WBS_ASSIGN_OR_RETURN(plan.ep_, FoldS8Epilogue(w, q));
  plan.w_ = &w;
  plan.n_ = n;
  plan.kernel_ = kernel ? kernel : &SelectS8BsrGemmKernel(w.br(), w.bc());
  const int br = w.br(), bc = w.bc();
  if ((plan.kernel_->br != 0 && plan.kernel_->br != br) ||
      (plan.kernel_->bc != 0 && plan.kernel_->bc != bc))
    return InvalidArgument("int8 block-sparse gemm: kernel {} does not take {}x{} blocks",
                           plan.kernel_->name, br, bc);
  const int64_t nnz = w.nnz_blocks(), bs = w.block_size();
  const int8_t* v = w.values();
  // Canonical element (r, c) of block j: quad c/4, lane c%4.
  auto at = [&](int64_t j, int64_t r, int64_t c) {
    return v[j * bs + ((c / 4) * br + r) * 4 + c % 4];
  };
  switch (plan.kernel_->format) {
    case S8WeightFormat::kQuads:
      break;
    case S8WeightFormat::kRows:
      plan.packed8_.assign(static_cast<size_t>(nnz * bs + 64), 0);
      for (int64_t j = 0; j < nnz; ++j)
        for (int64_t r = 0; r < br; ++r)
          for (int64_t c = 0; c < bc; ++c)
            plan.packed8_[static_cast<size_t>(j * bs + r * bc + c)] = at(j, r, c);
      break;
    case S8WeightFormat::kPairsS16:
      plan.packed16_.assign(static_cast<size_t>(nnz * bs + 64), 0);
      for (int64_t j = 0; j < nnz; ++j)
        for (int64_t r = 0; r < br; ++r)
          for (int64_t c = 0; c < bc; ++c)
            plan.packed16_[static_cast<size_t>(j * bs + ((c / 2) * br + r) * 2 + c % 2)] =
                at(j, r, c);
      break;
    default:
      return InvalidArgument("int8 block-sparse gemm: kernel {} is not a gemm kernel",
                             plan.kernel_->name);
  }
  plan.kp_ = w.block_cols() * bc;
  const bool wide = plan.kernel_->format == S8WeightFormat::kPairsS16;
  plan.direct_ = !wide && !q.x_signed && plan.kp_ == w.in_channels();
  if (!plan.direct_) plan.scratch_bytes_ = n * plan.kp_ * (wide ? 2 : 1);
  return plan;
}

void S8BsrGemmPlan::Run(const uint8_t* x, uint8_t* y, uint8_t* scratch, int threads) const {
  const S8BlockSparseWeight& w = *w_;
  const int64_t k = w.in_channels(), rows = w.block_rows();
  const bool wide = kernel_->format == S8WeightFormat::kPairsS16;
  const uint8_t flip = ep_.x_signed ? 0x80 : 0;
  threads = std::max(1, threads);
  S8BsrGemmArgs base;
  base.row_ptr = w.row_ptr().data();
  base.col_idx = w.col_idx().data();
  switch (kernel_->format) {
    case S8WeightFormat::kRows:
      base.packed = packed8_.data();
      base.block_bytes = w.block_size();
      break;
    case S8WeightFormat::kPairsS16:
      base.packed = packed16_.data();
      base.block_bytes = w.block_size() * 2;
      break;
    default:
      base.packed = w.values();
      base.block_bytes = w.block_size();
  }
  base.br = w.br();
  base.bc = w.bc();
  base.out_channels = w.out_channels();
  base.in_channels = k;
  base.x = direct_ ? static_cast<const void*>(x) : scratch;
  base.x_stride = direct_ ? k : kp_;
  base.y = y;
  base.y_stride = w.out_channels();
  base.ep = ep_.View();
  const bool split_rows = rows >= int64_t{kMinRowsPerThread} * threads || n_ < threads;
#pragma omp parallel num_threads(threads)
  {
    const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
    if (!direct_) {  // flip s8 to u8, pad K with zeros, widen for the AVX2 kernel
      for (int64_t i = n_ * tid / nt; i < n_ * (tid + 1) / nt; ++i) {
        const uint8_t* s = x + i * k;
        if (wide) {
          int16_t* d = reinterpret_cast<int16_t*>(scratch) + i * kp_;
          for (int64_t c = 0; c < k; ++c) d[c] = static_cast<uint8_t>(s[c] ^ flip);
          std::fill(d + k, d + kp_, int16_t{0});
        } else {
          uint8_t* d = scratch + i * kp_;
          for (int64_t c = 0; c < k; ++c) d[c] = static_cast<uint8_t>(s[c] ^ flip);
          std::fill(d + k, d + kp_, uint8_t{0});
        }
      }
#pragma omp barrier
    }
    S8BsrGemmArgs a = base;
    a.row_begin = 0;
    a.row_end = rows;
    a.n_begin = 0;
    a.n_end = n_;
    if (nt > 1 && split_rows) {
      RowShare(w.row_ptr(), tid, nt, &a.row_begin, &a.row_end);
    } else if (nt > 1) {
      a.n_begin = n_ * tid / nt;
      a.n_end = n_ * (tid + 1) / nt;
    }
    if (a.row_begin < a.row_end && a.n_begin < a.n_end) kernel_->fn(a);
  }
}

}  // namespace wbs::kernels::sparse
