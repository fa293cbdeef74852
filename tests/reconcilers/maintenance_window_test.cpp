// reconcilers/maintenance_window.h: TZif time zones checked against the real
// `date` command (glibc's reading of the same files), and maintenance
// windows across DST changes, midnight and every weekday.

#include "reconcilers/maintenance_window.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <thread>

#include "tests/testutil/testutil.h"

namespace ironboot::reconcilers {
namespace {

using ::testing::HasSubstr;

constexpr char kDateFormat[] = "+%Y-%m-%d %H:%M:%S %z %Z %w";

TimePoint At(int64_t unix_seconds) {
  return TimePoint(std::chrono::seconds(unix_seconds));
}

int64_t Unix(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// `c` as `date` prints kDateFormat.
std::string AsDatePrints(const CivilTime& c) {
  char buf[96];
  int32_t off = c.utc_offset_seconds < 0 ? -c.utc_offset_seconds : c.utc_offset_seconds;
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d %c%02d%02d %s %d", c.year, c.month,
                c.day, c.hour, c.minute, c.second, c.utc_offset_seconds < 0 ? '-' : '+', off / 3600,
                (off / 60) % 60, c.abbreviation.c_str(), c.weekday);
  return buf;
}

// What `TZ=<tz> date -d @<t> <kDateFormat>` prints for each instant (one
// `date -f` run for all of them).
std::vector<std::string> DatePrints(const std::string& tz, const std::vector<int64_t>& instants) {
  testutil::TempDir dir;
  std::string input;
  for (int64_t t : instants) {
    input += "@" + std::to_string(t) + "\n";
  }
  const auto file = dir.path() / "instants";
  testutil::WriteFile(file, input);
  auto r = testutil::Run({"date", "-f", file.string(), kDateFormat}, std::nullopt, {{"TZ", tz}});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  EXPECT_EQ(lines.size(), instants.size());
  lines.resize(instants.size());
  return lines;
}

// Fixed instants around known changes, 200 pseudo-random ones in 1900-2100
// (past 2037 only the TZif footer's rule answers), and each side of every
// change the zone reports from 2020 to 2045.
std::vector<int64_t> Instants(const TimeZone& zone) {
  std::vector<int64_t> out = {
      0,
      -1,
      1774746000 - 1,
      1774746000,
      1774749600,  // Berlin spring 2026
      1792890000 - 1,
      1792890000,
      1792893600,  // Berlin autumn 2026
      1772953200 - 1,
      1772953200,
      1793512800 - 1,
      1793512800,  // New York 2026
      2147483647,
      2147483648,
      4102444799,  // 2038, 2100
  };
  std::mt19937_64 rng(20261127);
  std::uniform_int_distribution<int64_t> any(-2208988800, 4102444800);
  for (int i = 0; i < 200; ++i) {
    out.push_back(any(rng));
  }
  auto t = zone.NextChange(At(1577836800));                   // 2020-01-01
  for (int i = 0; t && *t < At(2366841600) && i < 80; ++i) {  // 2045-01-01
    out.push_back(Unix(*t) - 1);
    out.push_back(Unix(*t));
    t = zone.NextChange(*t);
  }
  return out;
}

// ToLocal agrees with `date` for ~300 instants per zone: DST in both
// hemispheres, negative DST (Dublin), half- and quarter-hour offsets, zones
// that dropped DST, and years only the footer's TZ string covers.
TEST(TimeZoneTest, AgreesWithTheDateCommand) {
  for (const char* name :
       {"UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
        "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Chatham", "Europe/Dublin", "America/St_Johns",
        "Asia/Tehran", "Africa/Casablanca"}) {
    auto zone = TimeZone::Load(name);
    ASSERT_TRUE(zone) << zone.error().message;
    const auto instants = Instants(*zone);
    const auto expected = DatePrints(name, instants);
    int mismatches = 0;
    for (size_t i = 0; i < instants.size(); ++i) {
      std::string ours = AsDatePrints(zone->ToLocal(At(instants[i])));
      if (ours != expected[i] && ++mismatches <= 5) {
        ADD_FAILURE() << name << " @" << instants[i] << ": ours " << ours << ", date "
                      << expected[i];
      }
    }
    EXPECT_EQ(mismatches, 0) << name << " of " << instants.size();
    EXPECT_GE(instants.size(), 200u);
  }
}

// Europe/Berlin's 2026 switches: 02:00 CET -> 03:00 CEST on 29 March and
// 03:00 CEST -> 02:00 CET on 25 October; NextChange lands on each.
TEST(TimeZoneTest, BerlinSwitchesIn2026) {
  auto zone = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(zone) << zone.error().message;
  EXPECT_EQ(zone->ToLocal(At(1774746000 - 1)).ToString(), "2026-03-29 01:59:59 CET (+0100)");
  EXPECT_EQ(zone->ToLocal(At(1774746000)).ToString(), "2026-03-29 03:00:00 CEST (+0200)");
  EXPECT_EQ(zone->ToLocal(At(1792890000 - 1)).ToString(), "2026-10-25 02:59:59 CEST (+0200)");
  EXPECT_EQ(zone->ToLocal(At(1792890000)).ToString(), "2026-10-25 02:00:00 CET (+0100)");
  auto spring = zone->NextChange(At(1767225600));  // 2026-01-01
  ASSERT_TRUE(spring);
  EXPECT_EQ(Unix(*spring), 1774746000);
  auto autumn = zone->NextChange(*spring);
  ASSERT_TRUE(autumn);
  EXPECT_EQ(Unix(*autumn), 1792890000);
  EXPECT_FALSE(TimeZone::Load("UTC")->NextChange(At(0)));
}

// A "slim" TZif file (zic -b slim: no transitions where the footer rule
// applies, as newer tzdata builds ship) reads the same as `date` reads it,
// for a northern and a southern rule.
TEST(TimeZoneTest, SlimFilesUseTheFooterRule) {
  testutil::TempDir dir;
  testutil::WriteFile(dir.path() / "src",
                      "Rule EU 1981 max - Mar lastSun 1:00u 1:00 S\n"
                      "Rule EU 1996 max - Oct lastSun 1:00u 0 -\n"
                      "Zone Test/Berlin 1:00 EU CE%sT\n"
                      "Rule AN 2008 max - Apr Sun>=1 2:00s 0 S\n"
                      "Rule AN 2008 max - Oct Sun>=1 2:00s 1:00 D\n"
                      "Zone Test/Sydney 10:00 AN AE%sT\n");
  const auto out = dir.path() / "zoneinfo";
  auto zic =
      testutil::Run({"zic", "-b", "slim", "-d", out.string(), (dir.path() / "src").string()});
  ASSERT_EQ(zic.exit_code, 0) << zic.output;
  for (const char* name : {"Test/Berlin", "Test/Sydney"}) {
    EXPECT_LT(std::filesystem::file_size(out / name), 200u) << "not slim";
    auto zone = TimeZone::Load(name, out.string());
    ASSERT_TRUE(zone) << zone.error().message;
    std::vector<int64_t> instants;
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int64_t> years(1577836800, 2524608000);  // 2020-2050
    for (int i = 0; i < 200; ++i) {
      instants.push_back(years(rng));
    }
    for (auto t = zone->NextChange(At(1577836800)); t && *t < At(1893456000);
         t = zone->NextChange(*t)) {  // to 2030
      instants.push_back(Unix(*t) - 1);
      instants.push_back(Unix(*t));
    }
    const auto expected = DatePrints((out / name).string(), instants);
    for (size_t i = 0; i < instants.size(); ++i) {
      EXPECT_EQ(AsDatePrints(zone->ToLocal(At(instants[i]))), expected[i])
          << name << " @" << instants[i];
    }
  }
}

// TZ strings: defaults and RFC 8536 extensions parse; DST all year works;
// malformed strings are refused with the string quoted.
TEST(PosixTzTest, ParsesRulesAndRefusesGarbage) {
  auto ny = PosixTz::Parse("EST5EDT,M3.2.0,M11.1.0");
  ASSERT_TRUE(ny) << ny.error().message;
  EXPECT_EQ(ny->At(1772953200 - 1).abbreviation, "EST");  // 2026-03-08 01:59:59 EST
  EXPECT_EQ(ny->At(1772953200).utc_offset_seconds, -4 * 3600);
  auto always = PosixTz::Parse("EST5EDT,0/0,J365/25");
  ASSERT_TRUE(always) << always.error().message;
  for (int64_t t : {int64_t{1767225600}, int64_t{1782864000}, int64_t{1798761599}}) {
    EXPECT_TRUE(always->At(t).is_dst) << t;
  }
  EXPECT_FALSE(always->NextChange(1767225600));
  auto plain = PosixTz::Parse("<+0530>-5:30");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->At(0).utc_offset_seconds, 19800);
  EXPECT_EQ(plain->At(0).abbreviation, "+0530");
  auto julian = PosixTz::Parse("AAA0BBB,J60/0,J300/0");  // 1 March (Feb 29 not counted)
  ASSERT_TRUE(julian) << julian.error().message;
  EXPECT_FALSE(julian->At(1709164800).is_dst);  // 2024-02-29 00:00 UTC
  EXPECT_TRUE(julian->At(1709251200).is_dst);   // 2024-03-01 00:00 UTC
  for (const char* bad : {"", "E5", "CET", "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.5.0",
                          "CET-1CEST,M3.5.0,M10.5.0/x", "<+03-3"}) {
    auto r = PosixTz::Parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error().message,
                HasSubstr("TZ string \"" + std::string(bad) + "\" is not valid"));
  }
}

// A zone that does not exist is an error naming it and the file looked for;
// a path-like name is refused before any file is opened; leap-second zones,
// corrupt and truncated files say what is wrong.
TEST(TimeZoneTest, MissingBadAndCorruptZones) {
  auto missing = TimeZone::Load("Europe/Atlantis");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("time zone \"Europe/Atlantis\" not found (no file "
                                                 "/usr/share/zoneinfo/Europe/Atlantis"));
  auto leap = TimeZone::Load("right/Europe/Berlin");
  ASSERT_FALSE(leap);
  EXPECT_THAT(leap.error().message,
              HasSubstr("time zone \"right/Europe/Berlin\" has leap-second records (a \"right/\" "
                        "zone; want the POSIX-time zone of the same name)"));
  auto escape = TimeZone::Load("../../etc/passwd");
  ASSERT_FALSE(escape);
  EXPECT_EQ(escape.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(escape.error().message, HasSubstr("\"../../etc/passwd\" is not a zone name"));

  testutil::TempDir dir;
  testutil::WriteFile(dir.path() / "Junk", "not a zone file at all, clearly");
  const std::string berlin = testutil::ReadFile("/usr/share/zoneinfo/Europe/Berlin");
  testutil::WriteFile(dir.path() / "Short", berlin.substr(0, berlin.size() / 2));
  std::string bad_footer = berlin.substr(0, berlin.rfind('\n', berlin.size() - 2) + 1) + "CET\n";
  testutil::WriteFile(dir.path() / "Footer", bad_footer);
  auto junk = TimeZone::Load("Junk", dir.path().string());
  ASSERT_FALSE(junk);
  EXPECT_THAT(junk.error().message,
              HasSubstr("time zone \"Junk\": not a valid TZif file (no TZif header)"));
  auto shorter = TimeZone::Load("Short", dir.path().string());
  ASSERT_FALSE(shorter);
  EXPECT_THAT(shorter.error().message, HasSubstr("not a valid TZif file (truncated data block)"));
  auto footer = TimeZone::Load("Footer", dir.path().string());
  ASSERT_FALSE(footer);
  EXPECT_THAT(footer.error().message, HasSubstr("footer: TZ string \"CET\" is not valid"));
}

// Loaded zones are cached (same object) and loading is safe from many threads.
TEST(TimeZoneTest, LoadTimeZoneCachesAndIsThreadSafe) {
  std::vector<TimeZonePtr> seen(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] {
      auto z = LoadTimeZone(i % 2 ? "Asia/Tokyo" : "America/Chicago");
      if (z) {
        seen[i] = *z;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    ASSERT_TRUE(seen[i]) << i;
    EXPECT_EQ(seen[i], *LoadTimeZone(seen[i]->name())) << i;
  }
  EXPECT_EQ((*LoadTimeZone("Asia/Tokyo"))->ToLocal(At(0)).ToString(),
            "1970-01-01 09:00:00 JST (+0900)");
}

MaintenanceWindow Window(std::vector<int> days, int start, int end, std::string zone) {
  MaintenanceWindow w;
  w.days = std::move(days);
  w.start_minute = start;
  w.end_minute = end;
  w.time_zone = std::move(zone);
  return w;
}

// What a window says for a wall-clock time `date` printed (kDateFormat).
bool ExpectedOpen(const MaintenanceWindow& w, const std::string& printed) {
  int hour = std::stoi(printed.substr(11, 2));
  int minute = std::stoi(printed.substr(14, 2));
  int weekday = printed.back() - '0';
  int m = hour * 60 + minute;
  auto listed = [&](int d) { return std::find(w.days.begin(), w.days.end(), d) != w.days.end(); };
  if (w.end_minute > w.start_minute) {
    return listed(weekday) && m >= w.start_minute && m < w.end_minute;
  }
  return (listed(weekday) && m >= w.start_minute) ||
         (listed((weekday + 6) % 7) && m < w.end_minute);
}

// UTC, Monday to Friday 02:00-05:00: open on each weekday inside it, closed
// at 05:00, before 02:00 and at the weekend.
TEST(MaintenanceWindowTest, EachWeekdayInUtc) {
  auto w = Window({1, 2, 3, 4, 5}, 120, 300, "UTC");
  const int64_t monday = 1777852800;  // 2026-05-04 00:00 UTC, a Monday
  for (int d = 0; d < 7; ++d) {
    const int64_t day = monday + d * 86400;
    const bool weekday = d < 5;
    EXPECT_EQ(*IsOpen(w, At(day + 2 * 3600)), weekday) << d;
    EXPECT_EQ(*IsOpen(w, At(day + 5 * 3600 - 1)), weekday) << d;
    EXPECT_FALSE(*IsOpen(w, At(day + 5 * 3600))) << d;
    EXPECT_FALSE(*IsOpen(w, At(day + 2 * 3600 - 1))) << d;
  }
  // Saturday noon: next Monday 02:00.
  EXPECT_EQ(Unix(*NextOpen(w, At(monday + 5 * 86400 + 12 * 3600))), monday + 7 * 86400 + 7200);
  // Open now: now.
  EXPECT_EQ(Unix(*NextOpen(w, At(monday + 3 * 3600))), monday + 3 * 3600);
}

// Friday 22:00-02:00 (spans midnight; days are the day it starts): open late
// Friday and early Saturday, not early Friday or late Saturday.
TEST(MaintenanceWindowTest, SpanningMidnight) {
  auto w = Window({5}, 22 * 60, 120, "UTC");
  const int64_t friday = 1778198400;  // 2026-05-08 00:00 UTC
  EXPECT_FALSE(*IsOpen(w, At(friday + 3600)));
  EXPECT_TRUE(*IsOpen(w, At(friday + 22 * 3600)));
  EXPECT_TRUE(*IsOpen(w, At(friday + 86400 + 3600)));
  EXPECT_FALSE(*IsOpen(w, At(friday + 86400 + 7200)));
  EXPECT_FALSE(*IsOpen(w, At(friday + 86400 + 23 * 3600)));
  EXPECT_EQ(Unix(*NextOpen(w, At(friday + 86400 + 7200))), friday + 7 * 86400 + 22 * 3600);
  // 22:00 to 24:00 does not span midnight.
  auto evening = Window({5}, 22 * 60, 1440, "UTC");
  EXPECT_TRUE(*IsOpen(evening, At(friday + 86400 - 1)));
  EXPECT_FALSE(*IsOpen(evening, At(friday + 86400)));
}

// Berlin on 29 March 2026: a Sunday 02:30-05:00 window's start is skipped, so
// it opens at the switch (03:00 CEST); a 02:00-02:30 window does not open
// that day at all. On 25 October the repeated 02:00-03:00 is in a 02:00-03:00
// window twice (two hours).
TEST(MaintenanceWindowTest, BerlinAcrossBothDstSwitches) {
  auto zone = TimeZone::Load("Europe/Berlin");
  ASSERT_TRUE(zone);
  const int64_t saturday_noon = 1774699200;  // 2026-03-28 12:00 UTC
  auto late = Window({0}, 150, 300, "Europe/Berlin");
  EXPECT_EQ(Unix(*NextOpen(late, *zone, At(saturday_noon))), 1774746000);
  EXPECT_EQ(zone->ToLocal(*NextOpen(late, *zone, At(saturday_noon))).ToString(),
            "2026-03-29 03:00:00 CEST (+0200)");
  auto gap = Window({0}, 120, 150, "Europe/Berlin");
  EXPECT_EQ(zone->ToLocal(*NextOpen(gap, *zone, At(saturday_noon))).ToString(),
            "2026-04-05 02:00:00 CEST (+0200)");
  auto repeated = Window({0}, 120, 180, "Europe/Berlin");
  const int64_t autumn = 1792890000;  // 2026-10-25 01:00 UTC, 03:00 CEST -> 02:00 CET
  EXPECT_EQ(Unix(*NextOpen(repeated, *zone, At(autumn - 86400))), autumn - 3600);
  EXPECT_TRUE(IsOpen(repeated, *zone, At(autumn - 1)));
  EXPECT_TRUE(IsOpen(repeated, *zone, At(autumn + 3600 - 1)));
  EXPECT_FALSE(IsOpen(repeated, *zone, At(autumn + 3600)));
}

// New York on 8 March 2026 (02:00 EST -> 03:00 EDT): a Sunday 01:30-03:00
// window is open for 30 minutes only.
TEST(MaintenanceWindowTest, NewYorkSpringForward) {
  auto w = Window({0}, 90, 180, "America/New_York");
  const int64_t switch_at = 1772953200;  // 07:00 UTC
  EXPECT_EQ(Unix(*NextOpen(w, At(switch_at - 86400))), switch_at - 1800);
  EXPECT_TRUE(*IsOpen(w, At(switch_at - 1)));
  EXPECT_FALSE(*IsOpen(w, At(switch_at)));
}

// IsOpen agrees with the window read off `date`'s wall clock for 400
// instants per window, and NextOpen returns an instant `date` puts inside
// the window with the second before it outside (or the start instant when
// open), with nothing open at any 5-minute step in between.
TEST(MaintenanceWindowTest, AgreesWithTheDateCommand) {
  const std::vector<MaintenanceWindow> windows = {
      Window({1, 2, 3, 4, 5}, 120, 300, "Europe/Berlin"),
      Window({0, 6}, 23 * 60 + 30, 4 * 60, "Europe/Berlin"),
      Window({2, 4}, 60, 3 * 60 + 15, "America/New_York"),
      Window({0}, 0, 1440, "Australia/Sydney"),
      Window({3}, 22 * 60, 60, "UTC"),
  };
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> range(1767225600, 2524608000);  // 2026-2050
  for (const auto& w : windows) {
    auto zone = LoadTimeZone(w.time_zone);
    ASSERT_TRUE(zone) << zone.error().message;
    std::vector<int64_t> instants;
    for (int i = 0; i < 400; ++i) {
      instants.push_back(range(rng));
    }
    auto printed = DatePrints(w.time_zone, instants);
    for (size_t i = 0; i < instants.size(); ++i) {
      EXPECT_EQ(IsOpen(w, **zone, At(instants[i])), ExpectedOpen(w, printed[i]))
          << w.time_zone << " @" << instants[i] << " " << printed[i];
    }
    for (int i = 0; i < 12; ++i) {
      const int64_t from = instants[i];
      auto next = NextOpen(w, **zone, At(from));
      ASSERT_TRUE(next) << next.error().message;
      const int64_t n = Unix(*next);
      ASSERT_GE(n, from);
      ASSERT_LE(n - from, 8 * 86400);
      std::vector<int64_t> probe = {n, n - 1};
      for (int64_t t = from - from % 300 + 300; t < n; t += 300) {
        probe.push_back(t);
      }
      auto seen = DatePrints(w.time_zone, probe);
      EXPECT_TRUE(ExpectedOpen(w, seen[0])) << w.time_zone << " next " << seen[0];
      if (n != from) {
        EXPECT_FALSE(ExpectedOpen(w, seen[1])) << w.time_zone << " before next " << seen[1];
      }
      for (size_t k = 2; k < seen.size(); ++k) {
        EXPECT_FALSE(ExpectedOpen(w, seen[k])) << w.time_zone << " open before next: " << seen[k];
      }
    }
  }
}

// A window in a zone that is not installed is an error naming the zone; a
// window without days never opens and says so.
TEST(MaintenanceWindowTest, MissingZoneAndNoDays) {
  auto w = Window({1}, 0, 60, "Mars/Olympus_Mons");
  auto open = IsOpen(w, At(0));
  ASSERT_FALSE(open);
  EXPECT_THAT(open.error().message,
              HasSubstr("maintenance window: time zone \"Mars/Olympus_Mons\" not found"));
  auto next = NextOpen(w, At(0));
  ASSERT_FALSE(next);
  EXPECT_THAT(next.error().message, HasSubstr("\"Mars/Olympus_Mons\""));
  auto none = NextOpen(Window({}, 0, 60, "UTC"), At(0));
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("has no days, so it never opens"));
}

}  // namespace
}  // namespace ironboot::reconcilers
