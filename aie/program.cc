#include "aie/program.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

namespace wbs::aie {

Footprint Footprint::Range(int64_t lo, int64_t hi) {
  Footprint f;
  f.lo = lo;
  f.run = std::max<int64_t>(0, hi - lo);
  f.ext[0] = f.run;
  return f;
}

Footprint AccessPattern::Bytes(int64_t it) const {
  Footprint f;
  f.lo = base + (it & 1) * pong;
  f.run = elem;
  // (count, stride) of the dimensions that repeat, strides made positive.
  std::array<std::pair<int64_t, int64_t>, 4> dims{};
  int n = 0;
  for (int d = 0; d < 4; ++d) {
    int64_t i0 = start[d] + it * step[d], i1 = i0 + size[d] - 1;
    if (bound[d] > 0) {
      i0 = std::max<int64_t>(i0, 0);
      i1 = std::min<int64_t>(i1, bound[d] - 1);
    }
    if (i1 < i0) return Footprint{};
    f.lo += std::min(i0 * stride[d], i1 * stride[d]);
    const int64_t s = stride[d] < 0 ? -stride[d] : stride[d];
    if (i1 > i0 && s > 0) dims[static_cast<size_t>(n++)] = {i1 - i0 + 1, s};
  }
  // Innermost first; a dimension whose stride does not pass the run extends
  // it (contiguous or overlapping elements); a dimension that continues the
  // previous one exactly (stride = count * stride) merges with it.
  for (int d = 1; d < n; ++d)  // insertion sort by stride (at most 4)
    for (int e = d;
         e > 0 && dims[static_cast<size_t>(e)].second < dims[static_cast<size_t>(e - 1)].second;
         --e)
      std::swap(dims[static_cast<size_t>(e)], dims[static_cast<size_t>(e - 1)]);
  std::array<std::pair<int64_t, int64_t>, 4> kept{};
  int k = 0;
  for (int d = 0; d < n; ++d) {
    const auto [cnt, s] = dims[static_cast<size_t>(d)];
    if (k == 0 && s <= f.run) {
      f.run += (cnt - 1) * s;
    } else if (k > 0 && s == kept[static_cast<size_t>(k - 1)].first *
                                 kept[static_cast<size_t>(k - 1)].second) {
      kept[static_cast<size_t>(k - 1)].first *= cnt;
    } else {
      kept[static_cast<size_t>(k++)] = {cnt, s};
    }
  }
  f.nd = k;
  int64_t e = f.run;
  f.ext[static_cast<size_t>(k)] = e;
  for (int d = 0; d < k; ++d) {  // outermost first
    const auto [cnt, s] = kept[static_cast<size_t>(k - 1 - d)];
    f.count[static_cast<size_t>(d)] = cnt;
    f.stride[static_cast<size_t>(d)] = s;
  }
  for (int d = k - 1; d >= 0; --d) {
    e += (f.count[static_cast<size_t>(d)] - 1) * f.stride[static_cast<size_t>(d)];
    f.ext[static_cast<size_t>(d)] = e;
  }
  return f;
}

namespace {

int64_t FloorDiv(int64_t a, int64_t b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// Whether dimensions ad.. of `a` placed at alo share a byte with dimensions
// bd.. of `b` placed at blo. `budget` bounds the work; when it runs out the
// answer is true (conservative).
bool OverlapFrom(const Footprint& a, int ad, int64_t alo, const Footprint& b, int bd, int64_t blo,
                 int64_t* budget) {
  if (--*budget < 0) return true;
  const int64_t ahi = alo + a.ext[static_cast<size_t>(ad)],
                bhi = blo + b.ext[static_cast<size_t>(bd)];
  if (ahi <= blo || bhi <= alo) return false;
  if (ad == a.nd && bd == b.nd) return true;  // two runs whose ranges meet
  if (ad < a.nd && bd < b.nd &&
      a.stride[static_cast<size_t>(ad)] == b.stride[static_cast<size_t>(bd)]) {
    // A_i = alo + i*S + A', B_j = blo + j*S + B': they meet iff A' at alo
    // meets B' at blo + (j - i)*S; only the offsets k = j - i whose
    // bounding ranges meet can, and k takes every value in [-(nA-1), nB-1].
    const int64_t S = a.stride[static_cast<size_t>(ad)];
    const int64_t ea = a.ext[static_cast<size_t>(ad + 1)], eb = b.ext[static_cast<size_t>(bd + 1)];
    // blo + k*S < alo + ea and blo + k*S + eb > alo.
    const int64_t kmin =
        std::max(-(a.count[static_cast<size_t>(ad)] - 1), FloorDiv(alo - eb - blo, S) + 1);
    const int64_t kmax =
        std::min(b.count[static_cast<size_t>(bd)] - 1, -FloorDiv(-(alo + ea - blo), S) - 1);
    for (int64_t k = kmin; k <= kmax; ++k)
      if (OverlapFrom(a, ad + 1, alo, b, bd + 1, blo + k * S, budget)) return true;
    return false;
  }
  // Split the box with the coarser outer dimension into its slices that
  // meet the other's bounding range.
  const bool split_a = bd == b.nd || (ad < a.nd && a.stride[static_cast<size_t>(ad)] >=
                                                       b.stride[static_cast<size_t>(bd)]);
  const Footprint& x = split_a ? a : b;
  const int xd = split_a ? ad : bd;
  const int64_t xlo = split_a ? alo : blo, olo = split_a ? blo : alo, ohi = split_a ? bhi : ahi;
  const int64_t S = x.stride[static_cast<size_t>(xd)], e = x.ext[static_cast<size_t>(xd + 1)];
  // xlo + i*S < ohi and xlo + i*S + e > olo.
  const int64_t imin = std::max<int64_t>(0, FloorDiv(olo - e - xlo, S) + 1);
  const int64_t imax =
      std::min(x.count[static_cast<size_t>(xd)] - 1, -FloorDiv(-(ohi - xlo), S) - 1);
  for (int64_t i = imin; i <= imax; ++i) {
    const bool hit = split_a ? OverlapFrom(a, ad + 1, alo + i * S, b, bd, blo, budget)
                             : OverlapFrom(a, ad, alo, b, bd + 1, blo + i * S, budget);
    if (hit) return true;
  }
  return false;
}

}  // namespace

bool Overlaps(const Footprint& a, const Footprint& b) {
  if (a.empty() || b.empty() || a.hi() <= b.lo || b.hi() <= a.lo) return false;
  int64_t budget = 4096;
  return OverlapFrom(a, 0, a.lo, b, 0, b.lo, &budget);
}

namespace {

const char* const kOpNames[] = {"LOAD", "LOADW",   "LOADFM", "LOADWM",
                                "COMP", "WRITEFM", "WRITE",  "FILL"};
const char* const kCompNames[] = {"conv", "add", "maxpool", "avgpool", "rescale"};
const char* const kTypeNames[] = {"u8", "s8", "s32"};
const char* const kSymKinds[] = {"input", "output", "const", "scratch"};

template <typename T, size_t N>
std::string JoinArr(const std::array<T, N>& a) {
  std::string s;
  for (size_t i = 0; i < N; ++i) {
    if (i) s += ',';
    s += std::to_string(a[i]);
  }
  return s;
}

std::string ApText(const AccessPattern& ap) {
  return fmt::format("{}:{}:{}:{}:{}:{}:{}:{}:{}", ap.base, ap.pong, ap.elem, JoinArr(ap.size),
                     JoinArr(ap.stride), JoinArr(ap.start), JoinArr(ap.step), JoinArr(ap.bound),
                     ap.pad_value);
}

std::string SpacesText(const std::vector<MemSpace>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += MemSpaceName(v[i]);
  }
  return s.empty() ? "-" : s;
}

std::string LocksText(const std::vector<LockOp>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    s += fmt::format("{}{}:{}:{}{}", i ? ";" : "", MemSpaceName(v[i].tile), v[i].id, v[i].value,
                     v[i].pingpong ? ":pp" : "");
  }
  return s.empty() ? "-" : s;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

bool ParseI64(const std::string& s, int64_t* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end) return false;
  *v = x;
  return true;
}

// A parse error names the source and the line.
struct Parser {
  std::string source;
  int line = 0;
  Status Err(const std::string& what) const {
    return InvalidArgument("{}:{}: {}", source, line, what);
  }
  Result<int64_t> I64(const std::string& s) const {
    int64_t v = 0;
    if (!ParseI64(s, &v)) return Err(fmt::format("bad integer '{}'", s));
    return v;
  }
  Result<int32_t> I32(const std::string& s) const {
    WBS_ASSIGN_OR_RETURN(const int64_t v, I64(s));
    if (v < INT32_MIN || v > INT32_MAX) return Err(fmt::format("'{}' out of int32 range", s));
    return static_cast<int32_t>(v);
  }
  Result<MemSpace> Space(const std::string& s) const {
    if (s == "ddr") return MemSpace::Ddr();
    if (s.rfind("mt", 0) == 0) {
      WBS_ASSIGN_OR_RETURN(const int32_t i, I32(s.substr(2)));
      return MemSpace::Memtile(i);
    }
    if (s.size() > 1 && s[0] == 'c') {
      const auto p = Split(s.substr(1), '.');
      if (p.size() == 2) {
        WBS_ASSIGN_OR_RETURN(const int32_t r, I32(p[0]));
        WBS_ASSIGN_OR_RETURN(const int32_t c, I32(p[1]));
        return MemSpace::Core(r, c);
      }
    }
    return Err(fmt::format("bad memory space '{}'", s));
  }
  Result<std::vector<MemSpace>> Spaces(const std::string& s) const {
    std::vector<MemSpace> v;
    if (s == "-") return v;
    for (const auto& t : Split(s, ',')) {
      WBS_ASSIGN_OR_RETURN(MemSpace m, Space(t));
      v.push_back(m);
    }
    return v;
  }
  Status Arr(const std::string& s, std::array<int64_t, 4>* a) const {
    const auto p = Split(s, ',');
    if (p.size() != 4) return Err(fmt::format("expected 4 values in '{}'", s));
    for (int i = 0; i < 4; ++i) {
      WBS_ASSIGN_OR_RETURN((*a)[i], I64(p[i]));
    }
    return Status::Ok();
  }
  Result<AccessPattern> Ap(const std::string& s) const {
    const auto p = Split(s, ':');
    if (p.size() != 9) return Err(fmt::format("bad access pattern '{}'", s));
    AccessPattern ap;
    WBS_ASSIGN_OR_RETURN(ap.base, I64(p[0]));
    WBS_ASSIGN_OR_RETURN(ap.pong, I64(p[1]));
    WBS_ASSIGN_OR_RETURN(ap.elem, I32(p[2]));
    WBS_RETURN_IF_ERROR(Arr(p[3], &ap.size));
    WBS_RETURN_IF_ERROR(Arr(p[4], &ap.stride));
    WBS_RETURN_IF_ERROR(Arr(p[5], &ap.start));
    WBS_RETURN_IF_ERROR(Arr(p[6], &ap.step));
    WBS_RETURN_IF_ERROR(Arr(p[7], &ap.bound));
    WBS_ASSIGN_OR_RETURN(ap.pad_value, I32(p[8]));
    return ap;
  }
  Result<std::vector<LockOp>> Locks(const std::string& s) const {
    std::vector<LockOp> v;
    if (s == "-") return v;
    for (const auto& t : Split(s, ';')) {
      const auto p = Split(t, ':');
      if (p.size() != 3 && !(p.size() == 4 && p[3] == "pp"))
        return Err(fmt::format("bad lock '{}'", t));
      LockOp l;
      WBS_ASSIGN_OR_RETURN(l.tile, Space(p[0]));
      WBS_ASSIGN_OR_RETURN(l.id, I32(p[1]));
      WBS_ASSIGN_OR_RETURN(l.value, I32(p[2]));
      l.pingpong = p.size() == 4;
      v.push_back(l);
    }
    return v;
  }
  template <size_t N>
  Result<int> Enum(const std::string& s, const char* const (&names)[N], const char* what) const {
    for (size_t i = 0; i < N; ++i)
      if (s == names[i]) return static_cast<int>(i);
    return Err(fmt::format("unknown {} '{}'", what, s));
  }
};

std::string BufText(const BufRef& b) { return fmt::format("{}/{}", b.addr, b.pong); }

std::string Hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

}  // namespace

bool MemSpace::operator<(const MemSpace& o) const {
  if (kind != o.kind) return kind < o.kind;
  if (index != o.index) return index < o.index;
  return col < o.col;
}

std::string MemSpaceName(const MemSpace& m) {
  switch (m.kind) {
    case MemKind::kDdr:
      return "ddr";
    case MemKind::kMemtile:
      return fmt::format("mt{}", m.index);
    case MemKind::kCore:
      return fmt::format("c{}.{}", m.index, m.col);
  }
  return "?";
}

const char* OpcodeName(Opcode op) { return kOpNames[static_cast<int>(op)]; }
const char* CompKindName(CompKind k) { return kCompNames[static_cast<int>(k)]; }

int64_t BlobBytes(const BlobHeader& h) {
  const int64_t rows = int64_t{h.block_rows} * h.br;
  const int64_t per_row = ((h.flags & kBlobBias) ? 1 : 0) + ((h.flags & kBlobRequant) ? 2 : 0);
  const int64_t ints = kBlobHeaderInts + (h.block_rows + 1) + h.nnz + per_row * rows;
  const int64_t vals = int64_t{h.nnz} * h.br * h.bc * h.kh * h.kw;
  return ints * 4 + (vals + 3) / 4 * 4;
}

int64_t Program::instruction_count() const {
  int64_t n = 0;
  for (const Block& b : blocks) n += static_cast<int64_t>(b.instrs.size());
  return n;
}

std::string Program::ToText(bool with_data) const {
  std::string s;
  s += fmt::format("wbs-aie-program {}\n", kProgramVersion);
  s += fmt::format("target {} rows {} cols {} memtiles {} ddr {} memtile {} core {}\n", target,
                   rows, cols, memtiles, ddr_bytes, memtile_bytes, core_bytes);
  for (const LockInit& l : locks)
    s += fmt::format("lock {} {} {}\n", MemSpaceName(l.tile), l.id, l.value);
  for (const DdrSymbol& y : symbols) {
    std::string shape;
    for (size_t i = 0; i < y.shape.size(); ++i) {
      if (i) shape += ',';
      shape += std::to_string(y.shape[i]);
    }
    std::string scales;
    for (size_t i = 0; i < y.scales.size(); ++i) {
      if (i) scales += ',';
      scales += fmt::format("{}", y.scales[i]);
    }
    s += fmt::format("symbol {} {} addr {} size {} type {} scale {} zp {} shape {} scales {}\n",
                     y.name, kSymKinds[static_cast<int>(y.kind)], y.addr, y.size,
                     kTypeNames[static_cast<int>(y.type)], y.scale, y.zero_point,
                     shape.empty() ? "-" : shape, scales.empty() ? "-" : scales);
    if (with_data) {
      for (size_t off = 0; off < y.data.size(); off += 64) {
        s += fmt::format("data {} {}\n", y.name,
                         Hex(y.data.data() + off, std::min<size_t>(64, y.data.size() - off)));
      }
    }
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    s += fmt::format("layer {} {} {} macs {} {}\n", i, layers[i].name, layers[i].op,
                     layers[i].macs_dense, layers[i].macs);
  }
  for (const Block& b : blocks) {
    s += fmt::format("block {} {}\n", b.iterations, b.label.empty() ? "-" : b.label);
    for (const Instruction& in : b.instrs) {
      s += fmt::format("  {} L{}", OpcodeName(in.op), in.layer);
      if (in.op == Opcode::kComp) {
        const CompParams& c = in.comp;
        s += fmt::format(
            " cores={} kind={} in={}x{}x{} out={}x{}x{} k={}x{} s={}x{} d={}x{} groups={}"
            " inb={} in2b={} wb={} wbytes={} outb={} types={},{},{} zp={},{},{} clamp={},{}"
            " mult={},{} shift={} accum={} cip={} img={}x{} origin={},{},{} pb={},{} pe={},{}"
            " macs={},{}",
            SpacesText(in.cores), CompKindName(c.kind), c.in_c, c.in_h, c.in_w, c.out_c, c.out_h,
            c.out_w, c.kh, c.kw, c.sh, c.sw, c.dh, c.dw, c.groups, BufText(c.in), BufText(c.in2),
            BufText(c.weights), c.weights_bytes, BufText(c.out),
            kTypeNames[static_cast<int>(c.in_type)], kTypeNames[static_cast<int>(c.in2_type)],
            kTypeNames[static_cast<int>(c.out_type)], c.in_zero, c.in2_zero, c.out_zero, c.lo, c.hi,
            c.mult, c.mult2, c.shift, c.accumulate ? 1 : 0, c.count_include_pad ? 1 : 0, c.img_h,
            c.img_w, c.y0, c.x0, c.y_step, c.pad_begin_h, c.pad_begin_w, c.pad_end_h, c.pad_end_w,
            c.macs_dense, c.macs);
      } else if (in.op == Opcode::kFill) {
        s += fmt::format(" dst={} dap={} value={}", SpacesText(in.dst), ApText(in.dst_ap),
                         in.fill_value);
      } else {
        s += fmt::format(" src={} sap={} dst={} dap={}", MemSpaceName(in.src), ApText(in.src_ap),
                         SpacesText(in.dst), ApText(in.dst_ap));
      }
      s += fmt::format(" acq={} rel={}\n", LocksText(in.acquire), LocksText(in.release));
    }
    s += "end\n";
  }
  return s;
}

Result<Program> Program::FromText(const std::string& text, const std::string& source) {
  Program p;
  Parser ps{source, 0};
  std::istringstream is(text);
  std::string line;
  Block* block = nullptr;
  std::map<std::string, size_t> sym_index;
  bool header = false;
  while (std::getline(is, line)) {
    ++ps.line;
    if (const auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    std::vector<std::string> t;
    for (std::string w; ls >> w;) t.push_back(w);
    if (t.empty()) continue;
    if (!header) {
      if (t.size() != 2 || t[0] != "wbs-aie-program")
        return ps.Err("expected 'wbs-aie-program <version>'");
      if (t[1] != std::to_string(kProgramVersion))
        return ps.Err(fmt::format("program version {} (this reader: {})", t[1], kProgramVersion));
      header = true;
      continue;
    }
    const std::string& k = t[0];
    if (k == "target") {
      if (t.size() != 14) return ps.Err("bad target line");
      p.target = t[1];
      WBS_ASSIGN_OR_RETURN(p.rows, ps.I32(t[3]));
      WBS_ASSIGN_OR_RETURN(p.cols, ps.I32(t[5]));
      WBS_ASSIGN_OR_RETURN(p.memtiles, ps.I32(t[7]));
      WBS_ASSIGN_OR_RETURN(p.ddr_bytes, ps.I64(t[9]));
      WBS_ASSIGN_OR_RETURN(p.memtile_bytes, ps.I64(t[11]));
      WBS_ASSIGN_OR_RETURN(p.core_bytes, ps.I64(t[13]));
    } else if (k == "lock") {
      if (t.size() != 4) return ps.Err("bad lock line");
      LockInit l;
      WBS_ASSIGN_OR_RETURN(l.tile, ps.Space(t[1]));
      WBS_ASSIGN_OR_RETURN(l.id, ps.I32(t[2]));
      WBS_ASSIGN_OR_RETURN(l.value, ps.I32(t[3]));
      p.locks.push_back(l);
    } else if (k == "symbol") {
      if (t.size() != 17) return ps.Err("bad symbol line");
      DdrSymbol y;
      y.name = t[1];
      WBS_ASSIGN_OR_RETURN(const int kind, ps.Enum(t[2], kSymKinds, "symbol kind"));
      y.kind = static_cast<DdrSymbol::Kind>(kind);
      WBS_ASSIGN_OR_RETURN(y.addr, ps.I64(t[4]));
      WBS_ASSIGN_OR_RETURN(y.size, ps.I64(t[6]));
      WBS_ASSIGN_OR_RETURN(const int ty, ps.Enum(t[8], kTypeNames, "type"));
      y.type = static_cast<OutType>(ty);
      y.scale = std::strtof(t[10].c_str(), nullptr);
      WBS_ASSIGN_OR_RETURN(y.zero_point, ps.I32(t[12]));
      if (t[14] != "-")
        for (const auto& d : Split(t[14], ',')) {
          WBS_ASSIGN_OR_RETURN(const int64_t v, ps.I64(d));
          y.shape.push_back(v);
        }
      if (t[16] != "-")
        for (const auto& d : Split(t[16], ',')) y.scales.push_back(std::strtof(d.c_str(), nullptr));
      sym_index[y.name] = p.symbols.size();
      p.symbols.push_back(std::move(y));
    } else if (k == "data") {
      if (t.size() != 3 || !sym_index.count(t[1])) return ps.Err("bad data line");
      DdrSymbol& y = p.symbols[sym_index[t[1]]];
      if (t[2].size() % 2) return ps.Err("odd hex length");
      for (size_t i = 0; i < t[2].size(); i += 2) {
        int v = 0;
        for (int j = 0; j < 2; ++j) {
          const char ch = t[2][i + j];
          const int d = ch >= '0' && ch <= '9'   ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                 : -1;
          if (d < 0) return ps.Err("bad hex digit");
          v = v * 16 + d;
        }
        y.data.push_back(static_cast<uint8_t>(v));
      }
    } else if (k == "layer") {
      if (t.size() != 7) return ps.Err("bad layer line");
      LayerInfo l;
      l.name = t[2];
      l.op = t[3];
      WBS_ASSIGN_OR_RETURN(l.macs_dense, ps.I64(t[5]));
      WBS_ASSIGN_OR_RETURN(l.macs, ps.I64(t[6]));
      p.layers.push_back(l);
    } else if (k == "block") {
      if (t.size() != 3) return ps.Err("bad block line");
      p.blocks.emplace_back();
      block = &p.blocks.back();
      WBS_ASSIGN_OR_RETURN(block->iterations, ps.I64(t[1]));
      block->label = t[2] == "-" ? "" : t[2];
    } else if (k == "end") {
      if (!block) return ps.Err("'end' outside a block");
      block = nullptr;
    } else {
      if (!block) return ps.Err(fmt::format("'{}' outside a block", k));
      WBS_ASSIGN_OR_RETURN(const int op, ps.Enum(k, kOpNames, "opcode"));
      Instruction in;
      in.op = static_cast<Opcode>(op);
      if (t.size() < 2 || t[1].empty() || t[1][0] != 'L') return ps.Err("expected L<layer>");
      WBS_ASSIGN_OR_RETURN(in.layer, ps.I32(t[1].substr(1)));
      std::map<std::string, std::string> kv;
      for (size_t i = 2; i < t.size(); ++i) {
        const auto eq = t[i].find('=');
        if (eq == std::string::npos)
          return ps.Err(fmt::format("expected key=value, got '{}'", t[i]));
        kv[t[i].substr(0, eq)] = t[i].substr(eq + 1);
      }
      auto get = [&](const char* key) -> Result<std::string> {
        const auto it = kv.find(key);
        if (it == kv.end()) return ps.Err(fmt::format("{}: missing '{}'", k, key));
        return it->second;
      };
      auto ints = [&](const char* key, char sep, std::vector<int64_t>* v, size_t n) -> Status {
        WBS_ASSIGN_OR_RETURN(const std::string s, get(key));
        const auto parts = Split(s, sep);
        if (parts.size() != n) return ps.Err(fmt::format("{}: '{}' needs {} values", k, key, n));
        v->clear();
        for (const auto& x : parts) {
          WBS_ASSIGN_OR_RETURN(const int64_t y, ps.I64(x));
          v->push_back(y);
        }
        return Status::Ok();
      };
      auto buf = [&](const char* key, BufRef* b) -> Status {
        std::vector<int64_t> v;
        WBS_RETURN_IF_ERROR(ints(key, '/', &v, 2));
        b->addr = v[0];
        b->pong = v[1];
        return Status::Ok();
      };
      if (in.op == Opcode::kComp) {
        CompParams& c = in.comp;
        WBS_ASSIGN_OR_RETURN(const std::string cores, get("cores"));
        WBS_ASSIGN_OR_RETURN(in.cores, ps.Spaces(cores));
        WBS_ASSIGN_OR_RETURN(const std::string kind, get("kind"));
        WBS_ASSIGN_OR_RETURN(const int ki, ps.Enum(kind, kCompNames, "comp kind"));
        c.kind = static_cast<CompKind>(ki);
        std::vector<int64_t> v;
        WBS_RETURN_IF_ERROR(ints("in", 'x', &v, 3));
        c.in_c = static_cast<int32_t>(v[0]), c.in_h = static_cast<int32_t>(v[1]),
        c.in_w = static_cast<int32_t>(v[2]);
        WBS_RETURN_IF_ERROR(ints("out", 'x', &v, 3));
        c.out_c = static_cast<int32_t>(v[0]), c.out_h = static_cast<int32_t>(v[1]),
        c.out_w = static_cast<int32_t>(v[2]);
        WBS_RETURN_IF_ERROR(ints("k", 'x', &v, 2));
        c.kh = static_cast<int32_t>(v[0]), c.kw = static_cast<int32_t>(v[1]);
        WBS_RETURN_IF_ERROR(ints("s", 'x', &v, 2));
        c.sh = static_cast<int32_t>(v[0]), c.sw = static_cast<int32_t>(v[1]);
        WBS_RETURN_IF_ERROR(ints("d", 'x', &v, 2));
        c.dh = static_cast<int32_t>(v[0]), c.dw = static_cast<int32_t>(v[1]);
        WBS_ASSIGN_OR_RETURN(const std::string g, get("groups"));
        WBS_ASSIGN_OR_RETURN(c.groups, ps.I32(g));
        WBS_RETURN_IF_ERROR(buf("inb", &c.in));
        WBS_RETURN_IF_ERROR(buf("in2b", &c.in2));
        WBS_RETURN_IF_ERROR(buf("wb", &c.weights));
        WBS_ASSIGN_OR_RETURN(const std::string wbytes, get("wbytes"));
        WBS_ASSIGN_OR_RETURN(c.weights_bytes, ps.I64(wbytes));
        if (c.weights_bytes < 0)
          return ps.Err(fmt::format("COMP: negative wbytes {}", c.weights_bytes));
        WBS_RETURN_IF_ERROR(buf("outb", &c.out));
        WBS_ASSIGN_OR_RETURN(const std::string types, get("types"));
        const auto tp = Split(types, ',');
        if (tp.size() != 3) return ps.Err("COMP: 'types' needs 3 values");
        WBS_ASSIGN_OR_RETURN(const int t0, ps.Enum(tp[0], kTypeNames, "type"));
        WBS_ASSIGN_OR_RETURN(const int t1, ps.Enum(tp[1], kTypeNames, "type"));
        WBS_ASSIGN_OR_RETURN(const int t2, ps.Enum(tp[2], kTypeNames, "type"));
        c.in_type = static_cast<OutType>(t0), c.in2_type = static_cast<OutType>(t1);
        c.out_type = static_cast<OutType>(t2);
        WBS_RETURN_IF_ERROR(ints("zp", ',', &v, 3));
        c.in_zero = static_cast<int32_t>(v[0]), c.in2_zero = static_cast<int32_t>(v[1]),
        c.out_zero = static_cast<int32_t>(v[2]);
        WBS_RETURN_IF_ERROR(ints("clamp", ',', &v, 2));
        c.lo = static_cast<int32_t>(v[0]), c.hi = static_cast<int32_t>(v[1]);
        WBS_RETURN_IF_ERROR(ints("mult", ',', &v, 2));
        c.mult = static_cast<int32_t>(v[0]), c.mult2 = static_cast<int32_t>(v[1]);
        WBS_ASSIGN_OR_RETURN(const std::string sh, get("shift"));
        WBS_ASSIGN_OR_RETURN(c.shift, ps.I32(sh));
        WBS_ASSIGN_OR_RETURN(const std::string acc, get("accum"));
        c.accumulate = acc == "1";
        WBS_ASSIGN_OR_RETURN(const std::string cip, get("cip"));
        c.count_include_pad = cip == "1";
        WBS_RETURN_IF_ERROR(ints("img", 'x', &v, 2));
        c.img_h = static_cast<int32_t>(v[0]), c.img_w = static_cast<int32_t>(v[1]);
        WBS_RETURN_IF_ERROR(ints("origin", ',', &v, 3));
        c.y0 = static_cast<int32_t>(v[0]), c.x0 = static_cast<int32_t>(v[1]),
        c.y_step = static_cast<int32_t>(v[2]);
        WBS_RETURN_IF_ERROR(ints("pb", ',', &v, 2));
        c.pad_begin_h = static_cast<int32_t>(v[0]), c.pad_begin_w = static_cast<int32_t>(v[1]);
        WBS_RETURN_IF_ERROR(ints("pe", ',', &v, 2));
        c.pad_end_h = static_cast<int32_t>(v[0]), c.pad_end_w = static_cast<int32_t>(v[1]);
        WBS_RETURN_IF_ERROR(ints("macs", ',', &v, 2));
        c.macs_dense = v[0], c.macs = v[1];
      } else {
        if (in.op != Opcode::kFill) {
          WBS_ASSIGN_OR_RETURN(const std::string src, get("src"));
          WBS_ASSIGN_OR_RETURN(in.src, ps.Space(src));
          WBS_ASSIGN_OR_RETURN(const std::string sap, get("sap"));
          WBS_ASSIGN_OR_RETURN(in.src_ap, ps.Ap(sap));
        } else {
          WBS_ASSIGN_OR_RETURN(const std::string fv, get("value"));
          WBS_ASSIGN_OR_RETURN(in.fill_value, ps.I32(fv));
        }
        WBS_ASSIGN_OR_RETURN(const std::string dst, get("dst"));
        WBS_ASSIGN_OR_RETURN(in.dst, ps.Spaces(dst));
        WBS_ASSIGN_OR_RETURN(const std::string dap, get("dap"));
        WBS_ASSIGN_OR_RETURN(in.dst_ap, ps.Ap(dap));
      }
      WBS_ASSIGN_OR_RETURN(const std::string acq, get("acq"));
      WBS_ASSIGN_OR_RETURN(in.acquire, ps.Locks(acq));
      WBS_ASSIGN_OR_RETURN(const std::string rel, get("rel"));
      WBS_ASSIGN_OR_RETURN(in.release, ps.Locks(rel));
      block->instrs.push_back(std::move(in));
    }
  }
  if (!header) return InvalidArgument("{}: empty program", source);
  if (block) return InvalidArgument("{}: block not closed with 'end'", source);
  for (const DdrSymbol& y : p.symbols) {
    if (!y.data.empty() && static_cast<int64_t>(y.data.size()) != y.size)
      return InvalidArgument("{}: symbol {} has {} data bytes, size {}", source, y.name,
                             y.data.size(), y.size);
  }
  return p;
}

std::vector<uint8_t> Program::ToBinary() const {
  const std::string text = ToText(true);
  std::vector<uint8_t> out(16 + text.size());
  const uint64_t len = text.size();
  std::memcpy(out.data(), &kProgramMagic, 4);
  std::memcpy(out.data() + 4, &kProgramVersion, 4);
  std::memcpy(out.data() + 8, &len, 8);
  std::memcpy(out.data() + 16, text.data(), text.size());
  return out;
}

Result<Program> Program::FromBinary(const std::vector<uint8_t>& bytes, const std::string& source) {
  if (bytes.size() < 16) return InvalidArgument("{}: too short for an AIE program header", source);
  uint32_t magic = 0, version = 0;
  uint64_t len = 0;
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(&version, bytes.data() + 4, 4);
  std::memcpy(&len, bytes.data() + 8, 8);
  if (magic != kProgramMagic) return InvalidArgument("{}: not an AIE program (bad magic)", source);
  if (version != kProgramVersion)
    return InvalidArgument("{}: program version {} (this reader: {})", source, version,
                           kProgramVersion);
  if (len != bytes.size() - 16)
    return InvalidArgument("{}: header says {} bytes, file has {}", source, len, bytes.size() - 16);
  return FromText(std::string(bytes.begin() + 16, bytes.end()), source);
}

}  // namespace wbs::aie
