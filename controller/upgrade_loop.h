#pragma once
// controller/: the upgrade loop. Every pass: poll the Talos API of the
// machines that need it (in parallel, each call with a deadline), take the
// boot server's observations, run the Sequencer, re-render when a machine's
// pinned release changed, and export /status and the fleet metrics.
// Machines being stepped, not ready or never seen are polled every pass;
// healthy idle ones every `idle_poll_interval`. The caller feeds `observed`:
// BootHandler::Options::observer -> OnRequest, GitOpsOptions::on_publish -> SetPlan.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "common/clock.h"
#include "common/worker_pool.h"
#include "controller/gitops.h"
#include "reconcilers/observed_state.h"
#include "reconcilers/rollout.h"
#include "reconcilers/rollout_metrics.h"
#include "talos/node_client.h"

namespace ironboot::controller {

struct UpgradeLoopOptions {
  std::filesystem::path state_dir;  // the rollout state lives in <state_dir>/rollout/state.json
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds idle_poll_interval{10000};
  std::chrono::seconds reboot_grace{30};
};

// One Talos API poll of a pass.
struct PollJob {
  std::string machine;
  std::string node;  // address dialled
  bool control_plane = false;
};

// Which machines a pass polls. Machines in a step or not ready: every
// `interval` (one that did not answer: every other interval). Ready idle ones:
// every `idle_poll_interval`, at most twice their steady rate per pass (the
// time since `last_pass`, at least one interval), the longest-waiting first, so
// a fleet whose polls fell due together spreads out. Machines with no address
// known go to `no_address` instead.
std::vector<PollJob> DuePolls(const std::vector<reconcilers::RolloutMachine>& machines,
                              const reconcilers::ObservedMachines& observed,
                              const std::set<std::string>& stepping,
                              const std::map<std::string, reconcilers::TimePoint>& last_poll,
                              reconcilers::TimePoint now, reconcilers::TimePoint last_pass,
                              const UpgradeLoopOptions& options,
                              std::vector<std::string>* no_address);

class UpgradeLoop {
 public:
  // Borrowed pointers must outlive the loop.
  UpgradeLoop(UpgradeLoopOptions options, GitOpsController* gitops, talos::NodeClientPtr client,
              reconcilers::ObservedState* observed, std::shared_ptr<prometheus::Registry> registry,
              ClockPtr clock);
  ~UpgradeLoop();

  // Loads the rollout state (an unreadable state file is an error: the
  // bootstrap decision lives there).
  Result<void> Load();
  // Pins for GitOpsOptions::pins. Thread-safe.
  std::map<std::string, std::string> Pins() const { return sequencer_.Pins(); }
  // GitOpsOptions::local_boot: with strategy talos-upgrade, the machines seen
  // running (installed on disk), answered `exit` so they boot from it. Thread-safe.
  std::set<std::string> LocalBoot() const;

  void Start();
  void Stop();
  // Runs the next pass now (a plan was published). Thread-safe.
  void Wake();
  // One pass (tests and Start's thread).
  void PassOnce();

  // /status "fleet" and "rollout". Thread-safe. No secret material.
  nlohmann::json Status() const;

 private:
  void Poll(const std::vector<reconcilers::RolloutMachine>& machines,
            const reconcilers::ObservedMachines& before);
  // Version, services and (control planes) etcd of one node.
  reconcilers::ApiObservation PollOne(const std::string& node, bool control_plane);

  const UpgradeLoopOptions options_;
  GitOpsController* const gitops_;
  const talos::NodeClientPtr client_;
  reconcilers::ObservedState* const observed_;
  const ClockPtr clock_;
  reconcilers::Sequencer sequencer_;
  reconcilers::RolloutMetrics metrics_;

  // Owned by the pass thread.
  std::map<std::string, reconcilers::TimePoint> last_poll_;
  reconcilers::TimePoint last_pass_{};  // when Poll last ran (spreads idle polls)
  WorkerPool poll_pool_{"talos-poll"};  // kept between passes: a thread per poll cost more than the poll
  std::set<std::string> stepping_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                            // guarded by mu_
  bool woken_ = false;                           // guarded by mu_
  reconcilers::RolloutReport report_;            // guarded by mu_
  bool have_report_ = false;                     // guarded by mu_
  std::string policy_text_;                      // guarded by mu_
  std::set<std::string> local_boot_;             // guarded by mu_
  std::thread thread_;
};

}  // namespace ironboot::controller
