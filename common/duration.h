#pragma once
// common/: the one duration syntax of flags and tools: "500ms", "10s", "2m",
// "1h", fractions ("1.5s") and plain seconds ("30").

#include <chrono>
#include <optional>
#include <string_view>

namespace ironboot {

// nullopt when `text` is not such a duration (or negative).
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace ironboot
