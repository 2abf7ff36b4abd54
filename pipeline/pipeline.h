// `wbs pipeline`: dense training -> block sparsity -> int8 -> AIE compile ->
// simulation -> CPU benchmark -> report, each stage in OUT/<stage>/ with a
// stage.json written last (the stage cache; docs/PIPELINE.md, and the output
// contract with the report library).
//
// Stages run `wbs` commands as child processes through a CommandRunner (the
// CLI passes one that spawns its own binary; tests inject fakes), so each
// command keeps its exact outputs and a crash stays inside its stage. The CPU
// benchmark runs in process.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "pipeline/config.h"

namespace wbs::pipeline {

// Stage names in run order: dense, sparse, int8, aie, sim, bench, report.
const std::vector<std::string>& StageNames();

// Runs `wbs ARGS...`: stdout goes to `stdout_path` (or the log when empty),
// stderr is appended to `log_path`. `poll` is called about every 0.25 s while
// the command runs (progress from files it writes). A non-zero exit is an
// error carrying the command's own "wbs: error:" line.
using CommandRunner =
    std::function<Status(const std::vector<std::string>& args, const std::string& stdout_path,
                         const std::string& log_path, const std::function<void()>& poll)>;

// A runner that spawns `wbs_binary` with WBS_PROGRESS=0 (the pipeline owns the display).
CommandRunner ChildProcessRunner(std::string wbs_binary);

struct RunOptions {
  bool force = false;       // ignore the cache
  std::string only;         // run just this stage
  std::string from;         // rerun this stage and every later one
  bool with_train = false;  // this build has the LibTorch commands
  CommandRunner runner;
};

// Which stages run (true) vs may be taken from the cache (false): --only and
// --from by name; an unknown name is an error listing the stages.
Result<std::vector<bool>> ForcedStages(const RunOptions& o);

Status RunPipeline(const Config& config, const RunOptions& options);

// Cache keys (pipeline/cache.cc).

// Hex FNV-1a 64 of a file's size and bytes; "missing" if it does not exist.
Result<std::string> HashFile(const std::string& path);
// The key of a stage: its name, the config it reads (JSON) and the hashes of
// its input files (their paths are not part of the key, their content is).
Result<std::string> StageKey(const std::string& stage, const nlohmann::ordered_json& settings,
                             const std::vector<std::string>& input_files);
// True when `stage_json_path` exists, is "done" and has `key`.
bool IsCached(const std::string& stage_json_path, const std::string& key);

}  // namespace wbs::pipeline
