// Status and Result<T>: how user-facing errors travel in asrc.
// A user error (bad file, bad JSON, unsupported op) is a Status carrying a one-line message with
// context ("decoder.onnx: node 'lstm_0': ..."); programmer errors assert instead.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace asrc {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) {
    Status s;
    s.message_ = std::move(message);
    s.failed_ = true;
    return s;
  }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& message() const { return message_; }
  // Returns a copy with `context` prepended: "<context>: <message>".
  Status With(const std::string& context) const {
    if (ok()) return *this;
    return Error(context + ": " + message_);
  }

 private:
  std::string message_;
  bool failed_ = false;
};

inline Status Error(std::string message) { return Status::Error(std::move(message)); }

template <class T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace asrc

#define ASRC_CONCAT_INNER(a, b) a##b
#define ASRC_CONCAT(a, b) ASRC_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` failed.
#define ASRC_RETURN_IF_ERROR(expr)                \
  do {                                            \
    ::asrc::Status _asrc_st = (expr);             \
    if (!_asrc_st.ok()) return _asrc_st;          \
  } while (0)

// `ASRC_ASSIGN_OR_RETURN(auto x, f());` — unwraps a Result or returns its Status.
#define ASRC_ASSIGN_OR_RETURN(lhs, expr) \
  ASRC_ASSIGN_OR_RETURN_IMPL(ASRC_CONCAT(_asrc_res_, __LINE__), lhs, expr)
#define ASRC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
