// Golden-file comparison for pass tests: the expected text lives in
// tests/golden/<name>.txt; WBS_UPDATE_GOLDEN=1 rewrites it (review the diff!).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace wbs::testing {

inline void ExpectMatchesGolden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(WBS_SOURCE_DIR) + "/tests/golden/" + name + ".txt";
  if (const char* u = std::getenv("WBS_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing golden file " << path << " (run with WBS_UPDATE_GOLDEN=1)";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), actual) << "golden mismatch for " << path;
}

}  // namespace wbs::testing
