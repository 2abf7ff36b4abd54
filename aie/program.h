// The AIE program: what the compiler (aie/passes/) emits and the simulator
// executes, bit-exactly. docs/AIE_PROGRAM.md is the normative description;
// this header is its data structure, with a text form (round-trips) and a
// versioned binary form.
//
// Memories are byte-addressed spaces: DDR (one), memtile i (i indexes
// Target::memtile.columns), core (row, col). Every address is a byte offset
// in its space. Tensors in DDR and memtiles are NCHW (batch 1: C planes of
// H x W bytes, or 4 bytes per element for s32 partial sums); a core buffer is
// [channels][rows][cols] of its tile, contiguous.
//
// Execution (the semantics the simulator implements): the program is a list
// of blocks run in order; a block runs `iterations` times, and each
// iteration runs its instructions in order. An instruction's addresses
// depend on the iteration `it` only through its per-iteration index steps
// and ping/pong offsets (see AccessPattern, CompParams). Locks are
// semaphores: an acquire (lock, v) needs value >= v and subtracts v, a
// release adds v; in program order every acquire must succeed (the program
// is deadlock-free by construction and the simulator checks it). The time
// model (aie/passes/time_model) overlaps instructions only where locks and
// data allow; program order is always a valid schedule.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace wbs::aie {

inline constexpr uint32_t kProgramMagic = 0x47504957;  // "WIPG" little-endian
// 2: weight blobs carry a flags word; CIN-split parts store bias and
// requantization once. 3: a conv COMP declares its weight blob's length
// (CompParams::weights_bytes), so its data-hazard footprint covers the whole
// blob (docs/AIE_PROGRAM.md "Versions").
inline constexpr uint32_t kProgramVersion = 3;

enum class MemKind : uint8_t { kDdr, kMemtile, kCore };

// One memory space: DDR; memtile `index`; core (row, col).
struct MemSpace {
  MemKind kind = MemKind::kDdr;
  int16_t index = 0;  // memtile index, or core row
  int16_t col = 0;    // core column
  static MemSpace Ddr() { return {}; }
  static MemSpace Memtile(int i) { return {MemKind::kMemtile, static_cast<int16_t>(i), 0}; }
  static MemSpace Core(int r, int c) {
    return {MemKind::kCore, static_cast<int16_t>(r), static_cast<int16_t>(c)};
  }
  bool operator==(const MemSpace& o) const {
    return kind == o.kind && index == o.index && col == o.col;
  }
  bool operator<(const MemSpace& o) const;
};
std::string MemSpaceName(const MemSpace& m);  // "ddr", "mt2", "c1.3"

struct Footprint;

// An up-to-4-D byte access pattern (dimension 0 innermost). In iteration
// `it`, element (i0..i3) is at
//   base + (it & 1) * pong + sum_d (start_d + it * step_d + i_d) * stride_d
// for i_d in [0, size_d). With bound_d > 0, an element whose index
// (start_d + it * step_d + i_d) is outside [0, bound_d) is not read: the
// transfer delivers `pad_value` instead (source patterns only; this is how
// convolution padding and halos at image borders are made, so COMP never
// sees a border). Unused dimensions have size 1. `elem` is 1 (u8/s8) or
// 4 (s32): sizes count elements, strides count bytes.
struct AccessPattern {
  int64_t base = 0;
  int64_t pong = 0;
  int elem = 1;
  std::array<int64_t, 4> size{1, 1, 1, 1};
  std::array<int64_t, 4> stride{0, 0, 0, 0};
  std::array<int64_t, 4> start{0, 0, 0, 0};
  std::array<int64_t, 4> step{0, 0, 0, 0};
  std::array<int64_t, 4> bound{0, 0, 0, 0};
  int32_t pad_value = 0;
  int64_t elements() const { return size[0] * size[1] * size[2] * size[3]; }
  int64_t bytes() const { return elements() * elem; }
  // The bytes the pattern touches in iteration `it`, exactly (bounded
  // dimensions clamped to their bounds: padding reads nothing). The time
  // model and the simulator order transfers by it.
  Footprint Bytes(int64_t it) const;
};

// A set of bytes: a strided box
//   { lo + sum_d i_d * stride[d] + b : 0 <= i_d < count[d], 0 <= b < run }
// in normal form (dimensions of one element dropped, strides positive and
// larger than `run`, outermost first, contiguous dimensions folded into the
// run), so equal sets of the usual shapes compare cheaply. run == 0: empty.
struct Footprint {
  int64_t lo = 0, run = 0;
  int nd = 0;
  std::array<int64_t, 4> count{1, 1, 1, 1}, stride{0, 0, 0, 0};
  // ext[d]: the bounding length of dimensions d.. (ext[nd] == run).
  std::array<int64_t, 5> ext{0, 0, 0, 0, 0};
  static Footprint Range(int64_t lo, int64_t hi);  // [lo, hi)
  bool empty() const { return run <= 0; }
  int64_t hi() const { return lo + ext[0]; }  // end of the bounding range
};

// Whether two footprints share a byte. Exact: interleaved but disjoint
// strided sets (the tiles of different columns in one tensor) do not
// overlap. Bounding ranges that miss each other answer at once; otherwise
// the boxes are compared dimension by dimension (equal outer strides reduce
// to a few offsets, others split the coarser box), with a work limit past
// which the answer is "overlap" (conservative: an ordering, never a lost
// hazard). The time model and the simulator both order by it.
bool Overlaps(const Footprint& a, const Footprint& b);

struct LockOp {
  MemSpace tile;   // the tile owning the lock (DDR: a shim lock of memtile 0's column)
  int32_t id = 0;  // in iteration it: id + (it & 1) if pingpong
  int32_t value = 1;
  bool pingpong = false;
};

enum class Opcode : uint8_t {
  kLoad,     // DDR -> memtile (activations)
  kLoadW,    // DDR -> memtile (weights)
  kLoadFm,   // memtile -> core(s) (feature map; broadcast set)
  kLoadWm,   // memtile -> core(s) (weight blob; broadcast set)
  kComp,     // compute on core(s)
  kWriteFm,  // core -> memtile
  kWrite,    // memtile -> DDR
  kFill,     // memtile or core region set to a byte value (no link)
  kCount,
};
const char* OpcodeName(Opcode op);  // "LOAD", "LOADW", ...

enum class CompKind : uint8_t {
  kConv,     // block-sparse int8 conv / gemm (1x1 on 1x1 planes) on a tile
  kAdd,      // QAdd of two equal-shape tiles
  kMaxPool,  // QMaxPool on a padded window
  kAvgPool,  // QAveragePool / QGlobalAveragePool
  kRescale,  // QConcat's per-input requantization (elementwise)
  kCount,
};
const char* CompKindName(CompKind k);

// Output element type of a COMP.
enum class OutType : uint8_t { kU8, kS8, kS32 };

// A core-local buffer reference: address + ping/pong offset.
struct BufRef {
  int64_t addr = 0;
  int64_t pong = 0;  // in iteration it: addr + (it & 1) * pong
  int64_t at(int64_t it) const { return addr + (it & 1) * pong; }
};

// The parameters of a COMP (docs/AIE_PROGRAM.md "COMP").
struct CompParams {
  CompKind kind = CompKind::kConv;
  // Input tile [in_c][in_h][in_w] (already padded: the window every output
  // reads), output tile [out_c][out_h][out_w].
  int32_t in_c = 0, in_h = 0, in_w = 0;
  int32_t out_c = 0, out_h = 0, out_w = 0;
  int32_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  // kConv: groups of this tile (out_c and in_c are multiples of it).
  int32_t groups = 1;
  BufRef in, in2, weights, out;
  // kConv: the bytes at `weights` the COMP reads (its blob: header to padded
  // values; the largest blob of any iteration). The COMP's hazard footprint
  // covers exactly these, so a load of the next blob into the same buffer
  // waits for the COMP; the simulator faults on a blob longer than this.
  int64_t weights_bytes = 0;
  OutType in_type = OutType::kU8, in2_type = OutType::kU8, out_type = OutType::kU8;
  int32_t in_zero = 0, in2_zero = 0, out_zero = 0, lo = 0, hi = 255;
  // kAdd: M_a, M_b, S (RequantizeAdd); kRescale: M, S (Requantize).
  int32_t mult = 0, mult2 = 0, shift = 0;
  // kConv: add to the s32 partial already in `out` (CIN split) instead of
  // starting from the blob's bias; requantize (out_type u8/s8) or keep s32.
  bool accumulate = false;
  // kAvgPool: count_include_pad, and where the tile sits in the image (for
  // the count of in-image taps): the padded window's element (0, 0) is
  // image pixel (y0 + it * y_step, x0); the image is img_h x img_w.
  bool count_include_pad = false;
  int32_t img_h = 0, img_w = 0, y0 = 0, x0 = 0, y_step = 0;
  int32_t pad_end_h = 0, pad_end_w = 0;  // AvgPool count_include_pad: [-pad_begin, img + pad_end)
  int32_t pad_begin_h = 0, pad_begin_w = 0;
  // Dense MACs and effective MACs (non-zero blocks) of one iteration on one core.
  int64_t macs_dense = 0, macs = 0;
};

struct Instruction {
  Opcode op = Opcode::kLoad;
  int32_t layer = -1;  // index into Program::layers (-1: none)
  // Transfers: source space + pattern; destination spaces (a broadcast set:
  // every listed space receives the same bytes at the same addresses) + pattern.
  MemSpace src;
  AccessPattern src_ap;
  std::vector<MemSpace> dst;
  AccessPattern dst_ap;
  // kComp: the cores (all run the same params on their own memory).
  std::vector<MemSpace> cores;
  CompParams comp;
  // kFill: dst[0], dst_ap (elements set to fill_value).
  int32_t fill_value = 0;
  std::vector<LockOp> acquire, release;
  int64_t bytes() const { return src_ap.bytes(); }  // per iteration, transfers
};

inline int64_t OutTypeBytes(OutType t) { return t == OutType::kS32 ? 4 : 1; }

// ---- The weight blob (what a kConv reads at `weights`) ----
// Little-endian, 4-byte aligned:
//   int32 magic 0x42535238 ("8RSB"), br, bc, kh, kw, block_rows, nnz, cin (of the tile), flags
//   int32 row_ptr[block_rows + 1], col_idx[nnz] (block column within the tile's groups' input)
//   int32 bias[block_rows * br]   if flags & kBlobBias: B_q - z_x * row_sum over every input
//                                 channel of the layer (0 past out_c); without it the bias is 0
//   int32 mult[block_rows * br], shift[block_rows * br]   if flags & kBlobRequant
//   int8  values[nnz * br * bc * kh * kw]  (S8BlockSparseWeight quads:
//         values[j*bs + ((qq*taps + t)*br + r)*4 + l], zero-padded to 4 bytes)
// A CIN-split layer's parts: the first (which starts the accumulation)
// carries the bias, the last (which requantizes) mult and shift, the others
// neither; an unsplit layer's blob has both.
inline constexpr int32_t kBlobMagic = 0x42535238;
inline constexpr int32_t kBlobBias = 1, kBlobRequant = 2;
inline constexpr int kBlobHeaderInts = 9;
inline constexpr int64_t kBlobHeaderBytes = 4 * kBlobHeaderInts;
struct BlobHeader {
  int32_t br = 8, bc = 8, kh = 1, kw = 1, block_rows = 0, nnz = 0, cin = 0;
  int32_t flags = kBlobBias | kBlobRequant;
};
int64_t BlobBytes(const BlobHeader& h);

// Calls f(space, footprint, write) for each set of bytes instruction `in`
// reads (write = false) or writes in iteration `it`: a transfer its source
// and every destination pattern (exactly, Footprint); a COMP, on each of its
// cores, its input, its weight blob (conv: `weights_bytes` from `weights`),
// its second input or s32 accumulator (add, accumulate) and its output, as
// contiguous ranges.
// The time model and the simulator order instructions by these (data
// hazards, Overlaps).
template <typename F>
void ForEachAccess(const Instruction& in, int64_t it, F&& f) {
  if (in.op == Opcode::kComp) {
    const CompParams& c = in.comp;
    const int64_t ie = OutTypeBytes(c.in_type), oe = OutTypeBytes(c.out_type);
    const int64_t out_elems = int64_t{c.out_c} * c.out_h * c.out_w;
    const int64_t in_bytes = int64_t{c.in_c} * c.in_h * c.in_w * ie;
    for (const MemSpace& m : in.cores) {
      f(m, Footprint::Range(c.in.at(it), c.in.at(it) + in_bytes), false);
      if (c.kind == CompKind::kConv)
        f(m, Footprint::Range(c.weights.at(it), c.weights.at(it) + c.weights_bytes), false);
      if (c.kind == CompKind::kAdd || c.accumulate)
        f(m, Footprint::Range(c.in2.at(it), c.in2.at(it) + out_elems * 4), false);
      f(m, Footprint::Range(c.out.at(it), c.out.at(it) + out_elems * oe), true);
    }
    return;
  }
  if (in.op != Opcode::kFill) f(in.src, in.src_ap.Bytes(it), false);
  for (const MemSpace& d : in.dst) f(d, in.dst_ap.Bytes(it), true);
}

struct Block {
  int64_t iterations = 1;
  std::string label;  // e.g. "conv1 rows" (informational)
  std::vector<Instruction> instrs;
};

// A named DDR region: the network input/output, weight blobs, partial sums.
struct DdrSymbol {
  enum class Kind : uint8_t { kInput, kOutput, kConst, kScratch };
  std::string name;
  Kind kind = Kind::kScratch;
  int64_t addr = 0, size = 0;
  std::vector<uint8_t> data;  // kConst: the initial bytes (size of them)
  // kInput/kOutput: the tensor, its type and quantization (the host
  // quantizes the input, and dequantizes an s32 output with `scales`).
  std::vector<int64_t> shape;
  OutType type = OutType::kU8;
  float scale = 1.f;
  int32_t zero_point = 0;
  std::vector<float> scales;  // s32 output: per channel (acc * scale)
};

// Per-layer record (reports, the trace, the checker).
struct LayerInfo {
  std::string name, op;
  int64_t macs_dense = 0, macs = 0;
};

struct Program {
  std::string target;  // Target::name
  int rows = 0, cols = 0, memtiles = 0;
  int64_t ddr_bytes = 0, memtile_bytes = 0, core_bytes = 0;
  // Initial lock values: (tile, id, value), all others start at 0.
  struct LockInit {
    MemSpace tile;
    int32_t id = 0, value = 0;
  };
  std::vector<LockInit> locks;
  std::vector<DdrSymbol> symbols;
  std::vector<LayerInfo> layers;
  std::vector<Block> blocks;

  int64_t instruction_count() const;
  // Text form (docs/AIE_PROGRAM.md); `with_data` writes the constants' bytes
  // in hex (needed for a round trip).
  std::string ToText(bool with_data = true) const;
  static Result<Program> FromText(const std::string& text, const std::string& source);
  // Binary form: header (magic, version), then the same content.
  std::vector<uint8_t> ToBinary() const;
  static Result<Program> FromBinary(const std::vector<uint8_t>& bytes, const std::string& source);
  bool operator==(const Program& o) const { return ToText() == o.ToText(); }
};

}  // namespace wbs::aie
