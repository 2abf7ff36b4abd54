#include "ir/op_schema.h"

namespace wbs::ir {
void RegisterTensorSchemas() {}
}  // namespace wbs::ir
