// dead-code-elimination: removes nodes that reach no graph output and values
// nothing uses.
#include "ir/pass.h"

namespace wbs::ir {
namespace {

class DeadCodeEliminationPass : public Pass {
 public:
  std::string name() const override { return "dce"; }
  std::string summary() const override { return "remove nodes and values that reach no output"; }
  Status Run(Graph& g, bool* changed) override {
    size_t before = g.num_nodes() + g.values().size();
    g.EraseDeadNodes();
    *changed = g.num_nodes() + g.values().size() != before;
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateDeadCodeEliminationPass() { return std::make_unique<DeadCodeEliminationPass>(); }

}  // namespace wbs::ir
