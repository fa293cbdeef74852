#include "bootserver/config_access.h"

#include <sys/random.h>

#include <algorithm>
#include <charconv>

#include "common/log.h"

namespace ironboot::bootserver {

std::string_view ResultLabel(ConfigDecision d) {
  switch (d) {
    case ConfigDecision::kServed:
      return "served";
    case ConfigDecision::kDeniedAddress:
      return "denied_address";
    case ConfigDecision::kDeniedToken:
      return "denied_token";
    case ConfigDecision::kUnknownMac:
      return "unknown_mac";
    case ConfigDecision::kRateLimited:
      return "rate_limited";
    case ConfigDecision::kDeniedTls:
      return "denied_tls";
  }
  return "unknown";
}

Result<double> ParseConfigRate(std::string_view flag, std::string_view text) {
  auto bad = [&] {
    return Fail(ErrorCode::kInvalid, "-" + std::string(flag) + " \"" + std::string(text) +
                                         "\": want N/s, N/m or N/h (e.g. 10/m), or 0 for no limit");
  };
  if (text == "0") {
    return 0.0;
  }
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return bad();
  }
  unsigned n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + slash, n);
  if (ec != std::errc() || ptr != text.data() + slash) {
    return bad();
  }
  std::string_view unit = text.substr(slash + 1);
  double per = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (per == 0) {
    return bad();
  }
  return n / per;
}

bool IsLoopbackAddress(std::string_view address) {
  std::string canonical = CanonicalAddress(address);
  return canonical.starts_with("127.") || canonical == "::1";
}

std::string CanonicalAddress(std::string_view address) {
  address = address.substr(0, address.find('/'));
  if (address.starts_with("::ffff:") && address.find('.') != std::string_view::npos) {
    address.remove_prefix(7);
  }
  return std::string(address);
}

std::string AddConfigToken(std::string_view script, std::string_view token) {
  constexpr std::string_view kArg = "talos.config=";
  size_t at = script.find(kArg);
  if (at == std::string_view::npos) {
    return std::string(script);
  }
  size_t end = script.find_first_of(" \t\r\n", at);
  if (end == std::string_view::npos) {
    end = script.size();
  }
  std::string_view url = script.substr(at, end - at);
  std::string out(script.substr(0, end));
  out += url.find('?') == std::string_view::npos ? "?token=" : "&token=";
  out += token;
  out += script.substr(end);
  return out;
}

std::string RewriteConfigUrl(std::string_view script, std::string_view base) {
  constexpr std::string_view kArg = "talos.config=";
  size_t at = script.find(kArg);
  if (at == std::string_view::npos) {
    return std::string(script);
  }
  size_t url_start = at + kArg.size();
  size_t end = script.find_first_of(" \t\r\n", url_start);
  if (end == std::string_view::npos) {
    end = script.size();
  }
  std::string_view url = script.substr(url_start, end - url_start);
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return std::string(script);
  }
  std::string_view path = url.substr(0, url.find('?'));
  size_t path_start = path.find('/', scheme + 3);
  if (path_start == std::string_view::npos || !path.ends_with("/config")) {
    return std::string(script);
  }
  size_t config_at = path.size() - std::string_view("/config").size();
  std::string out(script.substr(0, url_start));
  out += base;
  out += script.substr(url_start + config_at);
  return out;
}

Result<std::string> ParseConfigUrlBase(std::string_view flag, std::string_view text) {
  std::string base(text);
  while (base.ends_with('/')) {
    base.pop_back();
  }
  size_t scheme = base.find("://");
  std::string_view host;
  if (scheme != std::string::npos) {
    std::string_view rest = std::string_view(base).substr(scheme + 3);
    host = rest.substr(0, rest.find('/'));
  }
  bool ok = (base.starts_with("http://") || base.starts_with("https://")) && !host.empty() &&
            !host.starts_with(':') &&
            base.find_first_of("?# \t\r\n") == std::string::npos;
  if (!ok) {
    return Fail(ErrorCode::kInvalid,
                "-" + std::string(flag) + " \"" + std::string(text) +
                    "\": want the base URL machines fetch /config from, http(s)://host[:port] "
                    "(e.g. https://boot.lan:8443), without query or fragment");
  }
  return base;
}

namespace {

std::string RandomToken() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// Compares without an early exit, so timing does not reveal a token's prefix.
bool SameToken(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

ConfigAccess::ConfigAccess(ConfigAccessOptions options, ClockPtr clock)
    : options_(options), clock_(std::move(clock)) {}

ConfigAccess::Grant* ConfigAccess::LiveGrant(const std::string& mac, TimePoint now) {
  auto it = grants_.find(mac);
  if (it == grants_.end()) {
    return nullptr;
  }
  if (now - it->second.renewed > options_.window) {
    grants_.erase(it);
    return nullptr;
  }
  std::erase_if(it->second.tokens,
                [&](const Token& t) { return now - t.issued > options_.window; });
  return &it->second;
}

IpxeGrant ConfigAccess::RecordIpxeFetch(const std::string& mac, const std::string& static_address,
                                        const std::string& client) {
  TimePoint now = clock_->Monotonic();
  std::string canonical = CanonicalAddress(client);
  IpxeGrant out;
  if (!static_address.empty() && CanonicalAddress(static_address) != canonical) {
    out.result = IpxeGrant::Result::kStaticAddress;
    out.other_address = CanonicalAddress(static_address);
    return out;
  }
  std::string token = options_.tokens ? RandomToken() : std::string();
  std::lock_guard lock(mu_);
  Grant* grant = LiveGrant(mac, now);
  if (grant != nullptr && grant->holder != canonical) {
    out.result = IpxeGrant::Result::kHeldByAnother;
    out.other_address = grant->holder;
    return out;
  }
  if (grant == nullptr) {
    grant = &grants_[mac];
    grant->holder = canonical;
  }
  grant->renewed = now;
  if (options_.tokens) {
    grant->tokens.push_back(Token{token, now});
    if (grant->tokens.size() > kMaxTokensPerGrant) {
      grant->tokens.erase(grant->tokens.begin());
    }
    out.token = std::move(token);
  }
  return out;
}

bool ConfigAccess::TakeRate(const std::string& client, TimePoint now) {
  if (options_.rate_per_second <= 0) {
    return true;
  }
  auto found = bucket_index_.find(client);
  BucketList::iterator bucket;
  if (found != bucket_index_.end()) {
    bucket = found->second;
    double elapsed = std::chrono::duration<double>(now - bucket->updated).count();
    bucket->tokens = std::min(options_.burst, bucket->tokens + elapsed * options_.rate_per_second);
    buckets_.splice(buckets_.end(), buckets_, bucket);  // now the most recently updated
  } else {
    if (bucket_index_.size() >= std::max<size_t>(options_.max_rate_clients, 1)) {
      // Forget the address updated least recently: it has had the longest to
      // refill, so it most likely loses nothing. When it has not refilled the
      // limit is weaker than configured (more addresses than the table holds
      // are asking at once): say so, at most once a minute.
      const Bucket& oldest = buckets_.front();
      double elapsed = std::chrono::duration<double>(now - oldest.updated).count();
      if (oldest.tokens + elapsed * options_.rate_per_second < options_.burst) {
        ++evicted_unrefilled_;
        if (!last_eviction_warning_ || now - *last_eviction_warning_ >= std::chrono::minutes(1)) {
          Logger("config")->warn(
              "config rate limit: more than {} client addresses within a refill; {} forgotten "
              "before their bucket refilled (they may exceed -config-rate)",
              options_.max_rate_clients, evicted_unrefilled_);
          last_eviction_warning_ = now;
          evicted_unrefilled_ = 0;
        }
      }
      bucket_index_.erase(oldest.client);
      buckets_.pop_front();
    }
    bucket = buckets_.insert(buckets_.end(), Bucket{client, options_.burst, now});
    bucket_index_.emplace(client, bucket);
  }
  bucket->updated = now;
  if (bucket->tokens < 1) {
    return false;
  }
  bucket->tokens -= 1;
  return true;
}

ConfigDecision ConfigAccess::Decide(const std::string& mac, bool known,
                                    const std::string& static_address, const std::string& client,
                                    std::string_view token) {
  TimePoint now = clock_->Monotonic();
  std::string canonical = CanonicalAddress(client);
  std::lock_guard lock(mu_);
  if (!TakeRate(canonical, now)) {
    return ConfigDecision::kRateLimited;
  }
  if (!known) {
    return ConfigDecision::kUnknownMac;
  }
  const Grant* grant = LiveGrant(mac, now);
  bool holds_grant = grant != nullptr && grant->holder == canonical;
  bool address_ok = static_address.empty() ? holds_grant
                                           : CanonicalAddress(static_address) == canonical;
  if (!address_ok) {
    return ConfigDecision::kDeniedAddress;
  }
  if (options_.tokens) {
    // Only the grant's holder has tokens; with a static address that is the
    // static address itself (RecordIpxeFetch grants nobody else).
    bool match = holds_grant && !token.empty() &&
                 std::any_of(grant->tokens.begin(), grant->tokens.end(),
                             [&](const Token& t) { return SameToken(t.value, token); });
    if (!match) {
      return ConfigDecision::kDeniedToken;
    }
  }
  return ConfigDecision::kServed;
}

}  // namespace ironboot::bootserver
