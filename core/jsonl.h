// Append-only JSON-lines metrics files: one JSON object per line, each line
// written with a single fwrite and flushed, so a crash loses at most the line
// being written and `tail -f` / a resumed run sees every finished record.
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace wbs {

class JsonlWriter {
 public:
  // Opens `path` for appending (creating it); truncate = true starts afresh.
  static Result<std::unique_ptr<JsonlWriter>> Open(const std::string& path, bool truncate = false);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  // Writes `record` compactly on one line (invalid UTF-8 in strings is
  // replaced by U+FFFD rather than failing). Thread-safe.
  Status Write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  JsonlWriter(std::string path, std::FILE* f) : path_(std::move(path)), f_(f) {}
  std::string path_;
  std::FILE* f_;
  std::mutex mu_;
};

// Every record of a JSON-lines file (blank lines skipped). A line that is
// not valid JSON is an error naming "path:line"; a final line without a
// newline (a write cut short) is an error too unless `allow_partial_tail`.
Result<std::vector<nlohmann::json>> ReadJsonl(const std::string& path,
                                              bool allow_partial_tail = false);

}  // namespace wbs
