#pragma once
// common/: logging. One named spdlog logger per component; every line carries
// key=value context. Secrets (keys, tokens, machine configs) are never logged.

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

namespace ironboot {

// Returns the logger for a component ("bootserver", "source", ...), creating it
// on first use with the process-wide level and sink. Thread-safe.
std::shared_ptr<spdlog::logger> Logger(std::string_view component);

// Sets the level of every logger, existing and future. Accepts Matchbox's and
// spdlog's names: debug, info, warn/warning, error, fatal/critical, off.
// Returns false for an unknown name.
bool SetLogLevel(std::string_view level);

}  // namespace ironboot
