#include "runtime/operator.h"

namespace wbs::runtime {
void RegisterTensorOperators() {}
}  // namespace wbs::runtime
