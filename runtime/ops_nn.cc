#include "runtime/operator.h"

namespace wbs::runtime {
void RegisterNnOperators() {}
}  // namespace wbs::runtime
