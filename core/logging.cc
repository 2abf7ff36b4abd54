#include "core/logging.h"

namespace wbs {
void SetVerbosity(int verbosity) {
  spdlog::level::level_enum lvl = spdlog::level::warn;
  if (verbosity == 1) lvl = spdlog::level::info;
  else if (verbosity == 2) lvl = spdlog::level::debug;
  else if (verbosity >= 3) lvl = spdlog::level::trace;
  spdlog::set_level(lvl);
  spdlog::set_pattern("[%^%l%$] %v");
}
}  // namespace wbs
