// Fast int8 QAdd / QConcat / QMaxPool / QAveragePool / QGlobalAveragePool
// (kFast), bit-exact with the reference operators of runtime/ops_quant.cc
// (docs/int8.md): they take their parameters from the same resolvers
// (ResolveQAddQuant, ResolveQConcatQuant, ResolvePoolParams), and
//   - QAdd and QConcat are functions of 8-bit inputs, so their whole
//     integer formula is tabulated once at creation (QAdd: a 64 KiB table
//     over the byte pair (a, b); QConcat: 256 bytes per input, a plain copy
//     when the table is the identity) and Run() is one lookup per element;
//   - the pools run row-wise over the taps whose input row/column range is
//     valid (no per-tap bounds test) with the reference's count and
//     rounding (RoundDivHalfUp in the zero-point frame);
//   - all split their work over ctx.num_threads (OpenMP);
//   - QAdd, the 2-D pools and QGlobalAveragePool also read (and QAdd and the
//     2-D pools write) kQuad4 tensors (core/layout.h, nChw4c: what the int8
//     convs of ops_quant_fast.cc exchange): QAdd is elementwise, a pool runs
//     over quad planes with 4 lanes per pixel. An input in another layout than
//     the output is reordered first (mixed layouts only arise at the edges of
//     an nChw4c region).
// Also QGemm with an f32 output (FastQGemmF32Op below) and per-tensor
// QuantizeLinear (the network input). Declined (the
// reference runs): QAdd with broadcasting, 3-D pools, dtypes
// that differ from the quantization parameters (the reference reports them).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "ir/conv_geometry.h"
#include "kernels/ref/int8.h"
#include "kernels/ref/window.h"
#include "kernels/sparse/s8_dispatch.h"
#include "runtime/operator.h"
#include "runtime/ops_nn_common.h"
#include "runtime/ops_quant.h"
#include "runtime/ops_quant_fast.h"

namespace wbs::runtime {
namespace {

namespace kref = kernels::ref;

// Below this many elements an op runs on one thread (the OpenMP fork costs
// more than the work).
constexpr int64_t kParallelMinElements = 1 << 15;

// The value of a stored byte of an 8-bit type, and back (two's complement).
int32_t ByteValue(DType t, uint8_t b) {
  return t == DType::kU8 ? static_cast<int32_t>(b) : static_cast<int32_t>(static_cast<int8_t>(b));
}
uint8_t ValueByte(int32_t v) { return static_cast<uint8_t>(v & 0xff); }

bool StaticShape(const ir::ValueInfo& v) {
  return v.has_shape &&
         std::all_of(v.shape.begin(), v.shape.end(), [](int64_t d) { return d >= 0; });
}

int Threads(const ExecContext& ctx, int64_t elements) {
  return elements < kParallelMinElements ? 1 : std::max(1, ctx.num_threads);
}

// fn(begin, end) over [0, n) in `threads` contiguous chunks.
template <typename F>
void ParallelRange(int64_t n, int threads, F&& fn) {
  if (threads <= 1 || n < 2) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) fn(b, e);
  }
}

Status CheckTensor(const ir::Node& node, const Tensor* t, DType dtype, const Shape& shape,
                   const char* what) {
  if (t == nullptr || t->dtype() != dtype || t->shape() != shape)
    return InvalidArgument("{}: fast int8 op was planned for {} {}{}, got {}", node.Describe(),
                           what, DTypeName(dtype), ShapeToString(shape),
                           t ? t->Describe() : std::string("nothing"));
  return Status::Ok();
}

// A per-thread byte buffer (reordered inputs, pool outputs before a reorder).
uint8_t* Scratch(size_t bytes, int which) {
  thread_local std::vector<uint8_t> buf[2];
  if (buf[which].size() < bytes) buf[which].resize(bytes);
  return buf[which].data();
}

// `x` ([N, C, spatial...] 8-bit) in layout `from`, as bytes in layout `to`:
// x itself, or a reordered copy in Scratch(.., which).
const uint8_t* InLayout(const uint8_t* x, const Shape& shape, ActivationLayout from,
                        ActivationLayout to, int which) {
  if (from == to) return x;
  const int64_t n = shape[0], c = shape[1],
                plane = NumElements(shape) / std::max<int64_t>(1, n * c);
  uint8_t* d = Scratch(static_cast<size_t>(NumElements(shape)), which);
  if (to == ActivationLayout::kQuad4)
    PlainToQuad4(x, d, n, c, plane);
  else
    Quad4ToPlain(x, d, n, c, plane);
  return d;
}

// y[i] = table[a[i] * 256 + b[i]]. Locals with __restrict: y is a char
// pointer, which may alias anything, so without them the compiler reloads
// every pointer after each store.
void LookupPairs(const uint8_t* __restrict a, const uint8_t* __restrict b,
                 const uint8_t* __restrict table, uint8_t* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = table[(static_cast<unsigned>(a[i]) << 8) | b[i]];
}

// The QAdd formula itself (section 4 of docs/int8.md) over a row, in int64;
// compiled for AVX-512 (64-bit multiplies vectorize: ~2.5 instructions per
// element against ~5 scalar ones of the table), used when the int8 ISA
// (kernels/sparse/s8_dispatch.h, WBS_ISA_CAP) is at least avx512.
struct AddParams {
  int64_t za = 0, zb = 0, ma = 0, mb = 0, round = 0, zy = 0, lo = 0, hi = 255;
  int shift = 0;
};
template <typename TA, typename TB>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void AddRowAvx512(
    const uint8_t* __restrict a, const uint8_t* __restrict b, uint8_t* __restrict y, int64_t n,
    AddParams p) {
  const TA* ta = reinterpret_cast<const TA*>(a);
  const TB* tb = reinterpret_cast<const TB*>(b);
  for (int64_t i = 0; i < n; ++i) {
    int64_t v =
        (static_cast<int64_t>(ta[i]) - p.za) * p.ma + (static_cast<int64_t>(tb[i]) - p.zb) * p.mb;
    v = ((v + p.round) >> p.shift) + p.zy;
    y[i] = static_cast<uint8_t>(std::min(std::max(v, p.lo), p.hi));
  }
}

// The same formula in 32-bit lanes, exactly, for shifts S in [23, 40] (every
// QAdd whose output scale is within ~2^8 of the larger input scale). With
// a' = a - z_a and b' = b - z_b in [-255, 255] (int16) and the multipliers
// split into 11-bit limbs M = M2 2^22 + M1 2^11 + M0, each partial sum
// P_i = a' Ma_i + b' Mb_i (|P_i| < 2^20) is one vpmaddwd of the (a', b')
// word pairs, and p = a' Ma + b' Mb = P2 2^22 + P1 2^11 + P0, so
//   T = floor(p / 2^22) = P2 + ((P1 + (P0 >> 11)) >> 11)     (|T| < 2^19)
// and, as p = T 2^22 + r with 0 <= r < 2^22 and 2^(S-1) a multiple of 2^22,
//   (p + 2^(S-1)) >> S = (T + 2^(S-23)) >> (S-22);   + z_y folds in as
// z_y 2^(S-22). Two thirds of the instructions of AddRowAvx512 (whose
// 64-bit multiplies are 3 uops each).
struct AddLimbParams {
  int16_t za = 0, zb = 0;
  int32_t pairs[3] = {0, 0, 0};  // (Ma_i, Mb_i) as the two int16 halves, i = 0, 1, 2
  int32_t bias = 0;              // 2^(S-23) + z_y 2^(S-22)
  int32_t shift = 0;             // S - 22
  int32_t lo = 0, hi = 255;
  // The VNNI form (AddRowLimbsVnni) takes the raw bytes (a, b) and folds
  // the zero points into constants: with -(z_a Ma + z_b Mb) = Q2 2^22 +
  // Q1 2^11 + Q0 (0 <= Q0, Q1 < 2^11), P0 starts from q01 = Q0 + Q1 2^11
  // (floor((P1 + Q1 + floor(P0 / 2^11)) / 2^11) takes Q1 2^11 in P0 as well)
  // and Q2 joins the bias: bias_q = bias + Q2.
  int32_t q01 = 0, bias_q = 0;
};

// One output of the limb form in scalar arithmetic (the vector rows' tails).
template <bool kSignedA, bool kSignedB>
inline uint8_t AddLimbsScalar(uint8_t a, uint8_t b, const AddLimbParams& p) {
  const int32_t av = (kSignedA ? int32_t{static_cast<int8_t>(a)} : int32_t{a}) - p.za;
  const int32_t bv = (kSignedB ? int32_t{static_cast<int8_t>(b)} : int32_t{b}) - p.zb;
  int32_t part[3];
  for (int k = 0; k < 3; ++k) part[k] = av * (p.pairs[k] & 0xffff) + bv * (p.pairs[k] >> 16);
  const int32_t t = part[2] + ((part[1] + (part[0] >> 11)) >> 11);
  return static_cast<uint8_t>(std::min(std::max((t + p.bias) >> p.shift, p.lo), p.hi));
}
bool MakeAddLimbParams(const AddParams& p, AddLimbParams* l) {
  if (p.shift < 23 || p.shift > 40 || p.ma < 0 || p.mb < 0 || p.ma >= (int64_t{1} << 31) ||
      p.mb >= (int64_t{1} << 31) || p.zy < -256 || p.zy > 255)
    return false;
  l->za = static_cast<int16_t>(p.za);
  l->zb = static_cast<int16_t>(p.zb);
  for (int i = 0; i < 3; ++i) {
    const int64_t a = (p.ma >> (11 * i)) & 0x7ff, b = (p.mb >> (11 * i)) & 0x7ff;
    l->pairs[i] = static_cast<int32_t>(a | (b << 16));
  }
  l->bias = static_cast<int32_t>((int64_t{1} << (p.shift - 23)) +
                                 static_cast<int64_t>(p.zy) * (int64_t{1} << (p.shift - 22)));
  l->shift = static_cast<int32_t>(p.shift - 22);
  l->lo = static_cast<int32_t>(p.lo);
  l->hi = static_cast<int32_t>(p.hi);
  // |z| <= 255, M < 2^31: |Q| < 2^40, Q2 = Q >> 22 (floor) within +-2^18.
  const int64_t q = -(p.za * p.ma + p.zb * p.mb);
  const int64_t q0 = q & 0x7ff, q1 = (q >> 11) & 0x7ff, q2 = q >> 22;
  l->q01 = static_cast<int32_t>(q0 + (q1 << 11));
  l->bias_q = static_cast<int32_t>(l->bias + q2);
  return true;
}
// GCC 12 flags the _mm512_undefined_*() inside its own intrinsics as
// maybe-uninitialized (a false positive of the header).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// 16 outputs (int32, clamped) from 16 (a', b') word pairs.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"), always_inline)) inline __m512i
AddLimbsHalf(__m512i pairs, __m512i m0, __m512i m1, __m512i m2, __m512i bias, __m128i shift,
             __m512i lo, __m512i hi) {
  const __m512i p0 = _mm512_madd_epi16(pairs, m0), p1 = _mm512_madd_epi16(pairs, m1),
                p2 = _mm512_madd_epi16(pairs, m2);
  __m512i t = _mm512_srai_epi32(_mm512_add_epi32(p1, _mm512_srai_epi32(p0, 11)), 11);
  t = _mm512_sra_epi32(_mm512_add_epi32(_mm512_add_epi32(t, p2), bias), shift);
  return _mm512_min_epi32(_mm512_max_epi32(t, lo), hi);
}
template <bool kSignedA, bool kSignedB>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void AddRowLimbsAvx512(
    const uint8_t* __restrict a, const uint8_t* __restrict b, uint8_t* __restrict y, int64_t n,
    const AddLimbParams& p) {
  const __m512i za = _mm512_set1_epi16(p.za), zb = _mm512_set1_epi16(p.zb);
  const __m512i m0 = _mm512_set1_epi32(p.pairs[0]), m1 = _mm512_set1_epi32(p.pairs[1]),
                m2 = _mm512_set1_epi32(p.pairs[2]);
  const __m512i bias = _mm512_set1_epi32(p.bias), lo = _mm512_set1_epi32(p.lo),
                hi = _mm512_set1_epi32(p.hi);
  const __m128i shift = _mm_cvtsi32_si128(p.shift);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m512i wa =
        _mm512_sub_epi16(kSignedA ? _mm512_cvtepi8_epi16(va) : _mm512_cvtepu8_epi16(va), za);
    const __m512i wb =
        _mm512_sub_epi16(kSignedB ? _mm512_cvtepi8_epi16(vb) : _mm512_cvtepu8_epi16(vb), zb);
    // unpacklo/hi interleave within 128-bit lanes (elements 8k..8k+3 and
    // 8k+4..8k+7 of lane k) and packs undoes exactly that order.
    const __m512i lo_half =
        AddLimbsHalf(_mm512_unpacklo_epi16(wa, wb), m0, m1, m2, bias, shift, lo, hi);
    const __m512i hi_half =
        AddLimbsHalf(_mm512_unpackhi_epi16(wa, wb), m0, m1, m2, bias, shift, lo, hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm512_cvtepi16_epi8(_mm512_packs_epi32(lo_half, hi_half)));
  }
  for (; i < n; ++i) y[i] = AddLimbsScalar<kSignedA, kSignedB>(a[i], b[i], p);  // the tail
}

// The limb form on AVX-512 VNNI: vpdpwssd fuses each limb's multiply-add
// with the add of the level below, the zero points are folded into q01 and
// bias_q (no subtraction of z_a, z_b), and the clamp runs once per 32 outputs
// on the int16 vector after vpackssdw's saturation (exact: [lo, hi] lies
// inside int16). 7 ops per 16 outputs + 1.5 per 32 for the clamp, against
// 11 + 1 + 2: ResNet-50's QAdds, 6% of the 50% model at 1 thread.
// 16 unclamped int32 outputs from 16 raw (a, b) word pairs.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"),
               always_inline)) inline __m512i
AddLimbsHalfVnni(__m512i pairs, __m512i q01, __m512i m0, __m512i m1, __m512i m2, __m512i bias,
                 __m128i shift) {
  __m512i t = _mm512_srai_epi32(_mm512_dpwssd_epi32(q01, pairs, m0), 11);
  t = _mm512_srai_epi32(_mm512_dpwssd_epi32(t, pairs, m1), 11);
  return _mm512_sra_epi32(_mm512_add_epi32(_mm512_dpwssd_epi32(t, pairs, m2), bias), shift);
}
template <bool kSignedA, bool kSignedB>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))) void AddRowLimbsVnni(
    const uint8_t* __restrict a, const uint8_t* __restrict b, uint8_t* __restrict y, int64_t n,
    const AddLimbParams& p) {
  const __m512i m0 = _mm512_set1_epi32(p.pairs[0]), m1 = _mm512_set1_epi32(p.pairs[1]),
                m2 = _mm512_set1_epi32(p.pairs[2]);
  const __m512i q01 = _mm512_set1_epi32(p.q01), bias = _mm512_set1_epi32(p.bias_q);
  const __m512i lo = _mm512_set1_epi16(static_cast<int16_t>(p.lo)),
                hi = _mm512_set1_epi16(static_cast<int16_t>(p.hi));
  const __m128i shift = _mm_cvtsi32_si128(p.shift);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m512i wa = kSignedA ? _mm512_cvtepi8_epi16(va) : _mm512_cvtepu8_epi16(va);
    const __m512i wb = kSignedB ? _mm512_cvtepi8_epi16(vb) : _mm512_cvtepu8_epi16(vb);
    // unpacklo/hi interleave within 128-bit lanes and packs undoes exactly that order.
    const __m512i w16 = _mm512_packs_epi32(
        AddLimbsHalfVnni(_mm512_unpacklo_epi16(wa, wb), q01, m0, m1, m2, bias, shift),
        AddLimbsHalfVnni(_mm512_unpackhi_epi16(wa, wb), q01, m0, m1, m2, bias, shift));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm512_cvtepi16_epi8(_mm512_min_epi16(_mm512_max_epi16(w16, lo), hi)));
  }
  for (; i < n; ++i) y[i] = AddLimbsScalar<kSignedA, kSignedB>(a[i], b[i], p);  // the tail
}

#pragma GCC diagnostic pop

class FastQAddOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    if (in.size() != 2 || args.outputs.size() != 1 || !in[0].present || !in[1].present ||
        !StaticShape(in[0]) || !StaticShape(in[1]) || !StaticShape(args.outputs[0]) ||
        in[0].shape != in[1].shape || in[0].shape != args.outputs[0].shape ||
        !Is8Bit(in[0].dtype) || !Is8Bit(in[1].dtype) || !Is8Bit(args.outputs[0].dtype))
      return std::unique_ptr<Operator>();
    Result<QAddQuant> rq = ResolveQAddQuant(node);
    if (!rq.ok() || rq->a.dtype != in[0].dtype || rq->b.dtype != in[1].dtype ||
        rq->y.dtype != args.outputs[0].dtype)
      return std::unique_ptr<Operator>();
    auto op = std::unique_ptr<FastQAddOp>(new FastQAddOp(node));
    op->shape_ = in[0].shape;
    op->a_type_ = in[0].dtype;
    op->b_type_ = in[1].dtype;
    op->y_type_ = args.outputs[0].dtype;
    const QAddQuant& q = *rq;
    op->vector_ = kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512;
    op->p_.za = q.a.zero_point;
    op->p_.zb = q.b.zero_point;
    op->p_.ma = q.r.multiplier_a;
    op->p_.mb = q.r.multiplier_b;
    op->p_.shift = q.r.shift;
    op->p_.round = q.r.shift > 0 ? int64_t{1} << (q.r.shift - 1) : 0;  // S = 0: no rounding
    op->p_.zy = q.y.zero_point;
    op->p_.lo = q.lo;
    op->p_.hi = q.hi;
    op->limbs_ = op->vector_ && MakeAddLimbParams(op->p_, &op->limb_);
    op->vnni_ = op->limbs_ && kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512Vnni;
    op->table_.resize(256 * 256);
    for (int ba = 0; ba < 256; ++ba)
      for (int bb = 0; bb < 256; ++bb)
        op->table_[static_cast<size_t>(ba * 256 + bb)] =
            ValueByte(RequantizeAdd(ByteValue(q.a.dtype, static_cast<uint8_t>(ba)) - q.a.zero_point,
                                    ByteValue(q.b.dtype, static_cast<uint8_t>(bb)) - q.b.zero_point,
                                    q.r, q.y.zero_point, q.lo, q.hi));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckTensor(node_, InputOrNull(inputs, 0), a_type_, shape_, "input A"));
    WBS_RETURN_IF_ERROR(CheckTensor(node_, InputOrNull(inputs, 1), b_type_, shape_, "input B"));
    WBS_RETURN_IF_ERROR(
        CheckTensor(node_, outputs.empty() ? nullptr : outputs[0], y_type_, shape_, "output C"));
    // Elementwise: any layout, as long as A, B and C share it.
    const uint8_t* a =
        InLayout(static_cast<const uint8_t*>(inputs[0]->raw()), shape_, a_layout_, y_layout_, 0);
    const uint8_t* b =
        InLayout(static_cast<const uint8_t*>(inputs[1]->raw()), shape_, b_layout_, y_layout_, 1);
    uint8_t* y = static_cast<uint8_t*>(outputs[0]->raw());
    const uint8_t* t = table_.data();
    const int64_t n = outputs[0]->numel();
    if (limbs_) {
      const bool as = a_type_ == DType::kI8, bs = b_type_ == DType::kI8;
      auto row = vnni_ ? AddRowLimbsVnni<false, false> : AddRowLimbsAvx512<false, false>;
      if (as && bs)
        row = vnni_ ? AddRowLimbsVnni<true, true> : AddRowLimbsAvx512<true, true>;
      else if (as)
        row = vnni_ ? AddRowLimbsVnni<true, false> : AddRowLimbsAvx512<true, false>;
      else if (bs)
        row = vnni_ ? AddRowLimbsVnni<false, true> : AddRowLimbsAvx512<false, true>;
      const AddLimbParams& p = limb_;
      ParallelRange(n, Threads(ctx, n), [a, b, y, &p, row](int64_t begin, int64_t end) {
        row(a + begin, b + begin, y + begin, end - begin, p);
      });
      return Status::Ok();
    }
    if (vector_) {
      const AddParams p = p_;
      auto row = AddRowAvx512<uint8_t, uint8_t>;
      const bool as = a_type_ == DType::kI8, bs = b_type_ == DType::kI8;
      if (as && bs)
        row = AddRowAvx512<int8_t, int8_t>;
      else if (as)
        row = AddRowAvx512<int8_t, uint8_t>;
      else if (bs)
        row = AddRowAvx512<uint8_t, int8_t>;
      ParallelRange(n, Threads(ctx, n), [a, b, y, p, row](int64_t begin, int64_t end) {
        row(a + begin, b + begin, y + begin, end - begin, p);
      });
      return Status::Ok();
    }
    ParallelRange(n, Threads(ctx, n), [a, b, y, t](int64_t begin, int64_t end) {
      LookupPairs(a + begin, b + begin, t, y + begin, end - begin);
    });
    return Status::Ok();
  }

  std::string impl_name() const override { return vector_ ? "avx512" : "lut"; }

  bool AcceptsInputLayout(size_t input, ActivationLayout layout) const override {
    return layout == ActivationLayout::kPlain ||
           (input < 2 && layout == ActivationLayout::kQuad4 && LayoutFits(layout, shape_));
  }
  // kQuad4 when an input is: one reorder at most, at the region's edge.
  std::vector<ActivationLayout> ProposeOutputLayouts(
      const std::vector<ActivationLayout>& inputs) override {
    a_layout_ = inputs.size() > 0 ? inputs[0] : ActivationLayout::kPlain;
    b_layout_ = inputs.size() > 1 ? inputs[1] : ActivationLayout::kPlain;
    if (a_layout_ == ActivationLayout::kQuad4 || b_layout_ == ActivationLayout::kQuad4)
      return {ActivationLayout::kQuad4};
    return {};
  }
  Status SetOutputLayouts(const std::vector<ActivationLayout>& outputs) override {
    y_layout_ = outputs.empty() ? ActivationLayout::kPlain : outputs[0];
    if (y_layout_ != ActivationLayout::kPlain && y_layout_ != ActivationLayout::kQuad4)
      return Internal("{}: QAdd writes plain or quad4, {} requested", node_.Describe(),
                      ActivationLayoutName(y_layout_));
    return Status::Ok();
  }

 private:
  explicit FastQAddOp(const ir::Node& node) : node_(node) {}
  ir::Node node_;
  ActivationLayout a_layout_ = ActivationLayout::kPlain, b_layout_ = ActivationLayout::kPlain,
                   y_layout_ = ActivationLayout::kPlain;
  Shape shape_;
  DType a_type_ = DType::kU8, b_type_ = DType::kU8, y_type_ = DType::kU8;
  std::vector<uint8_t> table_;  // [a byte][b byte] -> y byte
  bool vector_ = false;         // AddRowAvx512 instead of the table
  bool vnni_ = false;           // the limb form by vpdpwssd (AddRowLimbsVnni)
  AddParams p_;
  bool limbs_ = false;  // AddRowLimbsAvx512 (vector_ and S in its range)
  AddLimbParams limb_;
};

class FastQConcatOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    if (args.outputs.size() != 1 || !StaticShape(args.outputs[0]) ||
        !Is8Bit(args.outputs[0].dtype) || args.inputs.empty())
      return std::unique_ptr<Operator>();
    const Shape& ys = args.outputs[0].shape;
    const int rank = static_cast<int>(ys.size());
    Result<int> axis = ir::NormalizeAxis(node.GetInt("axis", 0), rank, node);
    if (!axis.ok()) return std::unique_ptr<Operator>();
    Result<QConcatQuant> rq = ResolveQConcatQuant(node);
    if (!rq.ok() || rq->y.dtype != args.outputs[0].dtype) return std::unique_ptr<Operator>();
    auto op = std::unique_ptr<FastQConcatOp>(new FastQConcatOp(node));
    op->y_shape_ = ys;
    op->y_type_ = args.outputs[0].dtype;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < *axis; ++d) outer *= ys[static_cast<size_t>(d)];
    for (int d = *axis + 1; d < rank; ++d) inner *= ys[static_cast<size_t>(d)];
    op->outer_ = outer;
    op->y_row_ = ys[static_cast<size_t>(*axis)] * inner;
    for (size_t i = 0; i < args.inputs.size(); ++i) {
      const ir::ValueInfo& x = args.inputs[i];
      if (!x.present || !StaticShape(x) || x.dtype != rq->in[i].dtype ||
          static_cast<int>(x.shape.size()) != rank)
        return std::unique_ptr<Operator>();
      Input in;
      in.shape = x.shape;
      in.dtype = x.dtype;
      in.row = x.shape[static_cast<size_t>(*axis)] * inner;
      in.identity = true;
      const TensorQuant& q = rq->in[i];
      for (int v = 0; v < 256; ++v) {
        const int32_t r =
            Requantize(ByteValue(q.dtype, static_cast<uint8_t>(v)) - q.zero_point, rq->r[i],
                       rq->y.zero_point, TypeMin(rq->y.dtype), TypeMax(rq->y.dtype));
        in.table[static_cast<size_t>(v)] = ValueByte(r);
        in.identity = in.identity && ValueByte(r) == v;
      }
      op->in_.push_back(in);
    }
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    if (inputs.size() != in_.size())
      return InvalidArgument("{}: {} inputs, planned for {}", node_.Describe(), inputs.size(),
                             in_.size());
    for (size_t i = 0; i < in_.size(); ++i)
      WBS_RETURN_IF_ERROR(CheckTensor(node_, inputs[i], in_[i].dtype, in_[i].shape, "input"));
    WBS_RETURN_IF_ERROR(
        CheckTensor(node_, outputs.empty() ? nullptr : outputs[0], y_type_, y_shape_, "output"));
    uint8_t* y = static_cast<uint8_t*>(outputs[0]->raw());
    const int64_t n = outputs[0]->numel();
    // Work item: one (outer index, input) segment.
    const int64_t items = outer_ * static_cast<int64_t>(in_.size());
    std::vector<int64_t> offset(in_.size(), 0);
    for (size_t i = 1; i < in_.size(); ++i) offset[i] = offset[i - 1] + in_[i - 1].row;
    auto segment = [&](int64_t o, size_t i, int64_t begin, int64_t end) {
      const Input& in = in_[i];
      const uint8_t* x = static_cast<const uint8_t*>(inputs[i]->raw()) + o * in.row;
      uint8_t* d = y + o * y_row_ + offset[i];
      if (in.identity) {
        std::memcpy(d + begin, x + begin, static_cast<size_t>(end - begin));
      } else {
        for (int64_t k = begin; k < end; ++k) d[k] = in.table[x[k]];
      }
    };
    const int threads = Threads(ctx, n);
    if (items >= threads * 4 || threads == 1) {
      ParallelRange(items, threads, [&](int64_t b, int64_t e) {
        for (int64_t it = b; it < e; ++it) {
          const size_t i = static_cast<size_t>(it % static_cast<int64_t>(in_.size()));
          segment(it / static_cast<int64_t>(in_.size()), i, 0, in_[i].row);
        }
      });
    } else {
      // Few large segments (batch 1): split each one.
      for (int64_t it = 0; it < items; ++it) {
        const size_t i = static_cast<size_t>(it % static_cast<int64_t>(in_.size()));
        const int64_t o = it / static_cast<int64_t>(in_.size());
        ParallelRange(in_[i].row, Threads(ctx, in_[i].row),
                      [&](int64_t b, int64_t e) { segment(o, i, b, e); });
      }
    }
    return Status::Ok();
  }

  std::string impl_name() const override { return "lut"; }

 private:
  struct Input {
    Shape shape;
    DType dtype = DType::kU8;
    int64_t row = 0;  // elements per outer index
    bool identity = false;
    std::array<uint8_t, 256> table{};
  };
  explicit FastQConcatOp(const ir::Node& node) : node_(node) {}
  ir::Node node_;
  Shape y_shape_;
  DType y_type_ = DType::kU8;
  int64_t outer_ = 1, y_row_ = 0;
  std::vector<Input> in_;
};

enum class PoolKind { kMax, kAverage, kGlobalAverage };

// 2-D max pool of one plane, row-wise over the valid taps; a pixel holds L
// lanes (1: a plain channel plane, 4: a kQuad4 quad plane).
template <typename T, int L>
void MaxPoolPlane(const kref::PoolParams& p, const T* x, T* y) {
  const int64_t IH = p.in[1], IW = p.in[2], OH = p.out[1], OW = p.out[2];
  for (int64_t oh = 0; oh < OH; ++oh) {
    T* yr = y + oh * OW * L;
    std::fill(yr, yr + OW * L, std::numeric_limits<T>::lowest());
    for (int64_t kh = 0; kh < p.kernel[1]; ++kh) {
      const int64_t ih = oh * p.stride[1] - p.pad_begin[1] + kh * p.dilation[1];
      if (ih < 0 || ih >= IH) continue;
      const T* xr = x + ih * IW * L;
      for (int64_t kw = 0; kw < p.kernel[2]; ++kw) {
        const int64_t off = kw * p.dilation[2] - p.pad_begin[2];
        const kref::Range r = kref::ValidRange(OW, p.stride[2], off, IW);
        const int64_t s = p.stride[2];
        for (int64_t ow = r.begin; ow < r.end; ++ow)
          for (int l = 0; l < L; ++l)
            yr[ow * L + l] = std::max(yr[ow * L + l], xr[(ow * s + off) * L + l]);
      }
    }
  }
}

// The separable AVX-512 max pool of kQuad4 quad planes (the int8 chain's
// layout): per output row, the byte-wise max of its valid input rows into a
// row buffer whose pad columns hold the lowest T (never the max of a window
// with an in-range tap; a window with none yields the lowest T, as the
// reference), then per output the max of its kernel-width words of that
// buffer (stride 1: shifted loads; stride 2: even words of 32 by vpermt2d).
// ResNet-50's 3x3 stride-2 pool over 64 x 112 x 112 moved from ~0.45 ms
// (MaxPoolPlane<T, 4>: a strided 4-lane loop) to a few hundredths. The max of
// bytes is the same whatever the order, so the result is the reference's.
struct QuadMaxPoolGeometry {
  int64_t left = 0;   // pad words left of input column 0 in the row buffer
  int64_t words = 0;  // row buffer words read (pads included), before the slack
};

QuadMaxPoolGeometry QuadMaxPoolRow(const kref::PoolParams& p) {
  QuadMaxPoolGeometry g;
  g.left = p.pad_begin[2];
  g.words = std::max(p.in[2] + g.left,
                     (p.out[2] - 1) * p.stride[2] + (p.kernel[2] - 1) * p.dilation[2] + 1);
  return g;
}

// Row buffer words, with the slack the last vector's full loads read.
int64_t QuadMaxPoolBufferWords(const kref::PoolParams& p) {
  return QuadMaxPoolRow(p).words + 2 * 16 + 16;
}

// Whether MaxPoolQuadPlaneAvx512 takes `p`: nonnegative left pad, the
// stride 1 or 2 on columns (every ResNet / Inception max pool).
bool QuadMaxPoolFits(const kref::PoolParams& p) {
  return p.pad_begin[2] >= 0 && p.pad_begin[1] >= 0 && (p.stride[2] == 1 || p.stride[2] == 2);
}

template <typename T>
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i MaxBytes(
    __m512i a, __m512i b) {
  if constexpr (std::is_same_v<T, uint8_t>)
    return _mm512_max_epu8(a, b);
  else
    return _mm512_max_epi8(a, b);
}

// `rb`: QuadMaxPoolBufferWords(p) 32-bit words of scratch.
template <typename T>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void MaxPoolQuadPlaneAvx512(
    const kref::PoolParams& p, const T* x, T* y, uint32_t* rb) {
  const int64_t IH = p.in[1], IW = p.in[2], OH = p.out[1], OW = p.out[2];
  const int64_t KW = p.kernel[2], SW = p.stride[2], DW = p.dilation[2];
  const QuadMaxPoolGeometry g = QuadMaxPoolRow(p);
  const int64_t total = QuadMaxPoolBufferWords(p);
  // Four lowest-T bytes: u8 0, s8 -128.
  const uint32_t low_word = std::is_same_v<T, uint8_t> ? 0u : 0x80808080u;
  const __m512i low = _mm512_set1_epi32(static_cast<int>(low_word));
  std::fill(rb, rb + total, low_word);
  uint32_t* in = rb + g.left;  // input column 0
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const uint32_t* xw = reinterpret_cast<const uint32_t*>(x);
  uint32_t* yw = reinterpret_cast<uint32_t*>(y);
  for (int64_t oh = 0; oh < OH; ++oh) {
    // Vertical: the byte max of the valid input rows into in[0, IW).
    bool any = false;
    for (int64_t kh = 0; kh < p.kernel[1]; ++kh) {
      const int64_t ih = oh * p.stride[1] - p.pad_begin[1] + kh * p.dilation[1];
      if (ih < 0 || ih >= IH) continue;
      const uint32_t* xr = xw + ih * IW;
      int64_t i = 0;
      if (!any) {
        std::memcpy(in, xr, static_cast<size_t>(IW) * 4);
      } else {
        for (; i + 16 <= IW; i += 16)
          _mm512_storeu_si512(in + i,
                              MaxBytes<T>(_mm512_loadu_si512(in + i), _mm512_loadu_si512(xr + i)));
        if (i < IW) {
          const __mmask16 m = static_cast<__mmask16>((1u << (IW - i)) - 1);
          _mm512_mask_storeu_epi32(in + i, m,
                                   MaxBytes<T>(_mm512_maskz_loadu_epi32(m, in + i),
                                               _mm512_maskz_loadu_epi32(m, xr + i)));
        }
      }
      any = true;
    }
    uint32_t* yr = yw + oh * OW;
    if (!any) {  // no input row under the window: the lowest T
      std::fill(yr, yr + OW, low_word);
      continue;
    }
    // Horizontal: output ow takes the words ow * SW + kw * DW of rb.
    for (int64_t ow = 0; ow < OW; ow += 16) {
      __m512i acc = low;
      for (int64_t kw = 0; kw < KW; ++kw) {
        const uint32_t* src = rb + ow * SW + kw * DW;
        __m512i v;
        if (SW == 1) {
          v = _mm512_loadu_si512(src);
        } else {
          v = _mm512_permutex2var_epi32(_mm512_loadu_si512(src), even,
                                        _mm512_loadu_si512(src + 16));
        }
        acc = MaxBytes<T>(acc, v);
      }
      const int64_t n = std::min<int64_t>(16, OW - ow);
      const __mmask16 m = static_cast<__mmask16>(n == 16 ? 0xffffu : (1u << n) - 1);
      _mm512_mask_storeu_epi32(yr + ow, m, acc);
    }
  }
}

// QGlobalAveragePool of `quads` kQuad4 quad planes of `plane_size` pixels:
// the reference's sum and rounding per lane; y is [quads * 4] (a [N, C, 1,
// 1] output has the same bytes in both layouts).
template <typename T>
void GlobalAveragePoolQuads(int64_t quads, int64_t plane_size, const T* x, int32_t zp, T* y) {
  constexpr int32_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t q = 0; q < quads; ++q) {
    int64_t sum[4] = {0, 0, 0, 0};
    const T* xp = x + q * plane_size * 4;
    for (int64_t j = 0; j < plane_size; ++j)
      for (int l = 0; l < 4; ++l) sum[l] += static_cast<int32_t>(xp[j * 4 + l]) - zp;
    for (int l = 0; l < 4; ++l) {
      const int64_t v = plane_size == 0 ? zp : zp + RoundDivHalfUp(sum[l], plane_size);
      y[q * 4 + l] = static_cast<T>(std::clamp<int64_t>(v, lo, hi));
    }
  }
}

// 2-D average pool of one plane: the reference's sum, count and rounding.
template <typename T, int L>
void AveragePoolPlane(const kref::PoolParams& p, const T* x, int32_t zp, T* y,
                      std::vector<int32_t>& sum, std::vector<int32_t>& valid_w,
                      std::vector<int32_t>& counted_w) {
  const int64_t IH = p.in[1], IW = p.in[2], OH = p.out[1], OW = p.out[2];
  constexpr int32_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  // Per output column: the taps inside the input, and those inside the
  // declared padding (count_include_pad), as in kref::QAveragePool.
  valid_w.assign(static_cast<size_t>(OW), 0);
  counted_w.assign(static_cast<size_t>(OW), 0);
  for (int64_t ow = 0; ow < OW; ++ow)
    for (int64_t kw = 0; kw < p.kernel[2]; ++kw) {
      const int64_t iw = ow * p.stride[2] - p.pad_begin[2] + kw * p.dilation[2];
      valid_w[static_cast<size_t>(ow)] += iw >= 0 && iw < IW;
      counted_w[static_cast<size_t>(ow)] += iw >= -p.pad_begin[2] && iw < IW + p.pad_end[2];
    }
  sum.resize(static_cast<size_t>(OW * L));
  for (int64_t oh = 0; oh < OH; ++oh) {
    std::fill(sum.begin(), sum.end(), 0);
    int64_t valid_h = 0, counted_h = 0;
    for (int64_t kh = 0; kh < p.kernel[1]; ++kh) {
      const int64_t ih = oh * p.stride[1] - p.pad_begin[1] + kh * p.dilation[1];
      counted_h += ih >= -p.pad_begin[1] && ih < IH + p.pad_end[1];
      if (ih < 0 || ih >= IH) continue;
      ++valid_h;
      const T* xr = x + ih * IW * L;
      for (int64_t kw = 0; kw < p.kernel[2]; ++kw) {
        const int64_t off = kw * p.dilation[2] - p.pad_begin[2];
        const kref::Range r = kref::ValidRange(OW, p.stride[2], off, IW);
        const int64_t s = p.stride[2];
        for (int64_t ow = r.begin; ow < r.end; ++ow)
          for (int l = 0; l < L; ++l)
            sum[static_cast<size_t>(ow * L + l)] += xr[(ow * s + off) * L + l];
      }
    }
    T* yr = y + oh * OW * L;
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t valid = valid_h * valid_w[static_cast<size_t>(ow)];
      const int64_t count =
          p.count_include_pad ? counted_h * counted_w[static_cast<size_t>(ow)] : valid;
      for (int l = 0; l < L; ++l) {
        // Sum of (x - zp) over the valid taps; padded taps add 0.
        const int64_t s = static_cast<int64_t>(sum[static_cast<size_t>(ow * L + l)]) - zp * valid;
        const int64_t v = count == 0 ? zp : zp + RoundDivHalfUp(s, count);
        yr[ow * L + l] = static_cast<T>(std::clamp<int64_t>(v, lo, hi));
      }
    }
  }
}

class FastQPoolOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, PoolKind kind) {
    const ir::Node& node = *args.node;
    if (args.inputs.empty() || !args.inputs[0].present || !StaticShape(args.inputs[0]) ||
        !Is8Bit(args.inputs[0].dtype) || args.outputs.size() != 1 ||
        !StaticShape(args.outputs[0]) || args.outputs[0].dtype != args.inputs[0].dtype)
      return std::unique_ptr<Operator>();
    const Shape& xs = args.inputs[0].shape;
    Result<TensorQuant> xq = PerTensorQuant(node, node.input(0), "input X");
    if (!xq.ok() || xq->dtype != args.inputs[0].dtype || xs.size() < 3)
      return std::unique_ptr<Operator>();
    auto op = std::unique_ptr<FastQPoolOp>(new FastQPoolOp(node, kind));
    op->x_shape_ = xs;
    op->y_shape_ = args.outputs[0].shape;
    op->dtype_ = args.inputs[0].dtype;
    op->zp_ = xq->zero_point;
    if (kind != PoolKind::kGlobalAverage) {
      if (xs.size() != 4 || node.outputs.size() > 1) return std::unique_ptr<Operator>();
      Result<kref::PoolParams> p = ResolvePoolParams(node, xs);
      if (!p.ok() || p->out[1] != op->y_shape_[2] || p->out[2] != op->y_shape_[3])
        return std::unique_ptr<Operator>();
      op->p_ = *p;
      op->vector_ = kind == PoolKind::kMax &&
                    kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512 &&
                    QuadMaxPoolFits(op->p_);
    }
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckTensor(node_, InputOrNull(inputs, 0), dtype_, x_shape_, "input X"));
    WBS_RETURN_IF_ERROR(
        CheckTensor(node_, outputs.empty() ? nullptr : outputs[0], dtype_, y_shape_, "output Y"));
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    // kQuad4: planes are quad planes of 4 lanes per pixel. A 2-D pool writes
    // its input's layout (into scratch first when Y's differs); a global one
    // writes [N, C, 1, 1], the same bytes in both layouts.
    const bool quad = x_layout_ == ActivationLayout::kQuad4;
    const int lanes = quad ? 4 : 1;
    const int64_t planes = x_shape_[0] * x_shape_[1] / lanes;
    const int64_t in_plane = x.numel() / std::max<int64_t>(planes, 1);
    const int64_t out_plane = y.numel() / std::max<int64_t>(planes, 1);
    const int threads = planes < 2 ? 1 : Threads(ctx, x.numel());
    const bool reorder_y = kind_ != PoolKind::kGlobalAverage && x_layout_ != y_layout_;
    const bool quad_vector = kind_ == PoolKind::kMax && quad && vector_;
    uint8_t* y_bytes =
        reorder_y ? Scratch(static_cast<size_t>(y.numel()), 0) : static_cast<uint8_t*>(y.raw());
    auto run = [&]<typename T>() {
      const T* xd = x.data<T>();
      T* yd = reinterpret_cast<T*>(y_bytes);
      ParallelRange(planes, threads, [&](int64_t b, int64_t e) {
        if (kind_ == PoolKind::kGlobalAverage) {
          if (quad)
            GlobalAveragePoolQuads<T>(e - b, in_plane / 4, xd + b * in_plane, zp_, yd + b * 4);
          else
            kref::QGlobalAveragePool<T>(e - b, in_plane, xd + b * in_plane, zp_, yd + b);
          return;
        }
        std::vector<int32_t> sum, valid_w, counted_w;
        std::vector<uint32_t> row;
        if (quad_vector) row.resize(static_cast<size_t>(QuadMaxPoolBufferWords(p_)));
        for (int64_t pl = b; pl < e; ++pl) {
          const T* xp = xd + pl * in_plane;
          T* yp = yd + pl * out_plane;
          if (quad_vector)
            MaxPoolQuadPlaneAvx512<T>(p_, xp, yp, row.data());
          else if (kind_ == PoolKind::kMax && quad)
            MaxPoolPlane<T, 4>(p_, xp, yp);
          else if (kind_ == PoolKind::kMax)
            MaxPoolPlane<T, 1>(p_, xp, yp);
          else if (quad)
            AveragePoolPlane<T, 4>(p_, xp, zp_, yp, sum, valid_w, counted_w);
          else
            AveragePoolPlane<T, 1>(p_, xp, zp_, yp, sum, valid_w, counted_w);
        }
      });
    };
    if (dtype_ == DType::kU8)
      run.template operator()<uint8_t>();
    else
      run.template operator()<int8_t>();
    if (reorder_y) {
      const int64_t n = y_shape_[0], c = y_shape_[1],
                    plane = y.numel() / std::max<int64_t>(1, n * c);
      uint8_t* dst = static_cast<uint8_t*>(y.raw());
      if (quad)
        Quad4ToPlain(y_bytes, dst, n, c, plane);
      else
        PlainToQuad4(y_bytes, dst, n, c, plane);
    }
    return Status::Ok();
  }

  std::string impl_name() const override {
    return kind_ == PoolKind::kMax && x_layout_ == ActivationLayout::kQuad4 && vector_
               ? "avx512_quad"
               : "rows";
  }

  bool AcceptsInputLayout(size_t input, ActivationLayout layout) const override {
    return layout == ActivationLayout::kPlain ||
           (input == 0 && layout == ActivationLayout::kQuad4 && LayoutFits(layout, x_shape_));
  }
  // A 2-D pool keeps a kQuad4 input's layout; a global one writes plain.
  std::vector<ActivationLayout> ProposeOutputLayouts(
      const std::vector<ActivationLayout>& inputs) override {
    x_layout_ = inputs.empty() ? ActivationLayout::kPlain : inputs[0];
    if (kind_ != PoolKind::kGlobalAverage && x_layout_ == ActivationLayout::kQuad4)
      return {x_layout_};
    return {};
  }
  Status SetOutputLayouts(const std::vector<ActivationLayout>& outputs) override {
    y_layout_ = outputs.empty() ? ActivationLayout::kPlain : outputs[0];
    if (y_layout_ != ActivationLayout::kPlain &&
        (y_layout_ != ActivationLayout::kQuad4 || kind_ == PoolKind::kGlobalAverage))
      return Internal("{}: {} requested, the fast int8 pool writes {}", node_.Describe(),
                      ActivationLayoutName(y_layout_),
                      kind_ == PoolKind::kGlobalAverage ? "plain" : "plain or quad4");
    return Status::Ok();
  }

 private:
  FastQPoolOp(const ir::Node& node, PoolKind kind) : node_(node), kind_(kind) {}
  ir::Node node_;
  PoolKind kind_;
  ActivationLayout x_layout_ = ActivationLayout::kPlain, y_layout_ = ActivationLayout::kPlain;
  Shape x_shape_, y_shape_;
  DType dtype_ = DType::kU8;
  int32_t zp_ = 0;
  kref::PoolParams p_;
  bool vector_ = false;  // a kQuad4 max pool runs MaxPoolQuadPlaneAvx512
};

// QGemm with an f32 output (the dequantized logits; the int8 kernels only
// write 8-bit): acc[i, j] = bias[j] + sum_k w[j, k] * (x[i, k] - z_x) with
// int16 operands (|x - z_x| <= 255, |w| <= 127: every product fits, and the
// int32 sum is exact, so the order is free and the loop vectorizes to
// multiply-add pairs), then y = (f32)acc * dequant_scale[j] as the reference.
// (GCC 12's maybe-uninitialized false positive inside the reduction
// intrinsic's header, as around the QAdd limb kernel.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// acc[j] = sum_t w[j * kp + t] * x[t] for j in [j0, j1): u8 x s8 -> s32
// by vpdpbusd, kp a multiple of 64 (w zero-padded). Exact: |acc| <= K * 255
// * 128 fits int32 for any K < 65793 (Create checks).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void DotRowsVnni(
    const uint8_t* __restrict x, const int8_t* __restrict w, int64_t kp, int64_t j0, int64_t j1,
    int32_t* __restrict acc) {
  for (int64_t j = j0; j < j1; ++j) {
    const int8_t* wr = w + j * kp;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;
    int64_t t = 0;
    for (; t + 128 <= kp; t += 128) {
      a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(x + t), _mm512_loadu_si512(wr + t));
      a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(x + t + 64), _mm512_loadu_si512(wr + t + 64));
    }
    if (t < kp) a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(x + t), _mm512_loadu_si512(wr + t));
    acc[j] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
  }
}
#pragma GCC diagnostic pop

class FastQGemmF32Op final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    const bool has_bias = in.size() > 2 && in[2].present;
    if (in.size() < 2 || !in[0].present || !StaticShape(in[0]) || in[0].shape.size() != 2 ||
        !Is8Bit(in[0].dtype) || in[1].value == nullptr || in[1].value->dtype() != DType::kI8 ||
        in[1].value->rank() != 2 || in[1].value->dim(1) != in[0].shape[1] ||
        (has_bias && (in[2].value == nullptr || in[2].value->dtype() != DType::kI32 ||
                      in[2].value->numel() != in[1].value->dim(0))) ||
        args.outputs.size() != 1 || args.outputs[0].dtype != DType::kF32)
      return std::unique_ptr<Operator>();
    const Tensor& w = *in[1].value;
    Result<QLinearQuant> rq = ResolveQLinearQuant(node, w.dim(0));
    if (!rq.ok() || !rq->float_output || rq->x.dtype != in[0].dtype)
      return std::unique_ptr<Operator>();
    auto op = std::unique_ptr<FastQGemmF32Op>(new FastQGemmF32Op(node));
    op->x_shape_ = in[0].shape;
    op->x_dtype_ = in[0].dtype;
    op->n_ = w.dim(0);
    op->k_ = w.dim(1);
    op->zx_ = rq->x.zero_point;
    op->w16_.assign(w.data<int8_t>(), w.data<int8_t>() + w.numel());
    op->bias_.assign(static_cast<size_t>(op->n_), 0);
    if (has_bias) std::copy_n(in[2].value->data<int32_t>(), op->n_, op->bias_.begin());
    op->scale_ = rq->dequant_scale;
    // VNNI: s8 weights padded to kp_ bytes per row, the input as u8 (s8
    // flipped: x + 128, z_x + 128) and the zero point folded out:
    // sum w (x - z_x) = sum w x_u - z_u sum w, all in int32 mod 2^32 (the
    // true sum fits), so acc is the int16 path's bit for bit. The logits
    // layer (2048 -> 1000) reads half the weight bytes (2 MB, not 4) with a
    // quarter of the instructions.
    if (kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512Vnni && op->k_ < 65536) {
      op->kp_ = (op->k_ + 63) / 64 * 64;
      op->w8_.assign(static_cast<size_t>(op->n_ * op->kp_), 0);
      op->wsum_.assign(static_cast<size_t>(op->n_), 0);
      const int8_t* wd = w.data<int8_t>();
      for (int64_t j = 0; j < op->n_; ++j)
        for (int64_t t = 0; t < op->k_; ++t) {
          op->w8_[static_cast<size_t>(j * op->kp_ + t)] = wd[j * op->k_ + t];
          op->wsum_[static_cast<size_t>(j)] += wd[j * op->k_ + t];
        }
      op->zu_ = op->zx_ + (op->x_dtype_ == DType::kI8 ? 128 : 0);
      op->w16_.clear();
    }
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckTensor(node_, InputOrNull(inputs, 0), x_dtype_, x_shape_, "input X"));
    const Shape ys = {x_shape_[0], n_};
    WBS_RETURN_IF_ERROR(
        CheckTensor(node_, outputs.empty() ? nullptr : outputs[0], DType::kF32, ys, "output Y"));
    const int64_t m = x_shape_[0];
    if (kp_ > 0) return RunVnni(*inputs[0], outputs[0]->data<float>(), ctx);
    std::vector<int16_t> xs(static_cast<size_t>(m * k_));
    const uint8_t* xb = static_cast<const uint8_t*>(inputs[0]->raw());
    for (int64_t i = 0; i < m * k_; ++i)
      xs[static_cast<size_t>(i)] = static_cast<int16_t>(ByteValue(x_dtype_, xb[i]) - zx_);
    float* y = outputs[0]->data<float>();
    const int64_t k = k_, n = n_;
    const int16_t* wd = w16_.data();
    ParallelRange(m * n, Threads(ctx, m * n * k), [&](int64_t b, int64_t e) {
      for (int64_t ij = b; ij < e; ++ij) {
        const int64_t i = ij / n, j = ij % n;
        const int16_t* xr = xs.data() + i * k;
        const int16_t* wr = wd + j * k;
        int32_t acc = 0;
        for (int64_t t = 0; t < k; ++t) acc += static_cast<int32_t>(xr[t]) * wr[t];
        acc = static_cast<int32_t>(static_cast<uint32_t>(acc) +
                                   static_cast<uint32_t>(bias_[static_cast<size_t>(j)]));
        y[ij] = static_cast<float>(acc) * scale_[static_cast<size_t>(j)];
      }
    });
    return Status::Ok();
  }

  std::string impl_name() const override { return kp_ > 0 ? "vnni_dot" : "int16_dot"; }

 private:
  explicit FastQGemmF32Op(const ir::Node& node) : node_(node) {}

  Status RunVnni(const Tensor& x, float* y, const ExecContext& ctx) {
    const int64_t m = x_shape_[0], k = k_, n = n_, kp = kp_;
    std::vector<uint8_t> xu(static_cast<size_t>(m * kp), 0);
    const uint8_t* xb = static_cast<const uint8_t*>(x.raw());
    const uint8_t flip = x_dtype_ == DType::kI8 ? 0x80 : 0;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t t = 0; t < k; ++t)
        xu[static_cast<size_t>(i * kp + t)] = static_cast<uint8_t>(xb[i * k + t] ^ flip);
    std::vector<int32_t> acc(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i) {
      int32_t* ai = acc.data() + i * n;
      ParallelRange(n, Threads(ctx, n * k), [&](int64_t b, int64_t e) {
        DotRowsVnni(xu.data() + i * kp, w8_.data(), kp, b, e, ai);
      });
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const size_t jj = static_cast<size_t>(j);
        const uint32_t a = static_cast<uint32_t>(acc[static_cast<size_t>(i * n + j)]) -
                           static_cast<uint32_t>(zu_) * static_cast<uint32_t>(wsum_[jj]) +
                           static_cast<uint32_t>(bias_[jj]);
        y[i * n + j] = static_cast<float>(static_cast<int32_t>(a)) * scale_[jj];
      }
    return Status::Ok();
  }

  ir::Node node_;
  Shape x_shape_;
  DType x_dtype_ = DType::kU8;
  int64_t n_ = 0, k_ = 0;
  int32_t zx_ = 0;
  std::vector<int16_t> w16_;
  std::vector<int32_t> bias_;
  std::vector<float> scale_;
  // The VNNI path (kp_ > 0): rows of kp_ bytes, per-row weight sums, the
  // unsigned input's zero point.
  int64_t kp_ = 0;
  std::vector<int8_t> w8_;
  std::vector<int32_t> wsum_;
  int32_t zu_ = 0;
};

// QuantizeLinear, per tensor, f32 -> 8 bit, the reference's arithmetic:
// q = clamp(nearbyint(x / s) + z, lo, hi) in f32 (NaN -> z); the AVX-512
// clone does the same operations 16 lanes at a time (division, round to
// nearest even, max/min, exact conversion of the integral result).
template <typename T>
void QuantizeRowBase(const float* __restrict x, float s, float z, float lo, float hi,
                     T* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] / s);
    if (std::isnan(v)) v = 0;
    y[i] = static_cast<T>(std::clamp(v + z, lo, hi));
  }
}
// GCC 12 flags the _mm512_undefined_ps() inside its own intrinsics as
// maybe-uninitialized (a false positive of the header).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <typename T>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void QuantizeRowAvx512(
    const float* __restrict x, float s, float z, float lo, float hi, T* __restrict y, int64_t n) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z), vlo = _mm512_set1_ps(lo),
               vhi = _mm512_set1_ps(hi);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), vs),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);  // NaN -> 0
    v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, vz), vlo), vhi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
  QuantizeRowBase<T>(x + i, s, z, lo, hi, y + i, n - i);
}

#pragma GCC diagnostic pop

class FastQuantizeLinearOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const auto& in = args.inputs;
    if (in.size() < 2 || !in[0].present || in[0].dtype != DType::kF32 || !StaticShape(in[0]) ||
        in[1].value == nullptr || in[1].value->numel() != 1 ||
        in[1].value->dtype() != DType::kF32 || args.outputs.size() != 1 ||
        !Is8Bit(args.outputs[0].dtype))
      return std::unique_ptr<Operator>();
    const bool has_zp = in.size() > 2 && in[2].present;
    if (has_zp && (in[2].value == nullptr || in[2].value->numel() != 1 ||
                   in[2].value->dtype() != args.outputs[0].dtype))
      return std::unique_ptr<Operator>();
    auto op = std::unique_ptr<FastQuantizeLinearOp>(new FastQuantizeLinearOp(*args.node));
    op->shape_ = in[0].shape;
    op->y_type_ = args.outputs[0].dtype;
    op->scale_ = in[1].value->data<float>()[0];
    op->zp_ = has_zp ? static_cast<float>(in[2].value->ToVector<int32_t>()[0]) : 0.f;
    op->vector_ = kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512;
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckTensor(node_, InputOrNull(inputs, 0), DType::kF32, shape_, "input x"));
    WBS_RETURN_IF_ERROR(
        CheckTensor(node_, outputs.empty() ? nullptr : outputs[0], y_type_, shape_, "output y"));
    const float* x = inputs[0]->data<float>();
    const int64_t n = inputs[0]->numel();
    const float lo = static_cast<float>(TypeMin(y_type_)),
                hi = static_cast<float>(TypeMax(y_type_));
    auto run = [&]<typename T>() {
      T* y = outputs[0]->data<T>();
      const float s = scale_, z = zp_;
      const bool vec = vector_;
      ParallelRange(n, Threads(ctx, n), [=](int64_t b, int64_t e) {
        if (vec)
          QuantizeRowAvx512<T>(x + b, s, z, lo, hi, y + b, e - b);
        else
          QuantizeRowBase<T>(x + b, s, z, lo, hi, y + b, e - b);
      });
    };
    if (y_type_ == DType::kU8)
      run.template operator()<uint8_t>();
    else
      run.template operator()<int8_t>();
    return Status::Ok();
  }

  std::string impl_name() const override { return vector_ ? "avx512" : "rows"; }

 private:
  explicit FastQuantizeLinearOp(const ir::Node& node) : node_(node) {}
  ir::Node node_;
  Shape shape_;
  DType y_type_ = DType::kU8;
  float scale_ = 1.f, zp_ = 0.f;
  bool vector_ = false;
};

}  // namespace

void RegisterQuantFastElementwiseOperators() {
  auto reg = [](const char* op, OperatorFactory f) {
    RegisterOperator(op, Backend::kFast,
                     FirstOf(std::move(f), FindOperatorFactory(op, Backend::kFast)));
  };
  reg("QAdd", [](const OpCreateArgs& a) { return FastQAddOp::Create(a); });
  reg("QGemm", [](const OpCreateArgs& a) { return FastQGemmF32Op::Create(a); });
  reg("QuantizeLinear", [](const OpCreateArgs& a) { return FastQuantizeLinearOp::Create(a); });
  reg("QConcat", [](const OpCreateArgs& a) { return FastQConcatOp::Create(a); });
  reg("QMaxPool", [](const OpCreateArgs& a) { return FastQPoolOp::Create(a, PoolKind::kMax); });
  reg("QAveragePool",
      [](const OpCreateArgs& a) { return FastQPoolOp::Create(a, PoolKind::kAverage); });
  reg("QGlobalAveragePool",
      [](const OpCreateArgs& a) { return FastQPoolOp::Create(a, PoolKind::kGlobalAverage); });
}

}  // namespace wbs::runtime
