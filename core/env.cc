#include "core/env.h"

#include <cstdlib>
#include <cstring>

#include "core/logging.h"

namespace wbs {

bool EnvSwitchOn(const char* name, const char* off_message) {
  const char* v = std::getenv(name);
  const bool on = v == nullptr || std::strcmp(v, "0") != 0;
  if (!on) WBS_LOG_INFO("{}", off_message);
  return on;
}

bool EnvFlagSet(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace wbs
