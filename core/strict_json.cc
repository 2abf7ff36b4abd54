#include "core/strict_json.h"

#include <fmt/format.h>

#include <limits>

namespace wbs {

std::string JsonKeyPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

const JsonObjectReader::Json& JsonObjectReader::Object(const char* key) {
  static const Json kEmpty = Json::object();
  const Json* v = Find(key);
  if (v == nullptr) return kEmpty;
  if (!v->is_object()) {
    Fail(key, fmt::format("must be an object, got {}", JsonTypeName(*v)));
    return kEmpty;
  }
  return *v;
}

void JsonObjectReader::Int(const char* key, int* out) {
  int64_t v = *out;
  Int64(key, &v);
  if (!ok()) return;
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    Fail(key, fmt::format("{} is out of range", v));
    return;
  }
  *out = static_cast<int>(v);
}

void JsonObjectReader::Int64(const char* key, int64_t* out) {
  const Json* v = Find(key);
  if (v == nullptr) return;
  // nlohmann stores every non-negative integer as unsigned (is_number_integer
  // is true for both), so only the magnitude tells that it does not fit.
  if (v->is_number_unsigned() &&
      v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    Fail(key, fmt::format("{} is out of range", v->dump()));
  } else if (v->is_number_integer()) {
    *out = v->get<int64_t>();
  } else if (v->is_number_float()) {
    Fail(key, fmt::format("must be an integer, got {}", v->dump()));
  } else {
    Fail(key, fmt::format("must be an integer, got {}", JsonTypeName(*v)));
  }
}

void JsonObjectReader::Double(const char* key, double* out) {
  const Json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_number()) {
    Fail(key, fmt::format("must be a number, got {}", JsonTypeName(*v)));
    return;
  }
  *out = v->get<double>();
}

void JsonObjectReader::String(const char* key, std::string* out) {
  const Json* v = Find(key);
  if (v == nullptr) return;
  if (!v->is_string()) {
    Fail(key, fmt::format("must be a string, got {}", JsonTypeName(*v)));
    return;
  }
  *out = v->get<std::string>();
}

void JsonObjectReader::Finish() {
  if (!ok()) return;
  if (const std::string* unknown = FirstUnknownKey(object_, known_)) Fail(*unknown, "unknown key");
}

const JsonObjectReader::Json* JsonObjectReader::Find(const std::string& key) {
  known_.insert(key);
  if (!ok()) return nullptr;
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

void JsonObjectReader::Fail(const std::string& key, const std::string& what) {
  if (ok()) *status_ = InvalidArgument("{}: {}", JsonKeyPath(path_, key), what);
}

}  // namespace wbs
