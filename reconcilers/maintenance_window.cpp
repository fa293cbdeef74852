#include "reconcilers/maintenance_window.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace ironboot::reconcilers {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Date {
  int64_t year;
  int month;
  int day;
};

Date CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Date{yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

// 0 = Sunday; day 0 (1970-01-01) was a Thursday.
int WeekdayFromDays(int64_t days) {
  return static_cast<int>(((days % 7) + 7 + 4) % 7);
}

bool IsLeap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int64_t ToUnixSeconds(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

TimePoint FromUnixSeconds(int64_t s) {
  return TimePoint(std::chrono::seconds(s));
}

// A cursor over TZ string text.
class TzScanner {
 public:
  explicit TzScanner(std::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  bool Consume(char c) {
    if (Peek() == c && !AtEnd()) {
      ++pos_;
      return true;
    }
    return false;
  }

  // A zone abbreviation: 3+ letters, or <...> of letters, digits, + and -.
  std::optional<std::string> Name() {
    std::string out;
    if (Consume('<')) {
      while (!AtEnd() && Peek() != '>') {
        char c = text_[pos_++];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-') {
          return std::nullopt;
        }
        out += c;
      }
      if (!Consume('>')) {
        return std::nullopt;
      }
    } else {
      while (!AtEnd() && std::isalpha(static_cast<unsigned char>(Peek()))) {
        out += text_[pos_++];
      }
    }
    if (out.size() < 3) {
      return std::nullopt;
    }
    return out;
  }

  std::optional<int> Number(int max) {
    if (AtEnd() || !std::isdigit(static_cast<unsigned char>(Peek()))) {
      return std::nullopt;
    }
    int v = 0;
    while (!AtEnd() && std::isdigit(static_cast<unsigned char>(Peek()))) {
      v = v * 10 + (text_[pos_++] - '0');
      if (v > max) {
        return std::nullopt;
      }
    }
    return v;
  }

  // [+-]hh[:mm[:ss]] in seconds; hours up to 167 (RFC 8536 for rule times).
  std::optional<int32_t> Time() {
    int sign = 1;
    if (Consume('-')) {
      sign = -1;
    } else {
      Consume('+');
    }
    auto h = Number(167);
    if (!h) {
      return std::nullopt;
    }
    int32_t total = *h * 3600;
    if (Consume(':')) {
      auto m = Number(59);
      if (!m) {
        return std::nullopt;
      }
      total += *m * 60;
      if (Consume(':')) {
        auto s = Number(59);
        if (!s) {
          return std::nullopt;
        }
        total += *s;
      }
    }
    return sign * total;
  }

  bool StartsOffset() const {
    char c = Peek();
    return c == '+' || c == '-' || std::isdigit(static_cast<unsigned char>(c));
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

uint32_t Be32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 3])};
}

int64_t Be64(std::string_view b, size_t at) {
  return static_cast<int64_t>((uint64_t{Be32(b, at)} << 32) | Be32(b, at + 4));
}

struct TzifCounts {
  char version = 0;
  size_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;

  // Bytes of the data block after the header, with `time_size`-byte times.
  size_t DataSize(size_t time_size) const {
    return timecnt * time_size + timecnt + typecnt * 6 + charcnt + leapcnt * (time_size + 4) +
           isstdcnt + isutcnt;
  }
};

constexpr size_t kTzifHeaderSize = 44;

std::optional<TzifCounts> ReadTzifHeader(std::string_view b, size_t at) {
  if (b.size() < at + kTzifHeaderSize || b.substr(at, 4) != "TZif") {
    return std::nullopt;
  }
  TzifCounts c;
  c.version = b[at + 4];
  c.isutcnt = Be32(b, at + 20);
  c.isstdcnt = Be32(b, at + 24);
  c.leapcnt = Be32(b, at + 28);
  c.timecnt = Be32(b, at + 32);
  c.typecnt = Be32(b, at + 36);
  c.charcnt = Be32(b, at + 40);
  // Bounds that keep DataSize() from overflowing and reject nonsense early.
  if (c.timecnt > (1u << 20) || c.typecnt > 256 || c.charcnt > (1u << 16) ||
      c.leapcnt > (1u << 16) || c.isstdcnt > 256 || c.isutcnt > 256) {
    return std::nullopt;
  }
  return c;
}

bool SameOffset(const PosixTz::Offset& a, const PosixTz::Offset& b) {
  return a.utc_offset_seconds == b.utc_offset_seconds && a.is_dst == b.is_dst &&
         a.abbreviation == b.abbreviation;
}

}  // namespace

std::string CivilTime::ToString() const {
  char buf[96];
  int32_t off = utc_offset_seconds;
  char sign = off < 0 ? '-' : '+';
  off = off < 0 ? -off : off;
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d %s (%c%02d%02d)", year, month, day,
                hour, minute, second, abbreviation.c_str(), sign, off / 3600, (off / 60) % 60);
  return buf;
}

// PosixTz

Result<PosixTz> PosixTz::Parse(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalid,
                "TZ string \"" + std::string(text) + "\" is not valid (" + why + ")");
  };
  TzScanner s(text);
  PosixTz tz;
  auto std_name = s.Name();
  if (!std_name) {
    return bad("want a standard-time name of 3+ letters or <...>");
  }
  auto std_off = s.Time();
  if (!std_off) {
    return bad("want an offset after " + *std_name);
  }
  // POSIX offsets count hours west of UTC.
  tz.std_ = Offset{-*std_off, false, *std_name};
  if (s.AtEnd()) {
    return tz;
  }
  auto dst_name = s.Name();
  if (!dst_name) {
    return bad("want a daylight-time name after the standard offset");
  }
  Offset dst{tz.std_.utc_offset_seconds + 3600, true, *dst_name};
  if (s.StartsOffset()) {
    auto off = s.Time();
    if (!off) {
      return bad("want a daylight-time offset after " + *dst_name);
    }
    dst.utc_offset_seconds = -*off;
  }
  tz.dst_ = dst;
  if (s.AtEnd()) {
    // No rules: POSIX leaves them to the implementation; glibc uses the US ones.
    tz.start_ = Rule{Rule::Kind::kMonthWeekDay, 0, 3, 2, 7200};
    tz.end_ = Rule{Rule::Kind::kMonthWeekDay, 0, 11, 1, 7200};
    return tz;
  }
  auto rule = [&](Rule& r) -> bool {
    if (!s.Consume(',')) {
      return false;
    }
    if (s.Consume('M')) {
      auto m = s.Number(12);
      if (!m || *m < 1 || !s.Consume('.')) {
        return false;
      }
      auto w = s.Number(5);
      if (!w || *w < 1 || !s.Consume('.')) {
        return false;
      }
      auto d = s.Number(6);
      if (!d) {
        return false;
      }
      r = Rule{Rule::Kind::kMonthWeekDay, *d, *m, *w, 7200};
    } else if (s.Consume('J')) {
      auto n = s.Number(365);
      if (!n || *n < 1) {
        return false;
      }
      r = Rule{Rule::Kind::kJulian1, *n, 0, 0, 7200};
    } else {
      auto n = s.Number(365);
      if (!n) {
        return false;
      }
      r = Rule{Rule::Kind::kJulian0, *n, 0, 0, 7200};
    }
    if (s.Consume('/')) {
      auto t = s.Time();
      if (!t) {
        return false;
      }
      r.time_seconds = *t;
    }
    return true;
  };
  if (!rule(tz.start_) || !rule(tz.end_) || !s.AtEnd()) {
    return bad("want ,start[/time],end[/time] rules as Mm.w.d, Jn or n");
  }
  return tz;
}

int64_t PosixTz::RuleInstant(const Rule& rule, int year, int32_t offset) {
  int64_t day = 0;
  switch (rule.kind) {
    case Rule::Kind::kJulian1:
      // 1..365, February 29 never counted.
      day = DaysFromCivil(year, 1, 1) + rule.day - 1 + (IsLeap(year) && rule.day >= 60 ? 1 : 0);
      break;
    case Rule::Kind::kJulian0:
      day = DaysFromCivil(year, 1, 1) + rule.day;
      break;
    case Rule::Kind::kMonthWeekDay: {
      const int64_t first = DaysFromCivil(year, rule.month, 1);
      const int64_t next_month =
          rule.month == 12 ? DaysFromCivil(year + 1, 1, 1) : DaysFromCivil(year, rule.month + 1, 1);
      day = first + (rule.day - WeekdayFromDays(first) + 7) % 7 + (rule.week - 1) * 7;
      while (day >= next_month) {  // week 5: the last such weekday
        day -= 7;
      }
      break;
    }
  }
  return day * kSecondsPerDay + rule.time_seconds - offset;
}

std::pair<int64_t, int64_t> PosixTz::Transitions(int year) const {
  // The start rule is in standard time, the end rule in daylight time.
  return {RuleInstant(start_, year, std_.utc_offset_seconds),
          RuleInstant(end_, year, dst_->utc_offset_seconds)};
}

PosixTz::Offset PosixTz::At(int64_t unix_seconds) const {
  if (!dst_) {
    return std_;
  }
  const int year = static_cast<int>(
      CivilFromDays(FloorDiv(unix_seconds + std_.utc_offset_seconds, kSecondsPerDay)).year);
  // The latest rule instant at or before `unix_seconds` decides; at equal
  // instants (DST all year: "0/0,J365/25") the start wins.
  std::optional<int64_t> best_at;
  bool best_dst = false;
  for (int y = year - 1; y <= year + 1; ++y) {
    auto [start, end] = Transitions(y);
    for (auto [at, dst] : {std::pair{end, false}, std::pair{start, true}}) {
      if (at <= unix_seconds && (!best_at || at > *best_at || (at == *best_at && dst))) {
        best_at = at;
        best_dst = dst;
      }
    }
  }
  return best_dst ? *dst_ : std_;
}

std::optional<int64_t> PosixTz::NextChange(int64_t unix_seconds) const {
  if (!dst_) {
    return std::nullopt;
  }
  const Offset now = At(unix_seconds);
  const int year = static_cast<int>(
      CivilFromDays(FloorDiv(unix_seconds + std_.utc_offset_seconds, kSecondsPerDay)).year);
  std::vector<int64_t> instants;
  for (int y = year - 1; y <= year + 2; ++y) {
    auto [start, end] = Transitions(y);
    instants.push_back(start);
    instants.push_back(end);
  }
  std::sort(instants.begin(), instants.end());
  for (int64_t at : instants) {
    if (at > unix_seconds && !SameOffset(At(at), now)) {
      return at;
    }
  }
  return std::nullopt;  // daylight time all year
}

// TimeZone

Result<TimeZone> TimeZone::Parse(std::string name, std::string_view bytes) {
  auto bad = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalid,
                "time zone \"" + name + "\": not a valid TZif file (" + why + ")");
  };
  auto v1 = ReadTzifHeader(bytes, 0);
  if (!v1) {
    return bad("no TZif header");
  }
  size_t at = kTzifHeaderSize;
  size_t time_size = 4;
  TzifCounts c = *v1;
  if (v1->version >= '2') {
    // Skip the 32-bit block; the 64-bit one follows with its own header.
    at += v1->DataSize(4);
    auto v2 = ReadTzifHeader(bytes, at);
    if (!v2) {
      return bad("version " + std::string(1, v1->version) + " file without its 64-bit header");
    }
    c = *v2;
    at += kTzifHeaderSize;
    time_size = 8;
  }
  if (bytes.size() < at + c.DataSize(time_size)) {
    return bad("truncated data block");
  }
  if (c.typecnt == 0) {
    return bad("no local time types");
  }
  if (c.leapcnt != 0) {
    // "right/" zones count leap seconds in their timestamps; system_clock
    // (Unix time) does not, so every answer would be off by ~27 s.
    return Fail(ErrorCode::kInvalid, "time zone \"" + name +
                                         "\" has leap-second records (a \"right/\" zone; want "
                                         "the POSIX-time zone of the same name)");
  }
  TimeZone tz;
  tz.name_ = std::move(name);
  for (size_t i = 0; i < c.timecnt; ++i) {
    int64_t t =
        time_size == 8 ? Be64(bytes, at + i * 8) : static_cast<int32_t>(Be32(bytes, at + i * 4));
    if (!tz.transitions_.empty() && t <= tz.transitions_.back()) {
      return bad("transition times not ascending");
    }
    tz.transitions_.push_back(t);
  }
  at += c.timecnt * time_size;
  for (size_t i = 0; i < c.timecnt; ++i) {
    uint8_t type = static_cast<uint8_t>(bytes[at + i]);
    if (type >= c.typecnt) {
      return bad("transition type index out of range");
    }
    tz.transition_types_.push_back(type);
  }
  at += c.timecnt;
  const size_t types_at = at;
  const size_t chars_at = types_at + c.typecnt * 6;
  std::string_view chars = bytes.substr(chars_at, c.charcnt);
  for (size_t i = 0; i < c.typecnt; ++i) {
    const size_t p = types_at + i * 6;
    Type type;
    type.utc_offset_seconds = static_cast<int32_t>(Be32(bytes, p));
    type.is_dst = bytes[p + 4] != 0;
    const size_t desig = static_cast<uint8_t>(bytes[p + 5]);
    if (desig >= chars.size()) {
      return bad("abbreviation index out of range");
    }
    size_t nul = chars.find('\0', desig);
    type.abbreviation = std::string(
        chars.substr(desig, nul == std::string_view::npos ? std::string_view::npos : nul - desig));
    tz.types_.push_back(std::move(type));
  }
  at += c.DataSize(time_size) - c.timecnt * time_size - c.timecnt;
  if (time_size == 8 && at < bytes.size()) {
    // Footer: "\n<TZ string>\n"; an empty string means "no rule".
    if (bytes[at] != '\n') {
      return bad("footer does not start with a newline");
    }
    size_t nl = bytes.find('\n', at + 1);
    if (nl == std::string_view::npos) {
      return bad("footer does not end with a newline");
    }
    std::string_view footer = bytes.substr(at + 1, nl - at - 1);
    if (!footer.empty()) {
      auto posix = PosixTz::Parse(footer);
      if (!posix) {
        return bad("footer: " + posix.error().message);
      }
      tz.footer_ = std::move(*posix);
    }
  }
  return tz;
}

Result<TimeZone> TimeZone::Load(const std::string& name, const std::string& zoneinfo_dir) {
  namespace fs = std::filesystem;
  bool safe = !name.empty() && name.front() != '/';
  for (const auto& part : fs::path(name)) {
    safe = safe && part != "." && part != "..";
  }
  if (!safe) {
    return Fail(ErrorCode::kInvalid, "time zone \"" + name +
                                         "\" is not a zone name (want an IANA name such as "
                                         "Europe/Berlin or UTC)");
  }
  const fs::path path = fs::path(zoneinfo_dir) / name;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return Fail(ErrorCode::kNotFound, "time zone \"" + name + "\" not found (no file " +
                                          path.string() +
                                          "; want an IANA name such as Europe/Berlin or UTC, "
                                          "with tzdata installed)");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    return Fail(ErrorCode::kInternal, "time zone \"" + name + "\": cannot read " + path.string());
  }
  return Parse(name, bytes.str());
}

PosixTz::Offset TimeZone::OffsetAt(int64_t unix_seconds) const {
  auto from_type = [&](size_t i) {
    const Type& t = types_[i];
    return PosixTz::Offset{t.utc_offset_seconds, t.is_dst, t.abbreviation};
  };
  if (transitions_.empty()) {
    return footer_ ? footer_->At(unix_seconds) : from_type(0);
  }
  if (unix_seconds < transitions_.front()) {
    return from_type(0);  // RFC 8536 3.2: before the first transition, type 0
  }
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_seconds);
  const size_t i = static_cast<size_t>(it - transitions_.begin()) - 1;
  if (i + 1 == transitions_.size() && unix_seconds > transitions_.back() && footer_) {
    return footer_->At(unix_seconds);
  }
  return from_type(transition_types_[i]);
}

CivilTime TimeZone::ToLocal(TimePoint t) const {
  const int64_t s = ToUnixSeconds(t);
  PosixTz::Offset off = OffsetAt(s);
  const int64_t local = s + off.utc_offset_seconds;
  const int64_t days = FloorDiv(local, kSecondsPerDay);
  const int64_t sod = local - days * kSecondsPerDay;
  const Date d = CivilFromDays(days);
  CivilTime c;
  c.year = static_cast<int>(d.year);
  c.month = d.month;
  c.day = d.day;
  c.hour = static_cast<int>(sod / 3600);
  c.minute = static_cast<int>((sod / 60) % 60);
  c.second = static_cast<int>(sod % 60);
  c.weekday = WeekdayFromDays(days);
  c.utc_offset_seconds = off.utc_offset_seconds;
  c.is_dst = off.is_dst;
  c.abbreviation = std::move(off.abbreviation);
  return c;
}

std::optional<TimePoint> TimeZone::NextChange(TimePoint t) const {
  const int64_t s = ToUnixSeconds(t);
  const PosixTz::Offset now = OffsetAt(s);
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), s);
  for (; it != transitions_.end(); ++it) {
    if (!SameOffset(OffsetAt(*it), now)) {
      return FromUnixSeconds(*it);
    }
  }
  if (!footer_) {
    return std::nullopt;
  }
  int64_t from = transitions_.empty() ? s : std::max(s, transitions_.back());
  // The footer may agree with the last transition's type for a while.
  for (int i = 0; i < 4; ++i) {
    auto next = footer_->NextChange(from);
    if (!next) {
      return std::nullopt;
    }
    if (!SameOffset(OffsetAt(*next), now)) {
      return FromUnixSeconds(*next);
    }
    from = *next;
  }
  return std::nullopt;
}

Result<TimeZonePtr> LoadTimeZone(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, TimeZonePtr> cache;  // guarded by mu
  {
    std::lock_guard lock(mu);
    if (auto it = cache.find(name); it != cache.end()) {
      return it->second;
    }
  }
  // Read outside the lock: a slow disk does not block other zones' lookups.
  auto zone = TimeZone::Load(name);
  if (!zone) {
    return std::unexpected(zone.error());
  }
  std::lock_guard lock(mu);
  auto [it, inserted] = cache.emplace(name, std::make_shared<const TimeZone>(std::move(*zone)));
  return it->second;
}

// Maintenance windows

bool IsOpen(const MaintenanceWindow& window, const TimeZone& zone, TimePoint t) {
  const CivilTime local = zone.ToLocal(t);
  const int minute = local.hour * 60 + local.minute;
  auto listed = [&](int day) {
    return std::find(window.days.begin(), window.days.end(), day) != window.days.end();
  };
  if (!window.SpansMidnight()) {
    return listed(local.weekday) && minute >= window.start_minute && minute < window.end_minute;
  }
  return (listed(local.weekday) && minute >= window.start_minute) ||
         (listed((local.weekday + 6) % 7) && minute < window.end_minute);
}

Result<TimePoint> NextOpen(const MaintenanceWindow& window, const TimeZone& zone, TimePoint t) {
  if (window.days.empty()) {
    return Fail(ErrorCode::kInvalid, "maintenance window has no days, so it never opens");
  }
  if (IsOpen(window, zone, t)) {
    return t;
  }
  // The window can only open where the wall clock reaches the start time or
  // the UTC offset changes (a start inside a skipped hour opens at the
  // change), so step from one such instant to the next. Within 8 days the
  // start time comes round on every weekday; the offset changes in between
  // at most a few times.
  int64_t cursor = ToUnixSeconds(t);
  for (int step = 0; step < 64; ++step) {
    const CivilTime local = zone.ToLocal(FromUnixSeconds(cursor));
    const int64_t second_of_day = local.hour * 3600 + local.minute * 60 + local.second;
    int64_t delta = int64_t{window.start_minute} * 60 - second_of_day;
    if (delta <= 0) {
      delta += kSecondsPerDay;
    }
    int64_t candidate = cursor + delta;
    if (auto change = zone.NextChange(FromUnixSeconds(cursor))) {
      candidate = std::min(candidate, ToUnixSeconds(*change));
    }
    if (IsOpen(window, zone, FromUnixSeconds(candidate))) {
      return FromUnixSeconds(candidate);
    }
    cursor = candidate;
  }
  return Fail(ErrorCode::kInternal, "maintenance window in " + zone.name() +
                                        " does not open within 64 steps of " +
                                        zone.ToLocal(t).ToString());
}

Result<bool> IsOpen(const MaintenanceWindow& window, TimePoint t) {
  auto zone = LoadTimeZone(window.time_zone);
  if (!zone) {
    return std::unexpected(zone.error().Wrap("maintenance window"));
  }
  return IsOpen(window, **zone, t);
}

Result<TimePoint> NextOpen(const MaintenanceWindow& window, TimePoint t) {
  auto zone = LoadTimeZone(window.time_zone);
  if (!zone) {
    return std::unexpected(zone.error().Wrap("maintenance window"));
  }
  return NextOpen(window, **zone, t);
}

}  // namespace ironboot::reconcilers
