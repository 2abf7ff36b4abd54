// Strict reading of JSON config files: shared by the `wbs pipeline` config
// (pipeline/config.cc) and the AIE target description (aie/target.cc).
//
// "Strict" means a typo is an error, never a silently kept default: unknown
// keys, values of the wrong type and (optionally) duplicate keys are
// rejected with one line naming the file and the key path ("t.json:
// core.banks: must be an integer, got a string"). The callers word their own
// value errors; this file gives them the parse, the type names, the key
// paths and the unknown-key search.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/status.h"

namespace wbs {

// "a boolean", "an integer", "a number", "a string", "an array", "an object"
// or "null", for "expected/must be X, got Y" messages.
template <class Json>
const char* JsonTypeName(const Json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

// "parent.key", or "key" at the top level (parent "").
std::string JsonKeyPath(const std::string& parent, const std::string& key);

// The first key of `object` that `known` lacks (nullptr if none): `known` is
// anything with contains(key), e.g. the schema object or a std::set of the
// keys a reader asked for.
template <class Json, class Known>
const std::string* FirstUnknownKey(const Json& object, const Known& known) {
  for (auto it = object.begin(); it != object.end(); ++it)
    if (!known.contains(it.key())) return &it.key();
  return nullptr;
}

struct StrictJsonOptions {
  bool allow_comments = false;         // "//" and "/* */" comments
  bool reject_duplicate_keys = false;  // nlohmann otherwise keeps the last silently
};

// Parses a whole JSON text. Errors (kParseError): "<source>: not valid JSON:
// <parser message>", "<source>: duplicate key '<key>'".
template <class Json>
Result<Json> ParseStrictJson(const std::string& text, const std::string& source,
                             const StrictJsonOptions& options = {}) {
  // The parser callback is the only hook that sees duplicate keys, and it can
  // only stop the parse by throwing.
  std::vector<std::set<std::string>> seen;
  std::string duplicate;
  auto callback = [&](int /*depth*/, typename Json::parse_event_t event, Json& parsed) {
    if (!options.reject_duplicate_keys) return true;
    if (event == Json::parse_event_t::object_start) {
      seen.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!seen.empty()) seen.pop_back();
    } else if (event == Json::parse_event_t::key && !seen.empty()) {
      std::string key = parsed.template get<std::string>();
      if (!seen.back().insert(key).second) {
        duplicate = std::move(key);
        throw std::runtime_error("duplicate key");
      }
    }
    return true;
  };
  try {
    return Json::parse(text, callback, /*allow_exceptions=*/true, options.allow_comments);
  } catch (const std::exception& e) {
    if (!duplicate.empty()) return ParseError("{}: duplicate key '{}'", source, duplicate);
    return ParseError("{}: not valid JSON: {}", source, e.what());
  }
}

// Reads the keys of one JSON object with type checks, remembering which keys
// were asked for so Finish() can name an unknown one. Errors are
// "<path>.<key>: <what>" (the caller adds the file). The first error sticks
// and later reads are no-ops, so a caller checks the status once at the end.
// Absent keys leave the output untouched (it holds the default).
class JsonObjectReader {
 public:
  using Json = nlohmann::json;

  // `status` must outlive the reader; nested readers share it.
  JsonObjectReader(const Json& object, std::string path, Status* status)
      : object_(object), path_(std::move(path)), status_(status) {}

  // `key`'s object (an empty one if absent) for a nested reader.
  const Json& Object(const char* key);
  void Int(const char* key, int* out);
  void Int64(const char* key, int64_t* out);
  void Double(const char* key, double* out);
  void String(const char* key, std::string* out);

  // Unknown keys are errors: "<path>.<key>: unknown key".
  void Finish();

  bool ok() const { return status_->ok(); }
  const std::string& path() const { return path_; }

  // For readers of other value kinds: the value of `key` (nullptr if absent
  // or after an error; the key counts as known either way), and the error
  // "<path>.<key>: <what>" (`key` may carry a suffix such as "[3]").
  const Json* Find(const std::string& key);
  void Fail(const std::string& key, const std::string& what);

 private:
  const Json& object_;
  std::string path_;
  Status* status_;
  std::set<std::string> known_;
};

}  // namespace wbs
