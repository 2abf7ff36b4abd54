#include "aie/target.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>

#include "core/strict_json.h"

namespace wbs::aie {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Bounds that catch typos (rows: 400) without limiting real arrays.
constexpr int kMaxGridDim = 64;
constexpr double kMaxClockGhz = 10.0;
constexpr double kMaxGbps = 1e4;

constexpr const char* kMacTypeKeys[] = {"int8", "int8xint4", "bf16"};
static_assert(std::size(kMacTypeKeys) == static_cast<size_t>(MacType::kCount));
constexpr const char* kLinkNames[] = {"ddr->memtile", "memtile->ddr", "memtile->core",
                                      "core->memtile"};
static_assert(std::size(kLinkNames) == static_cast<size_t>(Link::kCount));

// A broadcast mode: "none", "column" or "row".
void ReadBroadcast(JsonObjectReader& r, const char* key, Broadcast* out) {
  std::string s;
  if (r.Find(key) == nullptr) return;
  r.String(key, &s);
  if (!r.ok()) return;
  if (s == "none") {
    *out = Broadcast::kNone;
  } else if (s == "column") {
    *out = Broadcast::kColumn;
  } else if (s == "row") {
    *out = Broadcast::kRow;
  } else {
    r.Fail(key, fmt::format("'{}' is not one of none, column, row", s));
  }
}

// "all" or a list of integers; `all` is set for "all" (and when absent).
void ReadColumnList(JsonObjectReader& r, const char* key, std::vector<int>* out, bool* all) {
  const json* v = r.Find(key);
  if (v == nullptr) return;
  if (v->is_string() && v->get<std::string>() == "all") {
    *all = true;
    return;
  }
  if (!v->is_array()) {
    r.Fail(key, fmt::format("must be \"all\" or an array of column indices, got {}", v->dump()));
    return;
  }
  *all = false;
  out->clear();
  for (size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    if (!e.is_number_integer() || e.get<int64_t>() < std::numeric_limits<int>::min() ||
        e.get<int64_t>() > std::numeric_limits<int>::max()) {
      r.Fail(fmt::format("{}[{}]", key, i),
             fmt::format("must be a column index, got {}", e.dump()));
      return;
    }
    out->push_back(static_cast<int>(e.get<int64_t>()));
  }
}

// A key-path error for Validate().
Status Bad(const std::string& path, const std::string& what) {
  return InvalidArgument("{}: {}", path, what);
}

Status RequireRange(const std::string& path, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    if (hi == std::numeric_limits<int64_t>::max())
      return Bad(path, fmt::format("{} must be >= {}", v, lo));
    return Bad(path, fmt::format("{} must be in [{}, {}]", v, lo, hi));
  }
  return Status::Ok();
}

Status RequirePositive(const std::string& path, double v, double max) {
  if (!std::isfinite(v) || v <= 0 || v > max) {
    return Bad(path, fmt::format("{} must be > 0 and <= {}", v, max));
  }
  return Status::Ok();
}

std::string Bytes(int64_t b) {
  if (b >= 1024 * 1024 && b % (1024 * 1024) == 0) return fmt::format("{} MiB", b / (1024 * 1024));
  if (b >= 1024 && b % 1024 == 0) return fmt::format("{} KiB", b / 1024);
  return fmt::format("{} B", b);
}

std::string Gbps(double g) { return fmt::format("{:g} GB/s", g); }

std::vector<int> AllColumns(int cols) {
  std::vector<int> c(static_cast<size_t>(std::max(cols, 0)));
  for (int i = 0; i < cols; ++i) c[i] = i;
  return c;
}

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

}  // namespace

const char* BroadcastName(Broadcast b) {
  switch (b) {
    case Broadcast::kNone:
      return "none";
    case Broadcast::kColumn:
      return "column";
    case Broadcast::kRow:
      return "row";
  }
  return "?";
}

const char* MacTypeName(MacType t) {
  const int i = static_cast<int>(t);
  return i >= 0 && i < static_cast<int>(MacType::kCount) ? kMacTypeKeys[i] : "?";
}

const char* LinkName(Link l) {
  const int i = static_cast<int>(l);
  return i >= 0 && i < static_cast<int>(Link::kCount) ? kLinkNames[i] : "?";
}

Target Target::Paper(int rows, int cols) {
  Target t;
  t.name = fmt::format("paper-{}x{}", rows, cols);
  t.description = fmt::format(
      "D'Alberto et al.'s AIE-ML assumptions on a {}x{} array: 1 GHz, 256 int8 MAC/cycle/core, "
      "DDR<->memtile 4 GB/s per channel (2 per memtile each way), memtile<->core 4 GB/s per link",
      rows, cols);
  t.rows = rows;
  t.cols = cols;
  t.memtile.columns = AllColumns(cols);
  return t;
}

Result<Target> Target::Load(const std::string& path_or_name) {
  std::string path = path_or_name;
  std::error_code ec;
  if (!fs::exists(path, ec) && path.find('/') == std::string::npos &&
      fs::path(path).extension() != ".json") {
    path = (fs::path(ConfigDir()) / (path_or_name + ".json")).string();
    if (!fs::exists(path, ec)) {
      const std::string names = fmt::format("{}", fmt::join(PresetNames(), ", "));
      return NotFound("{}: no such target file or preset (presets in {}: {})", path_or_name,
                      ConfigDir(), names.empty() ? "none" : names);
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open target config", path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return Parse(text, path);
}

Result<Target> Target::Parse(const std::string& json_text, const std::string& source) {
  StrictJsonOptions options;
  options.reject_duplicate_keys = true;
  WBS_ASSIGN_OR_RETURN(json j, ParseStrictJson<json>(json_text, source, options));
  return FromJson(j, source);
}

Result<Target> Target::FromJson(const json& j, const std::string& source) {
  if (!j.is_object()) return InvalidArgument("{}: the config must be a JSON object", source);
  Target t;
  Status st;
  bool all_columns = true;
  {
    JsonObjectReader top(j, "", &st);
    top.String("name", &t.name);
    top.String("description", &t.description);
    {
      JsonObjectReader r(top.Object("array"), "array", &st);
      r.Int("rows", &t.rows);
      r.Int("cols", &t.cols);
      r.Double("clock_ghz", &t.clock_ghz);
      r.Finish();
    }
    {
      JsonObjectReader r(top.Object("core"), "core", &st);
      r.Int64("data_memory_bytes", &t.core.data_memory_bytes);
      r.Int("banks", &t.core.banks);
      r.Int("scratch_banks", &t.core.scratch_banks);
      r.Int64("program_memory_bytes", &t.core.program_memory_bytes);
      {
        JsonObjectReader m(r.Object("macs_per_cycle"), "core.macs_per_cycle", &st);
        for (int i = 0; i < static_cast<int>(MacType::kCount); ++i) {
          m.Int(kMacTypeKeys[i], &t.core.macs_per_cycle[i]);
        }
        m.Finish();
      }
      r.Double("mac_efficiency", &t.core.mac_efficiency);
      r.Int("vector_ops_per_cycle", &t.core.vector_ops_per_cycle);
      r.Int("locks", &t.core.locks);
      r.Int("buffer_descriptors", &t.core.buffer_descriptors);
      r.Int("dma_in_channels", &t.core.dma_in_channels);
      r.Int("dma_out_channels", &t.core.dma_out_channels);
      r.Finish();
    }
    {
      JsonObjectReader r(top.Object("memtile"), "memtile", &st);
      ReadColumnList(r, "columns", &t.memtile.columns, &all_columns);
      r.Int64("bytes", &t.memtile.bytes);
      r.Int("banks", &t.memtile.banks);
      r.Int("reach", &t.memtile.reach);
      r.Int("dma_in_channels", &t.memtile.dma_in_channels);
      r.Int("dma_out_channels", &t.memtile.dma_out_channels);
      r.Int("locks", &t.memtile.locks);
      r.Int("buffer_descriptors", &t.memtile.buffer_descriptors);
      r.Double("read_gbps", &t.memtile.read_gbps);
      r.Double("write_gbps", &t.memtile.write_gbps);
      r.Finish();
    }
    {
      JsonObjectReader r(top.Object("ddr"), "ddr", &st);
      r.Int("read_channels_per_memtile", &t.ddr.read_channels_per_memtile);
      r.Int("write_channels_per_memtile", &t.ddr.write_channels_per_memtile);
      r.Double("channel_gbps", &t.ddr.channel_gbps);
      r.Double("total_gbps", &t.ddr.total_gbps);
      r.Int("shim_locks", &t.ddr.shim_locks);
      r.Int("shim_buffer_descriptors", &t.ddr.shim_buffer_descriptors);
      r.Finish();
    }
    {
      JsonObjectReader r(top.Object("stream"), "stream", &st);
      r.Double("memtile_to_core_gbps", &t.stream.memtile_to_core_gbps);
      r.Double("core_to_memtile_gbps", &t.stream.core_to_memtile_gbps);
      r.Int64("transfer_setup_cycles", &t.stream.transfer_setup_cycles);
      r.Finish();
    }
    {
      JsonObjectReader r(top.Object("broadcast"), "broadcast", &st);
      ReadBroadcast(r, "activations", &t.activation_broadcast);
      ReadBroadcast(r, "weights", &t.weight_broadcast);
      r.Finish();
    }
    top.Finish();
  }
  if (all_columns) t.memtile.columns = AllColumns(t.cols);
  if (!st.ok()) return st.WithContext(source);
  Status v = t.Validate();
  if (!v.ok()) return v.WithContext(source);
  return t;
}

nlohmann::ordered_json Target::ToJson() const {
  using oj = nlohmann::ordered_json;
  oj macs = oj::object();
  for (int i = 0; i < static_cast<int>(MacType::kCount); ++i) {
    macs[kMacTypeKeys[i]] = core.macs_per_cycle[i];
  }
  const oj columns = memtile.columns == AllColumns(cols) ? oj("all") : oj(memtile.columns);
  return oj{
      {"name", name},
      {"description", description},
      {"array", {{"rows", rows}, {"cols", cols}, {"clock_ghz", clock_ghz}}},
      {"core",
       {{"data_memory_bytes", core.data_memory_bytes},
        {"banks", core.banks},
        {"scratch_banks", core.scratch_banks},
        {"program_memory_bytes", core.program_memory_bytes},
        {"macs_per_cycle", macs},
        {"mac_efficiency", core.mac_efficiency},
        {"vector_ops_per_cycle", core.vector_ops_per_cycle},
        {"locks", core.locks},
        {"buffer_descriptors", core.buffer_descriptors},
        {"dma_in_channels", core.dma_in_channels},
        {"dma_out_channels", core.dma_out_channels}}},
      {"memtile",
       {{"columns", columns},
        {"bytes", memtile.bytes},
        {"banks", memtile.banks},
        {"reach", memtile.reach},
        {"dma_in_channels", memtile.dma_in_channels},
        {"dma_out_channels", memtile.dma_out_channels},
        {"locks", memtile.locks},
        {"buffer_descriptors", memtile.buffer_descriptors},
        {"read_gbps", memtile.read_gbps},
        {"write_gbps", memtile.write_gbps}}},
      {"ddr",
       {{"read_channels_per_memtile", ddr.read_channels_per_memtile},
        {"write_channels_per_memtile", ddr.write_channels_per_memtile},
        {"channel_gbps", ddr.channel_gbps},
        {"total_gbps", ddr.total_gbps},
        {"shim_locks", ddr.shim_locks},
        {"shim_buffer_descriptors", ddr.shim_buffer_descriptors}}},
      {"stream",
       {{"memtile_to_core_gbps", stream.memtile_to_core_gbps},
        {"core_to_memtile_gbps", stream.core_to_memtile_gbps},
        {"transfer_setup_cycles", stream.transfer_setup_cycles}}},
      {"broadcast",
       {{"activations", BroadcastName(activation_broadcast)},
        {"weights", BroadcastName(weight_broadcast)}}},
  };
}

Status Target::Validate() const {
  if (name.empty()) return Bad("name", "must not be empty");
  WBS_RETURN_IF_ERROR(RequireRange("array.rows", rows, 1, kMaxGridDim));
  WBS_RETURN_IF_ERROR(RequireRange("array.cols", cols, 1, kMaxGridDim));
  WBS_RETURN_IF_ERROR(RequirePositive("array.clock_ghz", clock_ghz, kMaxClockGhz));

  // Core.
  WBS_RETURN_IF_ERROR(RequireRange("core.data_memory_bytes", core.data_memory_bytes, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(RequireRange("core.banks", core.banks, 1, kInt64Max));
  if (core.data_memory_bytes % core.banks != 0) {
    return Bad("core.banks", fmt::format("{} banks do not divide core.data_memory_bytes ({})",
                                         core.banks, core.data_memory_bytes));
  }
  if (core.scratch_banks < 0 || core.scratch_banks >= core.banks) {
    return Bad(
        "core.scratch_banks",
        fmt::format("{} must be in [0, core.banks - 1 = {}] (buffers need at least one bank)",
                    core.scratch_banks, core.banks - 1));
  }
  WBS_RETURN_IF_ERROR(
      RequireRange("core.program_memory_bytes", core.program_memory_bytes, 1, kInt64Max));
  for (int i = 0; i < static_cast<int>(MacType::kCount); ++i) {
    // int8 is what the compiler targets; the others may be 0 (unsupported).
    const int64_t lo = static_cast<MacType>(i) == MacType::kInt8 ? 1 : 0;
    WBS_RETURN_IF_ERROR(RequireRange(fmt::format("core.macs_per_cycle.{}", kMacTypeKeys[i]),
                                     core.macs_per_cycle[i], lo, kInt64Max));
  }
  WBS_RETURN_IF_ERROR(RequirePositive("core.mac_efficiency", core.mac_efficiency, 1.0));
  WBS_RETURN_IF_ERROR(
      RequireRange("core.vector_ops_per_cycle", core.vector_ops_per_cycle, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(RequireRange("core.locks", core.locks, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(
      RequireRange("core.buffer_descriptors", core.buffer_descriptors, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(RequireRange("core.dma_in_channels", core.dma_in_channels, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(RequireRange("core.dma_out_channels", core.dma_out_channels, 1, kInt64Max));

  // Memtiles.
  if (memtile.columns.empty()) return Bad("memtile.columns", "at least one memtile is needed");
  for (size_t i = 0; i < memtile.columns.size(); ++i) {
    const int c = memtile.columns[i];
    if (c < 0 || c >= cols) {
      return Bad(fmt::format("memtile.columns[{}]", i),
                 fmt::format("column {} is outside the array's {} columns", c, cols));
    }
    if (i > 0 && c <= memtile.columns[i - 1]) {
      return Bad(fmt::format("memtile.columns[{}]", i),
                 fmt::format("column {} is not above the previous entry {} (list columns once, "
                             "ascending)",
                             c, memtile.columns[i - 1]));
    }
  }
  WBS_RETURN_IF_ERROR(RequireRange("memtile.reach", memtile.reach, 0, kMaxGridDim));
  for (int c = 0; c < cols; ++c) {
    if (memtiles_for_column(c).empty()) {
      return Bad(
          "memtile.columns",
          fmt::format("core column {} is not reached by any memtile (reach {})", c, memtile.reach));
    }
  }
  WBS_RETURN_IF_ERROR(RequireRange("memtile.bytes", memtile.bytes, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(RequireRange("memtile.banks", memtile.banks, 1, kInt64Max));
  if (memtile.bytes % memtile.banks != 0) {
    return Bad("memtile.banks", fmt::format("{} banks do not divide memtile.bytes ({})",
                                            memtile.banks, memtile.bytes));
  }
  if (memtile.bytes < core.data_memory_bytes) {
    return Bad("memtile.bytes", fmt::format("{} is smaller than one core's data memory ({}), "
                                            "so a core's buffers could not be staged",
                                            memtile.bytes, core.data_memory_bytes));
  }
  WBS_RETURN_IF_ERROR(
      RequireRange("memtile.dma_in_channels", memtile.dma_in_channels, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(
      RequireRange("memtile.dma_out_channels", memtile.dma_out_channels, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(RequireRange("memtile.locks", memtile.locks, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(
      RequireRange("memtile.buffer_descriptors", memtile.buffer_descriptors, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(RequirePositive("memtile.read_gbps", memtile.read_gbps, kMaxGbps));
  WBS_RETURN_IF_ERROR(RequirePositive("memtile.write_gbps", memtile.write_gbps, kMaxGbps));

  // DDR: each DDR channel lands in (or leaves from) one memtile DMA channel.
  if (ddr.read_channels_per_memtile < 1 ||
      ddr.read_channels_per_memtile > memtile.dma_in_channels) {
    return Bad("ddr.read_channels_per_memtile",
               fmt::format("{} must be in [1, memtile.dma_in_channels = {}]",
                           ddr.read_channels_per_memtile, memtile.dma_in_channels));
  }
  if (ddr.write_channels_per_memtile < 1 ||
      ddr.write_channels_per_memtile > memtile.dma_out_channels) {
    return Bad("ddr.write_channels_per_memtile",
               fmt::format("{} must be in [1, memtile.dma_out_channels = {}]",
                           ddr.write_channels_per_memtile, memtile.dma_out_channels));
  }
  WBS_RETURN_IF_ERROR(RequirePositive("ddr.channel_gbps", ddr.channel_gbps, kMaxGbps));
  if (!std::isfinite(ddr.total_gbps) || ddr.total_gbps < 0 || ddr.total_gbps > kMaxGbps) {
    return Bad("ddr.total_gbps",
               fmt::format("{} must be in [0, {}] (0 = no limit)", ddr.total_gbps, kMaxGbps));
  }
  WBS_RETURN_IF_ERROR(RequireRange("ddr.shim_locks", ddr.shim_locks, 1, kInt64Max));
  WBS_RETURN_IF_ERROR(
      RequireRange("ddr.shim_buffer_descriptors", ddr.shim_buffer_descriptors, 1, kInt64Max));

  // Streams.
  WBS_RETURN_IF_ERROR(
      RequirePositive("stream.memtile_to_core_gbps", stream.memtile_to_core_gbps, kMaxGbps));
  WBS_RETURN_IF_ERROR(
      RequirePositive("stream.core_to_memtile_gbps", stream.core_to_memtile_gbps, kMaxGbps));
  WBS_RETURN_IF_ERROR(RequireRange("stream.transfer_setup_cycles", stream.transfer_setup_cycles, 0,
                                   int64_t{1} << 40));
  return Status::Ok();
}

double Target::peak_macs_per_second(MacType t) const {
  return static_cast<double>(num_cores()) * macs_per_cycle(t) * clock_ghz * 1e9;
}

double Target::link_gbps(Link l) const {
  switch (l) {
    case Link::kDdrToMemtile:
    case Link::kMemtileToDdr:
      return ddr.channel_gbps;
    case Link::kMemtileToCore:
      return stream.memtile_to_core_gbps;
    case Link::kCoreToMemtile:
      return stream.core_to_memtile_gbps;
    case Link::kCount:
      break;
  }
  return 0;
}

int Target::link_channels(Link l) const {
  switch (l) {
    case Link::kDdrToMemtile:
      return ddr.read_channels_per_memtile;
    case Link::kMemtileToDdr:
      return ddr.write_channels_per_memtile;
    case Link::kMemtileToCore:
      return core.dma_in_channels;
    case Link::kCoreToMemtile:
      return core.dma_out_channels;
    case Link::kCount:
      break;
  }
  return 0;
}

double Target::transfer_cycles(Link l, int64_t bytes) const {
  // GB/s at clock_ghz GHz is gbps / clock_ghz bytes per cycle.
  const double bytes_per_cycle = link_gbps(l) / clock_ghz;
  return static_cast<double>(stream.transfer_setup_cycles) +
         static_cast<double>(bytes) / bytes_per_cycle;
}

bool Target::memtile_reaches(int memtile_col, int core_col) const {
  if (core_col < 0 || core_col >= cols) return false;
  if (!std::binary_search(memtile.columns.begin(), memtile.columns.end(), memtile_col))
    return false;
  return std::abs(memtile_col - core_col) <= memtile.reach;
}

std::vector<int> Target::memtiles_for_column(int core_col) const {
  std::vector<int> out;
  for (int m : memtile.columns) {
    if (memtile_reaches(m, core_col)) out.push_back(m);
  }
  std::stable_sort(out.begin(), out.end(), [core_col](int a, int b) {
    return std::abs(a - core_col) < std::abs(b - core_col);
  });
  return out;
}

std::string Target::Summary() const {
  std::string s;
  s += fmt::format("target {}: {} rows x {} cols = {} cores at {:g} GHz\n", name, rows, cols,
                   num_cores(), clock_ghz);
  if (!description.empty()) s += fmt::format("  {}\n", description);
  std::string other_macs;
  for (int i = 1; i < static_cast<int>(MacType::kCount); ++i) {
    other_macs += fmt::format("{}{} {}", other_macs.empty() ? "" : ", ", core.macs_per_cycle[i],
                              kMacTypeKeys[i]);
  }
  s += fmt::format(
      "  core:      {} data memory in {} banks of {} ({} banks = {} for buffers, {} scratch), {} "
      "program\n",
      Bytes(core.data_memory_bytes), core.banks, Bytes(core_bank_bytes()),
      core.banks - core.scratch_banks, Bytes(core_buffer_bytes()), core.scratch_banks,
      Bytes(core.program_memory_bytes));
  s += fmt::format(
      "             {} int8 MAC/cycle ({}), efficiency {:g}; {} int8 vector ops/cycle\n"
      "             {} locks, {} BDs, DMA {} in + {} out\n",
      macs_per_cycle(), other_macs, core.mac_efficiency, core.vector_ops_per_cycle, core.locks,
      core.buffer_descriptors, core.dma_in_channels, core.dma_out_channels);
  const std::string cols_text = fmt::format("{}", fmt::join(memtile.columns, ","));
  s += fmt::format(
      "  memtiles:  {} x {} ({} total) in columns {}, each reaching +-{} column(s); {} banks\n",
      num_memtiles(), Bytes(memtile.bytes), Bytes(total_memtile_bytes()), cols_text, memtile.reach,
      memtile.banks);
  s += fmt::format("             DMA {} in + {} out, {} locks, {} BDs; {} read, {} write\n",
                   memtile.dma_in_channels, memtile.dma_out_channels, memtile.locks,
                   memtile.buffer_descriptors, Gbps(memtile.read_gbps), Gbps(memtile.write_gbps));
  s += fmt::format(
      "  DDR:       per memtile {} read + {} write channels of {} ({} in, {} out); array {} in, "
      "{} out{}\n",
      ddr.read_channels_per_memtile, ddr.write_channels_per_memtile, Gbps(ddr.channel_gbps),
      Gbps(ddr.read_channels_per_memtile * ddr.channel_gbps),
      Gbps(ddr.write_channels_per_memtile * ddr.channel_gbps),
      Gbps(num_memtiles() * ddr.read_channels_per_memtile * ddr.channel_gbps),
      Gbps(num_memtiles() * ddr.write_channels_per_memtile * ddr.channel_gbps),
      ddr.total_gbps > 0 ? fmt::format(", DDR limit {}", Gbps(ddr.total_gbps)) : "");
  s += fmt::format(
      "  streams:   memtile->core {} per link, core->memtile {} per link, setup {} "
      "cycles per transfer\n",
      Gbps(stream.memtile_to_core_gbps), Gbps(stream.core_to_memtile_gbps),
      stream.transfer_setup_cycles);
  auto dir = [](Broadcast b) {
    return b == Broadcast::kColumn ? "down a column"
           : b == Broadcast::kRow  ? "along a row"
                                   : "none";
  };
  s += fmt::format("  broadcast: activations {}, weights {}\n", dir(activation_broadcast),
                   dir(weight_broadcast));
  s += fmt::format("  peak:      {:.3g} TMAC/s int8 ({:.3g} TOPS)\n",
                   peak_macs_per_second() * 1e-12, 2 * peak_macs_per_second() * 1e-12);
  return s;
}

std::string ConfigDir() {
  if (const char* env = std::getenv("WBS_CONFIG_DIR"); env != nullptr && *env != '\0') {
    return (fs::path(env) / "aie").string();
  }
  return (fs::path(WBS_SOURCE_DIR) / "configs" / "aie").string();
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ConfigDir(), ec)) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace wbs::aie
