#pragma once
// bootserver/: the boot server's Prometheus metrics, in one struct built from
// an injected registry so tests can read them. Label values come from a fixed
// set (handlers, codes) or from the store (group ids), never from a request.

#include <array>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace ironboot::bootserver {

class HttpMetrics {
 public:
  explicit HttpMetrics(std::shared_ptr<prometheus::Registry> registry);
  ~HttpMetrics();

  // Counts one request and its duration. `handler` is a route name from the
  // server's own table.
  void ObserveRequest(std::string_view handler, unsigned code, double seconds);
  void CountSelection(const std::string& group_id);
  void CountUnmatched(std::string_view handler);
  void AddAssetBytes(uint64_t n) { asset_bytes_sent_.Increment(static_cast<double>(n)); }
  void SetStore(size_t groups, size_t profiles, size_t invalid_files);
  void CountReload(bool ok);
  // result: served, not_found, bad_request (and, with access control, refused).
  void CountConfigFetch(std::string_view result);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  struct HandlerMetrics;
  HandlerMetrics& ForHandler(std::string_view handler);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Family<prometheus::Counter>& selections_;
  prometheus::Family<prometheus::Counter>& unmatched_;
  prometheus::Counter& asset_bytes_sent_;
  prometheus::Gauge& store_groups_;
  prometheus::Gauge& store_profiles_;
  prometheus::Gauge& store_invalid_files_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Family<prometheus::Counter>& config_fetches_;

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<HandlerMetrics>, std::less<>> handlers_;  // guarded by mu_

  // The selection counter of each group id seen so far (never removed, as in
  // the family), so counting a selection is one string-hash lookup under a
  // shared lock instead of Family::Add (label-map hash and compare under the
  // family's mutex), which was 4% of CPU at 10,000 groups.
  std::shared_mutex selections_mu_;
  std::unordered_map<std::string, prometheus::Counter*> selection_counters_;  // guarded by selections_mu_
};

}  // namespace ironboot::bootserver
