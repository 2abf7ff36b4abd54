// Status and Result<T>: errors are values at every library boundary.
//
// A Status carries a code and a one-line message that names where the error
// happened (file, node, op, shape). Only the CLI prints a Status and picks an
// exit code; libraries never abort on bad input.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace wbs {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // bad user input: shapes, attributes, values
  kNotFound,          // missing file, value, input
  kUnimplemented,     // valid but unsupported: op, dtype, attribute value
  kIoError,           // read/write failures
  kParseError,        // truncated or garbage files
  kFailedPrecondition,
  kInternal,          // a bug in wbs
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<code name>: <message>" (or "OK").
  std::string ToString() const;
  // Returns a copy whose message is "<prefix>: <message>"; OK stays OK.
  Status WithContext(const std::string& prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status MakeError(StatusCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...));
}
#define WBS_DEFINE_ERROR_HELPER(Name, Code)                                    \
  template <typename... Args>                                                  \
  Status Name(fmt::format_string<Args...> f, Args&&... args) {                 \
    return Status(StatusCode::Code, fmt::format(f, std::forward<Args>(args)...)); \
  }
WBS_DEFINE_ERROR_HELPER(InvalidArgument, kInvalidArgument)
WBS_DEFINE_ERROR_HELPER(NotFound, kNotFound)
WBS_DEFINE_ERROR_HELPER(Unimplemented, kUnimplemented)
WBS_DEFINE_ERROR_HELPER(IoError, kIoError)
WBS_DEFINE_ERROR_HELPER(ParseError, kParseError)
WBS_DEFINE_ERROR_HELPER(FailedPrecondition, kFailedPrecondition)
WBS_DEFINE_ERROR_HELPER(Internal, kInternal)
#undef WBS_DEFINE_ERROR_HELPER

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace wbs

#define WBS_CONCAT_INNER(a, b) a##b
#define WBS_CONCAT(a, b) WBS_CONCAT_INNER(a, b)

#define WBS_RETURN_IF_ERROR(expr)                 \
  do {                                            \
    ::wbs::Status wbs_status_ = (expr);           \
    if (!wbs_status_.ok()) return wbs_status_;    \
  } while (0)

#define WBS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

// WBS_ASSIGN_OR_RETURN(auto x, FunctionReturningResult());
#define WBS_ASSIGN_OR_RETURN(lhs, expr) \
  WBS_ASSIGN_OR_RETURN_IMPL(WBS_CONCAT(wbs_result_, __LINE__), lhs, expr)
