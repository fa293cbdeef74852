#include "controller/status_format.h"

#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

namespace ironboot::controller {
namespace {

using nlohmann::json;

// The GitOps part of /status as GitOpsController::Status() writes it.
json GitOpsPart() {
  return json::parse(R"json({
    "source": {"description": "git file:///repo (main)", "interval_seconds": 60,
               "last_fetch": {"time": "2026-11-27T14:00:00Z", "result": "ok", "revision": "abc1234"},
               "last_success": "2026-11-27T14:00:00Z"},
    "served": {"revision": "abc1234", "published_at": "2026-11-27T13:59:58Z",
               "machines": [{"name": "cp-1"}, {"name": "w-1"}]},
    "rejected": null,
    "held_back": []
})json");
}

json Machine(const std::string& name, const std::string& role, const std::string& desired,
             const std::string& observed, const std::string& phase, bool ready,
             const std::string& last_boot) {
  return {{"name", name},         {"role", role},   {"desired", desired}, {"served", desired},
          {"observed", observed}, {"phase", phase}, {"ready", ready},     {"last_boot", last_boot}};
}

json Fleet(const std::string& state, json machines, json steps, json progress) {
  return {{"machines", std::move(machines)},
          {"rollout",
           {{"state", state},
            {"strategy", "rolling"},
            {"halted_reason", ""},
            {"blocked_reason", ""},
            {"steps", std::move(steps)},
            {"progress", std::move(progress)},
            {"completed_steps", json::array()}}},
          {"bootstrap",
           {{"node", "cp-1"},
            {"decided", "2026-11-27T10:00:00.000Z"},
            {"done", "2026-11-27T10:00:05.000Z"},
            {"found_running", false},
            {"status", ""}}}};
}

json Progress(int done, int pending, int in_progress, int failed, int total) {
  return {{"done", done},
          {"pending", pending},
          {"in_progress", in_progress},
          {"failed", failed},
          {"total", total}};
}

// Without a "fleet" key (no Talos credentials) the GitOps header is printed
// and the output says why there is no fleet.
TEST(StatusFormat, NoFleetSectionExplainsWhy) {
  std::string out = FormatStatus(GitOpsPart());
  EXPECT_EQ(out,
            "served: abc1234 (published 2026-11-27T13:59:58Z), 2 machines\n"
            "fleet: not managed: this server has no Talos API credentials (start `ironboot serve` "
            "with -talosconfig or -secrets-file to run upgrades)\n");
}

// A null fleet (upgrade loop running, first pass not done) says so.
TEST(StatusFormat, NullFleetMeansNoReportYet) {
  json status = GitOpsPart();
  status["fleet"] = nullptr;
  std::string out = FormatStatus(status);
  EXPECT_NE(out.find("served: abc1234"), std::string::npos) << out;
  EXPECT_NE(
      out.find("fleet: no report yet: the upgrade reconciler has not finished its first pass"),
      std::string::npos)
      << out;
  EXPECT_EQ(out.find("NAME"), std::string::npos) << out;
}

// An idle fleet: rollout line with "2/2 done", bootstrap line, and an aligned
// table with "-" for empty cells.
TEST(StatusFormat, IdleFleetPrintsAlignedTable) {
  json status = GitOpsPart();
  status["fleet"] =
      Fleet("idle",
            {Machine("cp-1", "controlplane", "v1.11.3", "v1.11.3", "running", true,
                     "2026-11-27T10:00:00Z"),
             Machine("worker-long-name", "worker", "v1.11.3", "", "unknown", false, "")},
            json::array(), Progress(2, 0, 0, 0, 2));
  EXPECT_EQ(
      FormatStatus(status),
      "served: abc1234 (published 2026-11-27T13:59:58Z), 2 machines\n"
      "rollout: idle (rolling), 2/2 done\n"
      "bootstrap: done on cp-1 at 2026-11-27T10:00:05.000Z\n"
      "NAME              ROLE          DESIRED  OBSERVED  PHASE    READY  LAST-BOOT\n"
      "cp-1              controlplane  v1.11.3  v1.11.3   running  yes    2026-11-27T10:00:00Z\n"
      "worker-long-name  worker        v1.11.3  -         unknown  no     -\n");
}

// A progressing rollout shows progress counts and the step in flight: machine,
// from -> to, canary, phase, gate and what it waits on.
TEST(StatusFormat, ProgressingShowsStepInFlight) {
  json status = GitOpsPart();
  json step = {{"machine", "w-1"},
               {"from", "v1.11.3"},
               {"to", "v1.11.5"},
               {"rollback", false},
               {"canary", true},
               {"phase", "gates"},
               {"gate", "services"},
               {"gates_passed", json::array({"boot", "version"})},
               {"started", "2026-11-27T14:01:00.000Z"},
               {"reboot_sent", "2026-11-27T14:01:01.000Z"},
               {"waiting_on", "service kubelet is not healthy"}};
  status["fleet"] =
      Fleet("progressing",
            {Machine("cp-1", "controlplane", "v1.11.5", "v1.11.5", "running", true, "t1"),
             Machine("w-1", "worker", "v1.11.5", "v1.11.3", "upgrading", false, "t2"),
             Machine("w-2", "worker", "v1.11.5", "v1.11.3", "outdated", true, "t3")},
            json::array({step}), Progress(1, 1, 1, 0, 3));
  std::string out = FormatStatus(status);
  EXPECT_NE(out.find("rollout: progressing (rolling), 1/3 done, 1 in progress, 1 pending\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  step: w-1 v1.11.3 -> v1.11.5 (canary), gates, gate services, started "
                     "2026-11-27T14:01:00.000Z\n"
                     "    waiting on: service kubelet is not healthy\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("w-1   worker        v1.11.5  v1.11.3   upgrading  no     t2\n"),
            std::string::npos)
      << out;
}

// A halted rollout prints the halted reason, a rollback step, and each failed
// machine's reason below the table.
TEST(StatusFormat, HaltedWithFailedMachine) {
  json status = GitOpsPart();
  json failed = Machine("w-2", "worker", "v1.11.5", "v1.11.3", "failed", false, "t3");
  failed["failed_reason"] = "gate version timed out after 10m: node reports v1.11.3";
  json step = {{"machine", "w-2"}, {"from", "v1.11.5"}, {"to", "v1.11.3"}, {"rollback", true},
               {"canary", false},  {"phase", "reboot"}, {"gate", ""},      {"waiting_on", ""}};
  status["fleet"] = Fleet(
      "halted", {Machine("w-1", "worker", "v1.11.5", "v1.11.5", "running", true, "t1"), failed},
      json::array({step}), Progress(1, 0, 0, 1, 2));
  status["fleet"]["rollout"]["halted_reason"] = "w-2 failed gate version";
  status["fleet"]["rollout"]["blocked_reason"] = "outside the maintenance window";
  std::string out = FormatStatus(status);
  EXPECT_NE(out.find("rollout: halted (rolling), 1/2 done, 1 failed\n"
                     "  halted: w-2 failed gate version\n"
                     "  blocked: outside the maintenance window\n"
                     "  step: w-2 v1.11.5 -> v1.11.3 (rollback), reboot\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("w-2 failed: gate version timed out after 10m: node reports v1.11.3\n"),
            std::string::npos)
      << out;
  // The reason comes after the table.
  EXPECT_GT(out.find("w-2 failed:"), out.find("LAST-BOOT"));
}

// A rejected revision shows with its error count and each error; held-back
// machines and a failed fetch each get a line.
TEST(StatusFormat, RejectedHeldBackAndFetchError) {
  json status = GitOpsPart();
  status["rejected"] = {
      {"revision", "def5678"},
      {"time", "2026-11-27T14:00:00Z"},
      {"errors", {"machines/w-1.yaml:3: spec.macs: required", "cluster.yaml:1: bad"}},
      {"warnings", json::array()}};
  status["held_back"] = {{{"machine", "w-1"},
                          {"release", "v1.12.0"},
                          {"reason", "kernel not cached"},
                          {"serving", "previous plan"}}};
  status["source"]["last_fetch"] = {{"time", "2026-11-27T14:05:00Z"},
                                    {"result", "error"},
                                    {"error", "git fetch file:///repo: not found"}};
  std::string out = FormatStatus(status);
  EXPECT_NE(out.find("served: abc1234 (published 2026-11-27T13:59:58Z), 2 machines; rejected: "
                     "def5678 (2 errors)\n"
                     "  error: machines/w-1.yaml:3: spec.macs: required\n"
                     "  error: cluster.yaml:1: bad\n"
                     "held back: w-1 release v1.12.0: kernel not cached (serving previous plan)\n"
                     "source: last fetch failed at 2026-11-27T14:05:00Z: git fetch file:///repo: "
                     "not found\n"),
            std::string::npos)
      << out;
}

// Before the first good revision the header says nothing is served; a
// bootstrap not yet decided shows its status.
TEST(StatusFormat, NothingServedYet) {
  json status = GitOpsPart();
  status["served"] = {{"revision", ""}, {"published_at", ""}, {"machines", json::array()}};
  status["fleet"] = Fleet("idle", json::array(), json::array(), Progress(0, 0, 0, 0, 0));
  status["fleet"]["bootstrap"] = {{"node", ""},
                                  {"decided", ""},
                                  {"done", ""},
                                  {"found_running", false},
                                  {"status", "waiting for a control plane"}};
  std::string out = FormatStatus(status);
  EXPECT_EQ(out,
            "served: nothing yet\n"
            "rollout: idle (rolling), 0/0 done\n"
            "bootstrap: waiting for a control plane\n"
            "machines: none\n");
}

// Missing and mistyped fields never throw: they print as "-" (a document
// from an older or newer server still renders).
TEST(StatusFormat, MissingAndMistypedFieldsTolerated) {
  EXPECT_EQ(FormatStatus(json::object()),
            "served: nothing yet\n"
            "fleet: not managed: this server has no Talos API credentials (start `ironboot serve` "
            "with -talosconfig or -secrets-file to run upgrades)\n");
  EXPECT_NO_THROW(FormatStatus(json::array({1, 2})));
  EXPECT_NO_THROW(FormatStatus(json("text")));

  json status = {
      {"served", "not an object"},
      {"rejected", {{"errors", 3}}},
      {"held_back", "x"},
      {"fleet",
       {{"machines", json::array({json::object(), {{"name", 7}, {"ready", "yes"}}, 5})},
        {"rollout", {{"steps", json::array({json::object(), 3})}, {"progress", {{"done", "1"}}}}},
        {"bootstrap", nullptr}}}};
  std::string out;
  ASSERT_NO_THROW(out = FormatStatus(status));
  EXPECT_NE(out.find("served: nothing yet; rejected: -\n"), std::string::npos) << out;
  EXPECT_NE(out.find("rollout: -\n  step: - - -> -\n  step: - - -> -\n"), std::string::npos) << out;
  EXPECT_NE(out.find("bootstrap: -\n"), std::string::npos) << out;
  EXPECT_NE(out.find("-     -     -        -         -      -      -\n"), std::string::npos) << out;

  json empty_fleet = {{"fleet", json::object()}};
  EXPECT_EQ(FormatStatus(empty_fleet),
            "served: nothing yet\nrollout: -\nbootstrap: -\nmachines: none\n");
}

}  // namespace
}  // namespace ironboot::controller
