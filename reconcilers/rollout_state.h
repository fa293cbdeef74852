#pragma once
// reconcilers/: the rollout's durable state (DESIGN "StateStore"). Written
// before every action (temp file, fsync, rename, fsync of the directory), so
// a controller killed at any moment restarts knowing which machine it was
// stepping, whether the reboot was sent and which gates had passed.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace ironboot::reconcilers {

// Times are Unix milliseconds; 0 means "not yet".
struct RolloutStep {
  std::string machine;
  std::string from_version;
  std::string to_version;
  bool rollback = false;  // moving a failed machine back to from_version... (to_version is the old one)
  bool canary = false;
  int64_t started_ms = 0;
  // "pin": waiting for the boot server to serve to_version to the machine;
  // "reboot": sending Reboot (pxe-reboot) or Upgrade (talos-upgrade);
  // "gates": waiting for the gates after the reboot.
  std::string phase = "pin";
  int64_t phase_since_ms = 0;
  int64_t reboot_attempt_ms = 0;  // set before the call is sent
  int64_t reboot_acked_ms = 0;    // set once the node accepted it
  std::string last_error;
  std::string gate;  // the gate being waited on
  int64_t gate_since_ms = 0;
  std::vector<std::string> gates_passed;
};

struct BootstrapState {
  std::string node;         // the control plane chosen; "" before the decision
  int64_t decided_ms = 0;   // persisted before the call
  int64_t done_ms = 0;      // the call succeeded, or etcd was found running
  bool found_running = false;  // the cluster was bootstrapped before we looked
};

struct RolloutState {
  // The release each machine is served (its profile). A machine without a
  // pin is served its desired release.
  std::map<std::string, std::string> pins;
  // The previous release of each machine that completed a step (rollback target).
  std::map<std::string, std::string> previous;
  std::vector<RolloutStep> steps;  // in flight
  std::map<std::string, std::string> failed;  // machine -> reason
  std::string halted_reason;  // non-empty: no new steps
  // Desired versions the halt and the canary belong to ("cp1=v1.12.0,...");
  // a commit that changes them clears both.
  std::string target;
  bool canary_done = false;
  int64_t soak_until_ms = 0;
  std::string soak_machine;
  BootstrapState bootstrap;
  int64_t completed_steps = 0;
};

// Reads `path`; a missing file is an empty state (kNotFound is not returned).
Result<RolloutState> LoadRolloutState(const std::filesystem::path& path);
// Atomically replaces `path` (mode 0600).
Result<void> SaveRolloutState(const RolloutState& state, const std::filesystem::path& path);

}  // namespace ironboot::reconcilers
