// wbs aie-target: loads and validates an AIE target config (a file or a
// preset name) and prints its summary or its full JSON.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>

#include "aie/target.h"
#include "cli/command.h"

namespace wbs::cli {

namespace {

struct AieTargetArgs {
  std::string target;
  bool json = false;
  bool list = false;
};

Status RunAieTarget(const AieTargetArgs& a) {
  if (a.list) {
    for (const std::string& name : aie::PresetNames()) {
      WBS_ASSIGN_OR_RETURN(aie::Target t, aie::Target::Load(name));
      fmt::print("{:<10} {}x{} {}\n", name, t.rows, t.cols, t.description);
    }
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(aie::Target t, aie::Target::Load(a.target));
  if (a.json) {
    fmt::print("{}\n", t.ToJson().dump(2));
  } else {
    fmt::print("{}", t.Summary());
  }
  return Status::Ok();
}

}  // namespace

Command AddAieTargetCommand(CLI::App& parent) {
  auto args = std::make_shared<AieTargetArgs>();
  CLI::App* app =
      parent.add_subcommand("aie-target", "Validate an AIE target config and print its summary");
  app->add_option("target", args->target, "Config file, or a preset name (see --list)")
      ->type_name("FILE|NAME");
  app->add_flag("--json", args->json, "Print every key (defaults filled in) as JSON");
  app->add_flag("--list", args->list, "List the preset configs and exit");
  app->footer(
      "Keys are documented in docs/AIE_TARGET.md; presets live in configs/aie/.\n\n"
      "Examples:\n"
      "  wbs aie-target configs/aie/paper-4x4.json\n"
      "  wbs aie-target phoenix --json\n"
      "  wbs aie-target --list");
  app->callback([args] {
    if (!args->list && args->target.empty())
      throw CLI::RequiredError("aie-target: TARGET (or --list)");
  });
  return {app, [args] { return RunAieTarget(*args); }};
}

}  // namespace wbs::cli
