// Tests of the upgrade sequencer against a small in-memory Talos world with
// fault injection (the end-to-end tests use the gRPC simulated fleet): the
// bootstrap happens once, control planes go one at a time only while etcd
// keeps quorum, workers respect maxUnavailable, a failed gate halts
// everything, and a restart from the state file never reboots a machine
// twice for one step.

#include "reconcilers/rollout.h"

#include <algorithm>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "tests/testutil/testutil.h"

namespace ironboot::reconcilers {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kOld[] = "v1.11.3";
constexpr char kNew[] = "v1.12.0";

struct SimNode {
  bool control_plane = false;
  std::string version = kOld;
  bool up = true;
  bool etcd_member = false;
  bool etcd_unhealthy = false;
  bool never_returns = false;
  bool returns_old = false;
  bool refuses_reboot = false;
  int reboots = 0;
  int upgrades = 0;
  std::vector<std::string> upgrade_images;  // images of the Upgrade calls, in order
  std::chrono::seconds upgrade_delay{0};     // Upgrade accepted, reboot this much later
  std::optional<TimePoint> down_at;          // a reboot that is due
  int boots = 0;                             // times it came back
  TimePoint back_at{};
};

// The machines' Talos APIs. Addresses are the machine names.
class World : public talos::NodeClient {
 public:
  explicit World(std::shared_ptr<FakeClock> clock) : clock_(std::move(clock)) {}

  std::map<std::string, SimNode> nodes;
  std::vector<std::string> bootstrap_calls;
  bool bootstrapped = false;
  // Every moment at which two control planes were down at once.
  int max_cps_down = 0;

  Result<talos::NodeVersion> Version(const std::string& node) override {
    auto* n = Up(node);
    if (n == nullptr) {
      return Fail(ErrorCode::kUnavailable, "Talos API " + node + ":50000 Version: connection refused");
    }
    return talos::NodeVersion{n->version, "", "amd64", "metal"};
  }
  Result<std::vector<talos::ServiceStatus>> Services(const std::string& node) override {
    auto* n = Up(node);
    if (n == nullptr) {
      return Fail(ErrorCode::kUnavailable, "down");
    }
    std::vector<talos::ServiceStatus> s = {{"apid", "Running", true, false, ""},
                                           {"kubelet", "Running", true, false, ""}};
    if (n->control_plane) {
      bool ok = n->etcd_member && !n->etcd_unhealthy;
      s.push_back({"etcd", ok ? "Running" : "Preparing", ok, false, ""});
    }
    return s;
  }
  Result<std::vector<talos::EtcdMember>> EtcdMembers(const std::string& node) override {
    auto* n = Up(node);
    if (n == nullptr || !bootstrapped || !n->etcd_member) {
      return Fail(ErrorCode::kUnavailable, "etcd not running on " + node);
    }
    std::vector<talos::EtcdMember> members;
    uint64_t id = 1;
    for (const auto& [name, other] : nodes) {
      if (other.etcd_member) {
        members.push_back({id, name, {}, {}, false});
      }
      ++id;
    }
    return members;
  }
  Result<talos::EtcdMemberStatus> EtcdStatus(const std::string& node) override {
    auto* n = Up(node);
    if (n == nullptr || !n->etcd_member) {
      return Fail(ErrorCode::kUnavailable, "etcd not running");
    }
    talos::EtcdMemberStatus st;
    uint64_t id = 1;
    for (const auto& [name, other] : nodes) {
      if (other.etcd_member && other.up && !other.etcd_unhealthy && st.leader == 0) {
        st.leader = id;
      }
      ++id;
    }
    if (n->etcd_unhealthy) {
      st.errors.push_back("raft: not healthy");
    }
    return st;
  }
  Result<void> Reboot(const std::string& node, talos::RebootMode) override {
    auto* n = Up(node);
    if (n == nullptr) {
      return Fail(ErrorCode::kUnavailable, "down");
    }
    if (n->refuses_reboot) {
      return Fail(ErrorCode::kInvalid, "Talos API " + node + ":50000 Reboot: refused");
    }
    ++n->reboots;
    GoDown(*n);
    return {};
  }
  Result<void> Upgrade(const std::string& node, const std::string& image, bool) override {
    auto* n = Up(node);
    if (n == nullptr) {
      return Fail(ErrorCode::kUnavailable, "down");
    }
    if (image.empty()) {
      return Fail(ErrorCode::kInvalid, "Talos API " + node + ":50000 Upgrade: no image");
    }
    ++n->upgrades;
    n->upgrade_images.push_back(image);
    installed_[node] = image.substr(image.rfind(':') + 1);
    if (n->upgrade_delay.count() > 0) {
      n->down_at = clock_->Now() + n->upgrade_delay;  // drains and pulls first
    } else {
      GoDown(*n);
    }
    return {};
  }
  Result<void> Bootstrap(const std::string& node) override {
    bootstrap_calls.push_back(node);
    if (bootstrapped) {
      return Fail(ErrorCode::kInvalid, "etcd already bootstrapped");
    }
    bootstrapped = true;
    for (auto& [name, n] : nodes) {
      n.etcd_member = n.control_plane && n.up;
    }
    return {};
  }
  Result<std::string> Kubeconfig(const std::string&) override { return std::string("kubeconfig"); }

  // Machines that are due come back, booting what `served` says (or the
  // installed image for talos-upgrade); they fetch kernel, initramfs, config.
  void Tick(const std::map<std::string, std::string>& served, ObservedMachines& observed,
            bool from_disk) {
    for (auto& [name, n] : nodes) {
      if (n.up && n.down_at && clock_->Now() >= *n.down_at) {
        n.down_at.reset();
        GoDown(n);
        continue;
      }
      if (!n.up && !n.never_returns && clock_->Now() >= n.back_at) {
        n.up = true;
        ++n.boots;
        if (!n.returns_old) {
          n.version = from_disk ? installed_[name] : served.at(name);
        }
        if (n.control_plane && bootstrapped) {
          n.etcd_member = true;
        }
        if (!from_disk) {
          auto& o = observed[name];
          o.ipxe = o.kernel = o.initramfs = o.config = BootFetch{clock_->Now(), name, n.version};
        }
      }
    }
    int down = 0;
    for (const auto& [name, n] : nodes) {
      down += n.control_plane && !n.up ? 1 : 0;
    }
    max_cps_down = std::max(max_cps_down, down);
  }

 private:
  SimNode* Up(const std::string& node) {
    auto it = nodes.find(node);
    return it == nodes.end() || !it->second.up ? nullptr : &it->second;
  }
  void GoDown(SimNode& n) {
    n.up = false;
    n.back_at = clock_->Now() + 60s;
  }
  std::shared_ptr<FakeClock> clock_;
  std::map<std::string, std::string> installed_;
};

class RolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_ = std::make_shared<FakeClock>();
    world_ = std::make_shared<World>(clock_);
    for (const char* cp : {"cp1", "cp2", "cp3"}) {
      world_->nodes[cp].control_plane = true;
      AddMachine(cp, manifests::Role::kControlPlane);
    }
    for (const char* w : {"w1", "w2", "w3"}) {
      AddMachine(w, manifests::Role::kWorker);
    }
    input_.policy.gate_timeout = 15min;
    input_.policy.max_unavailable_worker = 1;
    Restart();
  }

  void AddMachine(const std::string& name, manifests::Role role) {
    RolloutMachine m;
    m.name = name;
    m.role = role;
    m.address = name;
    m.desired_version = kOld;
    m.installer_image = "factory.talos.dev/metal-installer/abc:" + std::string(kOld);
    for (const char* v : {kOld, kNew}) {
      m.installer_images[v] = "factory.talos.dev/metal-installer/abc:" + std::string(v);
    }
    input_.machines.push_back(m);
    world_->nodes[name];
  }

  void SetDesired(const std::string& version) {
    for (auto& m : input_.machines) {
      m.desired_version = version;
      m.installer_image = "factory.talos.dev/metal-installer/abc:" + version;
    }
  }

  // A controller (re)start: a new Sequencer from the same state file, boot
  // events forgotten.
  void Restart() {
    seq_ = std::make_unique<Sequencer>(dir_.path() / "rollout" / "state.json", world_, clock_);
    ASSERT_TRUE(seq_->Load().has_value());
    observed_.clear();
  }

  // One controller pass: machines come back, the Talos API is polled, the
  // sequencer decides; the boot server publishes pins at once.
  RolloutReport Pass() {
    auto pins = seq_->Pins();
    std::map<std::string, std::string> served;
    for (const auto& m : input_.machines) {
      served[m.name] = pins.contains(m.name) ? pins[m.name] : m.desired_version;
    }
    world_->Tick(served, observed_, input_.policy.strategy == "talos-upgrade");
    for (const auto& m : input_.machines) {
      ApiObservation obs;
      obs.at = clock_->Now();
      auto v = world_->Version(m.name);
      obs.up = v.has_value();
      if (v) {
        obs.version = v->tag;
        obs.services = *world_->Services(m.name);
        if (m.role == manifests::Role::kControlPlane) {
          obs.etcd_queried = true;
          auto members = world_->EtcdMembers(m.name);
          if (members) {
            obs.etcd_members = *members;
            obs.etcd_status = *world_->EtcdStatus(m.name);
          } else {
            obs.etcd_error = members.error().message;
          }
        }
      } else {
        obs.error = v.error().message;
      }
      auto& o = observed_[m.name];
      if (obs.up && !o.ApiUp()) {
        o.up_since = obs.at;
      }
      if (!obs.up) {
        o.last_down = obs.at;  // as ObservedState::RecordApi
      }
      o.api = obs;
    }
    input_.served_versions = served;
    bool changed = false;
    auto report = seq_->Reconcile(input_, observed_, &changed);
    clock_->Advance(10s);
    return report;
  }

  // strategy talos-upgrade with rollback: the workers are moved to kNew
  // (control planes stay), passes run until the rollout halted with no step
  // in flight (a failed step and its rollback are over).
  RolloutReport RollWorkersUntilHaltedUnderTalosUpgrade() {
    Bootstrap();
    input_.policy.strategy = "talos-upgrade";
    input_.policy.rollback = true;
    for (auto& m : input_.machines) {
      if (m.role == manifests::Role::kWorker) {
        m.desired_version = kNew;
        m.installer_image = m.installer_images[kNew];
      }
    }
    return RunUntil([&](const RolloutReport& r) { return r.state == "halted" && r.steps.empty(); });
  }

  // Passes until `done` or `limit` passes; returns the last report.
  RolloutReport RunUntil(const std::function<bool(const RolloutReport&)>& done, int limit = 400) {
    RolloutReport r;
    for (int i = 0; i < limit; ++i) {
      r = Pass();
      for (const auto& s : r.steps) {
        if (input_.machines.size() > 0) {
          cps_in_step_max_ = std::max(cps_in_step_max_, CpsInStep(r));
        }
        (void)s;
      }
      if (done(r)) {
        return r;
      }
    }
    return r;
  }

  int CpsInStep(const RolloutReport& r) {
    int n = 0;
    for (const auto& s : r.steps) {
      n += s.machine.rfind("cp", 0) == 0 ? 1 : 0;
    }
    return n;
  }

  void Bootstrap() {
    RunUntil([](const RolloutReport& r) { return r.bootstrap.done_ms != 0; });
    ASSERT_TRUE(world_->bootstrapped);
  }

  static bool Converged(const RolloutReport& r) {
    return r.steps.empty() && r.pending == 0 && r.state == "idle";
  }

  testutil::TempDir dir_;
  std::shared_ptr<FakeClock> clock_;
  std::shared_ptr<World> world_;
  std::unique_ptr<Sequencer> seq_;
  RolloutInput input_;
  ObservedMachines observed_;
  int cps_in_step_max_ = 0;
};

// The cluster is bootstrapped on exactly one control plane, the first by name.
TEST_F(RolloutTest, BootstrapsOnceOnTheFirstControlPlane) {
  Bootstrap();
  for (int i = 0; i < 20; ++i) {
    Pass();
  }
  EXPECT_THAT(world_->bootstrap_calls, ElementsAre("cp1"));
}

// No bootstrap while a control plane's API is not answering yet.
TEST_F(RolloutTest, BootstrapWaitsForEveryControlPlane) {
  world_->nodes["cp3"].up = false;
  world_->nodes["cp3"].never_returns = true;
  RolloutReport r;
  for (int i = 0; i < 10; ++i) {
    r = Pass();
  }
  EXPECT_TRUE(world_->bootstrap_calls.empty());
  EXPECT_THAT(r.bootstrap_status, HasSubstr("cp3"));
}

// A restart after the decision was saved but before etcd shows: the same
// node is asked again only after the grace, never another node; and when
// etcd already runs, never again at all.
TEST_F(RolloutTest, BootstrapDecisionSurvivesRestart) {
  // Decide, but make the call fail so it is not done.
  world_->nodes["cp1"].up = true;
  RolloutState state;
  state.bootstrap.node = "cp2";
  state.bootstrap.decided_ms = 1;
  ASSERT_TRUE(SaveRolloutState(state, dir_.path() / "rollout" / "state.json").has_value());
  Restart();
  Pass();  // within the grace: no call
  EXPECT_TRUE(world_->bootstrap_calls.empty());
  RunUntil([](const RolloutReport& r) { return r.bootstrap.done_ms != 0; });
  EXPECT_THAT(world_->bootstrap_calls, ElementsAre("cp2"));
  Restart();
  for (int i = 0; i < 10; ++i) {
    Pass();
  }
  EXPECT_THAT(world_->bootstrap_calls, ElementsAre("cp2"));
}

// A cluster bootstrapped before ironboot looked is never bootstrapped again.
TEST_F(RolloutTest, RunningEtcdIsNeverBootstrappedAgain) {
  world_->bootstrapped = true;
  for (auto& [name, n] : world_->nodes) {
    n.etcd_member = n.control_plane;
  }
  auto r = RunUntil([](const RolloutReport& r) { return r.bootstrap.done_ms != 0; });
  EXPECT_TRUE(world_->bootstrap_calls.empty());
  EXPECT_TRUE(r.bootstrap.found_running);
}

// v1.11.3 -> v1.12.0: control planes one at a time, then workers; one reboot
// per machine; never two control planes down; every machine ends on v1.12.0.
TEST_F(RolloutTest, RollsControlPlanesOneAtATimeThenWorkers) {
  Bootstrap();
  SetDesired(kNew);
  std::vector<std::string> order;
  auto r = RunUntil([&](const RolloutReport& r) {
    for (const auto& s : r.steps) {
      if (std::find(order.begin(), order.end(), s.machine) == order.end()) {
        order.push_back(s.machine);
      }
    }
    return Converged(r);
  });
  ASSERT_TRUE(Converged(r)) << r.state << " " << r.blocked_reason << " " << r.halted_reason;
  EXPECT_THAT(order, ElementsAre("cp1", "cp2", "cp3", "w1", "w2", "w3"));
  EXPECT_EQ(world_->max_cps_down, 1);
  EXPECT_EQ(cps_in_step_max_, 1);
  for (const auto& [name, n] : world_->nodes) {
    EXPECT_EQ(n.reboots, 1) << name;
    EXPECT_EQ(n.version, kNew) << name;
  }
  EXPECT_EQ(r.done, 6);
  EXPECT_EQ(r.completed_steps, 6);
}

// maxUnavailable 2 lets two workers step at once; an already unhealthy
// worker counts against it.
TEST_F(RolloutTest, WorkersRespectMaxUnavailableCountingUnhealthyOnes) {
  Bootstrap();
  input_.policy.max_unavailable_worker = 2;
  // Control planes already new.
  for (auto& m : input_.machines) {
    if (m.role == manifests::Role::kControlPlane) {
      m.desired_version = kOld;
    } else {
      m.desired_version = kNew;
    }
  }
  world_->nodes["w3"].up = false;
  world_->nodes["w3"].never_returns = true;
  size_t max_steps = 0;
  auto r = RunUntil([&](const RolloutReport& r) {
    max_steps = std::max(max_steps, r.steps.size());
    return world_->nodes["w1"].version == kNew && world_->nodes["w2"].version == kNew &&
           r.steps.empty();
  });
  // w3 is down: only one of w1/w2 may be unavailable at a time.
  EXPECT_EQ(max_steps, 1u);
  EXPECT_EQ(world_->nodes["w1"].reboots, 1);
  EXPECT_EQ(world_->nodes["w2"].reboots, 1);
}

// With an unhealthy etcd member no control-plane step starts.
TEST_F(RolloutTest, UnhealthyEtcdBlocksControlPlaneSteps) {
  Bootstrap();
  world_->nodes["cp3"].etcd_unhealthy = true;
  SetDesired(kNew);
  RolloutReport r;
  for (int i = 0; i < 20; ++i) {
    r = Pass();
  }
  EXPECT_TRUE(r.steps.empty());
  EXPECT_THAT(r.blocked_reason, HasSubstr("cp3"));
  for (const auto& [name, n] : world_->nodes) {
    EXPECT_EQ(n.reboots, 0) << name;
  }
  world_->nodes["cp3"].etcd_unhealthy = false;
  r = RunUntil([](const RolloutReport& r) { return !r.steps.empty(); });
  EXPECT_EQ(r.steps[0].machine, "cp1");
}

// Two etcd members: a control-plane step would lose quorum; refused.
TEST(EtcdQuorum, RefusesWithTwoMembersAndBelowQuorum) {
  std::string why;
  EXPECT_FALSE(EtcdToleratesOneDown({true, 2, 2, true, ""}, &why));
  EXPECT_THAT(why, HasSubstr("exactly 2 members"));
  EXPECT_TRUE(EtcdToleratesOneDown({true, 3, 3, true, ""}, &why));
  EXPECT_FALSE(EtcdToleratesOneDown({true, 3, 2, true, "etcd member cp2 is down"}, &why));
  EXPECT_THAT(why, HasSubstr("cp2"));
  EXPECT_TRUE(EtcdToleratesOneDown({true, 5, 5, true, ""}, &why));
  EXPECT_TRUE(EtcdToleratesOneDown({true, 1, 1, true, ""}, &why));
  EXPECT_FALSE(EtcdToleratesOneDown({true, 3, 3, false, ""}, &why));
}

// A machine that never comes back fails its gate at the timeout, halts the
// rollout, and no later machine is rebooted.
TEST_F(RolloutTest, NodeThatNeverReturnsHaltsTheRollout) {
  Bootstrap();
  world_->nodes["cp2"].never_returns = true;
  SetDesired(kNew);
  auto r = RunUntil([](const RolloutReport& r) { return r.state == "halted"; });
  ASSERT_EQ(r.state, "halted");
  EXPECT_THAT(r.halted_reason, HasSubstr("cp2"));
  EXPECT_THAT(r.halted_reason, HasSubstr("not passed within 15m"));
  for (int i = 0; i < 50; ++i) {
    r = Pass();
  }
  EXPECT_EQ(world_->nodes["cp1"].reboots, 1);
  EXPECT_EQ(world_->nodes["cp2"].reboots, 1);
  EXPECT_EQ(world_->nodes["cp3"].reboots, 0);
  EXPECT_EQ(world_->nodes["w1"].reboots, 0);
  auto failed = std::find_if(r.machines.begin(), r.machines.end(),
                             [](const auto& m) { return m.name == "cp2"; });
  EXPECT_EQ(failed->phase, "failed");
  EXPECT_EQ(r.failed, 1);
}

// A machine that comes back on the old release fails the version gate.
TEST_F(RolloutTest, ComingBackOnTheOldVersionFailsTheVersionGate) {
  Bootstrap();
  world_->nodes["cp1"].returns_old = true;
  SetDesired(kNew);
  auto r = RunUntil([](const RolloutReport& r) { return r.state == "halted"; });
  EXPECT_THAT(r.halted_reason, HasSubstr("cp1"));
  EXPECT_THAT(r.halted_reason, HasSubstr("boot"));  // it fetched the old kernel
}

// A refused Reboot is retried until the gate timeout, then halts.
TEST_F(RolloutTest, RefusedRebootHaltsAtTheTimeout) {
  Bootstrap();
  world_->nodes["cp1"].refuses_reboot = true;
  SetDesired(kNew);
  auto r = RunUntil([](const RolloutReport& r) { return r.state == "halted"; });
  EXPECT_THAT(r.halted_reason, HasSubstr("Reboot not accepted"));
  EXPECT_THAT(r.halted_reason, HasSubstr("refused"));
}

// rollback: true moves the failed machine back to its previous release and
// reboots it; the rollout stays halted.
TEST_F(RolloutTest, RollbackReturnsTheFailedMachineToItsPreviousRelease) {
  Bootstrap();
  input_.policy.rollback = true;
  world_->nodes["w1"].returns_old = true;  // a kernel that does not take
  for (auto& m : input_.machines) {
    m.desired_version = m.role == manifests::Role::kWorker ? kNew : kOld;
  }
  auto r = RunUntil([&](const RolloutReport& r) {
    return r.state == "halted" && r.steps.empty();
  });
  EXPECT_EQ(r.state, "halted");
  EXPECT_EQ(world_->nodes["w1"].reboots, 2);  // the step and the rollback
  EXPECT_EQ(seq_->Pins()["w1"], kOld);
  EXPECT_EQ(world_->nodes["w2"].reboots, 0);
}

// Reverting the commit (desired back to the old release) clears the halt.
TEST_F(RolloutTest, ChangingDesiredVersionsClearsTheHalt) {
  Bootstrap();
  world_->nodes["cp1"].never_returns = true;
  SetDesired(kNew);
  auto r = RunUntil([](const RolloutReport& r) { return r.state == "halted"; });
  ASSERT_EQ(r.state, "halted");
  SetDesired(kOld);
  r = Pass();
  EXPECT_NE(r.state, "halted");
}

// paused: no new step; a closed maintenance window: no new step.
TEST_F(RolloutTest, PauseAndWindowStopNewSteps) {
  Bootstrap();
  SetDesired(kNew);
  input_.policy.paused = true;
  RolloutReport r;
  for (int i = 0; i < 5; ++i) {
    r = Pass();
  }
  EXPECT_EQ(r.state, "paused");
  EXPECT_TRUE(r.steps.empty());
  input_.policy.paused = false;
  input_.policy.window_open = [](TimePoint) { return false; };
  r = Pass();
  EXPECT_EQ(r.state, "waiting_window");
  EXPECT_TRUE(r.steps.empty());
  input_.policy.window_open = [](TimePoint) { return true; };
  r = Pass();
  EXPECT_EQ(r.steps.size(), 1u);
}

// Pausing mid-rollout lets the step in flight finish, then stops.
TEST_F(RolloutTest, PauseLetsTheStepInFlightFinish) {
  Bootstrap();
  SetDesired(kNew);
  auto r = RunUntil([](const RolloutReport& r) { return !r.steps.empty(); });
  input_.policy.paused = true;
  r = RunUntil([](const RolloutReport& r) { return r.steps.empty(); });
  EXPECT_EQ(world_->nodes["cp1"].version, kNew);
  for (int i = 0; i < 10; ++i) {
    r = Pass();
  }
  EXPECT_EQ(world_->nodes["cp2"].reboots, 0);
  EXPECT_EQ(r.state, "paused");
}

// A canary worker goes first, then the rollout waits the soak time.
TEST_F(RolloutTest, CanaryThenSoak) {
  Bootstrap();
  input_.policy.canary_soak = 5min;
  for (auto& m : input_.machines) {
    m.desired_version = m.role == manifests::Role::kWorker ? kNew : kOld;
  }
  auto r = RunUntil([](const RolloutReport& r) { return r.state == "soaking"; });
  ASSERT_EQ(r.state, "soaking");
  EXPECT_EQ(world_->nodes["w1"].reboots, 1);
  EXPECT_EQ(world_->nodes["w2"].reboots, 0);
  r = RunUntil([](const RolloutReport& r) { return Converged(r); });
  EXPECT_TRUE(Converged(r));
  EXPECT_EQ(world_->nodes["w3"].reboots, 1);
}

// Restarted at every pass of a whole rollout (a fresh Sequencer from the
// state file, boot events forgotten): still exactly one reboot per machine.
TEST_F(RolloutTest, RestartAtEveryPassRebootsEachMachineOnce) {
  Bootstrap();
  SetDesired(kNew);
  RolloutReport r = Pass();
  ASSERT_FALSE(Converged(r));
  for (int i = 0; i < 400 && !Converged(r); ++i) {
    Restart();
    r = Pass();
  }
  ASSERT_TRUE(Converged(r)) << r.state << " " << r.blocked_reason << " " << r.halted_reason;
  for (const auto& [name, n] : world_->nodes) {
    EXPECT_EQ(n.reboots, 1) << name;
  }
  EXPECT_EQ(world_->bootstrap_calls.size(), 1u);
}

// talos-upgrade: Upgrade with the release's installer image instead of
// Reboot; no boot gate (the machine boots from disk).
TEST_F(RolloutTest, TalosUpgradeStrategyCallsUpgrade) {
  Bootstrap();
  input_.policy.strategy = "talos-upgrade";
  SetDesired(kNew);
  auto r = RunUntil([](const RolloutReport& r) { return Converged(r); });
  ASSERT_TRUE(Converged(r)) << r.state << " " << r.blocked_reason << " " << r.halted_reason;
  for (const auto& [name, n] : world_->nodes) {
    EXPECT_EQ(n.upgrades, 1) << name;
    EXPECT_EQ(n.reboots, 0) << name;
  }
}

// A rollback under talos-upgrade installs the previous release's image with
// Upgrade: a Reboot would boot the failed release from the disk again.
TEST_F(RolloutTest, TalosUpgradeRollbackInstallsThePreviousImage) {
  world_->nodes["w1"].returns_old = true;  // the new install does not take
  auto r = RollWorkersUntilHaltedUnderTalosUpgrade();
  EXPECT_EQ(r.state, "halted");
  const auto& w1 = world_->nodes["w1"];
  EXPECT_EQ(w1.reboots, 0);
  ASSERT_EQ(w1.upgrade_images.size(), 2u);  // the step and the rollback
  EXPECT_EQ(w1.upgrade_images[0], "factory.talos.dev/metal-installer/abc:" + std::string(kNew));
  EXPECT_EQ(w1.upgrade_images[1], "factory.talos.dev/metal-installer/abc:" + std::string(kOld));
  EXPECT_EQ(world_->nodes["w2"].upgrades, 0);
  // The rollback passed its gates (no boot gate: the machine boots from
  // disk); the halt still names the step that failed.
  EXPECT_THAT(r.halted_reason, HasSubstr("gate version"));
  EXPECT_EQ(r.completed_steps, 1) << r.halted_reason;
}

// Talos accepts Upgrade at once and reboots later (drain, image pull): a
// talos-upgrade rollback is done only once the machine went down and came
// back, not while it still runs the failed install.
TEST_F(RolloutTest, TalosUpgradeRollbackWaitsForTheReboot) {
  world_->nodes["w1"].returns_old = true;
  world_->nodes["w1"].upgrade_delay = 30s;
  auto r = RollWorkersUntilHaltedUnderTalosUpgrade();
  EXPECT_EQ(r.state, "halted");
  EXPECT_EQ(world_->nodes["w1"].upgrades, 2);
  EXPECT_EQ(world_->nodes["w1"].boots, 2);  // the step's reboot and the rollback's
  EXPECT_EQ(r.completed_steps, 1) << r.halted_reason;
}

// A node that accepts Upgrade and never reboots fails the rebooted gate at
// its timeout, saying so (it still runs the old install).
TEST_F(RolloutTest, TalosUpgradeWithoutRebootFailsTheRebootedGate) {
  Bootstrap();
  input_.policy.strategy = "talos-upgrade";
  world_->nodes["cp1"].upgrade_delay = 24h;
  SetDesired(kNew);
  auto r = RunUntil([](const RolloutReport& r) { return r.state == "halted"; });
  EXPECT_EQ(r.state, "halted");
  EXPECT_THAT(r.halted_reason,
              HasSubstr("gate rebooted not passed within 15m: has not gone down and come back "
                        "since the Upgrade was accepted"));
  EXPECT_EQ(world_->nodes["cp2"].upgrades, 0);
}

// A rollback under talos-upgrade whose previous release has no installer
// image in the repo fails at once, saying so, instead of retrying Upgrade.
TEST_F(RolloutTest, TalosUpgradeRollbackWithoutPreviousImageFailsClearly) {
  world_->nodes["w1"].returns_old = true;
  for (auto& m : input_.machines) {
    m.installer_images.erase(kOld);
  }
  auto r = RollWorkersUntilHaltedUnderTalosUpgrade();
  EXPECT_THAT(r.halted_reason,
              HasSubstr("cannot roll back: the repo has no installer image for release " +
                        std::string(kOld)));
  EXPECT_EQ(world_->nodes["w1"].upgrades, 1);
}

// The state file round-trips; a corrupt one is an error naming the file.
TEST(RolloutStateFile, RoundTripAndCorruptFile) {
  testutil::TempDir dir;
  RolloutState s;
  s.pins = {{"cp1", kNew}};
  s.steps.push_back(RolloutStep{"cp1", kOld, kNew, false, false, 5, "gates", 6, 7, 8, "", "version", 9, {"boot"}});
  s.bootstrap.node = "cp1";
  s.bootstrap.decided_ms = 3;
  auto path = dir.path() / "state.json";
  ASSERT_TRUE(SaveRolloutState(s, path).has_value());
  auto back = LoadRolloutState(path);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pins, s.pins);
  ASSERT_EQ(back->steps.size(), 1u);
  EXPECT_EQ(back->steps[0].gate, "version");
  EXPECT_EQ(back->steps[0].reboot_acked_ms, 8);
  EXPECT_EQ(back->bootstrap.node, "cp1");
  testutil::WriteFile(path, "{not json");
  auto bad = LoadRolloutState(path);
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, HasSubstr(path.string()));
}

}  // namespace
}  // namespace ironboot::reconcilers
