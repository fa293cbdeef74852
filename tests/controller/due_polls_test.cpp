// DuePolls: which machines a pass of the upgrade loop asks the Talos API about.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "controller/upgrade_loop.h"

namespace ironboot::controller {
namespace {

using namespace std::chrono_literals;
using reconcilers::TimePoint;

const TimePoint kT0{std::chrono::hours(24 * 365 * 56)};

reconcilers::ObservedMachine Ready() {
  reconcilers::ObservedMachine o;
  reconcilers::ApiObservation api;
  api.up = true;
  api.version = "v1.11.3";
  api.services = {{"apid", "Running", true, false, ""}, {"kubelet", "Running", true, false, ""}};
  o.api = api;
  return o;
}

struct Fleet {
  std::vector<reconcilers::RolloutMachine> machines;
  reconcilers::ObservedMachines observed;
  std::map<std::string, TimePoint> last_poll;
};

// `n` ready workers, all last polled at kT0.
Fleet ReadyWorkers(int n) {
  Fleet f;
  for (int i = 0; i < n; ++i) {
    reconcilers::RolloutMachine m;
    m.name = "w" + std::to_string(i);
    m.address = "10.0.4." + std::to_string(i + 1);
    f.machines.push_back(m);
    f.observed[m.name] = Ready();
    f.last_poll[m.name] = kT0;
  }
  return f;
}

UpgradeLoopOptions Options() {
  UpgradeLoopOptions o;
  o.interval = 1s;
  o.idle_poll_interval = 10s;
  return o;
}

// 200 idle machines whose polls fell due together are spread over passes:
// at most twice the steady rate (2 x 200 / 10 per 1 s pass), oldest first,
// and every machine is polled again within about one idle interval.
TEST(DuePolls, IdlePollsThatFallDueTogetherSpreadOut) {
  auto f = ReadyWorkers(200);
  std::vector<std::string> none;
  TimePoint last_pass = kT0 + 9s;
  std::map<std::string, TimePoint> polled_at;
  size_t most = 0;
  for (int pass = 0; pass < 20; ++pass) {
    TimePoint now = kT0 + 10s + std::chrono::seconds(pass);
    auto jobs = DuePolls(f.machines, f.observed, {}, f.last_poll, now, last_pass, Options(), &none);
    last_pass = now;
    most = std::max(most, jobs.size());
    for (const auto& j : jobs) {
      if (!polled_at.contains(j.machine)) {
        polled_at[j.machine] = now;
      }
      f.last_poll[j.machine] = now;
    }
  }
  EXPECT_LE(most, 40u);
  EXPECT_GE(most, 20u);
  ASSERT_EQ(polled_at.size(), 200u);  // nobody starves
  for (const auto& [machine, at] : polled_at) {
    EXPECT_LE(at - kT0, 16s) << machine;
  }
  EXPECT_TRUE(none.empty());
}

// Machines in a step, and machines that are not ready, are polled every
// interval whatever the idle budget; one that did not answer every other one.
TEST(DuePolls, SteppingAndUnreadyMachinesAreNotBudgeted) {
  auto f = ReadyWorkers(50);
  f.observed["w1"].api->services.clear();  // not ready
  f.observed["w2"].api->up = false;        // rebooting
  std::set<std::string> stepping = {"w0"};
  std::vector<std::string> none;
  TimePoint now = kT0 + 1s;
  auto jobs = DuePolls(f.machines, f.observed, stepping, f.last_poll, now, kT0, Options(), &none);
  std::set<std::string> names;
  for (const auto& j : jobs) {
    names.insert(j.machine);
  }
  EXPECT_EQ(names, (std::set<std::string>{"w0", "w1"}));  // w2: every other interval
  auto later =
      DuePolls(f.machines, f.observed, stepping, f.last_poll, kT0 + 2s, kT0 + 1s, Options(), &none);
  names.clear();
  for (const auto& j : later) {
    names.insert(j.machine);
  }
  EXPECT_TRUE(names.contains("w2"));
  EXPECT_EQ(later.size(), 3u);  // idle ones are not due before 10 s
}

// A machine never polled is polled at once; one with no address known goes
// to no_address (the loop records why) instead of being dialled.
TEST(DuePolls, NewMachinesAndMachinesWithoutAddress) {
  auto f = ReadyWorkers(3);
  f.last_poll.erase("w0");
  reconcilers::RolloutMachine dhcp;
  dhcp.name = "dhcp-1";
  f.machines.push_back(dhcp);
  std::vector<std::string> no_address;
  auto jobs =
      DuePolls(f.machines, f.observed, {}, f.last_poll, kT0 + 1s, kT0, Options(), &no_address);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].machine, "w0");
  EXPECT_EQ(jobs[0].node, "10.0.4.1");
  EXPECT_EQ(no_address, std::vector<std::string>{"dhcp-1"});
}

}  // namespace
}  // namespace ironboot::controller
