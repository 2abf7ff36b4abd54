#include "runtime/operator.h"

namespace wbs::runtime {
void RegisterDnnlOperators() {}
}  // namespace wbs::runtime
