#pragma once
// reconcilers/: the upgrade reconciler. Observe (ObservedState) -> diff
// (desired release per machine vs the release it is served and runs) ->
// act, one safe step at a time:
//   - bootstrap: Bootstrap on exactly one control plane, once for the
//     cluster's life (decision persisted before the call);
//   - control planes first, one at a time, only while etcd is healthy, has a
//     leader and keeps quorum without the machine (never with two members);
//   - then workers, at most maxUnavailable at once counting workers already
//     unhealthy; optionally one canary worker first, then a soak;
//   - a step: serve the machine its new release (its pin), wait until the
//     boot server publishes it, Reboot (pxe-reboot) or Upgrade (talos-upgrade),
//     then the gates: boot (new kernel, initramfs, config fetched), version,
//     services, etcd. Each gate times out (healthTimeout);
//   - a failed gate halts the rollout: no new step starts, the machine is
//     marked failed, and with rollback it is moved back to its previous release.
// All progress is in the state file, written before each action.

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "manifests/types.h"
#include "reconcilers/observed_state.h"
#include "reconcilers/rollout_state.h"
#include "talos/node_client.h"

namespace ironboot::reconcilers {

struct RolloutMachine {
  std::string name;
  manifests::Role role = manifests::Role::kWorker;
  std::string address;  // host only (Talos API endpoint); "" if the machine has no static address
  std::string desired_version;
  std::string installer_image;  // of the desired release (talos-upgrade)
  // Release version -> installer image, for this machine's arch: a rollback
  // under talos-upgrade installs the previous release's image.
  std::map<std::string, std::string> installer_images;
  bool paused = false;
};

struct RolloutPolicy {
  std::string strategy = "pxe-reboot";  // or "talos-upgrade"
  int max_unavailable_worker = 1;
  std::chrono::seconds gate_timeout{15 * 60};
  std::optional<std::chrono::seconds> canary_soak;  // set: one worker first, then soak
  bool rollback = false;
  bool paused = false;
  // Whether new steps may start now (maintenance window); empty: always.
  std::function<bool(TimePoint)> window_open;
  // After a restart, how long an unacknowledged reboot is given to show
  // (the node going down or coming back new) before it is sent again.
  std::chrono::seconds reboot_grace{30};
  // How often a failed Bootstrap call is retried (same node only).
  std::chrono::seconds bootstrap_retry{10};
};

struct RolloutInput {
  std::vector<RolloutMachine> machines;  // sorted by name
  RolloutPolicy policy;
  // The release each machine's served plan boots now (from the published plan).
  std::map<std::string, std::string> served_versions;
};

// What /status and the metrics show after a pass.
struct RolloutReport {
  // idle, progressing, paused, waiting_window, soaking, halted
  std::string state = "idle";
  std::string halted_reason;
  std::string blocked_reason;  // why no step starts now (etcd unhealthy, window, ...)
  std::vector<RolloutStep> steps;
  struct Machine {
    std::string name;
    std::string role;
    std::string desired_version;
    std::string served_version;
    std::string observed_version;
    std::string phase;  // unknown, booting, running, outdated, upgrading, failed, down
    bool ready = false;
    std::string failed_reason;
    std::optional<TimePoint> last_boot;
  };
  std::vector<Machine> machines;
  int pending = 0, in_progress = 0, done = 0, failed = 0;
  BootstrapState bootstrap;
  std::string bootstrap_status;  // e.g. "waiting for all control planes to answer"
  // Steps completed in this pass: role and seconds from reboot to the gates passing.
  std::vector<std::pair<std::string, double>> boot_durations;
  int64_t completed_steps = 0;
  std::optional<TimePoint> step_started;  // oldest in-flight step
};

class Sequencer {
 public:
  // `state_file`: <state dir>/rollout/state.json.
  Sequencer(std::filesystem::path state_file, talos::NodeClientPtr client, ClockPtr clock);

  // Reads the state file. An unreadable file is an error: the controller
  // must not start over silently (the bootstrap decision lives there).
  Result<void> Load();

  // The release each pinned machine is served; render applies these on top
  // of the desired versions. Thread-safe.
  std::map<std::string, std::string> Pins() const;

  // One pass. Call from one thread. `pins_changed` is set when Pins() changed
  // (the caller re-renders and publishes).
  RolloutReport Reconcile(const RolloutInput& input, const ObservedMachines& observed,
                          bool* pins_changed);

 private:
  // Persist marks the state changed; Flush writes it (before every action,
  // and at the end of each pass), so a pass costs one write, not one per change.
  bool Persist();
  bool Flush();
  void Bootstrap(const RolloutInput& input, const ObservedMachines& observed, RolloutReport& report);
  // Returns true when the step is finished (done or failed).
  bool Advance(RolloutStep& step, const RolloutMachine& machine, const RolloutInput& input,
               const ObservedMachines& observed, RolloutReport& report);
  void FailStep(RolloutStep& step, const std::string& reason, const RolloutInput& input);
  std::string CheckGate(const std::string& gate, const RolloutStep& step,
                        const RolloutMachine& machine, const RolloutInput& input,
                        const ObservedMachines& observed) const;
  std::vector<std::string> GatesFor(const RolloutStep& step, const RolloutPolicy& policy) const;
  void StartStep(const RolloutMachine& machine, bool canary, bool* pins_changed);

  const std::filesystem::path state_file_;
  const talos::NodeClientPtr client_;
  const ClockPtr clock_;
  const TimePoint started_at_;

  mutable std::mutex pins_mu_;
  RolloutState state_;  // pins guarded by pins_mu_ for Pins(); the rest is the pass thread's
  int64_t last_bootstrap_attempt_ms_ = 0;
  bool dirty_ = false;
};

// The etcd cluster as the control planes report it.
struct EtcdView {
  bool bootstrapped = false;  // some control plane reports members
  size_t members = 0;
  size_t healthy = 0;
  bool leader = false;
  std::string problem;  // first thing wrong, for messages
};
EtcdView ViewEtcd(const std::vector<RolloutMachine>& machines, const ObservedMachines& observed);

// Whether taking one healthy member down keeps etcd writable: never with two
// members (as Talos refuses), always with one (no choice), else the healthy
// members left must still be a quorum.
bool EtcdToleratesOneDown(const EtcdView& view, std::string* why);

}  // namespace ironboot::reconcilers
