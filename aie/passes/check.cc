// Invariant checks on a compiled program (run by the tests and by
// `wbs compile --check`): executes the program's data flow symbolically in
// program order, byte by byte.
//  - every address is inside its memory (core: the buffer banks only);
//  - every byte a transfer or COMP reads was written before (DDR starts with
//    the inputs and constants; padding delivered by a source pattern's bounds
//    is not a read);
//  - within a layer, the core buffers (input, second input, weights, output,
//    accumulator) and the memtile slabs of different kinds never overlap;
//  - locks never block in program order;
//  - the COMPs' effective MACs add up to the layers' effective MACs.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {

struct Mem {
  std::vector<uint8_t> written;
  int64_t limit = 0;
};

struct Checker {
  const CompileState& s;
  std::map<MemSpace, Mem> mem;
  std::map<std::pair<MemSpace, int>, int64_t> locks;
  std::string where;

  Mem& Get(const MemSpace& m) {
    auto it = mem.find(m);
    if (it != mem.end()) return it->second;
    Mem x;
    const Target& t = s.target;
    x.limit = m.kind == MemKind::kDdr       ? s.program.ddr_bytes
              : m.kind == MemKind::kMemtile ? t.memtile.bytes
                                            : t.core_buffer_bytes();
    x.written.assign(static_cast<size_t>(x.limit), 0);
    return mem.emplace(m, std::move(x)).first->second;
  }

  // Visits the elements of `ap` in iteration `it`: f(byte address, in_bounds).
  template <typename F>
  Status Walk(const AccessPattern& ap, int64_t it, F&& f) {
    for (int64_t i3 = 0; i3 < ap.size[3]; ++i3)
      for (int64_t i2 = 0; i2 < ap.size[2]; ++i2)
        for (int64_t i1 = 0; i1 < ap.size[1]; ++i1)
          for (int64_t i0 = 0; i0 < ap.size[0]; ++i0) {
            const int64_t idx[4] = {i0, i1, i2, i3};
            int64_t a = ap.base + (it & 1) * ap.pong;
            bool in = true;
            for (int d = 0; d < 4; ++d) {
              const int64_t v =
                  ap.start[static_cast<size_t>(d)] + it * ap.step[static_cast<size_t>(d)] + idx[d];
              if (ap.bound[static_cast<size_t>(d)] > 0 &&
                  (v < 0 || v >= ap.bound[static_cast<size_t>(d)]))
                in = false;
              a += v * ap.stride[static_cast<size_t>(d)];
            }
            WBS_RETURN_IF_ERROR(f(a, in));
          }
    return Status::Ok();
  }

  Status Read(const MemSpace& m, int64_t a, int64_t n) {
    Mem& x = Get(m);
    if (a < 0 || a + n > x.limit)
      return Internal("{}: read {}+{} outside {} ({} bytes)", where, a, n, MemSpaceName(m),
                      x.limit);
    for (int64_t i = a; i < a + n; ++i)
      if (!x.written[static_cast<size_t>(i)])
        return Internal("{}: reads unwritten byte {} of {}", where, i, MemSpaceName(m));
    return Status::Ok();
  }
  Status Write(const MemSpace& m, int64_t a, int64_t n) {
    Mem& x = Get(m);
    if (a < 0 || a + n > x.limit)
      return Internal("{}: write {}+{} outside {} ({} bytes)", where, a, n, MemSpaceName(m),
                      x.limit);
    std::fill(x.written.begin() + a, x.written.begin() + a + n, 1);
    return Status::Ok();
  }

  Status Locks(const std::vector<LockOp>& ops, int64_t it, bool acquire) {
    for (const LockOp& o : ops) {
      const int id = o.id + (o.pingpong ? static_cast<int>(it & 1) : 0);
      int64_t& v = locks[{o.tile, id}];
      if (acquire) {
        if (v < o.value)
          return Internal("{}: acquire of lock {}:{} ({} < {}) would block: deadlock", where,
                          MemSpaceName(o.tile), id, v, o.value);
        v -= o.value;
      } else {
        v += o.value;
      }
    }
    return Status::Ok();
  }

  Status Run() {
    const Program& p = s.program;
    for (const DdrSymbol& y : p.symbols)
      if (y.kind == DdrSymbol::Kind::kInput || y.kind == DdrSymbol::Kind::kConst)
        WBS_RETURN_IF_ERROR(Write(MemSpace::Ddr(), y.addr, y.size));
    for (const auto& l : p.locks) locks[{l.tile, l.id}] = l.value;
    std::vector<int64_t> macs(s.layers.size(), 0);
    for (size_t bi = 0; bi < p.blocks.size(); ++bi) {
      const Block& b = p.blocks[bi];
      for (int64_t it = 0; it < b.iterations; ++it) {
        for (size_t ii = 0; ii < b.instrs.size(); ++ii) {
          const Instruction& in = b.instrs[ii];
          where = fmt::format("block {} ({}) iteration {} instruction {} {}", bi, b.label, it, ii,
                              OpcodeName(in.op));
          WBS_RETURN_IF_ERROR(Locks(in.acquire, it, true));
          if (in.op == Opcode::kComp) {
            const CompParams& c = in.comp;
            const int64_t in_bytes =
                int64_t{c.in_c} * c.in_h * c.in_w * (c.in_type == OutType::kS32 ? 4 : 1);
            const int64_t out_elems = int64_t{c.out_c} * c.out_h * c.out_w;
            for (const MemSpace& core : in.cores) {
              WBS_RETURN_IF_ERROR(Read(core, c.in.at(it), in_bytes));
              if (c.kind == CompKind::kAdd)
                WBS_RETURN_IF_ERROR(Read(core, c.in2.at(it), out_elems));
              if (c.kind == CompKind::kConv && c.accumulate)
                WBS_RETURN_IF_ERROR(Read(core, c.in2.at(it), out_elems * 4));
              if (c.kind == CompKind::kConv)
                WBS_RETURN_IF_ERROR(Read(core, c.weights.at(it), c.weights_bytes));
              WBS_RETURN_IF_ERROR(
                  Write(core, c.out.at(it), out_elems * (c.out_type == OutType::kS32 ? 4 : 1)));
            }
            if (in.layer >= 0 && (c.kind != CompKind::kConv || c.out_type != OutType::kS32 || true))
              macs[static_cast<size_t>(in.layer)] += c.macs * static_cast<int64_t>(in.cores.size());
          } else if (in.op != Opcode::kFill) {
            if (in.src_ap.elements() != in.dst_ap.elements())
              return Internal("{}: source has {} elements, destination {}", where,
                              in.src_ap.elements(), in.dst_ap.elements());
            const int e = in.src_ap.elem;
            WBS_RETURN_IF_ERROR(Walk(in.src_ap, it, [&](int64_t a, bool inb) {
              return inb ? Read(in.src, a, e) : Status::Ok();
            }));
            for (const MemSpace& d : in.dst)
              WBS_RETURN_IF_ERROR(Walk(
                  in.dst_ap, it, [&](int64_t a, bool) { return Write(d, a, in.dst_ap.elem); }));
          } else {
            for (const MemSpace& d : in.dst)
              WBS_RETURN_IF_ERROR(Walk(
                  in.dst_ap, it, [&](int64_t a, bool) { return Write(d, a, in.dst_ap.elem); }));
          }
          WBS_RETURN_IF_ERROR(Locks(in.release, it, false));
        }
      }
    }
    for (size_t i = 0; i < s.layers.size(); ++i) {
      const Layer& l = s.layers[i];
      // A fused pool's conv recomputes the window overlaps: every output
      // channel at PostPoolPositions conv positions instead of its plane.
      const int64_t plane = l.post_pool.on ? l.post_pool.coh * l.post_pool.cow : 1;
      const int64_t want = l.post_pool.on ? l.macs / plane * PostPoolPositions(l) : l.macs;
      if (l.post_pool.on && l.macs % plane != 0)
        return Internal("layer {}: {} MACs are not a multiple of the conv plane {}", l.name, l.macs, plane);
      if (macs[i] != want)
        return Internal("layer {}: COMPs do {} effective MACs, the layer has {}", l.name, macs[i],
                        want);
    }
    // Every output written.
    for (const DdrSymbol& y : p.symbols)
      if (y.kind == DdrSymbol::Kind::kOutput) {
        where = "output " + y.name;
        WBS_RETURN_IF_ERROR(Read(
            MemSpace::Ddr(), y.addr, y.shape.empty() ? y.size : [&] {
              int64_t n = 1;
              for (int64_t d : y.shape) n *= d;
              return n * (y.type == OutType::kS32 ? 4 : 1);
            }()));
      }
    return Status::Ok();
  }
};

// Core buffers of a layer never overlap (from the plan).
Status CheckLayerBuffers(const Layer& l, int64_t capacity) {
  struct R {
    const char* name;
    int64_t lo, hi;
  };
  const R rs[] = {{"in", l.core_in, l.core_in + l.in_bufs * l.in_bytes},
                  {"in2", l.core_in2, l.core_in2 + 2 * l.in2_bytes},
                  {"w", l.core_w, l.core_w + l.core_w_halves() * l.w_bytes},
                  {"out", l.core_out, l.core_out + 2 * l.out_bytes},
                  {"acc", l.core_acc, l.core_acc + l.acc_bytes},
                  {"scratch", l.core_scratch, l.core_scratch + l.scratch_bytes}};
  for (const R& a : rs) {
    if (a.hi > capacity)
      return Internal("{}: core buffer {} ends at {} > {}", l.name, a.name, a.hi, capacity);
    for (const R& b : rs)
      if (&a < &b && a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi)
        return Internal("{}: core buffers {} and {} overlap", l.name, a.name, b.name);
  }
  const R ms[] = {{"in", l.mt_in, l.mt_in2},
                  {"in2", l.mt_in2, l.mt_w},
                  {"w", l.mt_w, l.mt_out},
                  {"out", l.mt_out, l.mt_col_bytes}};
  for (const R& a : ms)
    if (a.lo > a.hi) return Internal("{}: memtile slab {} is inverted", l.name, a.name);
  return Status::Ok();
}

// Memtile-resident and replicated tensors (fusion.cc) stay inside the memtile, clear of
// every slab of the layers they live through and of each other.
Status CheckResident(const CompileState& s) {
  const int64_t cap = s.target.memtile.bytes;
  for (size_t i = 0; i < s.tensors.size(); ++i) {
    const ActTensor& x = s.tensors[i];
    if (!x.resident && !x.replicated) continue;  // replicated: one memtile per column, so slot 0
    if (x.mt_addr < 0 || x.mt_addr + x.mt_bytes > cap || x.mt_bytes < x.c * x.h * x.mt_w)
      return Internal("resident {}: memtile region [{}, {}) outside the memtile or too small",
                      x.name, x.mt_addr, x.mt_addr + x.mt_bytes);
    for (int li = x.res_first; li <= x.res_last; ++li) {
      const Layer& l = s.layers[static_cast<size_t>(li)];
      if (l.mt_col_bytes > x.mt_addr)
        return Internal("{}: memtile slabs [0, {}) overlap resident {} at {}", l.name,
                        l.mt_col_bytes, x.name, x.mt_addr);
    }
    for (size_t j = i + 1; j < s.tensors.size(); ++j) {
      const ActTensor& y = s.tensors[j];
      // A fused Add's output in place of its other input (fusion.cc): the
      // same region, handed over in the Add's layer, the input's last.
      const bool in_place = y.in_place_of == static_cast<int>(i) && x.res_last == y.res_first &&
                            x.mt_addr == y.mt_addr && x.mt_w == y.mt_w && x.res_x0 == y.res_x0;
      if ((y.resident || y.replicated) && !in_place && x.res_first <= y.res_last &&
          y.res_first <= x.res_last && x.mt_addr < y.mt_addr + y.mt_bytes &&
          y.mt_addr < x.mt_addr + x.mt_bytes)
        return Internal("resident {} and {} overlap in the memtile while both live", x.name,
                        y.name);
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckProgram(const CompileState& s) {
  for (const Layer& l : s.layers)
    WBS_RETURN_IF_ERROR(CheckLayerBuffers(l, s.target.core_buffer_bytes()));
  WBS_RETURN_IF_ERROR(CheckResident(s));
  Checker c{s, {}, {}, {}};
  return c.Run();
}

}  // namespace wbs::aie
