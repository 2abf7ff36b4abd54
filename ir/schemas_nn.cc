#include "ir/op_schema.h"

namespace wbs::ir {
void RegisterNnSchemas() {}
}  // namespace wbs::ir
