#pragma once
// bootserver/: who may fetch a machine config at /config. A machine config
// carries the cluster's secrets, so it is served only to its machine: the
// request must come from the machine's static address (from the plan) or from
// the address that fetched that machine's iPXE script within a window.
// Optionally a one-time token per boot, placed in the talos.config= URL of the
// iPXE script, is required as well. Requests are rate-limited per client
// address. A pure policy with a Clock: the handler asks, this decides.

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/error.h"

namespace ironboot::bootserver {

struct ConfigAccessOptions {
  // How long an iPXE fetch lets its client address fetch the config, and how
  // long a token stays valid.
  std::chrono::nanoseconds window = std::chrono::minutes(10);
  // Require a one-time token (issued with the iPXE script) on /config.
  bool tokens = false;
  // Per client address token bucket: `rate_per_second` refill, `burst`
  // capacity. rate_per_second <= 0 disables the limit.
  double rate_per_second = 10.0 / 60.0;
  double burst = 5;
};

// kDeniedTls: a plain-HTTP request while serve -config-tls-only is set (the
// handler decides it; Decide never returns it).
enum class ConfigDecision {
  kServed,
  kDeniedAddress,
  kDeniedToken,
  kUnknownMac,
  kRateLimited,
  kDeniedTls
};

// The ironboot_config_fetch_total{result} label: served, denied_address,
// denied_token, unknown_mac, rate_limited, denied_tls.
std::string_view ResultLabel(ConfigDecision d);

// Parses a rate "N/s", "N/m" or "N/h" (e.g. "10/m") into events per second;
// "0" disables. `flag` names the flag in the error.
Result<double> ParseConfigRate(std::string_view flag, std::string_view text);

// `client` in the form the plan writes addresses: an IPv4-mapped IPv6 address
// ("::ffff:10.0.4.101") becomes "10.0.4.101"; a "/prefix" is dropped.
std::string CanonicalAddress(std::string_view address);

// `script` with "&token=<token>" appended to the URL of its talos.config=
// kernel argument ("?token=" when the URL has no query). Unchanged when the
// script has no talos.config= argument.
std::string AddConfigToken(std::string_view script, std::string_view token);

// `script` with the part of its talos.config= URL before "/config" replaced
// by `base` (e.g. "https://boot.lan:8443"), so machines fetch their config
// from another listener: "talos.config=http://10.0.0.2:8080/config?mac=x"
// becomes "talos.config=https://boot.lan:8443/config?mac=x". Unchanged when
// the script has no talos.config= argument or its URL's path does not end in
// "/config" (e.g. a Matchbox profile pointing at /assets/...).
std::string RewriteConfigUrl(std::string_view script, std::string_view base);

// Checks a -config-url value: http(s)://host[:port][/prefix], no query,
// fragment or spaces. Returns it without a trailing "/". `flag` names the flag.
Result<std::string> ParseConfigUrlBase(std::string_view flag, std::string_view text);

// Thread-safe.
class ConfigAccess {
 public:
  ConfigAccess(ConfigAccessOptions options, ClockPtr clock);

  // Records that `client` fetched the iPXE script of the machine with `mac`
  // (normalised). Returns the token to put in that script when tokens are on,
  // "" otherwise. Call only for MACs of known machines (keeps memory bounded).
  std::string RecordIpxeFetch(const std::string& mac, const std::string& client);

  // Decides a /config request for `mac` (normalised) from `client`. `known`:
  // the store has a config for `mac`; `static_address`: the machine's address
  // from the plan ("" when it has none); `token`: the request's token= value.
  // A served decision consumes the token.
  ConfigDecision Decide(const std::string& mac, bool known, const std::string& static_address,
                        const std::string& client, std::string_view token);

  const ConfigAccessOptions& options() const { return options_; }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Fetch {
    std::string client;
    TimePoint at;
  };
  struct Token {
    std::string value;
    TimePoint issued;
  };
  struct Bucket {
    double tokens;
    TimePoint updated;
  };
  static constexpr size_t kMaxPerMac = 16;      // fetches / tokens remembered per MAC
  static constexpr size_t kMaxBuckets = 65536;  // client addresses tracked by the rate limit

  bool TakeRate(const std::string& client, TimePoint now);  // requires mu_
  void Prune(const std::string& mac, TimePoint now);        // requires mu_

  const ConfigAccessOptions options_;
  const ClockPtr clock_;
  std::mutex mu_;
  std::map<std::string, std::vector<Fetch>> fetches_;  // by MAC, guarded by mu_
  std::map<std::string, std::vector<Token>> tokens_;   // by MAC, guarded by mu_
  std::map<std::string, Bucket> buckets_;              // by client, guarded by mu_
};

}  // namespace ironboot::bootserver
