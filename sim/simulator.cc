#include "sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>
#include <thread>

#include "aie/comp_cost.h"
#include "aie/timeline.h"
#include "core/quant_math.h"

namespace wbs::sim {

using aie::CompKind;
using aie::Instruction;
using aie::MemKind;
using aie::MemSpace;
using aie::Opcode;
using aie::OutType;

namespace {

std::tuple<int, int, int, int> LockKey(const MemSpace& m, int id) {
  return {static_cast<int>(m.kind), m.index, m.col, id};
}

int64_t ElemBytes(OutType t) { return t == OutType::kS32 ? 4 : 1; }

// Address of element (i0..i3) of a pattern in iteration `it`.
inline int64_t ApAddr(const aie::AccessPattern& ap, int64_t it, const int64_t idx[4]) {
  int64_t a = ap.base + (it & 1) * ap.pong;
  for (int d = 0; d < 4; ++d) a += (ap.start[d] + it * ap.step[d] + idx[d]) * ap.stride[d];
  return a;
}

// Whether element idx of a source pattern is inside every bounded dimension.
inline bool ApInBounds(const aie::AccessPattern& ap, int64_t it, const int64_t idx[4]) {
  for (int d = 0; d < 4; ++d) {
    if (ap.bound[d] <= 0) continue;
    const int64_t v = ap.start[d] + it * ap.step[d] + idx[d];
    if (v < 0 || v >= ap.bound[d]) return false;
  }
  return true;
}

// Visits every element of a pattern in order (dimension 0 fastest).
template <typename F>
Status ForEachElem(const aie::AccessPattern& ap, F&& f) {
  int64_t idx[4];
  int64_t k = 0;
  for (idx[3] = 0; idx[3] < ap.size[3]; ++idx[3])
    for (idx[2] = 0; idx[2] < ap.size[2]; ++idx[2])
      for (idx[1] = 0; idx[1] < ap.size[1]; ++idx[1])
        for (idx[0] = 0; idx[0] < ap.size[0]; ++idx[0]) {
          WBS_RETURN_IF_ERROR(f(idx, k));
          ++k;
        }
  return Status::Ok();
}

int32_t LoadLe32(const uint8_t* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return static_cast<int32_t>(v);
}

}  // namespace

// ---------------------------------------------------------------- setup

Result<Simulator> Simulator::Create(const aie::Program& program, const aie::Target& target,
                                    const SimOptions& options) {
  Simulator s;
  s.p_ = program;
  s.t_ = target;
  s.o_ = options;
  s.eff_ = options.mac_efficiency > 0 ? options.mac_efficiency : target.core.mac_efficiency;
  const aie::Program& p = s.p_;
  if (p.rows > target.rows || p.cols > target.cols || p.rows <= 0 || p.cols <= 0)
    return InvalidArgument("program for a {}x{} grid, target {} is {}x{}", p.rows, p.cols,
                           target.name, target.rows, target.cols);
  if (p.memtiles > target.num_memtiles())
    return InvalidArgument("program uses {} memtiles, target {} has {}", p.memtiles, target.name,
                           target.num_memtiles());
  if (p.core_bytes > target.core.data_memory_bytes)
    return InvalidArgument("fault: core memory {} bytes exceeds the core's {} bytes (target {})",
                           p.core_bytes, target.core.data_memory_bytes, target.name);
  if (p.memtile_bytes > target.memtile.bytes)
    return InvalidArgument(
        "fault: memtile memory {} bytes exceeds the memtile capacity {} bytes (target {})",
        p.memtile_bytes, target.memtile.bytes, target.name);
  s.ddr_.name = "ddr";
  s.ddr_.data.assign(static_cast<size_t>(p.ddr_bytes), 0);
  s.ddr_.init.assign(static_cast<size_t>(p.ddr_bytes), 0);
  s.ddr_.buffer_limit = p.ddr_bytes;
  s.ddr_writable_.assign(static_cast<size_t>(p.ddr_bytes), 0);
  for (const aie::DdrSymbol& y : p.symbols) {
    if (y.addr < 0 || y.size < 0 || y.addr + y.size > p.ddr_bytes)
      return InvalidArgument("fault: symbol {} [{}, {}) outside DDR ({} bytes)", y.name, y.addr,
                             y.addr + y.size, p.ddr_bytes);
    if (y.kind == aie::DdrSymbol::Kind::kConst) {
      std::copy(y.data.begin(), y.data.end(), s.ddr_.data.begin() + y.addr);
      std::fill_n(s.ddr_.init.begin() + y.addr, y.data.size(), 1);
    }
    if (y.kind == aie::DdrSymbol::Kind::kOutput || y.kind == aie::DdrSymbol::Kind::kScratch)
      std::fill_n(s.ddr_writable_.begin() + y.addr, y.size, 1);
  }
  for (int i = 0; i < p.memtiles; ++i) {
    Mem m;
    m.name = aie::MemSpaceName(MemSpace::Memtile(i));
    m.data.assign(static_cast<size_t>(p.memtile_bytes), 0);
    m.init.assign(static_cast<size_t>(p.memtile_bytes), 0);
    m.buffer_limit = p.memtile_bytes;
    s.memtiles_.push_back(std::move(m));
  }
  for (int r = 0; r < p.rows; ++r)
    for (int c = 0; c < p.cols; ++c) {
      Mem m;
      m.name = aie::MemSpaceName(MemSpace::Core(r, c));
      m.data.assign(static_cast<size_t>(p.core_bytes), 0);
      m.init.assign(static_cast<size_t>(p.core_bytes), 0);
      // Buffers live below core_buffer_bytes(); the banks above are the kernel's scratch.
      m.buffer_limit = std::min<int64_t>(p.core_bytes, target.core_buffer_bytes());
      s.cores_.push_back(std::move(m));
    }
  for (const aie::Program::LockInit& l : p.locks) {
    s.locks_[LockKey(l.tile, l.id)] += l.value;
    s.tokens_[LockKey(l.tile, l.id)].push_back({0.0, l.value, -1});
  }
  s.stats_.layers.resize(p.layers.size());
  for (size_t i = 0; i < p.layers.size(); ++i) {
    s.stats_.layers[i].name = p.layers[i].name;
    s.stats_.layers[i].op = p.layers[i].op;
  }
  return s;
}

Simulator::Mem* Simulator::Space(const MemSpace& m) {
  switch (m.kind) {
    case MemKind::kDdr:
      return &ddr_;
    case MemKind::kMemtile:
      if (m.index < 0 || m.index >= static_cast<int>(memtiles_.size())) return nullptr;
      return &memtiles_[static_cast<size_t>(m.index)];
    case MemKind::kCore:
      if (m.index < 0 || m.index >= p_.rows || m.col < 0 || m.col >= p_.cols) return nullptr;
      return &cores_[static_cast<size_t>(m.index * p_.cols + m.col)];
  }
  return nullptr;
}

std::vector<uint8_t>* Simulator::memory(const MemSpace& m) {
  Mem* s = Space(m);
  return s ? &s->data : nullptr;
}

// The tensor bytes of a symbol: its shape's elements (the symbol's size may
// be padded to an alignment), or its whole size without a shape.
static int64_t TensorBytes(const aie::DdrSymbol& y) {
  if (y.shape.empty()) return y.size;
  int64_t n = y.type == OutType::kS32 ? 4 : 1;
  for (int64_t d : y.shape) n *= d;
  return std::min(n, y.size);
}

Status Simulator::SetInput(const std::string& symbol, const std::vector<uint8_t>& bytes) {
  for (const aie::DdrSymbol& y : p_.symbols) {
    if (y.name != symbol) continue;
    const int64_t n = TensorBytes(y);
    if (static_cast<int64_t>(bytes.size()) != n)
      return InvalidArgument("input {}: {} bytes, the symbol's tensor has {}", symbol, bytes.size(),
                             n);
    std::copy(bytes.begin(), bytes.end(), ddr_.data.begin() + y.addr);
    std::fill_n(ddr_.init.begin() + y.addr, n, 1);
    return Status::Ok();
  }
  return NotFound("no DDR symbol '{}' in the program", symbol);
}

Result<std::vector<uint8_t>> Simulator::ReadSymbol(const std::string& symbol) const {
  for (const aie::DdrSymbol& y : p_.symbols) {
    if (y.name != symbol) continue;
    const int64_t n = TensorBytes(y);
    for (int64_t a = y.addr; a < y.addr + n; ++a)
      if (!ddr_.init[static_cast<size_t>(a)])
        return FailedPrecondition("fault: symbol {} byte {} (ddr:0x{:x}) was never written", symbol,
                                  a - y.addr, a);
    return std::vector<uint8_t>(ddr_.data.begin() + y.addr, ddr_.data.begin() + y.addr + n);
  }
  return NotFound("no DDR symbol '{}' in the program", symbol);
}

std::string Simulator::Where() const {
  if (!cur_) return "setup";
  const int layer = cur_->layer;
  const std::string lname = layer >= 0 && layer < static_cast<int>(p_.layers.size())
                                ? p_.layers[static_cast<size_t>(layer)].name
                                : "-";
  return fmt::format("block {} iteration {} instruction {} ({} L{} {})", cur_block_, cur_it_,
                     cur_index_, aie::OpcodeName(cur_->op), layer, lname);
}

// ---------------------------------------------------------------- run

Status Simulator::Run() {
  // The static estimate unless the compiler's was set: the compiler's time
  // model is the schedule aie::Timeline computes (aie/passes/time_model.cc),
  // per layer the increment of the schedule's end.
  const bool estimate = estimate_source_ == kTimelineSource;
  aie::Timeline tl(t_, eff_, p_);
  std::vector<double> est_end(stats_.layers.size(), 0.0);
  for (size_t b = 0; b < p_.blocks.size(); ++b) {
    const aie::Block& blk = p_.blocks[b];
    for (int64_t it = 0; it < blk.iterations; ++it)
      for (size_t i = 0; i < blk.instrs.size(); ++i) {
        const Instruction& in = blk.instrs[i];
        WBS_RETURN_IF_ERROR(Execute(in, static_cast<int>(b), it, static_cast<int>(i)));
        if (!estimate) continue;
        const aie::Timeline::Slot slot = tl.Schedule(in, it);
        if (in.layer >= 0)
          est_end[static_cast<size_t>(in.layer)] =
              std::max(est_end[static_cast<size_t>(in.layer)], slot.end);
      }
  }
  if (estimate) {
    double frontier = 0;
    for (size_t l = 0; l < est_end.size(); ++l) {
      stats_.layers[l].estimate = std::max(0.0, est_end[l] - frontier);
      frontier = std::max(frontier, est_end[l]);
    }
    stats_.estimate_cycles = tl.horizon();
  }
  stats_.total_cycles = horizon_;
  Finish();
  cur_ = nullptr;
  return Status::Ok();
}

Status Simulator::Execute(const Instruction& in, int block, int64_t it, int index) {
  cur_ = &in;
  cur_block_ = block;
  cur_it_ = it;
  cur_index_ = index;
  if (in.layer >= static_cast<int>(p_.layers.size()))
    return InvalidArgument("fault: {}: layer {} out of range ({} layers)", Where(), in.layer,
                           p_.layers.size());
  // Locks: acquires must succeed in program order.
  auto lock_limit = [&](const MemSpace& m) {
    return m.kind == MemKind::kCore      ? t_.core.locks
           : m.kind == MemKind::kMemtile ? t_.memtile.locks
                                         : t_.ddr.shim_locks;
  };
  for (const aie::LockOp& l : in.acquire) {
    const int id = l.id + (l.pingpong ? static_cast<int>(it & 1) : 0);
    if (!Space(l.tile))
      return InvalidArgument("fault: {}: lock on unknown tile {}", Where(),
                             aie::MemSpaceName(l.tile));
    if (id < 0 || id >= lock_limit(l.tile))
      return InvalidArgument("fault: {}: lock {}:{} out of range (tile has {} locks)", Where(),
                             aie::MemSpaceName(l.tile), id, lock_limit(l.tile));
    int64_t& v = locks_[LockKey(l.tile, id)];
    if (v < l.value)
      return FailedPrecondition(
          "fault: deadlock: {}: acquire {}:{} needs {} but the lock holds {} and program order "
          "releases it only later "
          "(or never)",
          Where(), aie::MemSpaceName(l.tile), id, l.value, v);
    v -= l.value;
  }
  if (o_.functional) {
    switch (in.op) {
      case Opcode::kComp:
        WBS_RETURN_IF_ERROR(Comp(in, it));
        break;
      case Opcode::kFill:
        WBS_RETURN_IF_ERROR(Fill(in, it));
        break;
      default:
        WBS_RETURN_IF_ERROR(Transfer(in, it));
        break;
    }
  }
  for (const aie::LockOp& l : in.release) {
    const int id = l.id + (l.pingpong ? static_cast<int>(it & 1) : 0);
    if (!Space(l.tile))
      return InvalidArgument("fault: {}: lock on unknown tile {}", Where(),
                             aie::MemSpaceName(l.tile));
    if (id < 0 || id >= lock_limit(l.tile))
      return InvalidArgument("fault: {}: lock {}:{} out of range (tile has {} locks)", Where(),
                             aie::MemSpaceName(l.tile), id, lock_limit(l.tile));
    locks_[LockKey(l.tile, id)] += l.value;
  }
  Time(in, it);
  ++stats_.instructions;
  return Status::Ok();
}

Status Simulator::Transfer(const Instruction& in, int64_t it) {
  Mem* src = Space(in.src);
  if (!src)
    return InvalidArgument("fault: {}: unknown source space {}", Where(),
                           aie::MemSpaceName(in.src));
  if (in.dst.empty()) return InvalidArgument("fault: {}: transfer without a destination", Where());
  const aie::AccessPattern& sa = in.src_ap;
  const aie::AccessPattern& da = in.dst_ap;
  if (sa.elem != da.elem || (sa.elem != 1 && sa.elem != 4))
    return InvalidArgument("fault: {}: element sizes {} -> {}", Where(), sa.elem, da.elem);
  if (sa.elements() != da.elements())
    return InvalidArgument("fault: {}: source has {} elements, destination {}", Where(),
                           sa.elements(), da.elements());
  const int64_t e = sa.elem;
  std::vector<uint8_t> buf(static_cast<size_t>(sa.bytes()));
  uint8_t pad[4];
  const uint32_t pv = static_cast<uint32_t>(sa.pad_value);
  std::memcpy(pad, &pv, 4);
  if (e == 1) pad[0] = static_cast<uint8_t>(sa.pad_value & 0xff);
  const int64_t size = static_cast<int64_t>(src->data.size());
  WBS_RETURN_IF_ERROR(ForEachElem(sa, [&](const int64_t* idx, int64_t k) -> Status {
    uint8_t* out = &buf[static_cast<size_t>(k * e)];
    if (!ApInBounds(sa, it, idx)) {
      std::memcpy(out, pad, static_cast<size_t>(e));
      return Status::Ok();
    }
    const int64_t a = ApAddr(sa, it, idx);
    if (a < 0 || a + e > size)
      return InvalidArgument(
          "fault: out-of-range address: {}: read {}:0x{:x} ({} bytes) outside [0, 0x{:x})", Where(),
          src->name, a, e, size);
    for (int64_t j = 0; j < e; ++j)
      if (!src->init[static_cast<size_t>(a + j)])
        return FailedPrecondition("fault: uninitialised read: {}: {}:0x{:x} was never written",
                                  Where(), src->name, a + j);
    std::memcpy(out, &src->data[static_cast<size_t>(a)], static_cast<size_t>(e));
    return Status::Ok();
  }));
  for (const MemSpace& dm : in.dst) {
    Mem* dst = Space(dm);
    if (!dst)
      return InvalidArgument("fault: {}: unknown destination space {}", Where(),
                             aie::MemSpaceName(dm));
    const int64_t dsize = static_cast<int64_t>(dst->data.size());
    const bool is_ddr = dm.kind == MemKind::kDdr;
    WBS_RETURN_IF_ERROR(ForEachElem(da, [&](const int64_t* idx, int64_t k) -> Status {
      const int64_t a = ApAddr(da, it, idx);
      if (a < 0 || a + e > dsize)
        return InvalidArgument(
            "fault: out-of-range address: {}: write {}:0x{:x} ({} bytes) outside [0, 0x{:x})",
            Where(), dst->name, a, e, dsize);
      if (a + e > dst->buffer_limit)
        return InvalidArgument(
            "fault: write outside buffer: {}: {}:0x{:x} is above the buffer region [0, 0x{:x})",
            Where(), dst->name, a, dst->buffer_limit);
      if (is_ddr)
        for (int64_t j = 0; j < e; ++j)
          if (!ddr_writable_[static_cast<size_t>(a + j)])
            return InvalidArgument(
                "fault: write outside buffer: {}: ddr:0x{:x} is not in an output or scratch symbol",
                Where(), a + j);
      std::memcpy(&dst->data[static_cast<size_t>(a)], &buf[static_cast<size_t>(k * e)],
                  static_cast<size_t>(e));
      std::memset(&dst->init[static_cast<size_t>(a)], 1, static_cast<size_t>(e));
      return Status::Ok();
    }));
  }
  stats_.bytes_moved += sa.bytes() * static_cast<int64_t>(in.dst.size());
  return Status::Ok();
}

Status Simulator::Fill(const Instruction& in, int64_t it) {
  if (in.dst.empty()) return InvalidArgument("fault: {}: FILL without a destination", Where());
  for (const MemSpace& dm : in.dst) {
    Mem* dst = Space(dm);
    if (!dst)
      return InvalidArgument("fault: {}: unknown destination space {}", Where(),
                             aie::MemSpaceName(dm));
    const int64_t dsize = static_cast<int64_t>(dst->data.size());
    const int64_t e = in.dst_ap.elem;
    const uint32_t fv = static_cast<uint32_t>(in.fill_value);
    WBS_RETURN_IF_ERROR(ForEachElem(in.dst_ap, [&](const int64_t* idx, int64_t) -> Status {
      const int64_t a = ApAddr(in.dst_ap, it, idx);
      if (a < 0 || a + e > dsize)
        return InvalidArgument(
            "fault: out-of-range address: {}: fill {}:0x{:x} outside [0, 0x{:x})", Where(),
            dst->name, a, dsize);
      if (a + e > dst->buffer_limit)
        return InvalidArgument(
            "fault: write outside buffer: {}: {}:0x{:x} is above the buffer region [0, 0x{:x})",
            Where(), dst->name, a, dst->buffer_limit);
      if (e == 4)
        std::memcpy(&dst->data[static_cast<size_t>(a)], &fv, 4);
      else
        for (int64_t j = 0; j < e; ++j)
          dst->data[static_cast<size_t>(a + j)] = static_cast<uint8_t>(fv & 0xff);
      std::memset(&dst->init[static_cast<size_t>(a)], 1, static_cast<size_t>(e));
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- COMP

namespace {

// A core's memory as COMP sees it: checked reads and writes.
struct CoreView {
  Simulator::Mem* m;
  std::string where;
  Status Check(int64_t a, int64_t n, bool write) const {
    const int64_t size = static_cast<int64_t>(m->data.size());
    if (a < 0 || a + n > size)
      return InvalidArgument(
          "fault: out-of-range address: {}: COMP {} {}:[0x{:x}, 0x{:x}) outside [0, 0x{:x})", where,
          write ? "writes" : "reads", m->name, a, a + n, size);
    if (write) {
      if (a + n > m->buffer_limit)
        return InvalidArgument(
            "fault: write outside buffer: {}: COMP writes {}:[0x{:x}, 0x{:x}) above the buffer "
            "region [0, 0x{:x})",
            where, m->name, a, a + n, m->buffer_limit);
    } else {
      const uint8_t* p = &m->init[static_cast<size_t>(a)];
      const void* z = std::memchr(p, 0, static_cast<size_t>(n));
      if (z)
        return FailedPrecondition(
            "fault: uninitialised read: {}: COMP reads {}:0x{:x}, never written", where, m->name,
            a + (static_cast<const uint8_t*>(z) - p));
    }
    return Status::Ok();
  }
  int32_t Get(int64_t a, OutType t) const {
    const uint8_t* p = &m->data[static_cast<size_t>(a)];
    switch (t) {
      case OutType::kU8:
        return *p;
      case OutType::kS8:
        return static_cast<int8_t>(*p);
      case OutType::kS32:
        return LoadLe32(p);
    }
    return 0;
  }
  void Put(int64_t a, OutType t, int32_t v) const {
    uint8_t* p = &m->data[static_cast<size_t>(a)];
    if (t == OutType::kS32) {
      const uint32_t u = static_cast<uint32_t>(v);
      std::memcpy(p, &u, 4);
      std::memset(&m->init[static_cast<size_t>(a)], 1, 4);
    } else {
      *p = static_cast<uint8_t>(v & 0xff);
      m->init[static_cast<size_t>(a)] = 1;
    }
  }
};

Status CompConv(const CoreView& v, const aie::CompParams& c, int64_t it) {
  const int64_t wa = c.weights.at(it);
  // The time model and this simulator's schedule order the COMP by its
  // declared footprint (aie::ForEachAccess: `weights_bytes` from `weights`);
  // a blob byte read outside it would be a read no hazard protects (a load
  // of the next blob could overwrite it while the COMP runs), so it faults.
  auto undeclared = [&](int64_t n) {
    return InvalidArgument(
        "fault: undeclared read: {}: COMP reads the weight blob {}:[0x{:x}, 0x{:x}) but declares "
        "only {} bytes (wbytes)",
        v.where, v.m->name, wa, wa + n, c.weights_bytes);
  };
  if (c.weights_bytes < aie::kBlobHeaderBytes) return undeclared(aie::kBlobHeaderBytes);
  WBS_RETURN_IF_ERROR(v.Check(wa, aie::kBlobHeaderBytes, false));
  const uint8_t* base = &v.m->data[static_cast<size_t>(wa)];
  auto hdr = [&](int i) { return LoadLe32(base + 4 * i); };
  if (hdr(0) != aie::kBlobMagic)
    return InvalidArgument("fault: {}: no weight blob at {}:0x{:x} (magic 0x{:08x})", v.where,
                           v.m->name, wa, static_cast<uint32_t>(hdr(0)));
  aie::BlobHeader h;
  h.br = hdr(1), h.bc = hdr(2), h.kh = hdr(3), h.kw = hdr(4), h.block_rows = hdr(5), h.nnz = hdr(6),
  h.cin = hdr(7), h.flags = hdr(8);
  if (h.flags & ~(aie::kBlobBias | aie::kBlobRequant))
    return InvalidArgument("fault: {}: weight blob at {}:0x{:x} has unknown flags 0x{:x}", v.where,
                           v.m->name, wa, static_cast<uint32_t>(h.flags));
  // A requantizing COMP needs the blob's (M, S): only a CIN split's last part has them alone.
  if (c.out_type != OutType::kS32 && !(h.flags & aie::kBlobRequant))
    return InvalidArgument(
        "fault: {}: COMP requantizes to {} but the weight blob at {}:0x{:x} has no mult/shift",
        v.where, c.out_type == OutType::kU8 ? "u8" : "s8", v.m->name, wa);
  if (h.br <= 0 || h.bc <= 0 || h.bc % 4 || h.kh != c.kh || h.kw != c.kw || h.block_rows < 0 ||
      h.nnz < 0 || static_cast<int64_t>(h.block_rows) * h.br < c.out_c)
    return InvalidArgument(
        "fault: {}: weight blob at {}:0x{:x} (br {} bc {} k {}x{} rows {}) does not match the COMP "
        "(out_c {} k {}x{})",
        v.where, v.m->name, wa, h.br, h.bc, h.kh, h.kw, h.block_rows, c.out_c, c.kh, c.kw);
  const int64_t blob = aie::BlobBytes(h);
  if (blob > c.weights_bytes) return undeclared(blob);
  WBS_RETURN_IF_ERROR(v.Check(wa, blob, false));
  const int taps = c.kh * c.kw;
  const int64_t rows = static_cast<int64_t>(h.block_rows) * h.br;
  const uint8_t* row_ptr = base + aie::kBlobHeaderBytes;
  const uint8_t* col_idx = row_ptr + 4 * (h.block_rows + 1);
  const uint8_t* bias = col_idx + 4 * static_cast<int64_t>(h.nnz);           // if kBlobBias
  const uint8_t* mult = bias + ((h.flags & aie::kBlobBias) ? 4 * rows : 0);  // if kBlobRequant
  const uint8_t* shift = mult + 4 * rows;
  const int8_t* values =
      reinterpret_cast<const int8_t*>((h.flags & aie::kBlobRequant) ? shift + 4 * rows : mult);
  const int64_t bs = static_cast<int64_t>(h.br) * h.bc * taps;
  if (c.groups <= 0 || c.in_c % c.groups || c.out_c % c.groups)
    return InvalidArgument("fault: {}: groups {} do not divide in_c {} / out_c {}", v.where,
                           c.groups, c.in_c, c.out_c);
  const int64_t cpg = c.in_c / c.groups, mpg = c.out_c / c.groups;
  const int64_t in_plane = static_cast<int64_t>(c.in_h) * c.in_w,
                out_plane = static_cast<int64_t>(c.out_h) * c.out_w;
  const int64_t ie = ElemBytes(c.in_type), oe = ElemBytes(c.out_type);
  const int64_t ia = c.in.at(it), oa = c.out.at(it);
  WBS_RETURN_IF_ERROR(v.Check(ia, c.in_c * in_plane * ie, false));
  if ((c.out_h - 1) * c.sh + (c.kh - 1) * c.dh >= c.in_h ||
      (c.out_w - 1) * c.sw + (c.kw - 1) * c.dw >= c.in_w)
    return InvalidArgument("fault: {}: output {}x{} needs a larger input window than {}x{}",
                           v.where, c.out_h, c.out_w, c.in_h, c.in_w);
  // The s32 partial of a CIN split: docs/AIE_PROGRAM.md says "already in
  // `out`"; the compiler keeps it in `in2` (typed s32) and writes a
  // requantized `out`, so an s32 `in2` is the partial, else `out`.
  const int64_t pa = c.in2_type == OutType::kS32 ? c.in2.at(it) : oa;
  if (c.accumulate) WBS_RETURN_IF_ERROR(v.Check(pa, c.out_c * out_plane * 4, false));
  WBS_RETURN_IF_ERROR(v.Check(oa, c.out_c * out_plane * oe, true));
  // The raw 8-bit input as the blob's bias expects it (s8: + 128).
  std::vector<int32_t> x(static_cast<size_t>(c.in_c * in_plane));
  for (int64_t i = 0; i < c.in_c * in_plane; ++i) {
    const int32_t r = v.Get(ia + i * ie, c.in_type);
    x[static_cast<size_t>(i)] = c.in_type == OutType::kS8 ? r + 128 : r;
  }
  std::vector<int32_t> acc(static_cast<size_t>(out_plane));
  for (int64_t m = 0; m < c.out_c; ++m) {
    const int64_t br = m / h.br, r = m % h.br, g = m / mpg;
    const int32_t b0 = (h.flags & aie::kBlobBias) ? LoadLe32(bias + 4 * m) : 0;
    for (int64_t p = 0; p < out_plane; ++p) {
      // Modulo 2^32 (the contract): accumulate in uint32.
      uint32_t a0 = static_cast<uint32_t>(b0);
      if (c.accumulate)
        a0 += static_cast<uint32_t>(v.Get(pa + (m * out_plane + p) * 4, OutType::kS32));
      acc[static_cast<size_t>(p)] = static_cast<int32_t>(a0);
    }
    const int32_t j0 = LoadLe32(row_ptr + 4 * br), j1 = LoadLe32(row_ptr + 4 * (br + 1));
    if (j0 < 0 || j1 < j0 || j1 > h.nnz)
      return InvalidArgument("fault: {}: weight blob row_ptr[{}] = {}..{} outside nnz {}", v.where,
                             br, j0, j1, h.nnz);
    for (int32_t j = j0; j < j1; ++j) {
      const int32_t col = LoadLe32(col_idx + 4 * j);
      for (int64_t qq = 0; qq < h.bc / 4; ++qq)
        for (int t = 0; t < taps; ++t)
          for (int l = 0; l < 4; ++l) {
            const int64_t k = static_cast<int64_t>(col) * h.bc + qq * 4 + l;
            const int32_t w = values[j * bs + ((qq * taps + t) * h.br + r) * 4 + l];
            if (w == 0) continue;
            if (k >= cpg)
              return InvalidArgument(
                  "fault: {}: weight blob block {} column {} reaches input channel {} of {}",
                  v.where, j, col, k, cpg);
            const int ky = t / c.kw, kx = t % c.kw;
            const int32_t* xc = &x[static_cast<size_t>((g * cpg + k) * in_plane)];
            for (int64_t oy = 0; oy < c.out_h; ++oy) {
              const int32_t* xr = xc + (oy * c.sh + ky * c.dh) * c.in_w + kx * c.dw;
              int32_t* ar = &acc[static_cast<size_t>(oy * c.out_w)];
              for (int64_t ox = 0; ox < c.out_w; ++ox)
                ar[ox] = static_cast<int32_t>(static_cast<uint32_t>(ar[ox]) +
                                              static_cast<uint32_t>(w) *
                                                  static_cast<uint32_t>(xr[ox * c.sw]));
            }
          }
    }
    const Requant rq = (h.flags & aie::kBlobRequant)
                           ? Requant{LoadLe32(mult + 4 * m), LoadLe32(shift + 4 * m)}
                           : Requant{0, 0};  // s32 output: not used
    for (int64_t p = 0; p < out_plane; ++p) {
      const int32_t a = acc[static_cast<size_t>(p)];
      const int64_t addr = oa + (m * out_plane + p) * oe;
      if (c.out_type == OutType::kS32)
        v.Put(addr, OutType::kS32, a);
      else
        v.Put(addr, c.out_type, Requantize(a, rq, c.out_zero, c.lo, c.hi));
    }
  }
  return Status::Ok();
}

Status CompElementwise(const CoreView& v, const aie::CompParams& c, int64_t it) {
  const int64_t n = static_cast<int64_t>(c.out_c) * c.out_h * c.out_w;
  const int64_t ie = ElemBytes(c.in_type), i2e = ElemBytes(c.in2_type), oe = ElemBytes(c.out_type);
  const int64_t ia = c.in.at(it), i2a = c.in2.at(it), oa = c.out.at(it);
  WBS_RETURN_IF_ERROR(v.Check(ia, n * ie, false));
  if (c.kind == CompKind::kAdd) WBS_RETURN_IF_ERROR(v.Check(i2a, n * i2e, false));
  WBS_RETURN_IF_ERROR(v.Check(oa, n * oe, true));
  if (c.kind == CompKind::kAdd) {
    const RequantPair rp{c.mult, c.mult2, c.shift};
    for (int64_t i = 0; i < n; ++i) {
      const int32_t a = v.Get(ia + i * ie, c.in_type), b = v.Get(i2a + i * i2e, c.in2_type);
      v.Put(oa + i * oe, c.out_type,
            RequantizeAdd(a - c.in_zero, b - c.in2_zero, rp, c.out_zero, c.lo, c.hi));
    }
  } else {
    const Requant rq{c.mult, c.shift};
    for (int64_t i = 0; i < n; ++i) {
      const int32_t a = v.Get(ia + i * ie, c.in_type);
      const int64_t y = static_cast<int64_t>(c.out_zero) + RequantizeRaw(a - c.in_zero, rq);
      v.Put(oa + i * oe, c.out_type, static_cast<int32_t>(std::clamp<int64_t>(y, c.lo, c.hi)));
    }
  }
  return Status::Ok();
}

Status CompPool(const CoreView& v, const aie::CompParams& c, int64_t it) {
  const int64_t ie = ElemBytes(c.in_type), oe = ElemBytes(c.out_type);
  const int64_t ia = c.in.at(it), oa = c.out.at(it);
  const int64_t in_plane = static_cast<int64_t>(c.in_h) * c.in_w,
                out_plane = static_cast<int64_t>(c.out_h) * c.out_w;
  if (c.out_c > c.in_c)
    return InvalidArgument("fault: {}: pool out_c {} > in_c {}", v.where, c.out_c, c.in_c);
  if ((c.out_h - 1) * c.sh + (c.kh - 1) * c.dh >= c.in_h ||
      (c.out_w - 1) * c.sw + (c.kw - 1) * c.dw >= c.in_w)
    return InvalidArgument("fault: {}: output {}x{} needs a larger input window than {}x{}",
                           v.where, c.out_h, c.out_w, c.in_h, c.in_w);
  WBS_RETURN_IF_ERROR(v.Check(ia, c.in_c * in_plane * ie, false));
  WBS_RETURN_IF_ERROR(v.Check(oa, c.out_c * out_plane * oe, true));
  const int64_t iy0 = c.y0 + it * c.y_step;
  for (int64_t ch = 0; ch < c.out_c; ++ch)
    for (int64_t oy = 0; oy < c.out_h; ++oy)
      for (int64_t ox = 0; ox < c.out_w; ++ox) {
        int64_t best = INT64_MIN, sum = 0, cnt = 0;
        for (int ky = 0; ky < c.kh; ++ky)
          for (int kx = 0; kx < c.kw; ++kx) {
            const int64_t ty = oy * c.sh + ky * c.dh, tx = ox * c.sw + kx * c.dw;
            const int32_t x = v.Get(ia + ((ch * c.in_h + ty) * c.in_w + tx) * ie, c.in_type);
            const int64_t y = iy0 + ty, xx = c.x0 + tx;
            const bool inside = y >= 0 && y < c.img_h && xx >= 0 && xx < c.img_w;
            if (c.kind == CompKind::kMaxPool) {
              // Taps outside the image are the pool's padding (-inf): a
              // conv-fused pool's scratch holds recomputed values there.
              if (inside || c.img_h <= 0 || c.img_w <= 0) best = std::max<int64_t>(best, x);
              continue;
            }
            if (inside) sum += x - c.in_zero;
            if (c.count_include_pad) {
              if (y >= -c.pad_begin_h && y < c.img_h + c.pad_end_h && xx >= -c.pad_begin_w &&
                  xx < c.img_w + c.pad_end_w)
                ++cnt;
            } else if (inside) {
              ++cnt;
            }
          }
        int64_t out;
        if (c.kind == CompKind::kMaxPool)
          out = best != INT64_MIN ? best : (c.out_type == OutType::kS8 ? -128 : 0);
        else
          out = cnt == 0 ? c.in_zero
                         : std::clamp<int64_t>(c.in_zero + RoundDivHalfUp(sum, cnt), c.lo, c.hi);
        v.Put(oa + (ch * out_plane + oy * c.out_w + ox) * oe, c.out_type,
              static_cast<int32_t>(out));
      }
  return Status::Ok();
}

}  // namespace

Status Simulator::Comp(const Instruction& in, int64_t it) {
  if (in.cores.empty()) return InvalidArgument("fault: {}: COMP without cores", Where());
  std::vector<CoreView> views;
  for (const MemSpace& m : in.cores) {
    Mem* s = m.kind == MemKind::kCore ? Space(m) : nullptr;
    if (!s)
      return InvalidArgument("fault: {}: COMP on {} which is not a core of the grid", Where(),
                             aie::MemSpaceName(m));
    views.push_back({s, fmt::format("{} on {}", Where(), s->name)});
  }
  auto run = [&](const CoreView& v) -> Status {
    switch (in.comp.kind) {
      case CompKind::kConv:
        return CompConv(v, in.comp, it);
      case CompKind::kAdd:
      case CompKind::kRescale:
        return CompElementwise(v, in.comp, it);
      case CompKind::kMaxPool:
      case CompKind::kAvgPool:
        return CompPool(v, in.comp, it);
      default:
        return InvalidArgument("fault: {}: unknown COMP kind", v.where);
    }
  };
  // Cores of one COMP are independent (own memories): threads when the work pays for them.
  const int hw = o_.threads > 0
                     ? o_.threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int nthreads = std::min<int>(hw, static_cast<int>(views.size()));
  std::vector<Status> st(views.size());
  if (nthreads > 1 && in.comp.macs_dense >= (1 << 18)) {
    std::vector<std::thread> pool;
    for (int tI = 0; tI < nthreads; ++tI)
      pool.emplace_back([&, tI] {
        for (size_t i = static_cast<size_t>(tI); i < views.size();
             i += static_cast<size_t>(nthreads))
          st[i] = run(views[i]);
      });
    for (std::thread& th : pool) th.join();
  } else {
    for (size_t i = 0; i < views.size(); ++i) st[i] = run(views[i]);
  }
  for (const Status& s : st) WBS_RETURN_IF_ERROR(s);
  stats_.macs += in.comp.macs * static_cast<int64_t>(views.size());
  return Status::Ok();
}

// ---------------------------------------------------------------- timing

void Simulator::Time(const Instruction& in, int64_t it) {
  const int64_t self = static_cast<int64_t>(instances_.size());
  Instance inst;
  inst.layer = in.layer;
  inst.op = in.op;
  // Ready: the release time of every lock token this instruction consumes
  // (FIFO) and its data hazards (read after write, write after read/write)
  // on the touched address ranges: what orders the instructions the
  // compiler leaves without locks (program order is their only
  // synchronisation).
  double ready = 0;
  auto wait_for = [&](double t, int64_t by, WaitKind k) {
    if (t > ready || (t == ready && inst.pred < 0 && by >= 0)) {
      ready = t;
      inst.pred = by;
      inst.wait = by >= 0 ? k : WaitKind::kNone;
    }
  };
  accesses_.clear();
  aie::ForEachAccess(in, it, [&](const MemSpace& m, const aie::Footprint& f, bool write) {
    accesses_.push_back({m, f, write});
  });
  for (const bool w : {false, true})
    for (const Access& a : accesses_)
      if (a.write == w) {
        const aie::HazardTracker::Wait h = hazards_.Conflict(a.space, a.f, w);
        wait_for(h.end, h.by, WaitKind::kData);
      }
  for (const aie::LockOp& l : in.acquire) {
    const int id = l.id + (l.pingpong ? static_cast<int>(it & 1) : 0);
    auto& q = tokens_[LockKey(l.tile, id)];
    int64_t need = l.value;
    size_t i = 0;
    while (need > 0 && i < q.size()) {
      wait_for(q[i].time, q[i].by, WaitKind::kLock);
      const int64_t take = std::min(need, q[i].count);
      q[i].count -= take;
      need -= take;
      if (q[i].count == 0) ++i;
    }
    q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(i));
  }
  // Resources and duration: the earliest-free channel of each group (the
  // program does not name DMA channels; aie/timeline.h binds them the same
  // way). A channel serves one transfer at a time, so two transfers that
  // need the same one serialize (contention); a broadcast occupies one
  // input channel of every receiving core for the one transfer.
  std::vector<std::vector<std::string>> groups;
  double dur = 0;
  const int64_t bytes = in.bytes();
  auto chans = [](const std::string& prefix, int n) {
    std::vector<std::string> v;
    for (int i = 0; i < std::max(1, n); ++i) v.push_back(fmt::format("{}{}", prefix, i));
    return v;
  };
  switch (in.op) {
    case Opcode::kLoad:
    case Opcode::kLoadW:
      for (const MemSpace& d : in.dst)
        groups.push_back(
            chans(fmt::format("shim{}.mm2s", d.index), t_.ddr.read_channels_per_memtile));
      dur = t_.transfer_cycles(aie::Link::kDdrToMemtile, bytes);
      break;
    case Opcode::kWrite:
      groups.push_back(
          chans(fmt::format("shim{}.s2mm", in.src.index), t_.ddr.write_channels_per_memtile));
      dur = t_.transfer_cycles(aie::Link::kMemtileToDdr, bytes);
      break;
    case Opcode::kLoadFm:
    case Opcode::kLoadWm:
      groups.push_back(
          chans(fmt::format("{}.mm2s", aie::MemSpaceName(in.src)), t_.memtile.dma_out_channels));
      for (const MemSpace& d : in.dst)
        groups.push_back(
            chans(fmt::format("{}.s2mm", aie::MemSpaceName(d)), t_.core.dma_in_channels));
      dur = t_.transfer_cycles(aie::Link::kMemtileToCore, bytes);
      break;
    case Opcode::kWriteFm:
      groups.push_back(
          chans(fmt::format("{}.mm2s", aie::MemSpaceName(in.src)), t_.core.dma_out_channels));
      for (const MemSpace& d : in.dst)
        groups.push_back(
            chans(fmt::format("{}.s2mm", aie::MemSpaceName(d)), t_.memtile.dma_in_channels));
      dur = t_.transfer_cycles(aie::Link::kCoreToMemtile, bytes);
      break;
    case Opcode::kComp:
      for (const MemSpace& c : in.cores)
        groups.push_back({fmt::format("{}.core", aie::MemSpaceName(c))});
      dur = aie::CompCycles(t_, in.comp, eff_);
      break;
    default:
      break;
  }
  double start = ready;
  std::vector<Busy*> res;
  std::vector<const std::string*> res_names;
  for (const auto& g : groups) {
    Busy* best = nullptr;
    const std::string* name = nullptr;
    for (const std::string& r : g) {
      Busy* b = &free_at_[r];
      if (!best || b->free < best->free) best = b, name = &r;
    }
    res.push_back(best);
    res_names.push_back(name);
    if (best->free > start) {
      start = best->free;
      inst.pred = best->by;
      inst.wait = WaitKind::kResource;
    }
  }
  const double end = start + dur;
  for (size_t i = 0; i < res.size(); ++i) {
    res[i]->free = end;
    res[i]->by = self;
    stats_.resource_busy[*res_names[i]] += dur;
  }
  if (!res_names.empty()) {
    auto [rit, fresh] = resource_ids_.emplace(*res_names[0], 0);
    if (fresh) {
      rit->second = static_cast<int32_t>(resource_names_.size());
      resource_names_.push_back(*res_names[0]);
    }
    inst.resource = rit->second;
  }
  for (const aie::LockOp& l : in.release) {
    const int id = l.id + (l.pingpong ? static_cast<int>(it & 1) : 0);
    tokens_[LockKey(l.tile, id)].push_back({end, l.value, self});
  }
  for (const bool w : {false, true})
    for (const Access& a : accesses_)
      if (a.write == w) hazards_.Record(a.space, a.f, end, w, self);
  horizon_ = std::max(horizon_, end);
  inst.start = start;
  inst.end = end;
  instances_.push_back(inst);
  if (in.layer >= 0) {
    LayerStats& L = stats_.layers[static_cast<size_t>(in.layer)];
    L.start = L.start < 0 ? start : std::min(L.start, start);
    L.end = std::max(L.end, end);
    ++L.instructions;
    if (in.op == Opcode::kComp)
      L.compute_busy += dur * static_cast<double>(in.cores.size());
    else if (in.op != Opcode::kFill)
      L.link_busy += dur * static_cast<double>(res.size());
  }
  if (static_cast<int64_t>(trace_.size()) < o_.max_trace_events && !res.empty()) {
    const std::string lname =
        in.layer >= 0 ? p_.layers[static_cast<size_t>(in.layer)].name : std::string("-");
    for (const std::string* r : res_names)
      trace_.push_back(
          {fmt::format("{} {}", aie::OpcodeName(in.op), lname), *r, in.layer, start, end});
  }
}

void Simulator::Finish() {
  // Incremental cycles: how far each layer pushed the network's completion.
  double done = 0;
  for (LayerStats& L : stats_.layers) {
    const double d = std::max(done, L.end);
    L.incremental = d - done;
    done = d;
  }
  // Critical path per layer: from its last-ending instance back along the
  // edges that released each instance, while inside the layer's window
  // (after the previous layers' completion).
  std::vector<int64_t> last(stats_.layers.size(), -1);
  for (int64_t i = 0; i < static_cast<int64_t>(instances_.size()); ++i) {
    const Instance& x = instances_[static_cast<size_t>(i)];
    if (x.layer < 0) continue;
    int64_t& l = last[static_cast<size_t>(x.layer)];
    if (l < 0 || x.end >= instances_[static_cast<size_t>(l)].end) l = i;
  }
  done = 0;
  for (size_t li = 0; li < stats_.layers.size(); ++li) {
    LayerStats& L = stats_.layers[li];
    const double lo = done;
    done = std::max(done, L.end);
    std::map<std::string, CriticalShare> by_op;
    std::map<std::string, std::map<int32_t, double>> by_res;
    for (int64_t i = last[li]; i >= 0;) {
      const Instance& x = instances_[static_cast<size_t>(i)];
      if (x.end <= lo) break;
      const double c = x.end - std::max(x.start, lo);
      if (c > 0) {
        const std::string op = aie::OpcodeName(x.op);
        CriticalShare& s = by_op[op];
        s.op = op;
        s.cycles += c;
        s.after[static_cast<int>(x.wait)] += c;
        if (x.resource >= 0) by_res[op][x.resource] += c;
      }
      if (x.start <= lo) break;
      i = x.pred;
    }
    for (auto& [op, s] : by_op) {
      double best = -1;
      for (const auto& [r, c] : by_res[op])
        if (c > best) best = c, s.resource = resource_names_[static_cast<size_t>(r)];
      L.critical.push_back(s);
    }
    std::sort(L.critical.begin(), L.critical.end(),
              [](const CriticalShare& a, const CriticalShare& b) { return a.cycles > b.cycles; });
  }
  instances_.clear();
  instances_.shrink_to_fit();
}

// ---------------------------------------------------------------- reports

const char* WaitKindName(WaitKind k) {
  switch (k) {
    case WaitKind::kNone:
      return "none";
    case WaitKind::kLock:
      return "lock";
    case WaitKind::kData:
      return "data";
    case WaitKind::kResource:
      return "channel";
  }
  return "?";
}

Status Simulator::SetLayerEstimates(const std::vector<double>& cycles, const std::string& source) {
  if (cycles.size() != stats_.layers.size())
    return InvalidArgument("{}: {} layer estimates, the program has {} layers", source,
                           cycles.size(), stats_.layers.size());
  stats_.estimate_cycles = 0;
  for (size_t i = 0; i < cycles.size(); ++i) {
    stats_.layers[i].estimate = cycles[i];
    stats_.estimate_cycles += cycles[i];
  }
  estimate_source_ = source;
  return Status::Ok();
}

namespace {

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

// "COMP 61% (c0.0.core, after lock)": an opcode's share of the critical
// path, the resource it ran on, and the edge most of it started after.
std::string DescribeShare(const CriticalShare& c, double total) {
  int w = 0;
  for (int k = 1; k < 4; ++k)
    if (c.after[k] > c.after[w]) w = k;
  return fmt::format(
      "{} {:.0f}% ({}{}{})", c.op, 100.0 * Ratio(c.cycles, total), c.resource,
      c.resource.empty() ? "" : ", ",
      w == 0 ? "no wait" : fmt::format("after {}", WaitKindName(static_cast<WaitKind>(w))));
}

std::string Critical(const LayerStats& L, size_t n) {
  double total = 0;
  for (const CriticalShare& c : L.critical) total += c.cycles;
  std::string s;
  for (size_t k = 0; k < std::min(n, L.critical.size()); ++k)
    s += (k ? ", " : "") + DescribeShare(L.critical[k], total);
  return s;
}

}  // namespace

std::string Simulator::Report() const {
  std::string s = fmt::format(
      "# sim cycles = how far the layer moved the network's completion (layers overlap; the sum is "
      "the total); span = its first start to last end; estimate: {}\n",
      estimate_source_);
  s += fmt::format("{:<4} {:<24} {:<10} {:>12} {:>12} {:>12} {:>8} {:>6} {:>6}  {}\n", "#", "layer",
                   "op", "sim cycles", "estimate", "span", "sim/est", "core%", "link%",
                   "critical path (top instructions)");
  const int cores = p_.rows * p_.cols;
  const double links = static_cast<double>(std::max<size_t>(
      1, stats_.resource_busy.size() - std::min<size_t>(stats_.resource_busy.size(), cores)));
  for (size_t i = 0; i < stats_.layers.size(); ++i) {
    const LayerStats& L = stats_.layers[i];
    const double span = L.cycles();
    const double core_util = span > 0 ? 100.0 * L.compute_busy / (span * cores) : 0;
    const double link_util = span > 0 ? 100.0 * L.link_busy / (span * links) : 0;
    s += fmt::format(
        "{:<4} {:<24} {:<10} {:>12.0f} {:>12.0f} {:>12.0f} {:>8.3f} {:>6.1f} {:>6.1f}  {}\n", i,
        L.name, L.op, L.incremental, L.estimate, span, Ratio(L.incremental, L.estimate), core_util,
        link_util, Critical(L, 3));
  }
  const double tot = stats_.total_cycles, est = stats_.estimate_cycles;
  s += fmt::format(
      "total: {:.0f} cycles ({:.3f} ms at {} GHz), estimate {:.0f} cycles, sim/est {:.3f}; {} "
      "instructions, {} bytes moved, {} MACs\n",
      tot, t_.cycles_to_seconds(tot) * 1e3, t_.clock_ghz, est, Ratio(tot, est), stats_.instructions,
      stats_.bytes_moved, stats_.macs);
  if (est > 0 && std::abs(tot / est - 1) > 0.15) {
    s += "differs by more than 15%; largest gaps:\n";
  } else {
    s += "within 15% of the estimate; largest layer gaps:\n";
  }
  // The layers that cause the difference (largest absolute gap first) and
  // the instructions on their critical paths.
  std::vector<std::pair<double, size_t>> gap;
  for (size_t i = 0; i < stats_.layers.size(); ++i)
    gap.push_back({std::abs(stats_.layers[i].incremental - stats_.layers[i].estimate), i});
  std::sort(gap.rbegin(), gap.rend());
  if (gap.empty() || gap.front().first <= 0.5)
    s += "  none: every layer's simulated cycles equal its estimate\n";
  for (size_t k = 0; k < std::min<size_t>(5, gap.size()) && gap[k].first > 0.5; ++k) {
    const LayerStats& L = stats_.layers[gap[k].second];
    s += fmt::format("  {} {:.0f} vs {:.0f} ({:+.0f}): {}\n", L.name, L.incremental, L.estimate,
                     L.incremental - L.estimate, Critical(L, 4));
  }
  return s;
}

std::string Simulator::ReportJson() const {
  nlohmann::json layers = nlohmann::json::array();
  const int cores = p_.rows * p_.cols;
  for (size_t i = 0; i < stats_.layers.size(); ++i) {
    const LayerStats& L = stats_.layers[i];
    const double span = L.cycles();
    double total = 0;
    for (const CriticalShare& c : L.critical) total += c.cycles;
    nlohmann::json crit = nlohmann::json::array();
    for (const CriticalShare& c : L.critical)
      crit.push_back({{"op", c.op},
                      {"cycles", c.cycles},
                      {"share", Ratio(c.cycles, total)},
                      {"resource", c.resource},
                      {"after_none", c.after[0]},
                      {"after_lock", c.after[1]},
                      {"after_data", c.after[2]},
                      {"after_channel", c.after[3]}});
    const bool differs = L.estimate > 0 && std::abs(L.incremental / L.estimate - 1) > 0.15;
    layers.push_back({{"index", i},
                      {"name", L.name},
                      {"op", L.op},
                      {"sim_cycles", L.incremental},
                      {"est_cycles", L.estimate},
                      {"sim_over_est", Ratio(L.incremental, L.estimate)},
                      {"differs", differs},
                      {"start", L.start < 0 ? 0.0 : L.start},
                      {"end", L.end},
                      {"span_cycles", span},
                      {"core_util", span > 0 ? L.compute_busy / (span * cores) : 0.0},
                      {"compute_busy", L.compute_busy},
                      {"link_busy", L.link_busy},
                      {"instructions", L.instructions},
                      {"critical", crit}});
  }
  const double tot = stats_.total_cycles, est = stats_.estimate_cycles;
  nlohmann::json j = {{"target", t_.name},
                      {"clock_ghz", t_.clock_ghz},
                      {"sim_cycles", tot},
                      {"estimate_cycles", est},
                      {"estimate_source", estimate_source_},
                      {"sim_over_est", Ratio(tot, est)},
                      {"within_15pct", est > 0 && std::abs(tot / est - 1) <= 0.15},
                      {"sim_ms", t_.cycles_to_seconds(tot) * 1e3},
                      {"est_ms", t_.cycles_to_seconds(est) * 1e3},
                      {"instructions", stats_.instructions},
                      {"bytes_moved", stats_.bytes_moved},
                      {"macs", stats_.macs},
                      {"resource_busy", stats_.resource_busy},
                      {"layers", layers}};
  return j.dump(1);
}

std::string Simulator::TraceJson() const {
  // pid 0: shim DMA channels (DDR), pid 1: memtiles, pid 2: cores; a thread per channel / core.
  nlohmann::json ev = nlohmann::json::array();
  std::map<std::string, std::pair<int, int>> tracks;
  auto track = [&](const std::string& r) {
    auto it = tracks.find(r);
    if (it != tracks.end()) return it->second;
    const int pid = r.rfind("shim", 0) == 0 ? 0 : r.rfind("mt", 0) == 0 ? 1 : 2;
    const std::pair<int, int> v{pid, static_cast<int>(tracks.size()) + 1};
    tracks[r] = v;
    ev.push_back({{"name", "thread_name"},
                  {"ph", "M"},
                  {"pid", pid},
                  {"tid", v.second},
                  {"args", {{"name", r}}}});
    return v;
  };
  const char* pnames[] = {"DDR (shim DMA)", "memtiles", "cores"};
  for (int pid = 0; pid < 3; ++pid)
    ev.push_back(
        {{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"args", {{"name", pnames[pid]}}}});
  const double us = 1.0 / (t_.clock_ghz * 1e3);  // cycles -> microseconds
  for (const TraceEvent& e : trace_) {
    const auto [pid, tid] = track(e.resource);
    ev.push_back({{"name", e.name},
                  {"ph", "X"},
                  {"pid", pid},
                  {"tid", tid},
                  {"ts", e.start * us},
                  {"dur", (e.end - e.start) * us},
                  {"args", {{"layer", e.layer}}}});
  }
  nlohmann::json j = {{"traceEvents", ev}, {"displayTimeUnit", "ns"}};
  return j.dump();
}

}  // namespace wbs::sim
