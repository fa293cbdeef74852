#include "common/internal_errors.h"

#include <array>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include "common/log.h"

namespace ironboot {
namespace {

constexpr size_t kComponents = std::size(kInternalErrorComponents);

size_t IndexOf(std::string_view component) {
  for (size_t i = 0; i < kComponents; ++i) {
    if (kInternalErrorComponents[i] == component) {
      return i;
    }
  }
  return kComponents - 1;  // "other"
}

struct Counts {
  std::array<std::atomic<uint64_t>, kComponents> values{};
  std::mutex mu;
  std::shared_ptr<prometheus::Registry> registry;           // guarded by mu
  std::array<prometheus::Counter*, kComponents> counters{};  // guarded by mu
};

Counts& State() {
  static Counts* counts = new Counts();  // never destroyed: threads may report at exit
  return *counts;
}

}  // namespace

void ReportInternalError(std::string_view component, std::string_view what) {
  size_t i = IndexOf(component);
  Counts& s = State();
  {
    std::lock_guard lock(s.mu);  // with ExportInternalErrors: counted once, either way
    s.values[i].fetch_add(1);
    if (s.counters[i] != nullptr) {
      s.counters[i]->Increment();
    }
  }
  try {
    Logger(kInternalErrorComponents[i])
        ->error("internal error in {} (kept running): {}", component, what);
  } catch (...) {
    // Logging itself failed (out of memory): the count above still tells.
  }
}

bool GuardInternal(std::string_view component, const std::function<void()>& body) noexcept {
  try {
    body();
    return true;
  } catch (const std::exception& e) {
    ReportInternalError(component, e.what());
  } catch (...) {
    ReportInternalError(component, "unknown exception");
  }
  return false;
}

uint64_t InternalErrorCount(std::string_view component) {
  return State().values[IndexOf(component)].load();
}

void ExportInternalErrors(const std::shared_ptr<prometheus::Registry>& registry) {
  Counts& s = State();
  std::lock_guard lock(s.mu);
  s.registry = registry;
  auto& family = prometheus::BuildCounter()
                     .Name("ironboot_internal_errors_total")
                     .Help("Exceptions caught by a last-resort handler: a bug, logged with its "
                           "reason; the process kept serving")
                     .Register(*registry);
  for (size_t i = 0; i < kComponents; ++i) {
    auto& c = family.Add({{"component", std::string(kInternalErrorComponents[i])}});
    c.Increment(static_cast<double>(s.values[i].load()));
    s.counters[i] = &c;
  }
}

}  // namespace ironboot
