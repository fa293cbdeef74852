#include "reconcilers/rollout_metrics.h"

namespace ironboot::reconcilers {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

namespace {
constexpr const char* kStates[] = {"idle", "progressing", "paused", "waiting_window", "soaking", "halted"};
constexpr const char* kNodeStates[] = {"pending", "in_progress", "done", "failed"};

double Seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}
}  // namespace

RolloutMetrics::RolloutMetrics(prometheus::Registry& r)
    : machine_info_(BuildGauge()
                        .Name("ironboot_machine_info")
                        .Help("1 per machine: its role, desired and observed Talos version, and phase "
                              "(unknown, booting, running, outdated, upgrading, failed, down).")
                        .Register(r)),
      machine_ready_(BuildGauge()
                         .Name("ironboot_machine_ready")
                         .Help("1 when the machine's Talos API answers and its services are healthy.")
                         .Register(r)),
      last_boot_(BuildGauge()
                     .Name("ironboot_machine_last_boot_timestamp_seconds")
                     .Help("When the machine last fetched its iPXE script from this server.")
                     .Register(r)),
      state_(BuildGauge()
                 .Name("ironboot_rollout_state")
                 .Help("The rollout's state, one-hot: idle, progressing, paused, waiting_window, "
                       "soaking, halted.")
                 .Register(r)),
      nodes_(BuildGauge()
                 .Name("ironboot_rollout_nodes")
                 .Help("Machines by rollout state: pending, in_progress, done, failed.")
                 .Register(r)),
      current_step_(BuildGauge()
                        .Name("ironboot_rollout_current_step_info")
                        .Help("1 for each machine being stepped, with the gate it waits on.")
                        .Register(r)),
      step_started_(BuildGauge()
                        .Name("ironboot_rollout_step_started_timestamp_seconds")
                        .Help("When the oldest step in flight started; 0 when none.")
                        .Register(r)
                        .Add({})),
      step_timeout_(BuildGauge()
                        .Name("ironboot_rollout_step_timeout_seconds")
                        .Help("The gate timeout (spec.upgrade.healthTimeout).")
                        .Register(r)
                        .Add({})),
      boot_duration_(BuildHistogram()
                         .Name("ironboot_node_boot_duration_seconds")
                         .Help("From the reboot (or upgrade) call to the machine's Talos API "
                               "answering again, for steps that passed their gates.")
                         .Register(r)),
      api_calls_(BuildCounter()
                     .Name("ironboot_talos_api_requests_total")
                     .Help("Talos API calls by call and result (ok, error).")
                     .Register(r)),
      bootstrapped_(BuildGauge()
                        .Name("ironboot_cluster_bootstrapped")
                        .Help("1 once etcd was bootstrapped (by ironboot or before it looked).")
                        .Register(r)
                        .Add({})) {
  for (const char* s : kStates) {
    state_.Add({{"state", s}}).Set(0);
  }
  for (const char* s : kNodeStates) {
    nodes_.Add({{"state", s}}).Set(0);
  }
}

void RolloutMetrics::CountApiCall(const std::string& call, bool ok) {
  api_calls_.Add({{"call", call}, {"result", ok ? "ok" : "error"}}).Increment();
}

void RolloutMetrics::Update(const RolloutReport& report, std::chrono::seconds step_timeout) {
  for (const char* s : kStates) {
    state_.Add({{"state", s}}).Set(report.state == s ? 1 : 0);
  }
  nodes_.Add({{"state", "pending"}}).Set(report.pending);
  nodes_.Add({{"state", "in_progress"}}).Set(report.in_progress);
  nodes_.Add({{"state", "done"}}).Set(report.done);
  nodes_.Add({{"state", "failed"}}).Set(report.failed);
  step_started_.Set(report.step_started ? Seconds(*report.step_started) : 0);
  step_timeout_.Set(static_cast<double>(step_timeout.count()));
  bootstrapped_.Set(report.bootstrap.done_ms != 0 ? 1 : 0);
  for (const auto& labels : step_labels_) {
    current_step_.Remove(&current_step_.Add(labels));
  }
  step_labels_.clear();
  for (const auto& s : report.steps) {
    prometheus::Labels labels{{"machine", s.machine}, {"gate", s.phase == "gates" ? s.gate : s.phase}};
    current_step_.Add(labels).Set(1);
    step_labels_.push_back(labels);
  }
  std::map<std::string, bool> seen;
  for (const auto& m : report.machines) {
    seen[m.name] = true;
    MachineSeries now{{{"machine", m.name},
                       {"role", m.role},
                       {"desired_version", m.desired_version},
                       {"observed_version", m.observed_version},
                       {"phase", m.phase}},
                      m.ready,
                      m.last_boot ? Seconds(*m.last_boot) : 0};
    auto old = machine_series_.find(m.name);
    if (old != machine_series_.end()) {
      const auto& was = old->second;
      if (was.info == now.info && was.ready == now.ready && was.last_boot == now.last_boot) {
        continue;  // a fleet at rest changes nothing: skip 200 label lookups a pass
      }
      if (was.info != now.info) {
        machine_info_.Remove(&machine_info_.Add(was.info));
      }
    }
    machine_info_.Add(now.info).Set(1);
    machine_ready_.Add({{"machine", m.name}}).Set(m.ready ? 1 : 0);
    if (m.last_boot) {
      last_boot_.Add({{"machine", m.name}}).Set(now.last_boot);
    }
    machine_series_[m.name] = std::move(now);
  }
  for (auto it = machine_series_.begin(); it != machine_series_.end();) {
    if (!seen.contains(it->first)) {
      machine_info_.Remove(&machine_info_.Add(it->second.info));
      machine_ready_.Remove(&machine_ready_.Add({{"machine", it->first}}));
      last_boot_.Remove(&last_boot_.Add({{"machine", it->first}}));
      it = machine_series_.erase(it);
    } else {
      ++it;
    }
  }
  static const prometheus::Histogram::BucketBoundaries kBuckets = {5, 10, 30, 60, 120, 300, 600, 900, 1800};
  for (const auto& [role, seconds] : report.boot_durations) {
    boot_duration_.Add({{"role", role}}, kBuckets).Observe(seconds);
  }
}

}  // namespace ironboot::reconcilers
