// Environment switches for A/B measurements and diagnostics (WBS_DNNL,
// WBS_PLAIN_POOL, WBS_PROFILE_STEPS, ...). Callers read them once, when the
// first operator or session needs them, and keep the answer in a static.
#pragma once

namespace wbs {

// A switch that is on unless the variable is "0"; logs `off_message` at info
// level when it is off, so a run's log says which fast path was disabled.
bool EnvSwitchOn(const char* name, const char* off_message);

// An opt-in flag: true only when the variable is exactly "1".
bool EnvFlagSet(const char* name);

}  // namespace wbs
