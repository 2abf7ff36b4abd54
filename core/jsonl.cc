#include "core/jsonl.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace wbs {

Result<std::unique_ptr<JsonlWriter>> JsonlWriter::Open(const std::string& path, bool truncate) {
  std::FILE* f = std::fopen(path.c_str(), truncate ? "wb" : "ab");
  if (f == nullptr) return IoError("{}: cannot open for writing: {}", path, std::strerror(errno));
  return std::unique_ptr<JsonlWriter>(new JsonlWriter(path, f));
}

JsonlWriter::~JsonlWriter() {
  if (f_ != nullptr) std::fclose(f_);
}

Status JsonlWriter::Write(const nlohmann::json& record) {
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0) {
    return IoError("{}: write failed: {}", path_, std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::vector<nlohmann::json>> ReadJsonl(const std::string& path, bool allow_partial_tail) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open: {}", path, std::strerror(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<nlohmann::json> records;
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    ++line_no;
    size_t end = text.find('\n', start);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (!complete && allow_partial_tail) break;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return ParseError("{}:{}: not valid JSON", path, line_no);
    if (!complete) return ParseError("{}:{}: last line has no newline (cut short?)", path, line_no);
    records.push_back(std::move(j));
  }
  return records;
}

}  // namespace wbs
