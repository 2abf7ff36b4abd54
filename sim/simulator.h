// The AIE2 simulator: executes an AIE program (aie/program.h,
// docs/AIE_PROGRAM.md) functionally and with a time model
// (docs/SIMULATOR.md).
//
// Functional: DDR, every memtile and every core memory are byte arrays with
// a shadow "initialised" bit per byte. Instructions run in program order
// (docs/AIE_PROGRAM.md: program order is a valid schedule), so the bytes are
// exact; COMP computes the int8 contract (docs/int8.md) on exactly the bytes
// in core memory, the weight blob included.
//
// Faults stop the run with a one-line diagnostic naming the block,
// iteration, instruction, layer and address: reading a never-written byte,
// writing outside a buffer or memory, a program larger than the target's
// memories, a lock acquire that program order can never satisfy (deadlock),
// out-of-range addresses, lock ids and cores.
//
// Timing: every instruction instance is scheduled on the resources it
// occupies (shim DMA channels, memtile and core DMA channels, core compute)
// as early as its locks (the time each consumed lock token was released),
// its data hazards (earlier accesses to the same bytes, exactly:
// aie::HazardTracker) and those resources allow.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "aie/program.h"
#include "aie/target.h"
#include "aie/timeline.h"
#include "core/status.h"

namespace wbs::sim {

struct SimOptions {
  bool functional = true;  // false: timing only (no bytes move, no COMP)
  int threads = 0;         // COMP threads over the cores of one instruction (0: hardware)
  // Per-instruction trace events kept (the rest are still timed and summed).
  int64_t max_trace_events = 200000;
  double mac_efficiency = 0;  // 0: the target's core.mac_efficiency
};

// One timed instruction instance (the trace).
struct TraceEvent {
  std::string name;      // "LOADFM conv1"
  std::string resource;  // track: "mt0.mm2s1", "c0.1.mac", ...
  int layer = -1;
  double start = 0, end = 0;  // cycles
};

// Why an instruction instance started when it did: the event that released
// it last (the critical-path edge into it).
enum class WaitKind : uint8_t {
  kNone,      // started at time 0 / only its own readiness
  kLock,      // a lock token released by an earlier instruction
  kData,      // a data hazard on an address range an earlier instruction touched
  kResource,  // its DMA channel or core was busy with an earlier instruction (contention)
};
const char* WaitKindName(WaitKind k);

// Per layer, per opcode: cycles on the layer's critical path, split by why
// each instruction on it waited (see LayerStats::critical).
struct CriticalShare {
  std::string op;                  // "LOAD", "COMP", ...
  double cycles = 0;               // durations of this opcode's instances on the path
  double after[4] = {0, 0, 0, 0};  // of which started right after a WaitKind edge
  std::string resource;            // the resource most of its cycles ran on
};

struct LayerStats {
  std::string name, op;
  double start = -1, end = 0;  // cycles (first start, last end)
  double estimate = 0;         // the compiler's estimate, cycles (its increment, as `incremental`)
  double compute_busy = 0;     // sum of COMP durations over cores, cycles
  double link_busy = 0;        // sum of transfer durations over channels, cycles
  int64_t instructions = 0;    // executed instances
  // Cycles the network's completion advanced while this layer finished:
  // max(end of layers 0..L) - max(end of layers 0..L-1). Additive: the sum
  // over layers is the total, the quantity the compiler's sequential
  // per-layer estimate predicts (layers overlap in the simulation).
  double incremental = 0;
  // The critical path of the layer's last instruction back to the end of
  // the previous layers, grouped by opcode (largest first).
  std::vector<CriticalShare> critical;
  double cycles() const { return end > start && start >= 0 ? end - start : 0; }
};

struct SimStats {
  double total_cycles = 0;
  double estimate_cycles = 0;
  int64_t instructions = 0;  // executed instances
  int64_t bytes_moved = 0;
  int64_t macs = 0;
  std::vector<LayerStats> layers;
  // Busy cycles per resource (DMA channel, core), for utilisation.
  std::map<std::string, double> resource_busy;
};

class Simulator {
 public:
  // Validates the program against the target (memory sizes, grid).
  static Result<Simulator> Create(const aie::Program& program, const aie::Target& target,
                                  const SimOptions& options = {});

  // Writes the bytes of an input symbol (its size exactly) into DDR.
  Status SetInput(const std::string& symbol, const std::vector<uint8_t>& bytes);
  // Runs the whole program once; a fault returns its diagnostic.
  Status Run();
  // The bytes of a DDR symbol after Run (every byte must have been written).
  Result<std::vector<uint8_t>> ReadSymbol(const std::string& symbol) const;

  const SimStats& stats() const { return stats_; }
  const std::vector<TraceEvent>& trace() const { return trace_; }
  // By default the estimate is the compiler's time model run on the same
  // program (aie::Timeline, what wbs compile reports); this replaces it by
  // given per-layer numbers (cycles, one per program layer, e.g. from a
  // layers.tsv of wbs compile). Call before Run.
  Status SetLayerEstimates(const std::vector<double>& cycles, const std::string& source);
  const std::string& estimate_source() const { return estimate_source_; }
  // Per layer: simulated vs estimated cycles, utilisation; total.
  std::string Report() const;
  // The same as JSON (docs/SIMULATOR.md "Report JSON").
  std::string ReportJson() const;
  // Chrome / Perfetto trace JSON (a track per DMA channel, core, memtile).
  std::string TraceJson() const;

  // Raw memory access (tests): the bytes of a space.
  std::vector<uint8_t>* memory(const aie::MemSpace& m);

  struct Mem {
    std::string name;
    std::vector<uint8_t> data, init;
    int64_t buffer_limit = 0;  // writes by DMA/COMP must stay below (cores: the buffer banks)
  };

 private:
  Simulator() = default;
  Mem* Space(const aie::MemSpace& m);
  Status Execute(const aie::Instruction& in, int block, int64_t it, int index);
  Status Transfer(const aie::Instruction& in, int64_t it);
  Status Fill(const aie::Instruction& in, int64_t it);
  Status Comp(const aie::Instruction& in, int64_t it);
  void Time(const aie::Instruction& in, int64_t it);
  std::string Where() const;  // the current instruction, for diagnostics

  aie::Program p_;
  aie::Target t_;
  SimOptions o_;
  double eff_ = 1;
  Mem ddr_;
  std::vector<Mem> memtiles_, cores_;
  std::vector<uint8_t> ddr_writable_;  // per DDR byte: inside an output/scratch symbol
  std::map<std::tuple<int, int, int, int>, int64_t> locks_;
  // Timing: lock tokens (release time, count), resource free times.
  struct Token {
    double time = 0;
    int64_t count = 0;
    int64_t by = -1;  // the instance that released it (-1: initial value)
  };
  std::map<std::tuple<int, int, int, int>, std::vector<Token>> tokens_;
  struct Busy {
    double free = 0;
    int64_t by = -1;  // the instance that occupies it until `free`
  };
  std::map<std::string, Busy> free_at_;
  double horizon_ = 0;
  // Every timed instance (critical paths for the report).
  struct Instance {
    double start = 0, end = 0;
    int64_t pred = -1;
    int32_t layer = -1;
    aie::Opcode op = aie::Opcode::kLoad;
    WaitKind wait = WaitKind::kNone;
    int32_t resource = -1;  // index into resource_names_
  };
  std::vector<Instance> instances_;
  std::vector<std::string> resource_names_;
  std::map<std::string, int32_t> resource_ids_;
  static constexpr const char* kTimelineSource = "compiler time model (aie::Timeline)";
  std::string estimate_source_ = kTimelineSource;
  void Finish();  // incremental cycles and critical paths per layer
  // Data hazards per memory space (the time model's rule, aie/timeline.h).
  aie::HazardTracker hazards_;
  struct Access {
    aie::MemSpace space;
    aie::Footprint f;
    bool write = false;
  };
  std::vector<Access> accesses_;  // scratch of Time
  SimStats stats_;
  std::vector<TraceEvent> trace_;
  // Current instruction (diagnostics).
  int cur_block_ = -1, cur_index_ = -1;
  int64_t cur_it_ = 0;
  const aie::Instruction* cur_ = nullptr;
};

}  // namespace wbs::sim
