#pragma once
// common/: the last resort. A bug or a third-party throw that escapes every
// adapter must cost one request, one packet or one pass, never the process:
// every thread entry point and the HTTP/TFTP edge run their work through
// GuardInternal(), which catches, logs the component and the reason, and
// counts it in ironboot_internal_errors_total{component}. Process-wide, so
// that a catch deep in a thread needs no plumbing; thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace ironboot {

// The bounded label values of ironboot_internal_errors_total{component}; any
// other name is counted as "other".
inline constexpr std::string_view kInternalErrorComponents[] = {
    "http", "tftp", "gitops", "upgrade", "store_watch", "worker_pool", "other"};

// Logs `what` at error level on the component's logger and counts it.
void ReportInternalError(std::string_view component, std::string_view what);

// Runs `body`; if it throws, reports the exception (its what(), or "unknown
// exception") for `component` and returns false. Returns true otherwise.
bool GuardInternal(std::string_view component, const std::function<void()>& body) noexcept;

// How many internal errors `component` has reported in this process.
uint64_t InternalErrorCount(std::string_view component);

// Exposes the counts as ironboot_internal_errors_total{component} (every
// component at its current count, so the first error is an increase) in
// `registry`. Later calls with another registry move the export there.
void ExportInternalErrors(const std::shared_ptr<prometheus::Registry>& registry);

}  // namespace ironboot
