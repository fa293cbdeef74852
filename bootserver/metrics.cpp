#include "bootserver/metrics.h"

#include <atomic>
#include <map>

namespace ironboot::bootserver {
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

// Per-handler cache: counters for common codes are created once, so the hot
// path takes no registry lock.
struct HttpMetrics::HandlerMetrics {
  static constexpr std::array<unsigned, 12> kCodes = {200, 206, 304, 400, 401, 403,
                                                     404, 405, 413, 416, 500, 503};
  std::array<std::atomic<prometheus::Counter*>, kCodes.size()> by_code{};  // filled on first use
  prometheus::Histogram* duration = nullptr;
};

HttpMetrics::HttpMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      requests_(BuildCounter()
                    .Name("ironboot_http_requests_total")
                    .Help("HTTP requests answered, by handler and status code.")
                    .Register(*registry_)),
      durations_(BuildHistogram()
                     .Name("ironboot_http_request_duration_seconds")
                     .Help("Time from request read to response written, by handler.")
                     .Register(*registry_)),
      selections_(BuildCounter()
                      .Name("ironboot_boot_selections_total")
                      .Help("Boot requests that selected a group, by group id.")
                      .Register(*registry_)),
      unmatched_(BuildCounter()
                     .Name("ironboot_boot_unmatched_total")
                     .Help("Boot requests that matched no group (e.g. an unknown MAC), by handler.")
                     .Register(*registry_)),
      asset_bytes_sent_(BuildCounter()
                            .Name("ironboot_asset_bytes_sent_total")
                            .Help("Bytes of asset bodies sent.")
                            .Register(*registry_)
                            .Add({})),
      store_groups_(BuildGauge()
                        .Name("ironboot_store_groups")
                        .Help("Groups in the served store.")
                        .Register(*registry_)
                        .Add({})),
      store_profiles_(BuildGauge()
                          .Name("ironboot_store_profiles")
                          .Help("Profiles in the served store.")
                          .Register(*registry_)
                          .Add({})),
      store_invalid_files_(BuildGauge()
                               .Name("ironboot_store_invalid_files")
                               .Help("Files refused or found inconsistent at the last load.")
                               .Register(*registry_)
                               .Add({})),
      reloads_(BuildCounter()
                   .Name("ironboot_store_reloads_total")
                   .Help("Store loads, by result (ok: swapped in; error: kept the previous store).")
                   .Register(*registry_)),
      config_fetches_(BuildCounter()
                          .Name("ironboot_config_fetch_total")
                          .Help("Machine-config requests on /config, by result.")
                          .Register(*registry_)) {
  reloads_.Add({{"result", "ok"}});
  reloads_.Add({{"result", "error"}});
  // Every result exists from the start at 0, so the first refusal is an
  // increase Prometheus can see (not a series appearing at 1).
  for (const char* result : {"served", "denied_address", "denied_token", "unknown_mac",
                             "rate_limited", "denied_tls", "bad_request"}) {
    config_fetches_.Add({{"result", result}});
  }
}

HttpMetrics::HandlerMetrics& HttpMetrics::ForHandler(std::string_view handler) {
  std::lock_guard lock(mu_);
  auto it = handlers_.find(handler);
  if (it != handlers_.end()) {
    return *it->second;
  }
  auto m = std::make_unique<HandlerMetrics>();
  std::string h(handler);
  // 100 us .. 10 s: boot scripts answer in microseconds, assets stream for seconds.
  m->duration = &durations_.Add({{"handler", h}},
                                prometheus::Histogram::BucketBoundaries{
                                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  unmatched_.Add({{"handler", h}});
  return *handlers_.emplace(h, std::move(m)).first->second;
}

void HttpMetrics::ObserveRequest(std::string_view handler, unsigned code, double seconds) {
  HandlerMetrics& m = ForHandler(handler);
  prometheus::Counter* counter = nullptr;
  std::atomic<prometheus::Counter*>* slot = nullptr;
  for (size_t i = 0; i < HandlerMetrics::kCodes.size(); ++i) {
    if (HandlerMetrics::kCodes[i] == code) {
      slot = &m.by_code[i];
      counter = slot->load(std::memory_order_acquire);
      break;
    }
  }
  if (counter == nullptr) {
    // Family::Add is idempotent and thread-safe; racing threads get the same counter.
    counter = &requests_.Add({{"handler", std::string(handler)}, {"code", std::to_string(code)}});
    if (slot != nullptr) {
      slot->store(counter, std::memory_order_release);
    }
  }
  counter->Increment();
  m.duration->Observe(seconds);
}

HttpMetrics::~HttpMetrics() = default;

void HttpMetrics::CountSelection(const std::string& group_id) {
  prometheus::Counter* counter = nullptr;
  {
    std::shared_lock lock(selections_mu_);
    if (auto it = selection_counters_.find(group_id); it != selection_counters_.end()) {
      counter = it->second;
    }
  }
  if (counter == nullptr) {
    // Family::Add is idempotent: racing threads get the same counter.
    counter = &selections_.Add({{"group", group_id}});
    std::unique_lock lock(selections_mu_);
    selection_counters_.emplace(group_id, counter);
  }
  counter->Increment();
}

void HttpMetrics::CountUnmatched(std::string_view handler) {
  unmatched_.Add({{"handler", std::string(handler)}}).Increment();
}

void HttpMetrics::SetStore(size_t groups, size_t profiles, size_t invalid_files) {
  store_groups_.Set(static_cast<double>(groups));
  store_profiles_.Set(static_cast<double>(profiles));
  store_invalid_files_.Set(static_cast<double>(invalid_files));
}

void HttpMetrics::CountConfigFetch(std::string_view result) {
  config_fetches_.Add({{"result", std::string(result)}}).Increment();
}

void HttpMetrics::CountReload(bool ok) { reloads_.Add({{"result", ok ? "ok" : "error"}}).Increment(); }

}  // namespace ironboot::bootserver
