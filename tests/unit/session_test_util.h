// Runs a graph in a fresh session for the operator tests (quant fast paths,
// int8 layouts): the outputs, the tensors that travelled in a non-plain
// layout and each node's implementation. A failed create or run is a test
// failure (EXPECT) and gives an empty result.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/layout.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "runtime/session.h"

namespace wbs {

struct SessionRun {
  std::vector<Tensor> y;
  std::vector<std::pair<std::string, ActivationLayout>> non_plain;
  std::vector<std::string> impls;
};

inline SessionRun RunSession(const ir::Graph& g, const std::vector<Tensor>& inputs,
                             runtime::Backend backend, int threads, bool negotiate = true) {
  runtime::SessionOptions o;
  o.backend = backend;
  o.optimize = false;
  o.num_threads = threads;
  o.negotiate_layouts = negotiate;
  auto s = runtime::Session::Create(g, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return {};
  auto out = (*s)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return {};
  return {*out, (*s)->NonPlainValues(), (*s)->NodeImplementations()};
}

}  // namespace wbs
