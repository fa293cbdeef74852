#pragma once
// reconcilers/: maintenance windows (Cluster spec.upgrade.maintenanceWindow)
// and the IANA time zones they are written in. The rollout sequencer starts a
// new step only while IsOpen(); NextOpen() is for "next window opens at ...".
//
// Time zones are read from the TZif files of tzdata (RFC 8536; version 2+
// 64-bit data, with the footer's POSIX TZ string for instants after the last
// transition, which "slim" files rely on from the 1990s on). Nothing here
// touches the process environment (no setenv("TZ")/localtime), so every
// function is thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "manifests/types.h"

namespace ironboot::reconcilers {

using manifests::MaintenanceWindow;
using TimePoint = std::chrono::system_clock::time_point;

// Wall-clock time in a zone at one instant.
struct CivilTime {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  int hour = 0;
  int minute = 0;
  int second = 0;
  int weekday = 4;  // 0 = Sunday .. 6 = Saturday
  int32_t utc_offset_seconds = 0;
  bool is_dst = false;
  std::string abbreviation;  // "CET", "CEST", "EST", "+0530"...

  // "2026-03-29 03:00:00 CEST (+0200)", for status lines and messages.
  std::string ToString() const;
};

// A POSIX TZ rule string as in a TZif footer ("CET-1CEST,M3.5.0,M10.5.0/3"),
// with RFC 8536's extensions (<+03>-3 names, hours up to 167).
class PosixTz {
 public:
  static Result<PosixTz> Parse(std::string_view text);

  // The offset in effect at `unix_seconds`.
  struct Offset {
    int32_t utc_offset_seconds = 0;  // east of UTC positive
    bool is_dst = false;
    std::string abbreviation;
  };
  Offset At(int64_t unix_seconds) const;
  // The first instant after `unix_seconds` at which the offset changes;
  // nullopt for a zone without daylight saving time.
  std::optional<int64_t> NextChange(int64_t unix_seconds) const;

 private:
  // A date rule: Jn (julian, no Feb 29), n (zero-based day of year) or
  // Mm.w.d, plus the local time of day it takes effect.
  struct Rule {
    enum class Kind { kJulian1, kJulian0, kMonthWeekDay } kind = Kind::kMonthWeekDay;
    int day = 0;  // Jn: 1..365; n: 0..365; M: d, 0 = Sunday
    int month = 0;
    int week = 0;                     // 1..5, 5 = last
    int32_t time_seconds = 2 * 3600;  // may be negative or past 24h (RFC 8536)
  };
  // Seconds since the epoch of the rule's moment in `year`, measured on a
  // local clock at `offset` (std offset for the start rule, DST for the end).
  static int64_t RuleInstant(const Rule& rule, int year, int32_t offset);
  // DST start and end instants (UTC) for `year`.
  std::pair<int64_t, int64_t> Transitions(int year) const;

  Offset std_;
  std::optional<Offset> dst_;
  Rule start_;
  Rule end_;
};

// One IANA zone loaded from a TZif file. Immutable; share it freely.
class TimeZone {
 public:
  // Parses TZif bytes (version 1 data only if the file has nothing else).
  // `name` is for messages.
  static Result<TimeZone> Parse(std::string name, std::string_view bytes);
  // Reads `<zoneinfo_dir>/<name>`. A missing file is kNotFound naming the
  // zone and the path; a corrupt one kInvalid.
  static Result<TimeZone> Load(const std::string& name,
                               const std::string& zoneinfo_dir = manifests::kZoneInfoDir);

  const std::string& name() const { return name_; }
  CivilTime ToLocal(TimePoint t) const;
  // The first instant strictly after `t` at which the UTC offset or the
  // abbreviation changes; nullopt if it never does again.
  std::optional<TimePoint> NextChange(TimePoint t) const;

 private:
  struct Type {
    int32_t utc_offset_seconds = 0;
    bool is_dst = false;
    std::string abbreviation;
  };
  PosixTz::Offset OffsetAt(int64_t unix_seconds) const;

  std::string name_;
  std::vector<int64_t> transitions_;       // ascending unix seconds
  std::vector<uint8_t> transition_types_;  // index into types_, per transition
  std::vector<Type> types_;                // never empty
  std::optional<PosixTz> footer_;          // after the last transition
};
using TimeZonePtr = std::shared_ptr<const TimeZone>;

// Loads a zone from manifests::kZoneInfoDir once and keeps it for the life of
// the process (thread-safe). Failures are not cached: an installed tzdata is
// picked up on the next call.
Result<TimeZonePtr> LoadTimeZone(const std::string& name);

// True if `t` is inside `window` in `zone`'s wall-clock time: on a listed day
// at or after start and before end, or, for a window spanning midnight, also
// before end on the day after a listed day. Wall-clock time decides: a start
// time that a DST change skips opens the window at the change, and an hour
// the change repeats is inside the window both times.
bool IsOpen(const MaintenanceWindow& window, const TimeZone& zone, TimePoint t);
// The first instant >= `t` at which the window is open (`t` itself when open
// now); kInvalid for a window without days.
Result<TimePoint> NextOpen(const MaintenanceWindow& window, const TimeZone& zone, TimePoint t);

// The same, loading window.time_zone through LoadTimeZone(); a missing zone
// is an error naming it.
Result<bool> IsOpen(const MaintenanceWindow& window, TimePoint t);
Result<TimePoint> NextOpen(const MaintenanceWindow& window, TimePoint t);

}  // namespace ironboot::reconcilers
