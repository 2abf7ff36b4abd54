// The AIE compiler: quantized IR (docs/int8.md) -> AIE program
// (aie/program.h), as a pipeline of passes over one CompileState, one pass
// per file in aie/passes/ (docs/AIE_COMPILER.md):
//
//   schedule   layers in topological order, aliases (Flatten/Reshape), I/O
//   subvolume  per layer: the largest core tile whose buffers fit a core
//   split      per layer: grid use (width x channel groups or channel-only),
//              CIN split, row streaming
//   balance    channel groups chosen so each gets an equal share of non-zero blocks
//   compact    one weight blob per core, channel chunk and CIN part
//   memplan    DDR symbols, memtile and core buffer addresses (interval colouring)
//   fusion     which activations stay in memtiles, weight prefetch
//   codegen    the program
//   time       the time model: per instruction, per block, per layer; roofline
//
// Every pass prints its result (Dump*), which the golden tests compare and
// `wbs compile --print-after=PASS` shows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "aie/program.h"
#include "aie/target.h"
#include "core/status.h"
#include "ir/graph.h"

namespace wbs::aie {

// An immutable array shared by copies: a Layer's weights and blobs are the
// same bytes in every trial compile of one Compile() (pipeline.cc copies
// states and the pass-1 layers dozens of times), so copies share them
// instead of duplicating megabytes each; a pass that changes one (balance's
// permutation) assigns a new array. Reads look like a const std::vector;
// == compares the contents (the same array answers at once).
template <typename T>
class SharedArray {
 public:
  SharedArray() = default;
  SharedArray(std::vector<T>&& v)  // NOLINT(google-explicit-constructor): a vector is one
      : p_(v.empty() ? nullptr : std::make_shared<const std::vector<T>>(std::move(v))) {}
  SharedArray(std::shared_ptr<const std::vector<T>> p) : p_(std::move(p)) {}  // NOLINT
  SharedArray& operator=(std::vector<T>&& v) { return *this = SharedArray(std::move(v)); }
  template <typename It>
  void assign(It first, It last) {
    *this = std::vector<T>(first, last);
  }
  void clear() { p_.reset(); }
  const std::vector<T>& vec() const { return p_ ? *p_ : Empty(); }
  const T* data() const { return vec().data(); }
  size_t size() const { return p_ ? p_->size() : 0; }
  bool empty() const { return size() == 0; }
  const T& operator[](size_t i) const { return (*p_)[i]; }
  typename std::vector<T>::const_iterator begin() const { return vec().begin(); }
  typename std::vector<T>::const_iterator end() const { return vec().end(); }
  bool operator==(const SharedArray& o) const { return p_ == o.p_ || vec() == o.vec(); }

 private:
  static const std::vector<T>& Empty() {
    static const std::vector<T> e;
    return e;
  }
  std::shared_ptr<const std::vector<T>> p_;
};


struct CompileCache;  // aie/passes/cache.h

enum class LayerKind { kConv, kAdd, kMaxPool, kAvgPool, kRescale };
const char* LayerKindName(LayerKind k);

// An activation tensor of the program (batch 1, NCHW; Gemm operands as C x 1 x 1).
struct ActTensor {
  std::string name;
  int64_t c = 0, h = 1, w = 1;
  OutType type = OutType::kU8;  // s32: a dequantized (logits) output
  float scale = 1.f;
  int32_t zero_point = 0;
  bool pot = false;  // power-of-two scale
  int64_t elem = 1;
  int64_t bytes() const { return c * h * w * elem; }
  // Where it lives: DDR symbol (index into Program::symbols) and offset of
  // channel 0 inside it (a QConcat input aliased into its output).
  int symbol = -1;
  int64_t ddr_offset = 0;
  int64_t channel_offset = 0;  // channels before it in the aliased tensor
  int64_t alias_c = 0;         // channel count of the tensor it lives in (0: itself)
  int alias_of = -1;           // tensor index it lives in (-1: itself)
  int producer = -1;           // layer index
  std::vector<int> consumers;
  // Kept in memtiles instead of DDR (fusion.cc PlanResidency): column c's
  // share of the producer's width split, output columns [res_x0[c], ..),
  // lives in memtile ActMemtile(c) at mt_addr as [c][h][mt_w]; it is
  // written by the producer's WRITEFMs and read by its consumers' LOADFMs,
  // and never goes to DDR. Live from layer res_first to res_last.
  bool resident = false;
  int64_t mt_addr = 0, mt_w = 0, mt_bytes = 0;
  int res_first = -1, res_last = -1;
  std::vector<int64_t> res_x0;
  // A fused Add's output written in place over its other input's region
  // (that input's last use; the Add is element-wise, tile by tile at the
  // same positions, each tile read before it is overwritten): that tensor's index.
  int in_place_of = -1;
  // Also written to DDR (partial residency, CompileOptions::resident_partial):
  // some consumer cannot read the per-column shares (channels over every
  // core, an unfused Add) and loads it from DDR; the producer WRITEs each
  // tile from its memtile region too.
  bool resident_ddr = false;
  // Replicated (fusion.cc PlanReplicas, after the memory plan): a tensor
  // whose producer spreads channels over every core (each column holds a
  // channel range at full width) is written by each core's WRITEFM into
  // every memtile its column reaches, at mt_addr in the DDR layout
  // [c][h][w] (mt_bytes); a consumer column reads each channel range from
  // a memtile reaching both it and the producing column, and from DDR only
  // where none does (on 4 columns: columns 0 and 3 each other's channels),
  // so only those producer columns also WRITE to DDR. Live from res_first
  // to res_last like a resident tensor; keeps its DDR symbol. A fused
  // Add's output may take its replicated other input's region (in_place_of).
  bool replicated = false;
};

// One core's share of a layer.
struct CoreWork {
  int row = 0, col = 0;
  int64_t m0 = 0, m1 = 0;  // output channels [m0, m1)
  int64_t x0 = 0, x1 = 0;  // output columns [x0, x1)
  int64_t y0 = 0, y1 = 0;  // output rows [y0, y1) (every row but in a wide split with Layer::wide_ys > 1)
  int64_t nnz = 0;         // non-zero blocks in its channel range (conv)
  int64_t macs = 0;        // effective MACs of its share
};

struct Layer {
  std::string name;
  std::string op;  // IR op type
  LayerKind kind = LayerKind::kConv;
  std::vector<int> inputs;  // tensor indices (Add: 2; Rescale: 1)
  int output = -1;
  // Sibling convs fused horizontally (siblings.cc): output channels
  // [m0, m1) of this layer go to tensor `tensor` (its channels 0..m1-m0),
  // each with its own bias and requantization in the weight blobs; empty
  // for a layer with one output. `output` is the first slice's tensor.
  struct OutSlice {
    int tensor = -1;
    int64_t m0 = 0, m1 = 0;
    std::string layer;  // the sibling conv's own name
  };
  std::vector<OutSlice> out_slices;
  bool multi_out() const { return !out_slices.empty(); }
  // A max pool fused after the conv (poolfuse.cc FusePools, the end of pass
  // 1): each core computes the conv tile its pooled output tile needs (the
  // overlapping window rows and columns recomputed) into core scratch
  // (core_acc) and pools it there, so the conv's output never goes to a
  // memtile and back. The layer's output, oh, ow are the pool's; kh, kw,
  // sh, sw and the pads describe the composite window on the conv's input
  // (a pooled pixel reads (pkh - 1) * csh + ckh input rows, step psh * csh)
  // so every input-side pass tiles it as a conv; wkh()/wkw() are the
  // weights' kernel. Pool taps outside the conv's output plane (coh x cow)
  // are skipped by the pool COMP (what the pool's -inf padding does).
  struct PostPool {
    bool on = false;
    std::string conv, pool;  // the two layers' names
    int conv_out = -1;       // the conv's own output tensor (scratch quantization)
    int64_t pkh = 1, pkw = 1, psh = 1, psw = 1, ppad_t = 0, ppad_l = 0;  // the pool
    int64_t ckh = 1, ckw = 1, csh = 1, csw = 1;                          // the conv
    int64_t coh = 0, cow = 0;                                            // the conv's output plane
    // Conv output rows / columns a pooled tile of oh x ow reads.
    int64_t rows(int64_t oh) const { return (oh - 1) * psh + pkh; }
    int64_t cols(int64_t ow) const { return (ow - 1) * psw + pkw; }
  } post_pool;
  // An average pool fused before a 1x1 stride-1 unpadded conv (poolfuse.cc;
  // Inception's avg_pool -> branch_pool): the layer reads the pool's input
  // with the pool's window (kh, kw, sh, sw, pads are the pool's), each core
  // pools its input tile (every CIN part) into core scratch (core_scratch)
  // and the conv reads that; the pooled tensor never exists outside a core.
  struct PrePool {
    bool on = false;
    std::string pool, conv;  // the two layers' names
    int pool_out = -1;       // the pool's output tensor (the conv's input quantization)
    int64_t pool_pad_b = 0, pool_pad_r = 0;  // count_include_pad end pads
    bool count_include_pad = false;
    int32_t lo = 0, hi = 255;  // the pool's clamp
  } pre_pool;
  int64_t wkh() const { return post_pool.on ? post_pool.ckh : pre_pool.on ? 1 : kh; }
  int64_t wkw() const { return post_pool.on ? post_pool.ckw : pre_pool.on ? 1 : kw; }
  // Geometry: input C x H x W -> output M x OH x OW.
  int64_t c = 0, h = 0, w = 0, m = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pad_t = 0, pad_l = 0, pad_b = 0, pad_r = 0;
  int64_t pool_pad_b = 0, pool_pad_r = 0;  // AveragePool's own end pads (count_include_pad)
  int64_t groups = 1;
  bool count_include_pad = false;
  // Conv: the int8 weight [m, c/groups, kh, kw], requantization per channel.
  SharedArray<int8_t> weight;
  std::vector<int32_t> bias;         // B_q (0 when absent)
  std::vector<int32_t> mult, shift;  // per output channel
  int32_t out_zero = 0, lo = 0, hi = 255;
  // Add / Rescale: (mult, mult2, shift).
  int32_t amult = 0, amult2 = 0, ashift = 0;
  // Block structure (8x8 blocks over output x input-per-group channels).
  int br = 8, bc = 8;
  int64_t block_rows = 0, block_cols = 0;
  std::vector<int64_t> row_nnz;  // non-zero blocks per block row
  int64_t macs_dense = 0, macs = 0;

  // ---- subvolume + split (passes 2, 3, 4) ----
  bool cout_only = false;  // every core its own channel group (no width split)
  // Width over every core: each core computes all output channels for its
  // own slice of its column's width share (the column's rows split that
  // share), so a core receives 1/rows of the column's input instead of all
  // of it (the 2-D split broadcasts the whole column share to every row),
  // and every core gets every weight blob. Column shares are the 2-D
  // split's, so memtile-resident tensors keep their layout. For layers
  // bound by the activation broadcast (memtile -> core) with few weights.
  bool wide = false;
  // Wide split, height slices per column (h_aie22's `wide_ys`, taken by
  // BUILD pairs only, h_aie26): the column's rows split its share into
  // rows / wide_ys width slices x wide_ys equal height slices, so every
  // core gets the same pixels where the share's width does not divide by
  // the rows (ResNet-50 layer1: 14 columns over 4 rows are 3/4/3/4 wide,
  // the 4-wide cores bind; 2 x 2 slices of 7 x 28 are equal). Each core
  // streams its own rows.
  int64_t wide_ys = 1;
  int64_t share_h() const { return oh / wide_ys; }  // output rows per core
  // A 1x1 unpadded strided conv (ResNet downsample): the LOAD from DDR, or
  // the LOADFM from a resident input, reads only the pixels the conv uses
  // (the DMA pattern steps by the stride), so the tiles, the memtile->core
  // stream and the COMP are those of a stride-1 conv on the subsampled
  // input (pass 2; sh x sw times fewer input bytes on every link).
  bool subsample = false;
  int64_t tile_sh() const { return subsample ? 1 : sh; }  // stride within a core tile
  int64_t tile_sw() const { return subsample ? 1 : sw; }
  // cout_only, DDR-read bound: the input tile loaded once per serving
  // memtile and broadcast to every column it reaches (codegen SpreadInput).
  bool spread_input = false;
  int rows_used = 0, cols_used = 0;
  std::vector<CoreWork> cores;
  int64_t mt_rows = 0;     // channel chunk per core, in block rows (conv) or channels
  int64_t ow_t = 0;        // output width chunk
  int64_t oh_t = 0;        // output rows per iteration
  int64_t ct = 0;          // input channels per CIN part (conv; = c/groups when no split)
  int64_t parts = 1;       // CIN parts
  double imbalance = 0.0;  // max nnz / mean nnz - 1 over used cores
  // Core buffer sizes (bytes, one half of ping/pong).
  int64_t in_bytes = 0, in2_bytes = 0, w_bytes = 0, out_bytes = 0, acc_bytes = 0;
  int64_t scratch_bytes = 0;           // a fused pre-pool's pooled tile (Layer::pre_pool)
  bool weights_per_iteration = false;  // CIN split: weights reloaded every iteration
  // Core weights double-buffered across the layer's weight blocks (channel
  // or width chunks; memplan, when the second half fits): chunk k+1's blob
  // moves in while chunk k computes. CIN parts always have two or more (w_bufs).
  bool w_double = false;
  // Core weight buffers of a layer with CIN parts (rotated by part, like
  // in_bufs): memplan gives sparse layers a third or fourth where it fits,
  // because a row's cores share each part's blob (one broadcast) and, with
  // two, a core runs at most one part ahead of its row's slowest.
  int64_t w_bufs = 2;
  int64_t core_w_halves() const { return weights_per_iteration ? w_bufs : w_double ? 2 : 1; }
  // CIN parts: every part's blob stays in the memtile for the whole chunk
  // (one LOADW per part and chunk before the rows, LOADWMs per iteration
  // from there) instead of coming from DDR again every iteration; pass 2
  // sets it when parts weight slabs per row fit the memtile.
  bool w_kept = false;
  // Sparse convs with more than two weight blocks whose blobs do not all
  // stay (memplan GrowWeightRings, where the slabs fit): block b's blob
  // (CIN part p, or the b-th channel / width chunk) goes to memtile slab
  // b % w_ring of its row instead of b % 2, so the DDR stream runs up to
  // w_ring - 2 blocks ahead of the cores. A sparse part's COMP is as long
  // as its non-zero blocks and the parts' lengths differ (ResNet-50 50%
  // layer3.2.conv2: 0.47 to 0.95 us per part); with two slabs each short
  // part waits for its blob to come from DDR.
  int64_t w_ring = 2;
  int64_t mt_w_slabs() const { return w_kept ? std::max<int64_t>(2, parts) : w_ring; }
  // Core input buffers. With CIN parts the input rotates over them by part
  // (codegen); memplan adds a third and a fourth to sparse layers where
  // they fit beside the tile. The cores of a column share each part's input (one broadcast), so
  // with two buffers a core can run at most one part ahead of the slowest
  // core of its column: every part then costs the column's largest COMP,
  // and at 50% the rows' non-zeros per part differ widely (VGG-16
  // features.17: the parts' per-row maxima sum to 1.43x their means). More
  // buffers let a core run further ahead, so only its totals over a few
  // parts count.
  int64_t in_bufs = 2;
  bool permuted = false;  // balance permuted its output channels (CompileOptions::permute_channels)
  // Input-stationary core tile (CompileOptions::in_stay): the tile is the
  // core's whole share of the output plane (one row block, one width
  // chunk) and every CIN channel, so each channel chunk reads the same
  // input tile. It is loaded once (chunk 0) into one core buffer and stays
  // for every chunk, while the chunks' weight blobs alternate two core
  // halves (w_double) and their output / shortcut tiles alternate halves by
  // chunk. A 1x1 conv with few input pixels per core and many output
  // channels (ResNet-50 layer3.x.conv3, layer3.0.downsample.0) otherwise
  // streams its input to the cores once per channel chunk.
  bool in_stay = false;
  // An input-stationary 1x1 tile computed in this many row pieces
  // (CompileOptions::stay_rows; set by codegen, SplitStayRows): the input,
  // shortcut and output tiles are laid out and moved piece by piece, so
  // chunk 0's first COMP starts once its first rows are in and a chunk's
  // first rows leave while the rest computes.
  int64_t stay_pieces = 1;

  // ---- compact (pass 5) ----
  // blobs[(core index * chunks + chunk) * parts + part]
  std::vector<SharedArray<uint8_t>> blobs;
  int64_t chunks = 0;
  int blob_symbol = -1;              // DDR symbol holding every blob of the layer
  std::vector<int64_t> blob_offset;  // per blob, in the symbol

  // ---- memory plan (pass 6): addresses (core: same in every core) ----
  int64_t core_in = 0, core_in2 = 0, core_w = 0, core_out = 0, core_acc = 0, core_scratch = 0;
  int64_t mt_in = 0, mt_in2 = 0, mt_w = 0, mt_out = 0;  // memtile slab addresses
  int64_t mt_col_bytes = 0;  // one column's slabs (columns sharing a memtile are stacked)
  int64_t mt_in_bytes = 0, mt_in2_bytes = 0, mt_w_bytes = 0, mt_out_bytes = 0;

  // ---- fusion (pass 7) ----
  bool prefetch_weights = false;
  // A residual Add computed inside the conv that produces one of its inputs
  // (decided before pass 2, which sizes the conv's tile for it): on the
  // conv, the Add's layer index; on the Add, the conv's (it emits nothing).
  int fused_add = -1, fused_into = -1;
  // BUILD pair fusion (postconv.cc PlanPostConv, h_aie26): the 1x1 conv
  // right after a fused Add, reading only that Add's output, computed in
  // the fused conv's blocks on the same core tile: after the Add COMP, its
  // COMP reads the Add's output buffer (the block output, still written
  // out for its other readers) and its own output goes from its own buffer
  // pair to its resident region, so the block output is never read back
  // into the cores for it. On the first conv, the second's layer index
  // (post_conv) and its blob's bytes (post_w_bytes: one memtile slab per
  // row parity, mt_post_w); on the second, the first's (post_into: it
  // emits nothing, its COMPs carry its own index).
  int post_conv = -1, post_into = -1;
  int64_t post_w_bytes = 0, mt_post_w = 0;
  // Memtile-resident activations (PlanResidency, before pass 2): input 0
  // (in), the fused Add's other input (in2) and the output (the fused Add's
  // when there is one) read from / written to a resident tensor; such a
  // layer keeps the 2-D split (the resident share is per column) and its
  // slabs sit below `mt_reserved` bytes taken from the top of the memtile
  // by the resident tensors live during it.
  bool in_resident = false, in2_resident = false, out_resident = false;
  bool force_2d = false;
  // Input 0, the fused Add's other input, the output: a replicated tensor (ActTensor::replicated).
  bool in_repl = false, in2_repl = false, out_repl = false;
  bool prefers_cout_only = false;  // without residency its best tile is channels over every core
  int64_t mt_reserved = 0;

  // ---- time (pass 9) ----
  // time_s: how far the layer moves the end of the schedule (additive over
  // layers); span_s: its first start to last end (layers overlap).
  double time_s = 0.0, span_s = 0.0, bound_s = 0.0;
  std::string binding;  // the link (or compute) that sets the roofline
  // The memtile->core streams bound the layer above its MACs (at the array's
  // peak) and every other link: pipeline.cc's candidates for the wide trial.
  // Not `binding == "memtile->core"`: that compares against all COMP cycles,
  // which pools' and epilogues' vector ops raise, and those do not shrink
  // when the width spreads (Inception-v3 2x2 dense lost its wide layers).
  bool stream_in_over_macs = false;
  int64_t ddr_read_bytes = 0, ddr_write_bytes = 0, stream_in_bytes = 0, stream_out_bytes = 0;
  int first_block = 0, num_blocks = 0;
};

struct CompileOptions {
  double mac_efficiency = 0.0;  // 0: the target's
  // Build CompileState::events (the trace) in the time model. Compile()
  // turns it off in its trial compiles and builds them once, for the
  // program it keeps.
  bool trace = true;
  // Threads for Compile()'s concurrent trial compiles (pipeline.cc): 0 takes
  // WBS_AIE_THREADS, else the machine's hardware threads. The program does
  // not depend on it.
  int threads = 0;
  bool fuse_add = true;         // residual Add computed in the conv before it (fusion.cc)
  // Adds (by name) whose other input's conv moves right before them
  // (MoveAddPartners), so the Add can fuse into that conv instead: ResNet-50
  // layer4.0.add, whose downsample conv has CIN parts (a fused tile has
  // none) but whose conv3 has not. Compile() tries it on every Add left
  // unfused and keeps the faster program.
  std::map<std::string, bool> add_partner;
  bool try_add_partner = true;
  // BUILD pair fusion (Layer::post_conv) by the first conv's name: on
  // (true) or off. Compile() tries every candidate pair on its kept
  // program, then keeps each only where the pair beat the two layers'
  // summed times, and keeps the fastest program.
  std::map<std::string, bool> post_conv;
  bool try_post_conv = true;
  // A BUILD pair's tile in equal height x width slices per column share
  // (Layer::wide_ys) where they give the busiest core fewer pixels.
  bool pair_ys = true;
  bool resident = true;         // activations kept in memtiles between layers (fusion.cc)
  // Memtile bytes per column always left to a layer's own slabs (the rest
  // may hold resident activations).
  int64_t min_slab_bytes = 160 * 1024;
  // Input spreading for channels-over-every-core layers (codegen
  // SpreadInput): by layer name, forced on (true) or off (false); others
  // by pass 2's cost. Compile() fills it from its trial compiles.
  std::map<std::string, bool> spread_input;
  bool try_spread = true;  // Compile(): compare with and without spreading, per layer
  // Layers with an output at least this wide join the memtile residency
  // (2-D or wide split) even where their probe compile prefers channels
  // over every core (0: never). Compile() tries 2 x columns (ResNet-50
  // layer3 on 4 columns, 14 wide) and keeps the faster program.
  int64_t resident_min_w = 0;
  bool try_resident_min_w = true;
  // Width over every core (Layer::wide) by layer name: preferred (true:
  // taken whenever a wide tile fits) or excluded (false); others by pass 2's
  // cost. Compile() fills it from its trial compiles.
  std::map<std::string, bool> wide;
  bool try_wide =
      true;  // Compile(): compare with wide forced on memtile->core bound layers, per layer
  // Replicated residency for tensors of channels-over-every-core producers
  // (ActTensor::replicated); Compile() compiles with and without it and
  // keeps the faster program.
  bool replicate = true;
  bool try_replicate = true;
  // A fused Add's replicated output in place of its replicated other input
  // (fusion.cc PlanReplicas, ActTensor::in_place_of). Off in the trials:
  // Compile() compiles the kept program once more with it, where that
  // program replicates anything, and keeps the faster (h_aie23; on in
  // every trial it made ResNet-50 8x8 50% keep a replicated program,
  // 0.6344 -> 0.6348 ms, and its compile ~2 s slower: more instructions).
  bool replica_in_place = false;
  bool try_replica_in_place = true;
  // Residency for tensors with some consumers that cannot read the
  // per-column shares (ResNet-50 layer3.5's output: layer4.0.conv1 2-D,
  // layer4.0.downsample channels over every core): the producer writes the
  // region and DDR, each consumer reads where it can. Compile() compiles
  // with and without it and keeps the faster program. Opt-in (`wbs compile
  // --partial-resident`): ResNet-50 4x4 1.614x -> 1.620x, but the second
  // whole compile doubles the compile time (4x4 50% 5.0 -> 9.5 s quiet,
  // against the 10 s target).
  bool resident_partial = false;
  bool try_resident_partial = true;
  // Without the opt-in: Compile() compiles the kept program once more with
  // partial residency (every other choice as kept) and keeps the faster.
  bool try_partial_kept = true;
  // Horizontal fusion of sibling convs (siblings.cc: same input, kernel,
  // stride, padding and output quantization range, e.g. Inception's
  // parallel 1x1 branch convs) into one layer, so the shared input streams
  // to the cores once. Groups by the fused layer's name: false keeps that
  // group's convs apart. CompileTrials() compiles with and without each
  // group and keeps the faster choice per group.
  bool hfuse = true;
  std::map<std::string, bool> hfuse_groups;
  bool try_hfuse = true;
  // Output channels permuted by 8-channel block rows where only convs read
  // them (balance.cc), so each channel chunk and CIN part is balanced over
  // the cores that share its input.
  bool permute_channels = true;
  bool try_permute = true;  // Compile(): also without the permutation, keep the faster
  // Sparse layers without CIN parts whose weight buffers pass 2 sizes for
  // the most non-zero blocks a chunk can hold instead of a dense chunk
  // (subvolume.cc TileSizes), by layer name: larger chunks, so the input
  // is streamed to the cores fewer times. Pass 2's cost misjudges the
  // tiles it then picks for some layers, so Compile() tries it on every
  // sparse conv and keeps it per layer where the layer got faster.
  std::map<std::string, bool> sparse_w;
  bool try_sparse_w = true;
  // Layers without CIN parts whose tile pass 2 picks with room for two
  // core weight halves (Layer::w_double) when it has more than one weight
  // block, by layer name: a smaller tile, but chunk k+1's LOADWM runs under
  // chunk k's compute instead of after it (ResNet-50 layer3.x.conv3 at
  // 50%: two channel chunks, each 36 KB blob waited for behind the COMP).
  // The smaller tile streams the input more often, so Compile() tries it
  // on every multi-block conv that did not get the halves and keeps it per
  // layer where the layer got faster (those: 15.4 -> 14.7 us each).
  std::map<std::string, bool> w_double;
  bool try_w_double = true;
  // Max pools fused into the conv before them (poolfuse.cc, Layer::post_pool):
  // the conv's output plane never crosses the memtile<->core links. By the
  // fused name ("conv1+maxpool"): false keeps that pair apart. The window
  // overlap is recomputed (a 3x3 s2 pool on 7 pooled rows: 15 conv rows
  // for 14), so CompileTrials() compiles with every pair apart too and
  // keeps each pair fused only where it beat the two layers' times.
  bool pool_fuse = true;
  std::map<std::string, bool> pool_fuse_pairs;
  bool try_pool_fuse = true;
  // Input-stationary core tiles (Layer::in_stay) by layer name: preferred
  // (true: taken whenever such a tile fits) or excluded (false); others
  // never. Compile() tries them on every conv without CIN parts that has
  // several weight blocks or streams its input more than once, then per
  // layer where faster, and keeps the fastest program.
  std::map<std::string, bool> in_stay;
  bool try_in_stay = true;
  // Input-stationary 1x1 tiles cut into kStayPieces row pieces
  // (Layer::stay_pieces), by layer name. Compile() tries them on every
  // input-stationary tile of the kept program, then per layer where faster
  // (ResNet-50 4x4 50%: layer2.x.conv1 12.7-13.0 -> 10.4-11.6 us, but
  // layer4.1/4.2.conv3, 7 rows written to DDR, 21.3 / 18.6 -> 25.4 / 25.3).
  std::map<std::string, bool> stay_rows;
  bool try_stay_rows = true;
  // (With 4 pieces in every trial ResNet-50 4x4 50% took 0.9878 ms, with 2
  // 0.9901, against 0.9945; no COMP overhead is modelled, so more pieces
  // would look faster still.)
  static constexpr int64_t kStayPieces = 4;
  // Memtile weight slab rings for sparse multi-block convs (Layer::w_ring);
  // Compile() also compiles the kept program without them and keeps the faster.
  bool w_ring = true;
  bool try_w_ring = true;
};

struct CompileState {
  Target target;
  CompileOptions options;
  const ir::Graph* graph = nullptr;
  std::vector<ActTensor> tensors;
  std::vector<Layer> layers;
  std::map<const ir::Value*, int> tensor_of;         // IR value -> tensor index
  std::vector<int> inputs, outputs;                  // tensor indices
  std::map<int, std::vector<float>> dequant_scales;  // s32 output tensor -> per-channel scale
  Program program;
  // Time model results.
  double total_s = 0.0, bound_s = 0.0;
  // Some compile of the trials behind this state kept a tensor partially
  // resident (pipeline.cc: then Compile() also compiles without it).
  bool saw_partial = false;
  // The ideal lower bound of the whole network on this array (time_model.cc
  // IdealBound): no schedule, split or tile can beat it. Every effective MAC
  // at the array's peak; every weight byte (one compact blob per layer:
  // non-zero blocks, index, bias and requantization) and the network input
  // read from DDR once over every shim read channel; the network output
  // written once over every write channel. Activations between layers are
  // assumed to stay on chip (they fit the memtiles of the paper's arrays).
  // `layers_s`: the sum over layers of the same maximum for each layer alone
  // (its MACs, its weights and any network input it reads, any network
  // output it writes): the bound when layers cannot overlap.
  struct Ideal {
    double compute_s = 0, read_s = 0, write_s = 0, total_s = 0, layers_s = 0;
    int64_t weight_bytes = 0, input_bytes = 0, output_bytes = 0;
  } ideal;
  struct Event {
    std::string name, cat;
    int layer = -1;
    std::string resource;
    double start_s = 0, dur_s = 0;
  };
  std::vector<Event> events;  // the estimated timeline (trace)
  // Results shared by the trial compiles of one Compile() (aie/passes/cache.h;
  // null: every pass computes everything).
  std::shared_ptr<CompileCache> cache;

  // True when tensor `i` is a network input or output (it lives at its DDR
  // symbol, so no pass may alias, fuse away or keep it on chip only).
  bool IsNetworkIo(int i) const {
    return std::find(inputs.begin(), inputs.end(), i) != inputs.end() ||
           std::find(outputs.begin(), outputs.end(), i) != outputs.end();
  }
  // hosts[t]: some tensor is aliased into tensor t (concat parts, in-place
  // outputs), so t's region is shared and its producer cannot be moved.
  std::vector<bool> AliasHosts() const {
    std::vector<bool> hosts(tensors.size(), false);
    for (const ActTensor& x : tensors)
      if (x.alias_of >= 0) hosts[static_cast<size_t>(x.alias_of)] = true;
    return hosts;
  }
  // Recomputes every tensor's producer and consumers from `layers` (after a
  // pass merged or removed layers; a fused pair's middle tensor is left with
  // neither: it never exists outside a core).
  void RelinkTensors() {
    for (ActTensor& x : tensors) x.producer = -1, x.consumers.clear();
    for (size_t li = 0; li < layers.size(); ++li) {
      const Layer& l = layers[li];
      for (int t : l.inputs)
        tensors[static_cast<size_t>(t)].consumers.push_back(static_cast<int>(li));
      if (l.multi_out()) {
        for (const Layer::OutSlice& o : l.out_slices)
          tensors[static_cast<size_t>(o.tensor)].producer = static_cast<int>(li);
      } else {
        tensors[static_cast<size_t>(l.output)].producer = static_cast<int>(li);
      }
    }
  }
};

// Sibling fusion (siblings.cc), the end of pass 1: merges each group of
// sibling convs into one multi-output layer (Layer::out_slices).
void FuseSiblings(CompileState& s);
// Pool fusion (poolfuse.cc), after FuseSiblings: each conv whose output only
// a max pool reads becomes one layer with it (Layer::post_pool), and each
// average pool whose output only a 1x1 stride-1 conv reads one layer with
// that conv (Layer::pre_pool).
void FusePools(CompileState& s);
// The end of pass 1 (fusion.cc): for each Add named in
// CompileOptions::add_partner, the conv producing its other input moves
// right before it (PlanAddFusion fuses an Add only into the layer before it).
void MoveAddPartners(CompileState& s);
// The conv after a fused Add computed in that Add's conv (aie/passes/postconv.cc).
int PostConvCandidate(const CompileState& s, size_t ai);
void PlanPostConv(CompileState& s);
// A fused pair's name as CompileOptions::pool_fuse_pairs keys it, the layers
// in program order ("conv1+maxpool", "Mixed_5b.avg_pool+Mixed_5b.branch_pool.conv").
std::string PoolFusedName(const std::string& first, const std::string& second);
// Conv output positions a post-pool layer's COMPs compute per output
// channel (recomputed window rows and columns included; check.cc).
int64_t PostPoolPositions(const Layer& l);

// ---- The passes (one file each) ----
Status RunSchedule(CompileState& s);   // aie/passes/schedule.cc
Status RunSubvolume(CompileState& s);  // aie/passes/subvolume.cc
Status RunSplit(CompileState& s);      // aie/passes/split.cc
Status RunBalance(CompileState& s);    // aie/passes/balance.cc
Status RunCompact(CompileState& s);    // aie/passes/compact.cc
Status RunMemPlan(CompileState& s);    // aie/passes/memplan.cc
Status RunFusion(CompileState& s);     // aie/passes/fusion.cc
Status RunCodegen(CompileState& s);    // aie/passes/codegen.cc
Status RunTimeModel(CompileState& s);  // aie/passes/time_model.cc

std::string DumpSchedule(const CompileState& s);
std::string DumpSubvolume(const CompileState& s);
std::string DumpSplit(const CompileState& s);
std::string DumpBalance(const CompileState& s);
std::string DumpCompact(const CompileState& s);
std::string DumpMemPlan(const CompileState& s);
std::string DumpFusion(const CompileState& s);
std::string DumpCodegen(const CompileState& s);
std::string DumpTimeModel(const CompileState& s);

// The pass names in order ("schedule", "subvolume", ...).
const std::vector<std::string>& PassNames();

// Runs every pass; after the pass named `print_after` (if any) appends its
// dump to *printed.
Status Compile(CompileState& s, const std::string& print_after = "",
               std::string* printed = nullptr);

// Invariant checks on a compiled state (aie/passes/check.cc): live core and
// memtile buffers never overlap nor exceed capacity, every byte a COMP reads
// was written earlier, MAC totals equal the layers' effective MACs, locks
// never block in program order.
Status CheckProgram(const CompileState& s);

// Reports (aie/passes/report.cc).
std::string LayerTable(const CompileState& s);  // per layer: subvolume, splits, bytes, MACs, time
std::string MemoryMap(const CompileState& s);
std::string TraceJson(const CompileState& s);  // Chrome/Perfetto trace of the estimate

}  // namespace wbs::aie
