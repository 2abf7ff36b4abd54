// Logging through spdlog. Libraries log; only the CLI decides the level
// (`-v` = debug, `-vv` = trace). Default level is warn.
#pragma once

#include <spdlog/spdlog.h>

namespace wbs {
// Sets the global level from a verbosity count (0 = warn, 1 = info, 2 = debug, 3+ = trace).
void SetVerbosity(int verbosity);
}  // namespace wbs

#define WBS_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define WBS_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define WBS_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define WBS_LOG_TRACE(...) ::spdlog::trace(__VA_ARGS__)
