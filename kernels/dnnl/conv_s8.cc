#include "kernels/dnnl/conv_s8.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "core/quant_math.h"
#include "kernels/dnnl/dnnl_common.h"
#include "kernels/sparse/s8_dispatch.h"

namespace wbs::kernels::onednn {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

// The clamp-first form of Requantize (core/quant_math.h) for one channel:
// f(a) = (a * M + 2^(S-1)) >> S is non-decreasing in a and, when M < 2^S
// (a ratio below 1), steps by at most 1, so it takes every integer between
// its ends. Then clamp(f(acc) + z, lo, hi) = f(clamp(acc, a_lo, a_hi)) + z
// with a_lo / a_hi the least / greatest int32 whose result lies in [lo, hi],
// and (a * M + 2^(S-1) + z * 2^S) >> S = f(a) + z exactly. S <= 53 keeps
// z * 2^S + a * M inside int64. False when the channel does not qualify.
bool ClampFirst(int32_t m, int32_t s, int32_t z, int32_t lo, int32_t hi, int32_t* a_lo,
                int32_t* a_hi, int64_t* rzp) {
  if (m <= 0 || s < 1 || s > 53 || int64_t{m} >= (int64_t{1} << s) || z < -256 || z > 256)
    return false;
  auto f = [&](int64_t a) { return ((a * m + (int64_t{1} << (s - 1))) >> s) + z; };
  // Least a with f(a) >= lo.
  int64_t l = INT32_MIN, h = INT32_MAX;
  if (f(h) < lo) return false;  // every result below lo: leave it to the exact path
  while (l < h) {
    const int64_t mid = l + (h - l) / 2;
    if (f(mid) >= lo)
      h = mid;
    else
      l = mid + 1;
  }
  *a_lo = static_cast<int32_t>(l);
  // Greatest a with f(a) <= hi.
  l = INT32_MIN;
  h = INT32_MAX;
  if (f(l) > hi) return false;
  while (l < h) {
    const int64_t mid = h - (h - l) / 2;
    if (f(mid) <= hi)
      l = mid;
    else
      h = mid - 1;
  }
  *a_hi = static_cast<int32_t>(l);
  if (*a_lo > *a_hi) return false;
  *rzp = (int64_t{1} << (s - 1)) + static_cast<int64_t>(z) * (int64_t{1} << s);
  return true;
}

// One pixel's channels, nhwc s32 -> 8-bit, in the clamp-first form; the same
// source compiled for AVX-512 (64-bit multiplies and per-lane shifts
// vectorize) and for the baseline ISA.
#define WBS_FAST_EPILOGUE_BODY                                                           \
  for (int64_t o = 0; o < m; ++o) {                                                      \
    int32_t a = static_cast<int32_t>(static_cast<uint32_t>(acc[o]) + bias[o]);           \
    a = std::min(std::max(a, a_lo[o]), a_hi[o]);                                         \
    out[o] = static_cast<uint8_t>((static_cast<int64_t>(a) * mul[o] + rzp[o]) >> sh[o]); \
  }
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void FastEpilogueAvx512(
    const int32_t* __restrict acc, const uint32_t* __restrict bias, const int32_t* __restrict a_lo,
    const int32_t* __restrict a_hi, const int64_t* __restrict mul, const int64_t* __restrict rzp,
    const int64_t* __restrict sh, uint8_t* __restrict out, int64_t m) {
  WBS_FAST_EPILOGUE_BODY
}
void FastEpilogueBase(const int32_t* __restrict acc, const uint32_t* __restrict bias,
                      const int32_t* __restrict a_lo, const int32_t* __restrict a_hi,
                      const int64_t* __restrict mul, const int64_t* __restrict rzp,
                      const int64_t* __restrict sh, uint8_t* __restrict out, int64_t m) {
  WBS_FAST_EPILOGUE_BODY
}
#undef WBS_FAST_EPILOGUE_BODY

// The int8 ISA level after WBS_ISA_CAP (the sparse kernels' dispatcher), so
// capped test runs also cover the baseline clone.
bool HasAvx512() { return sparse::S8ActiveIsa() >= sparse::S8Isa::kAvx512; }

// Implementations kExact may use when the jit kernels are not exact: the
// reference (s32 accumulation), or one whose name says it runs VNNI (an
// AVX2-VNNI jit kernel, if oneDNN names it so).
bool ExactWithoutVnniIsa(const std::string& impl) {
  return impl.rfind("ref", 0) == 0 || impl.find("vnni") != std::string::npos;
}

}  // namespace

bool OneDnnS8JitIsExact(std::string* why) {
  // cpu_isa values are feature bit sets: each ISA includes the ones below.
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto vnni = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_vnni);
  const bool exact = (isa & vnni) == vnni;
  if (why != nullptr)
    *why = exact ? "oneDNN's int8 ISA has AVX-512 VNNI (s32 accumulation)"
                 : fmt::format(
                       "oneDNN's int8 ISA (dnnl_cpu_isa 0x{:x}) has no AVX-512 VNNI: its jit "
                       "kernels saturate u8 x s8 pair sums at int16",
                       isa);
  return exact;
}

Result<std::unique_ptr<S8ConvPrimitive>> S8ConvPrimitive::Create(const ref::ConvParams& p,
                                                                 const int8_t* w,
                                                                 const sparse::S8QuantParams& q,
                                                                 S8ConvMode mode) {
  if (p.spatial_rank > 2 || p.in[0] != 1 || p.kernel[0] != 1)
    return Unimplemented("oneDNN int8 conv: only 1-D and 2-D convolutions");
  if (p.group < 1 || p.in_channels % p.group || p.out_channels % p.group)
    return InvalidArgument("oneDNN int8 conv: group {} does not divide C {} / M {}", p.group,
                           p.in_channels, p.out_channels);
  const int64_t m = p.out_channels, cg = p.in_channels / p.group;
  const int64_t kh = p.kernel[1], kw = p.kernel[2], ksz = cg * kh * kw;
  if (q.requant.size() != 1 && static_cast<int64_t>(q.requant.size()) != m)
    return InvalidArgument("oneDNN int8 conv: {} requantization multipliers for {} channels",
                           q.requant.size(), m);
  if (!q.bias.empty() && static_cast<int64_t>(q.bias.size()) != m)
    return InvalidArgument("oneDNN int8 conv: {} biases for {} channels", q.bias.size(), m);
  if (q.lo > q.hi || q.lo < -128 || q.hi > 255 || (q.lo < 0 && q.hi > 127))
    return InvalidArgument("oneDNN int8 conv: clamp [{}, {}] is not inside u8 or s8", q.lo, q.hi);
  std::unique_ptr<S8ConvPrimitive> c(new S8ConvPrimitive());
  c->p_ = p;
  c->mode_ = mode;
  c->x_signed_ = q.x_signed;
  c->zx_u8_ = static_cast<uint8_t>(q.x_zero_point + (q.x_signed ? 128 : 0));
  c->zy_ = q.y_zero_point;
  c->lo_ = q.lo;
  c->hi_ = q.hi;
  c->multiplier_.resize(static_cast<size_t>(m));
  c->shift_.resize(static_cast<size_t>(m));
  c->bias_eff_.resize(static_cast<size_t>(m));
  for (int64_t o = 0; o < m; ++o) {
    const Requant r = q.requant.size() == 1 ? q.requant[0] : q.requant[static_cast<size_t>(o)];
    c->multiplier_[static_cast<size_t>(o)] = r.multiplier;
    c->shift_[static_cast<size_t>(o)] = r.shift;
    uint32_t sum = 0;
    for (int64_t i = 0; i < ksz; ++i) sum += static_cast<uint32_t>(int32_t{w[o * ksz + i]});
    const uint32_t b = static_cast<uint32_t>(q.bias.empty() ? 0 : q.bias[static_cast<size_t>(o)]);
    c->bias_eff_[static_cast<size_t>(o)] = static_cast<int32_t>(b - uint32_t{c->zx_u8_} * sum);
  }
  c->fast_epilogue_ = true;
  c->acc_lo_.resize(static_cast<size_t>(m));
  c->acc_hi_.resize(static_cast<size_t>(m));
  c->mul64_.resize(static_cast<size_t>(m));
  c->rzp_.resize(static_cast<size_t>(m));
  c->shift64_.resize(static_cast<size_t>(m));
  for (size_t o = 0; o < static_cast<size_t>(m) && c->fast_epilogue_; ++o) {
    c->fast_epilogue_ = ClampFirst(c->multiplier_[o], c->shift_[o], c->zy_, c->lo_, c->hi_,
                                   &c->acc_lo_[o], &c->acc_hi_[o], &c->rzp_[o]);
    c->mul64_[o] = c->multiplier_[o];
    c->shift64_[o] = c->shift_[o];
  }
  const bool exact = mode == S8ConvMode::kExact;
  const int64_t oh = p.out[1], ow = p.out[2];
  c->hp_ = exact ? (oh - 1) * p.stride[1] + (kh - 1) * p.dilation[1] + 1 : p.in[1];
  c->wp_ = exact ? (ow - 1) * p.stride[2] + (kw - 1) * p.dilation[2] + 1 : p.in[2];
  try {
    const memory::dims src_dims = {p.batch, p.in_channels, c->hp_, c->wp_};
    const memory::dims dst_dims = {p.batch, m, oh, ow};
    const memory::dims w_dims =
        p.group == 1 ? memory::dims{m, cg, kh, kw} : memory::dims{p.group, m / p.group, cg, kh, kw};
    const memory::dims strides = {p.stride[1], p.stride[2]};
    const memory::dims dil = {p.dilation[1] - 1, p.dilation[2] - 1};
    const memory::dims pad_l =
        exact ? memory::dims{0, 0} : memory::dims{p.pad_begin[1], p.pad_begin[2]};
    const memory::dims pad_r =
        exact ? memory::dims{0, 0} : memory::dims{p.pad_end[1], p.pad_end[2]};
    const memory::desc src_md(src_dims, dt::u8, exact ? tag::nhwc : tag::any);
    const memory::desc w_md(w_dims, dt::s8, tag::any);
    const memory::desc dst_md(dst_dims, exact ? dt::s32 : (q.lo < 0 ? dt::s8 : dt::u8),
                              exact ? tag::nhwc : tag::any);
    dnnl::primitive_attr attr;
    std::optional<memory::desc> bias_md;
    if (!exact) {
      std::vector<float> scales(static_cast<size_t>(m));
      for (int64_t o = 0; o < m; ++o)
        scales[static_cast<size_t>(o)] = static_cast<float>(
            Requant{c->multiplier_[static_cast<size_t>(o)], c->shift_[static_cast<size_t>(o)]}
                .real());
      attr.set_output_scales(1 << 1, scales);
      dnnl::post_ops ops;
      if (q.lo == q.y_zero_point) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0, 0);
      attr.set_post_ops(ops);
      bias_md = memory::desc({m}, dt::s32, tag::x);
    }
    dnnl::convolution_forward::desc d =
        bias_md ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                  dnnl::algorithm::convolution_direct, src_md, w_md,
                                                  *bias_md, dst_md, strides, dil, pad_l, pad_r)
                : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                  dnnl::algorithm::convolution_direct, src_md, w_md,
                                                  dst_md, strides, dil, pad_l, pad_r);
    dnnl::convolution_forward::primitive_desc pd(d, attr, CpuEngine());
    if (exact && !OneDnnS8JitIsExact()) {
      while (!ExactWithoutVnniIsa(pd.impl_info_str()))
        if (!pd.next_impl())
          return Unimplemented("oneDNN int8 conv: no exact implementation without VNNI");
    }
    c->impl_ = pd.impl_info_str();
    c->prim_ = dnnl::convolution_forward(pd);
    c->src_ = memory(pd.src_desc(), CpuEngine());
    c->dst_ = memory(pd.dst_desc(), CpuEngine());
    c->weights_ = memory(pd.weights_desc(), CpuEngine());
    const memory::desc user_w(w_dims, dt::s8, p.group == 1 ? tag::oihw : tag::goihw);
    memory user(user_w, CpuEngine(), const_cast<int8_t*>(w));
    dnnl::reorder(user, c->weights_).execute(ThreadStream(), user, c->weights_);
    if (bias_md) {
      c->bias_ = memory(*bias_md, CpuEngine());
      int32_t* b = static_cast<int32_t*>(c->bias_.get_data_handle());
      for (int64_t o = 0; o < m; ++o) b[o] = q.bias.empty() ? 0 : q.bias[static_cast<size_t>(o)];
    }
    // Defined contents for RunPrimitiveOnly() (the benchmark).
    std::fill_n(static_cast<uint8_t*>(c->src_.get_data_handle()), pd.src_desc().get_size(),
                c->zx_u8_);
    ThreadStream().wait();
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, "oneDNN int8 conv");
  }
  return c;
}

void S8ConvPrimitive::PadInput(const uint8_t* x, int64_t n, bool x_quad4) {
  const ref::ConvParams& p = p_;
  const int64_t c = p.in_channels, h = p.in[1], w = p.in[2];
  const uint8_t flip = x_signed_ ? 0x80 : 0;
  uint8_t* dst = static_cast<uint8_t*>(src_.get_data_handle()) + n * hp_ * wp_ * c;
  const uint8_t* src = x + n * c * h * w;
  const int64_t pt = p.pad_begin[1], pl = p.pad_begin[2];
  const uint8_t zx = zx_u8_;
  // One padded row per iteration, threaded; inside a row channel by
  // channel: the reads run along a contiguous input row and the strided
  // writes stay within the row's wp * c bytes (in L1), where a pixel-major
  // order reads c cache lines per pixel.
#pragma omp parallel for schedule(static)
  for (int64_t yp = 0; yp < hp_; ++yp) {
    uint8_t* drow = dst + yp * wp_ * c;
    const int64_t iy = yp - pt;
    if (iy < 0 || iy >= h) {
      std::fill_n(drow, wp_ * c, zx);
      continue;
    }
    const int64_t x0 = std::clamp<int64_t>(pl, 0, wp_);       // first xp inside
    const int64_t x1 = std::clamp<int64_t>(pl + w, x0, wp_);  // past the last
    std::fill_n(drow, x0 * c, zx);
    std::fill_n(drow + x1 * c, (wp_ - x1) * c, zx);
    if (x_quad4) {  // quad cq of pixel (iy, ix) at src[((cq * h + iy) * w + ix) * 4]
      for (int64_t cq = 0; cq < c / 4; ++cq) {
        const uint8_t* srow = src + (cq * h + iy) * w * 4;
        for (int64_t xp = x0; xp < x1; ++xp)
          for (int64_t l = 0; l < 4; ++l)
            drow[xp * c + cq * 4 + l] = srow[(xp - pl) * 4 + l] ^ flip;
      }
      continue;
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      const uint8_t* srow = src + (ch * h + iy) * w;
      for (int64_t xp = x0; xp < x1; ++xp) drow[xp * c + ch] = srow[xp - pl] ^ flip;
    }
  }
}

Status S8ConvPrimitive::RunPrimitiveOnly() {
  try {
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_}};
    if (mode_ == S8ConvMode::kNative) args[DNNL_ARG_BIAS] = bias_;
    prim_.execute(ThreadStream(), args);
    ThreadStream().wait();
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, "oneDNN int8 conv");
  }
  return Status::Ok();
}

Status S8ConvPrimitive::Run(const uint8_t* x, uint8_t* y, bool x_quad4, bool y_quad4) {
  if (mode_ != S8ConvMode::kExact)
    return InvalidArgument("oneDNN int8 conv: Run() needs kExact (kNative rounds like oneDNN)");
  const ref::ConvParams& p = p_;
  if ((x_quad4 && p.in_channels % 4 != 0) || (y_quad4 && p.out_channels % 4 != 0) ||
      ((x_quad4 || y_quad4) && p.group != 1))
    return InvalidArgument("oneDNN int8 conv: nChw4c needs group 1 and C {} / M {} multiples of 4",
                           p.in_channels, p.out_channels);
  for (int64_t n = 0; n < p.batch; ++n) PadInput(x, n, x_quad4);
  WBS_RETURN_IF_ERROR(RunPrimitiveOnly());
  const int64_t m = p.out_channels, plane = p.out[1] * p.out[2];
  const int32_t* acc = static_cast<const int32_t*>(dst_.get_data_handle());  // nhwc
  // The epilogue transposes nhwc s32 into nchw 8-bit: tiles of kTile pixels
  // x all channels (kTile * m * 4 bytes, in L1/L2) so both the reads and the
  // writes of a tile stay in cache lines already loaded, instead of one
  // strided pass over the whole accumulator per channel.
  constexpr int64_t kTile = 64;
  const int64_t tiles = (plane + kTile - 1) / kTile;
  const int64_t work = p.batch * tiles;
  if (fast_epilogue_) {
    // Each pixel's channels are contiguous in acc: compute them vectorized
    // into a [kTile][m] byte tile, then transpose the bytes to nchw.
    const bool avx512 = HasAvx512();
    const uint32_t* bias = reinterpret_cast<const uint32_t*>(bias_eff_.data());
#pragma omp parallel
    {
      std::vector<uint8_t> tile(static_cast<size_t>(kTile * m));
#pragma omp for schedule(static)
      for (int64_t nt = 0; nt < work; ++nt) {
        const int64_t n = nt / tiles, i0 = (nt % tiles) * kTile, i1 = std::min(plane, i0 + kTile);
        const int32_t* an = acc + n * plane * m;
        for (int64_t i = i0; i < i1; ++i) {
          uint8_t* t = tile.data() + (i - i0) * m;
          if (avx512)
            FastEpilogueAvx512(an + i * m, bias, acc_lo_.data(), acc_hi_.data(), mul64_.data(),
                               rzp_.data(), shift64_.data(), t, m);
          else
            FastEpilogueBase(an + i * m, bias, acc_lo_.data(), acc_hi_.data(), mul64_.data(),
                             rzp_.data(), shift64_.data(), t, m);
        }
        if (y_quad4) {  // nChw4c: 4 channels of a pixel stay together
          for (int64_t oq = 0; oq < m / 4; ++oq) {
            uint8_t* yp = y + (n * m + oq * 4) * plane;
            for (int64_t i = i0; i < i1; ++i)
              std::memcpy(yp + i * 4, tile.data() + (i - i0) * m + oq * 4, 4);
          }
          continue;
        }
        for (int64_t o = 0; o < m; ++o) {
          uint8_t* yp = y + (n * m + o) * plane;
          for (int64_t i = i0; i < i1; ++i) yp[i] = tile[static_cast<size_t>((i - i0) * m + o)];
        }
      }
    }
    return Status::Ok();
  }
#pragma omp parallel for schedule(static)
  for (int64_t nt = 0; nt < work; ++nt) {
    const int64_t n = nt / tiles, i0 = (nt % tiles) * kTile, i1 = std::min(plane, i0 + kTile);
    const int32_t* an = acc + n * plane * m;
    for (int64_t o = 0; o < m; ++o) {
      const Requant r{multiplier_[static_cast<size_t>(o)], shift_[static_cast<size_t>(o)]};
      const uint32_t b = static_cast<uint32_t>(bias_eff_[static_cast<size_t>(o)]);
      // Element i of channel o: plain yp[i], nChw4c yp[i * 4] (yp at its quad's lane).
      uint8_t* yp = y_quad4 ? y + (n * m + o / 4 * 4) * plane + o % 4 : y + (n * m + o) * plane;
      const int64_t step = y_quad4 ? 4 : 1;
      for (int64_t i = i0; i < i1; ++i)
        yp[i * step] = static_cast<uint8_t>(Requantize(
            static_cast<int32_t>(static_cast<uint32_t>(an[i * m + o]) + b), r, zy_, lo_, hi_));
    }
  }
  return Status::Ok();
}

}  // namespace wbs::kernels::onednn
