// Stage cache keys: a stage reruns when its settings or the content of its
// inputs change (docs/PIPELINE.md, "Cache").
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "pipeline/pipeline.h"

namespace wbs::pipeline {

namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t Fnv(uint64_t h, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= kFnvPrime;
  }
  return h;
}

}  // namespace

Result<std::string> HashFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::string("missing");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("{}: cannot open for reading", path);
  uint64_t h = kFnvOffset;
  uint64_t size = 0;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const size_t n = static_cast<size_t>(in.gcount());
    h = Fnv(h, buf.data(), n);
    size += n;
  }
  if (in.bad()) return IoError("{}: read error", path);
  return fmt::format("{:016x}-{}", h, size);
}

Result<std::string> StageKey(const std::string& stage, const nlohmann::ordered_json& settings,
                             const std::vector<std::string>& input_files) {
  std::string text = stage + "\n" + settings.dump() + "\n";
  for (const std::string& f : input_files) {
    WBS_ASSIGN_OR_RETURN(std::string h, HashFile(f));
    text += h + "\n";
  }
  return fmt::format("{:016x}", Fnv(kFnvOffset, text.data(), text.size()));
}

bool IsCached(const std::string& stage_json_path, const std::string& key) {
  std::ifstream in(stage_json_path);
  if (!in) return false;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  return j.value("status", "") == "done" && j.value("key", "") == key;
}

}  // namespace wbs::pipeline
