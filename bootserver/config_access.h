#pragma once
// bootserver/: who may fetch a machine config at /config. A machine config
// carries the cluster's secrets, so it is served only to its machine:
//  - a machine with a static address (from the plan) is served at that
//    address only; an iPXE fetch from anywhere else grants nothing;
//  - a machine without one is served to the holder of its grant: the first
//    address that fetched its iPXE script while no other grant was live. The
//    grant lives for the window after the holder's latest iPXE fetch; nobody
//    else can take or displace it meanwhile. A served config does not end it,
//    so a node that retries its config download (Talos does, on any error)
//    still gets it;
//  - with tokens on, the iPXE script of the address that may fetch the config
//    (and only that one) carries a token in its talos.config= URL, required
//    on /config; it is valid for that address until the window passes.
// Requests are rate-limited per client address. A policy with a Clock: the
// handler asks, this decides.

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/error.h"

namespace ironboot::bootserver {

struct ConfigAccessOptions {
  // How long a grant lasts after its holder's latest iPXE fetch, and how long
  // a token stays valid after it was issued.
  std::chrono::nanoseconds window = std::chrono::minutes(10);
  // Require a token (issued with the iPXE script) on /config.
  bool tokens = false;
  // Per client address token bucket: `rate_per_second` refill, `burst`
  // capacity. rate_per_second <= 0 disables the limit.
  double rate_per_second = 10.0 / 60.0;
  double burst = 5;
  // Client addresses the rate limit remembers. When full, the address
  // updated least recently is forgotten (it starts again with a full bucket).
  size_t max_rate_clients = 65536;
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

// Whether `address` (any form CanonicalAddress accepts) is a loopback
// address: 127.0.0.0/8 or ::1.
bool IsLoopbackAddress(std::string_view address);

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

// What an iPXE fetch earned its client.
struct IpxeGrant {
  enum class Result {
    kGranted,         // the client may fetch the config now (a new or renewed grant)
    kStaticAddress,   // the machine has a static address and the client is not at it
    kHeldByAnother,   // another address holds the machine's live grant
  };
  Result result = Result::kGranted;
  // kGranted with tokens on: the token for the script's talos.config= URL;
  // "" otherwise.
  std::string token;
  // kStaticAddress: the machine's address; kHeldByAnother: the holder's.
  std::string other_address;
};

// Thread-safe. Memory: one grant per MAC passed to RecordIpxeFetch (callers
// pass only known machines), at most kMaxTokensPerGrant tokens each, and at
// most options.max_rate_clients rate buckets.
class ConfigAccess {
 public:
  ConfigAccess(ConfigAccessOptions options, ClockPtr clock);

  // Records that `client` fetched the iPXE script of the machine with `mac`
  // (normalised), whose static address from the plan is `static_address`
  // ("" when it has none), and decides whether that grants the client the
  // machine's config (see the file comment). Call only for MACs of known
  // machines (keeps memory bounded).
  IpxeGrant RecordIpxeFetch(const std::string& mac, const std::string& static_address,
                            const std::string& client);

  // Decides a /config request for `mac` (normalised) from `client`. `known`:
  // the store has a config for `mac`; `static_address`: the machine's address
  // from the plan ("" when it has none); `token`: the request's token= value.
  // A served decision consumes nothing: the same request succeeds again while
  // the grant and token live.
  ConfigDecision Decide(const std::string& mac, bool known, const std::string& static_address,
                        const std::string& client, std::string_view token);

  const ConfigAccessOptions& options() const { return options_; }

  static constexpr size_t kMaxTokensPerGrant = 16;  // the holder's newest iPXE fetches

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Token {
    std::string value;
    TimePoint issued;
  };
  struct Grant {
    std::string holder;          // canonical client address
    TimePoint renewed;           // the holder's latest iPXE fetch
    std::vector<Token> tokens;   // oldest first
  };
  struct Bucket {
    std::string client;
    double tokens;
    TimePoint updated;
  };
  using BucketList = std::list<Bucket>;

  // The live grant of `mac`, or nullptr; drops an expired one and expired
  // tokens. Requires mu_.
  Grant* LiveGrant(const std::string& mac, TimePoint now);
  bool TakeRate(const std::string& client, TimePoint now);  // requires mu_

  const ConfigAccessOptions options_;
  const ClockPtr clock_;
  std::mutex mu_;
  std::map<std::string, Grant> grants_;  // by MAC, guarded by mu_
  // Rate buckets, least recently updated first, and an index by client
  // address into that list: lookup O(log n), eviction O(1). Guarded by mu_.
  BucketList buckets_;
  std::map<std::string, BucketList::iterator, std::less<>> bucket_index_;
  std::optional<TimePoint> last_eviction_warning_;  // guarded by mu_
  uint64_t evicted_unrefilled_ = 0;    // since that warning, guarded by mu_
};

}  // namespace ironboot::bootserver
