#pragma once
// common/: Error and Result, the one way failures cross module boundaries.

#include <expected>
#include <string>
#include <utility>

namespace ironboot {

// What kind of failure, so callers can decide (retry, 404, 401...) without
// parsing messages.
enum class ErrorCode {
  kInvalid,       // bad input: a manifest, a request, a flag
  kNotFound,      // a file, ref, machine or key that does not exist
  kUnavailable,   // a remote that did not answer; worth retrying
  kUnauthorized,  // credentials refused
  kInternal,      // a bug or an OS failure we did not expect
};

// An error a person can act on. `message` names the file, field, machine or
// URL and says what was expected. It never contains secret material.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  // Prefixes context, e.g. Wrap("fetch git://host/repo") -> "fetch ...: <message>".
  Error Wrap(std::string_view context) const {
    return Error{code, std::string(context) + ": " + message};
  }
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace ironboot
