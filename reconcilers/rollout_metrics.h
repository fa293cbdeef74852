#pragma once
// reconcilers/: the fleet and rollout metrics (issue 6), set from each
// RolloutReport. Machine-labelled series are bounded by the repo's machines
// and removed when a machine leaves it.

#include <map>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "reconcilers/rollout.h"

namespace ironboot::reconcilers {

class RolloutMetrics {
 public:
  explicit RolloutMetrics(prometheus::Registry& registry);

  void Update(const RolloutReport& report, std::chrono::seconds step_timeout);
  // ironboot_talos_api_requests_total{call,result}
  void CountApiCall(const std::string& call, bool ok);

 private:
  prometheus::Family<prometheus::Gauge>& machine_info_;   // machine_info{machine,role,desired_version,observed_version,phase}
  prometheus::Family<prometheus::Gauge>& machine_ready_;  // machine_ready{machine}
  prometheus::Family<prometheus::Gauge>& last_boot_;      // machine_last_boot_timestamp_seconds{machine}
  prometheus::Family<prometheus::Gauge>& state_;          // rollout_state{state}
  prometheus::Family<prometheus::Gauge>& nodes_;          // rollout_nodes{state}
  prometheus::Family<prometheus::Gauge>& current_step_;   // rollout_current_step_info{machine,gate}
  prometheus::Gauge& step_started_;                       // rollout_step_started_timestamp_seconds
  prometheus::Gauge& step_timeout_;                       // rollout_step_timeout_seconds
  prometheus::Family<prometheus::Histogram>& boot_duration_;  // node_boot_duration_seconds{role}
  prometheus::Family<prometheus::Counter>& api_calls_;        // talos_api_requests_total{call,result}
  prometheus::Gauge& bootstrapped_;                           // cluster_bootstrapped

  struct MachineSeries {  // what was set last for one machine
    prometheus::Labels info;
    bool ready = false;
    double last_boot = 0;
  };
  std::map<std::string, MachineSeries> machine_series_;
  std::vector<prometheus::Labels> step_labels_;
};

}  // namespace ironboot::reconcilers
