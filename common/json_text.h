#pragma once
// common/: JSON to text without throwing. nlohmann's dump() throws
// type_error.316 on a string that is not valid UTF-8, and such strings reach
// our JSON from strangers (a commit's file names, a request's values): every
// JSON document ironboot writes goes through JsonText, which replaces invalid
// bytes with U+FFFD instead.

#include <string>

#include <nlohmann/json.hpp>

namespace ironboot {

// `value` as JSON text (`indent` < 0: compact), invalid UTF-8 replaced.
inline std::string JsonText(const nlohmann::json& value, int indent = -1) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ironboot
