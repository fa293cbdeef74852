#include "common/log.h"

#include <mutex>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace ironboot {
namespace {

std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;  // guarded by g_mu

}  // namespace

std::shared_ptr<spdlog::logger> Logger(std::string_view component) {
  std::lock_guard lock(g_mu);
  std::string name(component);
  if (auto existing = spdlog::get(name)) {
    return existing;
  }
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_level(g_level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %n: %v");
  return logger;
}

bool SetLogLevel(std::string_view level) {
  spdlog::level::level_enum parsed;
  if (level == "debug" || level == "trace") {
    parsed = level == "debug" ? spdlog::level::debug : spdlog::level::trace;
  } else if (level == "info") {
    parsed = spdlog::level::info;
  } else if (level == "warn" || level == "warning") {
    parsed = spdlog::level::warn;
  } else if (level == "error") {
    parsed = spdlog::level::err;
  } else if (level == "fatal" || level == "critical" || level == "panic") {
    parsed = spdlog::level::critical;
  } else if (level == "off") {
    parsed = spdlog::level::off;
  } else {
    return false;
  }
  std::lock_guard lock(g_mu);
  g_level = parsed;
  spdlog::set_level(parsed);
  return true;
}

}  // namespace ironboot
