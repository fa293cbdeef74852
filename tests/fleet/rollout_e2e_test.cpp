// End to end: `ironboot serve` (GitOps on a local git repo, with the Talos
// API client) and `ironboot fleet` (3 control planes, 2 workers on their own
// loopback addresses) as real processes, set up by `ironboot demo
// --prepare-only`. The fleet's own record (GET /fleet) is the witness: who
// was rebooted, when each node was down, how often Bootstrap was called.

#include <signal.h>

#include <algorithm>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testutil/testutil.h"

namespace ironboot {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

constexpr char kOld[] = "v1.11.3";
constexpr char kNew[] = "v1.12.0";
const std::vector<std::string> kControlPlanes = {"controlplane1", "controlplane2", "controlplane3"};

class RolloutE2E : public ::testing::Test {
 protected:
  void Prepare(const std::vector<std::string>& extra = {}) {
    port_ = testutil::FreePort();
    fleet_port_ = testutil::FreePort();
    std::vector<std::string> argv = {IRONBOOT_BINARY, "demo", "--prepare-only",
                                     "--dir", dir_.path().string(),
                                     "--address", "127.0.0.1:" + std::to_string(port_),
                                     "--fleet-status-address", "127.0.0.1:" + std::to_string(fleet_port_),
                                     // Its own /24: tests may run at once.
                                     "--machine-net", testutil::UniqueLoopbackNet()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = testutil::Run(argv);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    commands_ = json::parse(testutil::ReadFile(dir_.path() / "commands.json"));
  }

  std::vector<std::string> Argv(const char* which) {
    std::vector<std::string> argv = {IRONBOOT_BINARY};
    for (const auto& a : commands_[which]) {
      argv.push_back(a.get<std::string>());
    }
    return argv;
  }

  void StartServe() {
    serve_ = std::make_unique<testutil::Process>(Argv("serve"));
    ASSERT_TRUE(testutil::WaitFor([&] { return testutil::Accepts(port_); }, 30s)) << serve_->Output();
  }
  void StartFleet() {
    fleet_ = std::make_unique<testutil::Process>(Argv("fleet"));
    ASSERT_TRUE(testutil::WaitFor([&] { return testutil::Accepts(fleet_port_); }, 30s))
        << fleet_->Output();
  }
  void KillServe() {
    serve_->Signal(SIGKILL);
    serve_->Wait(10s);
  }

  json Get(int port, const std::string& target) {
    auto r = testutil::HttpGet(port, target);
    if (r.status != 200) {
      return json();
    }
    return json::parse(r.body, nullptr, false);
  }
  json Fleet() {
    json s = Get(port_, "/status");
    return s.is_object() && s.contains("fleet") ? s["fleet"] : json();
  }
  json Record() { return Get(fleet_port_, "/fleet"); }

  bool AllReady(const std::string& version) {
    json f = Fleet();
    if (!f.is_object() || f["machines"].size() != 5) {
      return false;
    }
    for (const auto& m : f["machines"]) {
      if (m["observed"] != version || !m["ready"].get<bool>()) {
        return false;
      }
    }
    return f["bootstrap"]["done"] != "" && f["rollout"]["steps"].empty();
  }

  void WaitFleetUp() {
    ASSERT_TRUE(testutil::WaitFor([&] { return AllReady(kOld); }, 90s))
        << Fleet().dump(2) << "\n" << serve_->Output().substr(0, 4000);
  }

  void Commit(const std::string& from, const std::string& to, const std::string& message) {
    fs::path file = dir_.path() / "repo" / "cluster.yaml";
    std::string text = testutil::ReadFile(file);
    auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
    testutil::WriteFile(file, text);
    auto r = testutil::Run({"git", "-C", (dir_.path() / "repo").string(), "-c", "user.name=t", "-c",
                            "user.email=t@example.invalid", "commit", "-qam", message});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void Bump() { Commit("talosVersion: v1.11.3", "talosVersion: v1.12.0", "talos v1.12.0"); }

  const json* Node(const json& record, const std::string& name) {
    for (const auto& n : record["nodes"]) {
      if (n["name"] == name) {
        return &n;
      }
    }
    return nullptr;
  }

  testutil::TempDir dir_;
  int port_ = 0;
  int fleet_port_ = 0;
  json commands_;
  std::unique_ptr<testutil::Process> serve_;
  std::unique_ptr<testutil::Process> fleet_;
};

// v1.11.3 -> v1.12.0: every machine rebooted exactly once, control planes
// one at a time (their down intervals never overlap, from the fleet's own
// record), all of them before any worker; the metrics show the result.
TEST_F(RolloutE2E, RollsControlPlanesOneAtATimeThenWorkers) {
  Prepare();
  StartServe();
  StartFleet();
  WaitFleetUp();
  Bump();
  ASSERT_TRUE(testutil::WaitFor([&] { return AllReady(kNew); }, 240s)) << Fleet().dump(2);
  json record = Record();
  ASSERT_TRUE(record.is_object());
  std::vector<std::pair<std::string, std::string>> cp_downs;  // [down_at, up_at) as RFC 3339 ms text
  std::string last_cp_up;
  for (const auto& n : record["nodes"]) {
    EXPECT_EQ(n["reboot_calls"], 1) << n["name"];
    EXPECT_EQ(n["version"], kNew) << n["name"];
    ASSERT_EQ(n["down_intervals"].size(), 1u) << n.dump();
    const auto& d = n["down_intervals"][0];
    ASSERT_TRUE(d["up_at"].is_string()) << n.dump();
    if (n["role"] == "controlplane") {
      cp_downs.emplace_back(d["down_at"], d["up_at"]);
      last_cp_up = std::max(last_cp_up, d["up_at"].get<std::string>());
    }
  }
  std::sort(cp_downs.begin(), cp_downs.end());
  ASSERT_EQ(cp_downs.size(), 3u);
  for (size_t i = 1; i < cp_downs.size(); ++i) {
    EXPECT_LE(cp_downs[i - 1].second, cp_downs[i].first) << "two control planes down at once";
  }
  for (const auto& n : record["nodes"]) {
    if (n["role"] == "worker") {
      EXPECT_GE(n["down_intervals"][0]["down_at"].get<std::string>(), last_cp_up) << n["name"];
    }
  }
  int bootstraps = 0;
  for (const auto& n : record["nodes"]) {
    bootstraps += n["bootstrap_calls"].get<int>();
  }
  EXPECT_EQ(bootstraps, 1);
  auto metrics = testutil::HttpGet(port_, "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("ironboot_rollout_nodes{state=\"done\"} 5"));
  EXPECT_THAT(metrics, HasSubstr("ironboot_rollout_state{state=\"idle\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("ironboot_node_boot_duration_seconds_count{role=\"controlplane\"} 3"));
  EXPECT_THAT(metrics,
              HasSubstr("ironboot_machine_info{desired_version=\"v1.12.0\",machine=\"worker2\","
                        "observed_version=\"v1.12.0\",phase=\"running\",role=\"worker\"} 1"));
}

// A control plane that never comes back fails its gate at the timeout: the
// rollout halts, the machine is marked failed with the reason, and no later
// machine is rebooted.
TEST_F(RolloutE2E, NodeThatNeverComesBackHaltsTheRollout) {
  Prepare({"--fault", "controlplane2=never-returns", "--health-timeout", "6s"});
  StartServe();
  StartFleet();
  WaitFleetUp();
  Bump();
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        json f = Fleet();
        return f.is_object() && f["rollout"]["state"] == "halted";
      },
      90s))
      << Fleet().dump(2);
  json f = Fleet();
  EXPECT_THAT(f["rollout"]["halted_reason"].get<std::string>(), HasSubstr("controlplane2"));
  std::this_thread::sleep_for(4s);  // nothing else may happen now
  json record = Record();
  EXPECT_EQ((*Node(record, "controlplane1"))["reboot_calls"], 1);
  EXPECT_EQ((*Node(record, "controlplane2"))["reboot_calls"], 1);
  for (const char* later : {"controlplane3", "worker1", "worker2"}) {
    EXPECT_EQ((*Node(record, later))["reboot_calls"], 0) << later;
  }
  f = Fleet();
  for (const auto& m : f["machines"]) {
    if (m["name"] == "controlplane2") {
      EXPECT_EQ(m["phase"], "failed");
      EXPECT_THAT(m["failed_reason"].get<std::string>(), HasSubstr("not passed within 6s"));
    }
  }
  EXPECT_THAT(testutil::HttpGet(port_, "/metrics").body,
              HasSubstr("ironboot_rollout_state{state=\"halted\"} 1"));
}

// kill -9 of the controller twice mid-rollout (during a control plane's
// gates, then during a worker's step), restarted each time: the rollout
// finishes with exactly one reboot per machine.
TEST_F(RolloutE2E, KillNineMidRolloutRebootsEachMachineOnce) {
  Prepare();
  StartServe();
  StartFleet();
  WaitFleetUp();
  Bump();
  for (const std::string victim : {"controlplane2", "worker1"}) {
    ASSERT_TRUE(testutil::WaitFor(
        [&] {
          json f = Fleet();
          if (!f.is_object()) {
            return false;
          }
          for (const auto& s : f["rollout"]["steps"]) {
            if (s["machine"] == victim && s["reboot_sent"] != "") {
              return true;
            }
          }
          return false;
        },
        90s))
        << victim << Fleet().dump(2);
    KillServe();
    StartServe();
  }
  ASSERT_TRUE(testutil::WaitFor([&] { return AllReady(kNew); }, 240s)) << Fleet().dump(2);
  json record = Record();
  for (const auto& n : record["nodes"]) {
    EXPECT_EQ(n["reboot_calls"], 1) << n["name"];
    EXPECT_EQ(n["version"], kNew) << n["name"];
  }
}

// The cluster is bootstrapped exactly once even when the controller is
// killed right after deciding and restarted, repeatedly.
TEST_F(RolloutE2E, BootstrapsExactlyOnceAcrossKills) {
  Prepare();
  StartServe();
  StartFleet();
  fs::path state = dir_.path() / "state" / "rollout" / "state.json";
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        if (!fs::exists(state)) {
          return false;
        }
        auto j = json::parse(testutil::ReadFile(state), nullptr, false);
        return j.is_object() && j["bootstrap"]["node"] != "";
      },
      60s));
  KillServe();
  for (int i = 0; i < 2; ++i) {
    StartServe();
    std::this_thread::sleep_for(std::chrono::milliseconds(400 + 300 * i));
    KillServe();
  }
  StartServe();
  WaitFleetUp();
  json record = Record();
  int bootstraps = 0;
  for (const auto& n : record["nodes"]) {
    bootstraps += n["bootstrap_calls"].get<int>();
  }
  EXPECT_EQ(bootstraps, 1);
  EXPECT_EQ(record["etcd"]["bootstrapped_by"], "controlplane1");
  EXPECT_EQ(Fleet()["bootstrap"]["node"], "controlplane1");
}

// rollback: true: a worker that comes back on the old kernel fails the
// version gate and is switched back to its previous release and rebooted.
TEST_F(RolloutE2E, RollbackReturnsAFailedWorkerToItsRelease) {
  Prepare({"--fault", "worker1=old-version", "--health-timeout", "6s"});
  Commit("    healthTimeout: 6s", "    healthTimeout: 6s\n    rollback: true", "rollback on");
  StartServe();
  StartFleet();
  WaitFleetUp();
  Bump();
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        json f = Fleet();
        return f.is_object() && f["rollout"]["state"] == "halted" && f["rollout"]["steps"].empty();
      },
      120s))
      << Fleet().dump(2);
  json record = Record();
  EXPECT_EQ((*Node(record, "worker1"))["reboot_calls"], 2);  // the step, then the rollback
  EXPECT_EQ((*Node(record, "worker2"))["reboot_calls"], 0);
  for (const auto& cp : kControlPlanes) {
    EXPECT_EQ((*Node(record, cp))["version"], kNew) << cp;
  }
  for (const auto& m : Fleet()["machines"]) {
    if (m["name"] == "worker1") {
      EXPECT_EQ(m["served"], kOld);
      EXPECT_EQ(m["phase"], "failed");
    }
  }
}

// The README's first command: `ironboot demo --upgrade-to v1.12.0
// --exit-when-done` exits 0 with a line per step and a progress counter.
TEST(DemoCommand, UpgradeToExitsZeroOnceConverged) {
  testutil::TempDir dir;
  int port = testutil::FreePort();
  auto r = testutil::Run({IRONBOOT_BINARY, "demo", "--upgrade-to", kNew, "--exit-when-done", "--dir",
                          dir.path().string(), "--address", "127.0.0.1:" + std::to_string(port),
                          "--machine-net", testutil::UniqueLoopbackNet(), "--timeout", "4m"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("fleet up in"));
  EXPECT_THAT(r.output, HasSubstr("controlplane1 v1.11.3 -> v1.12.0"));
  EXPECT_THAT(r.output, HasSubstr("[5/5] converged: every machine runs v1.12.0"));
}

// Bad flags say what was expected.
TEST(DemoCommand, BadUpgradeVersionIsRefused) {
  auto r = testutil::Run({IRONBOOT_BINARY, "demo", "--upgrade-to", "1.12"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("want a Talos version like v1.12.0"));
}

}  // namespace
}  // namespace ironboot
