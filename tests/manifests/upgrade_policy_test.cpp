// Cluster spec.upgrade: the rollout policy fields (canary, rollback,
// maintenanceWindow, healthTimeout's default) load into UpgradePolicy, every
// bad value is reported at its place with what was expected, and the JSON
// Schema accepts the same fields.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "manifests/loader.h"
#include "tests/manifests/manifests_test_util.h"
#include "tests/testutil/testutil.h"

namespace ironboot::manifests {
namespace {

using test::LoadDiagnostics;
using test::ValidRepo;
using ::testing::HasSubstr;

// The sample repo with `block` (lines indented by 4) as the Cluster's
// spec.upgrade; "  upgrade:" is line 12 of cluster.yaml, the block starts at 13.
RepoFiles WithUpgrade(const std::string& block) {
  auto files = ValidRepo();
  const std::string cluster = test::kClusterYaml;
  const size_t sep = cluster.find("---");
  files["cluster.yaml"] = cluster.substr(0, sep) + "  upgrade:\n" + block + cluster.substr(sep);
  return files;
}

UpgradePolicy LoadPolicy(const std::string& block) {
  auto state = Load(WithUpgrade(block));
  EXPECT_TRUE(state) << state.error().ToString();
  return state ? state->cluster->upgrade : UpgradePolicy{};
}

// Without spec.upgrade: pxe-reboot, 15m gates, no canary, no rollback, no window.
TEST(UpgradePolicyTest, Defaults) {
  auto state = Load(ValidRepo());
  ASSERT_TRUE(state) << state.error().ToString();
  const UpgradePolicy& p = state->cluster->upgrade;
  EXPECT_EQ(p.strategy, "pxe-reboot");
  EXPECT_EQ(p.health_timeout_seconds, 15 * 60);
  EXPECT_EQ(p.max_unavailable_worker, 1);
  EXPECT_FALSE(p.paused);
  EXPECT_FALSE(p.canary_soak_seconds);
  EXPECT_FALSE(p.rollback);
  EXPECT_FALSE(p.maintenance_window);
}

// Every field set: values land in UpgradePolicy, the window spans midnight,
// day names in any case and long form, positions are recorded.
TEST(UpgradePolicyTest, AllFieldsLoad) {
  auto state =
      Load(WithUpgrade("    strategy: talos-upgrade\n"
                       "    maxUnavailable: {controlplane: 1, worker: 2}\n"
                       "    healthTimeout: 20m\n"
                       "    paused: true\n"
                       "    canary: {soak: 30m}\n"
                       "    rollback: true\n"
                       "    maintenanceWindow:\n"
                       "      days: [sat, Sun, wednesday, sat]\n"
                       "      start: \"22:00\"\n"
                       "      end: \"04:30\"\n"
                       "      timeZone: Europe/Berlin\n"));
  ASSERT_TRUE(state) << state.error().ToString();
  EXPECT_TRUE(state->warnings.empty()) << state->warnings.ToString();
  const UpgradePolicy& p = state->cluster->upgrade;
  EXPECT_EQ(p.strategy, "talos-upgrade");
  EXPECT_EQ(p.max_unavailable_worker, 2);
  EXPECT_EQ(p.health_timeout_seconds, 20 * 60);
  EXPECT_TRUE(p.paused);
  EXPECT_EQ(p.canary_soak_seconds, 30 * 60);
  EXPECT_TRUE(p.rollback);
  ASSERT_TRUE(p.maintenance_window);
  const MaintenanceWindow& w = *p.maintenance_window;
  EXPECT_EQ(w.days, (std::vector<int>{0, 3, 6}));
  EXPECT_EQ(w.start_minute, 22 * 60);
  EXPECT_EQ(w.end_minute, 4 * 60 + 30);
  EXPECT_TRUE(w.SpansMidnight());
  EXPECT_EQ(w.time_zone, "Europe/Berlin");
  const Position at = state->cluster->source.At("spec.upgrade.maintenanceWindow");
  EXPECT_EQ(at.file, "cluster.yaml");
  EXPECT_EQ(at.line, 20);
  EXPECT_EQ(state->cluster->source.At("spec.upgrade.canary").line, 17);
}

// canary: true is a 10m soak, false or absent none, {} the default soak,
// {soak: 0s} a canary without waiting.
TEST(UpgradePolicyTest, CanaryForms) {
  EXPECT_EQ(LoadPolicy("    canary: true\n").canary_soak_seconds, 600);
  EXPECT_FALSE(LoadPolicy("    canary: false\n").canary_soak_seconds);
  EXPECT_EQ(LoadPolicy("    canary: {}\n").canary_soak_seconds, 600);
  EXPECT_EQ(LoadPolicy("    canary: {soak: 1h30m}\n").canary_soak_seconds, 5400);
  EXPECT_EQ(LoadPolicy("    canary: {soak: 0s}\n").canary_soak_seconds, 0);
  EXPECT_FALSE(LoadPolicy("    rollback: false\n").rollback);
}

// A window with only start and end is every day in UTC; "24:00" ends at
// midnight without spanning it; 00:00-24:00 is all day.
TEST(UpgradePolicyTest, WindowDefaults) {
  auto p = LoadPolicy("    maintenanceWindow: {start: \"02:00\", end: \"05:00\"}\n");
  ASSERT_TRUE(p.maintenance_window);
  EXPECT_EQ(p.maintenance_window->days, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(p.maintenance_window->time_zone, "UTC");
  EXPECT_EQ(p.maintenance_window->start_minute, 120);
  EXPECT_EQ(p.maintenance_window->end_minute, 300);
  auto evening = LoadPolicy("    maintenanceWindow: {start: \"22:00\", end: \"24:00\"}\n");
  ASSERT_TRUE(evening.maintenance_window);
  EXPECT_EQ(evening.maintenance_window->end_minute, 1440);
  EXPECT_FALSE(evening.maintenance_window->SpansMidnight());
  auto all_day = LoadPolicy(
      "    maintenanceWindow: {days: [sat], start: \"00:00\", end: \"24:00\", timeZone: "
      "America/New_York}\n");
  ASSERT_TRUE(all_day.maintenance_window);
  EXPECT_EQ(all_day.maintenance_window->time_zone, "America/New_York");
}

// Bad canary and rollback values: named at their position with what is accepted.
TEST(UpgradePolicyTest, CanaryAndRollbackErrors) {
  EXPECT_THAT(LoadDiagnostics(WithUpgrade("    canary: yes\n")),
              HasSubstr("cluster.yaml:13:13: spec.upgrade.canary: \"yes\" is not a canary setting "
                        "(want true, false or {soak: <duration>}, e.g. {soak: 10m})"));
  EXPECT_THAT(LoadDiagnostics(WithUpgrade("    canary: [10m]\n")),
              HasSubstr("cluster.yaml:13:13: spec.upgrade.canary: want true, false or {soak: "
                        "<duration>}, e.g. {soak: 10m}, got a list"));
  EXPECT_THAT(LoadDiagnostics(WithUpgrade("    canary: {soak: soon}\n")),
              HasSubstr("cluster.yaml:13:20: spec.upgrade.canary.soak: \"soon\" is not a duration "
                        "(want e.g. 30s, 10m or 1h30m)"));
  EXPECT_THAT(LoadDiagnostics(WithUpgrade("    canary: {soke: 10m}\n")),
              HasSubstr("cluster.yaml:13:14: spec.upgrade.canary.soke: unknown field \"soke\" (did "
                        "you mean \"soak\"?)"));
  EXPECT_THAT(LoadDiagnostics(WithUpgrade("    rollback: maybe\n")),
              HasSubstr("cluster.yaml:13:15: spec.upgrade.rollback: \"maybe\" is not a boolean "
                        "(want true or false)"));
  EXPECT_THAT(LoadDiagnostics(WithUpgrade("    rolback: true\n")),
              HasSubstr("cluster.yaml:13:5: spec.upgrade.rolback: unknown field \"rolback\" (did "
                        "you mean \"rollback\"?)"));
  EXPECT_THAT(
      LoadDiagnostics(WithUpgrade("    healthTimeout: 0s\n")),
      HasSubstr("cluster.yaml:13:20: spec.upgrade.healthTimeout: \"0s\" is not a duration"));
}

// Window shape and day names.
TEST(UpgradePolicyTest, WindowDayErrors) {
  EXPECT_THAT(LoadDiagnostics(WithUpgrade("    maintenanceWindow: nightly\n")),
              HasSubstr("cluster.yaml:13:24: spec.upgrade.maintenanceWindow: want a map, got a "
                        "scalar"));
  auto bad_days = LoadDiagnostics(WithUpgrade(
      "    maintenanceWindow: {days: [mon, thurs, 3], start: \"02:00\", end: \"05:00\"}\n"));
  EXPECT_THAT(bad_days,
              HasSubstr("cluster.yaml:13:37: spec.upgrade.maintenanceWindow.days[1]: \"thurs\" is "
                        "not a day (want mon, tue, wed, thu, fri, sat or sun)"));
  EXPECT_THAT(
      bad_days,
      HasSubstr("cluster.yaml:13:44: spec.upgrade.maintenanceWindow.days[2]: \"3\" is not a "
                "day (want mon, tue, wed, thu, fri, sat or sun)"));
  EXPECT_THAT(
      LoadDiagnostics(
          WithUpgrade("    maintenanceWindow: {days: [], start: \"02:00\", end: \"05:00\"}\n")),
      HasSubstr("cluster.yaml:13:31: spec.upgrade.maintenanceWindow.days: an empty list never "
                "opens (want at least one of mon, tue, wed, thu, fri, sat, sun, or omit days for "
                "every day)"));
  EXPECT_THAT(
      LoadDiagnostics(
          WithUpgrade("    maintenanceWindow: {days: mon, start: \"02:00\", end: \"05:00\"}\n")),
      HasSubstr("cluster.yaml:13:31: spec.upgrade.maintenanceWindow.days: want a list of strings, "
                "got a scalar"));
  EXPECT_THAT(LoadDiagnostics(WithUpgrade(
                  "    maintenanceWindow: {start: \"02:00\", end: \"05:00\", timezone: UTC}\n")),
              HasSubstr("spec.upgrade.maintenanceWindow.timezone: unknown field \"timezone\" (did "
                        "you mean \"timeZone\"?)"));
}

// Start and end: required, HH:MM 24-hour (end may be 24:00), not equal.
TEST(UpgradePolicyTest, WindowTimeErrors) {
  auto missing = LoadDiagnostics(WithUpgrade("    maintenanceWindow: {days: [mon]}\n"));
  EXPECT_THAT(missing, HasSubstr("cluster.yaml:13:24: spec.upgrade.maintenanceWindow.start: "
                                 "required field is missing"));
  EXPECT_THAT(missing, HasSubstr("cluster.yaml:13:24: spec.upgrade.maintenanceWindow.end: "
                                 "required field is missing"));
  for (const char* bad : {"2am", "2:00", "24:00", "02:60", "0200", "02:00:00"}) {
    EXPECT_THAT(
        LoadDiagnostics(WithUpgrade(std::string("    maintenanceWindow: {start: \"") + bad +
                                    "\", end: \"05:00\"}\n")),
        HasSubstr("cluster.yaml:13:32: spec.upgrade.maintenanceWindow.start: \"" +
                  std::string(bad) + "\" is not a time of day (want HH:MM, 24-hour, e.g. 02:00)"))
        << bad;
  }
  for (const char* bad : {"25:00", "24:01", "5"}) {
    EXPECT_THAT(
        LoadDiagnostics(WithUpgrade(std::string("    maintenanceWindow: {start: \"02:00\", "
                                                "end: \"") +
                                    bad + "\"}\n")),
        HasSubstr("cluster.yaml:13:46: spec.upgrade.maintenanceWindow.end: \"" + std::string(bad) +
                  "\" is not a time of day (want HH:MM, 24-hour, e.g. 05:00, or 24:00)"))
        << bad;
  }
  EXPECT_THAT(
      LoadDiagnostics(WithUpgrade("    maintenanceWindow: {start: \"02:00\", end: \"02:00\"}\n")),
      HasSubstr("cluster.yaml:13:46: spec.upgrade.maintenanceWindow.end: \"02:00\" is the start "
                "time (want a different end; an end before the start spans midnight)"));
}

// Time zones: a near miss suggests the real name; unknown names, regions,
// non-zone files under zoneinfo, leap-second zones and path tricks are refused.
TEST(UpgradePolicyTest, WindowTimeZoneErrors) {
  auto zone_error = [](const std::string& zone) {
    return LoadDiagnostics(WithUpgrade(
        "    maintenanceWindow: {start: \"02:00\", end: \"05:00\", timeZone: " + zone + "}\n"));
  };
  EXPECT_THAT(
      zone_error("Europe/Berln"),
      HasSubstr("cluster.yaml:13:65: spec.upgrade.maintenanceWindow.timeZone: "
                "\"Europe/Berln\" is not a known time zone (no TZif file "
                "/usr/share/zoneinfo/Europe/Berln; want an IANA name such as Europe/Berlin, "
                "America/New_York or UTC; did you mean \"Europe/Berlin\"?)"));
  EXPECT_THAT(zone_error("america/new_york"), HasSubstr("did you mean \"America/New_York\"?"));
  auto mars = zone_error("Mars/Olympus_Mons");
  EXPECT_THAT(mars, HasSubstr("spec.upgrade.maintenanceWindow.timeZone: \"Mars/Olympus_Mons\" is "
                              "not a known time zone (no TZif file "
                              "/usr/share/zoneinfo/Mars/Olympus_Mons; want an IANA name such as "
                              "Europe/Berlin, America/New_York or UTC)"));
  EXPECT_THAT(mars, ::testing::Not(HasSubstr("did you mean")));
  EXPECT_THAT(zone_error("Europe"), HasSubstr("\"Europe\" is not a known time zone"));
  EXPECT_THAT(zone_error("zone.tab"), HasSubstr("\"zone.tab\" is not a known time zone"));
  EXPECT_THAT(zone_error("right/Europe/Berlin"),
              HasSubstr("\"right/Europe/Berlin\" is a leap-second zone (want the POSIX-time name "
                        "without \"right/\", e.g. \"Europe/Berlin\")"));
  EXPECT_THAT(zone_error("../../etc/passwd"),
              HasSubstr("spec.upgrade.maintenanceWindow.timeZone: \"../../etc/passwd\" is not a "
                        "time zone name (want an IANA name such as Europe/Berlin, "
                        "America/New_York or UTC)"));
  EXPECT_THAT(zone_error("\"Europe/Berlin \""),
              HasSubstr("\"Europe/Berlin \" is not a time zone name"));
}

// The Cluster JSON Schema lists exactly the upgrade fields the loader accepts,
// refuses others, and its day enum and time patterns agree with the loader.
TEST(UpgradePolicyTest, SchemaMatchesTheLoader) {
  using nlohmann::json;
  json schema = json::parse(
      testutil::ReadFile(std::string(IRONBOOT_SOURCE_DIR) + "/manifests/schema/cluster.json"));
  const json& upgrade = schema["properties"]["spec"]["properties"]["upgrade"];
  std::vector<std::string> keys;
  for (auto& [k, v] : upgrade["properties"].items()) {
    keys.push_back(k);
  }
  EXPECT_THAT(
      keys, ::testing::UnorderedElementsAre("strategy", "maxUnavailable", "healthTimeout", "paused",
                                            "canary", "rollback", "maintenanceWindow"));
  EXPECT_EQ(upgrade["properties"]["healthTimeout"]["default"], "15m");
  const json& window = upgrade["properties"]["maintenanceWindow"];
  EXPECT_EQ(window["additionalProperties"], false);
  EXPECT_EQ(window["required"], json::array({"start", "end"}));
  std::vector<std::string> window_keys;
  for (auto& [k, v] : window["properties"].items()) {
    window_keys.push_back(k);
  }
  EXPECT_THAT(window_keys, ::testing::UnorderedElementsAre("days", "start", "end", "timeZone"));
  // Every day the schema lists loads; the loader's own error lists the short forms.
  std::string days;
  for (const auto& d : window["properties"]["days"]["items"]["enum"]) {
    days += (days.empty() ? "" : ", ") + d.get<std::string>();
  }
  EXPECT_EQ(LoadDiagnostics(WithUpgrade("    maintenanceWindow: {days: [" + days +
                                        "], start: \"02:00\", end: \"05:00\"}\n")),
            "");
  const std::regex start(window["properties"]["start"]["pattern"].get<std::string>());
  const std::regex end(window["properties"]["end"]["pattern"].get<std::string>());
  for (const char* t : {"00:00", "02:00", "23:59", "12:30"}) {
    EXPECT_TRUE(std::regex_search(t, start)) << t;
    EXPECT_TRUE(std::regex_search(t, end)) << t;
  }
  EXPECT_TRUE(std::regex_search("24:00", end));
  for (const char* t : {"24:00", "2:00", "02:60", "25:00", "0200", "02:00:00", "24:01"}) {
    EXPECT_FALSE(std::regex_search(t, start)) << t;
    if (std::string(t) != "24:00") {
      EXPECT_FALSE(std::regex_search(t, end)) << t;
    }
  }
}

}  // namespace
}  // namespace ironboot::manifests
