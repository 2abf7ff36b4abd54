// The AIE2 (AIE-ML) target model: every number about the accelerator array
// in one object, loaded from a JSON config (configs/aie/*.json, every key in
// docs/AIE_TARGET.md). Compiler passes, the memory planner, the time model
// and the simulator ask it; none hard-codes a hardware number (after
// mlir-aie's AIETargetModel).
//
// The array: `rows` x `cols` compute cores; one row of memtiles (by default
// one per column, each reachable from cores `memtile.reach` columns away);
// one shim (DDR interface) tile per memtile column. Data paths and their
// bandwidths (GB/s = 1e9 bytes/s):
//
//   DDR --shim channels--> memtile --stream links--> cores
//   DDR <--shim channels-- memtile <--stream links-- cores
//
// Activations are broadcast down a column and weights along a row (by
// default), so one memtile->core transfer can feed several cores.
//
// Loading is strict: unknown keys, wrong JSON types and bad values are errors
// whose message starts with "<file>: <json.path>: ". Missing keys take the
// AIE-ML values listed in docs/AIE_TARGET.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace wbs::aie {

// Direction of a broadcast over the core grid.
enum class Broadcast {
  kNone,    // every core gets its own copy
  kColumn,  // one transfer feeds all cores of a column
  kRow,     // one transfer feeds all cores of a row
};
const char* BroadcastName(Broadcast b);  // "none" / "column" / "row"

// Element types the cores multiply (MACs per cycle differ per type).
enum class MacType { kInt8, kInt8xInt4, kBf16, kCount };
const char* MacTypeName(MacType t);  // "int8" / "int8xint4" / "bf16"

// The four kinds of transfer the compiler emits (issue 6's LOAD/LOADW,
// LOADFM/LOADWM, WRITEFM, WRITE).
enum class Link {
  kDdrToMemtile,   // LOAD, LOADW: one shim channel
  kMemtileToDdr,   // WRITE: one shim channel
  kMemtileToCore,  // LOADFM, LOADWM: one stream link (broadcast counts once)
  kCoreToMemtile,  // WRITEFM: one stream link
  kCount,
};
const char* LinkName(Link l);

struct CoreSpec {
  int64_t data_memory_bytes = 64 * 1024;
  int banks = 8;  // data memory banks, data_memory_bytes / banks each
  // Banks kept for the kernel's stack and scratch; the rest holds the
  // ping/pong input, weight and output buffers (the paper: ~6 of 8).
  int scratch_banks = 2;
  int64_t program_memory_bytes = 16 * 1024;
  // Peak MACs per cycle by element type (int8 required; 0 = not supported).
  int macs_per_cycle[static_cast<int>(MacType::kCount)] = {256, 512, 128};
  // Fraction of the peak the compute kernels sustain (1.0 = the paper's
  // "very optimistic" assumption; the time model multiplies by it).
  double mac_efficiency = 1.0;
  // int8 lanes the vector unit processes per cycle for the COMP work with no
  // MACs (max, add, shift-round-saturate: pools, adds, rescales, a conv's
  // requantization): one 512-bit vector of int8 (aie/comp_cost.h).
  int vector_ops_per_cycle = 64;
  int locks = 16;
  int buffer_descriptors = 16;
  int dma_in_channels = 2;   // S2MM
  int dma_out_channels = 2;  // MM2S
};

struct MemtileSpec {
  // Columns that have a memtile (sorted, unique); empty in a config means
  // "one per column".
  std::vector<int> columns;
  int64_t bytes = 512 * 1024;
  int banks = 16;
  // A memtile in column m feeds cores in columns [m - reach, m + reach].
  int reach = 1;
  int dma_in_channels = 6;   // S2MM: from DDR and from cores
  int dma_out_channels = 6;  // MM2S: to cores and to DDR
  int locks = 64;
  int buffer_descriptors = 48;
  double read_gbps = 30.0;   // aggregate over its out channels
  double write_gbps = 30.0;  // aggregate over its in channels
};

// DDR is reached through the shim tile under each memtile column.
struct DdrSpec {
  int read_channels_per_memtile = 2;   // DDR -> memtile (shim MM2S)
  int write_channels_per_memtile = 2;  // memtile -> DDR (shim S2MM)
  double channel_gbps = 4.0;           // per channel, each direction
  double total_gbps = 0.0;             // DDR's own limit over all shims; 0 = none
  int shim_locks = 16;
  int shim_buffer_descriptors = 16;
};

struct StreamSpec {
  double memtile_to_core_gbps = 4.0;  // per link
  double core_to_memtile_gbps = 4.0;  // per link
  // Fixed cost of starting any DMA transfer (descriptor setup, lock
  // hand-off); the paper ignores it (0).
  int64_t transfer_setup_cycles = 0;
};

class Target {
 public:
  // The AIE-ML defaults with a rows x cols array (1 GHz, 256 int8 MAC/cycle,
  // the paper's bandwidths): what configs/aie/paper-NxN.json spell out.
  static Target Paper(int rows, int cols);

  // Loads a config file; `path_or_name` may also be a preset name
  // ("paper-4x4", "phoenix") looked up in ConfigDir(). Validates.
  static Result<Target> Load(const std::string& path_or_name);
  // Parses JSON text; `source` prefixes error messages. Validates.
  static Result<Target> Parse(const std::string& json_text, const std::string& source);
  static Result<Target> FromJson(const nlohmann::json& j, const std::string& source);
  // Every key, in the config layout (FromJson(ToJson()) round-trips).
  nlohmann::ordered_json ToJson() const;

  // Rejects impossible configurations; the message names the key's path.
  Status Validate() const;

  // Several lines: grid, memories, MACs, bandwidths, derived peaks.
  std::string Summary() const;

  // ---- The description ----
  std::string name = "aie-ml";
  std::string description;
  int rows = 4;
  int cols = 4;
  double clock_ghz = 1.0;
  CoreSpec core;
  MemtileSpec memtile;
  DdrSpec ddr;
  StreamSpec stream;
  Broadcast activation_broadcast = Broadcast::kColumn;
  Broadcast weight_broadcast = Broadcast::kRow;

  // ---- Derived quantities (what passes ask) ----
  int num_cores() const { return rows * cols; }
  int num_memtiles() const { return static_cast<int>(memtile.columns.size()); }
  int64_t core_bank_bytes() const { return core.data_memory_bytes / core.banks; }
  // Core memory for the ping/pong buffers (banks minus scratch banks).
  int64_t core_buffer_bytes() const {
    return core_bank_bytes() * (core.banks - core.scratch_banks);
  }
  int64_t memtile_bank_bytes() const { return memtile.bytes / memtile.banks; }
  int64_t total_memtile_bytes() const { return memtile.bytes * num_memtiles(); }
  int macs_per_cycle(MacType t = MacType::kInt8) const {
    return core.macs_per_cycle[static_cast<int>(t)];
  }
  // Array peak in MAC/s for a type (all cores, at mac_efficiency 1).
  double peak_macs_per_second(MacType t = MacType::kInt8) const;
  // Per-channel or per-link bandwidth of a link kind, GB/s.
  double link_gbps(Link l) const;
  // Independent channels of a link kind per memtile (DDR links) or per core
  // (stream links).
  int link_channels(Link l) const;
  // Cycles to move `bytes` over one channel of `l` (including the setup).
  double transfer_cycles(Link l, int64_t bytes) const;
  double cycles_to_seconds(double cycles) const { return cycles / (clock_ghz * 1e9); }
  // Whether the memtile in column `memtile_col` can feed/receive from core
  // column `core_col` (reach, and the memtile exists).
  bool memtile_reaches(int memtile_col, int core_col) const;
  // Memtile columns that reach core column `core_col`, nearest first
  // (ties: the lower column).
  std::vector<int> memtiles_for_column(int core_col) const;
};

// The directory of the preset configs (configs/aie in the source tree;
// WBS_CONFIG_DIR/aie overrides).
std::string ConfigDir();
// Names of the presets in ConfigDir() (sorted, without ".json").
std::vector<std::string> PresetNames();

}  // namespace wbs::aie
