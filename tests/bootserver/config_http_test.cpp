// /config access control end to end: the real HttpServer on 127.0.0.1 and a
// raw client that binds a chosen loopback source address (127.0.0.2, .3, ...)
// so the server sees different client addresses. Checks status, body and the
// ironboot_config_fetch_total{result} counter of every path.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "bootserver/config_access.h"
#include "bootserver/handler.h"
#include "bootserver/http_server.h"
#include "bootserver/metrics.h"
#include "bootserver/store.h"
#include "bootserver/store_holder.h"

namespace ironboot::bootserver {
namespace {

using namespace std::chrono_literals;

// cp1 has a static address in the plan; w1 has none (DHCP).
constexpr char kMac[] = "52:54:00:12:34:56";
constexpr char kMacQuery[] = "52-54-00-12-34-56";
constexpr char kConfig[] = "machine:\n  token: very-secret-join-token\n";
constexpr char kStaticAddress[] = "127.0.0.50";
constexpr char kDhcpMac[] = "52:54:00:12:34:57";
constexpr char kDhcpMacQuery[] = "52-54-00-12-34-57";
constexpr char kDhcpConfig[] = "machine:\n  token: w1-join-token\n";
constexpr char kStranger[] = "127.0.0.77";

struct Response {
  int status = 0;
  std::string body;
};

// GET `target` from 127.0.0.1:`port`, the connection bound to `source` first.
Response GetFrom(const std::string& source, int port, const std::string& target) {
  Response out;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return out;
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  remote.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    ADD_FAILURE() << "cannot connect from " << source << ": " << std::strerror(errno);
    ::close(fd);
    return out;
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string raw;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      continue;
    }
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (raw.size() > 12 && raw.starts_with("HTTP/1.1 ")) {
    out.status = std::stoi(raw.substr(9, 3));
  }
  if (auto at = raw.find("\r\n\r\n"); at != std::string::npos) {
    out.body = raw.substr(at + 4);
  }
  return out;
}

class ConfigHttpTest : public ::testing::Test {
 protected:
  void Start(ConfigAccessOptions options) {
    StoreContent content;
    Group g;
    g.id = "cp1";
    g.profile = "cp1";
    g.selector = {{"mac", kMac}};
    content.groups.push_back(g);
    g.id = "w1";
    g.selector = {{"mac", kDhcpMac}};
    content.groups.push_back(g);
    Profile p;
    p.id = "cp1";
    p.kernel = "/assets/vmlinuz";
    p.args = {"talos.platform=metal", "talos.config=http://127.0.0.1/config?mac=${mac:hexhyp}",
              "console=ttyS0"};
    content.profiles.push_back(p);
    content.machine_configs[kMac] = kConfig;
    content.machine_addresses[kMac] = kStaticAddress;
    content.machine_configs[kDhcpMac] = kDhcpConfig;
    content.revision = "test";
    holder_.Publish(Store::Build(std::move(content)));
    access_ = std::make_unique<ConfigAccess>(options, clock_);
    BootHandler::Options handler_options;
    handler_options.config_access = access_.get();
    handler_ = std::make_unique<BootHandler>(handler_options, &holder_, &metrics_);
    ServerOptions server_options;
    server_options.address = "127.0.0.1:0";
    server_ = std::make_unique<HttpServer>(server_options, handler_.get());
    auto started = server_->Start();
    ASSERT_TRUE(started.has_value()) << started.error().message;
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(1s);
    }
  }
  static ConfigAccessOptions NoRate() {
    ConfigAccessOptions o;
    o.rate_per_second = 0;
    return o;
  }
  Response Get(const std::string& source, const std::string& target) {
    return GetFrom(source, server_->port(), target);
  }
  Response Config(const std::string& source, const std::string& extra = "") {
    return Get(source, std::string("/config?mac=") + kMacQuery + extra);
  }
  Response DhcpConfig(const std::string& source, const std::string& extra = "") {
    return Get(source, std::string("/config?mac=") + kDhcpMacQuery + extra);
  }
  Response Ipxe(const std::string& source, const char* mac_query) {
    return Get(source, std::string("/ipxe?mac=") + mac_query);
  }
  // The token in an iPXE script's talos.config= URL, "" when it has none.
  static std::string TokenIn(const std::string& script) {
    const std::string marker = "/config?mac=${mac:hexhyp}&token=";
    auto at = script.find(marker);
    return at == std::string::npos ? "" : script.substr(at + marker.size(), 32);
  }
  double Count(const std::string& result) {
    for (const auto& family : registry_->Collect()) {
      if (family.name != "ironboot_config_fetch_total") {
        continue;
      }
      for (const auto& m : family.metric) {
        for (const auto& l : m.label) {
          if (l.name == "result" && l.value == result) {
            return m.counter.value;
          }
        }
      }
    }
    return 0;
  }
  // A refusal: 403, no detail, and never the config.
  static void ExpectForbidden(const Response& r) {
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, "403 forbidden\n");
  }

  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  HttpMetrics metrics_{registry_};
  StoreHolder holder_;
  std::unique_ptr<ConfigAccess> access_;
  std::unique_ptr<BootHandler> handler_;
  std::unique_ptr<HttpServer> server_;
};

// The machine's static address gets its config; the right MAC from another
// address (no iPXE fetch) gets 403 with no detail.
TEST_F(ConfigHttpTest, StaticAddressServedWrongAddressRefused) {
  Start(NoRate());
  Response ok = Config(kStaticAddress);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, kConfig);
  ExpectForbidden(Config("127.0.0.3"));
  EXPECT_EQ(Count("served"), 1);
  EXPECT_EQ(Count("denied_address"), 1);
}

// A machine without a static address: the address that fetched its iPXE
// script gets the config within the window, and 403 once the window has
// passed; a neighbour still gets 403.
TEST_F(ConfigHttpTest, IpxeFetchWindow) {
  auto o = NoRate();
  o.window = 10min;
  Start(o);
  Response ipxe = Ipxe("127.0.0.4", kDhcpMacQuery);
  ASSERT_EQ(ipxe.status, 200);
  EXPECT_EQ(ipxe.body.find("token="), std::string::npos);  // tokens off
  clock_->Advance(9min);
  Response ok = DhcpConfig("127.0.0.4");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, kDhcpConfig);
  ExpectForbidden(DhcpConfig("127.0.0.5"));
  clock_->Advance(2min);
  ExpectForbidden(DhcpConfig("127.0.0.4"));
  EXPECT_EQ(Count("served"), 1);
  EXPECT_EQ(Count("denied_address"), 2);
}

// Issue 15 defect 3, the bypass: a stranger who knows a statically addressed
// machine's MAC fetches its iPXE script, then its config, from its own
// address. The script is served (Matchbox behaviour) but opens nothing: 403.
TEST_F(ConfigHttpTest, StrangerIpxeFetchDoesNotOpenAStaticMachine) {
  Start(NoRate());
  ASSERT_EQ(Ipxe(kStranger, kMacQuery).status, 200);
  ExpectForbidden(Config(kStranger));
  EXPECT_EQ(Count("denied_address"), 1);
  EXPECT_EQ(Count("served"), 0);
  Response ok = Config(kStaticAddress);  // the machine itself is unaffected
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, kConfig);
}

// Issue 15 defect 3, the eviction: 20 strangers fetching a DHCP machine's
// iPXE script after the machine did neither take its grant nor push it out;
// the machine gets its config, none of them does.
TEST_F(ConfigHttpTest, StrangersCannotDisplaceTheGrant) {
  Start(NoRate());
  const std::string machine = "127.0.0.60";
  ASSERT_EQ(Ipxe(machine, kDhcpMacQuery).status, 200);
  for (int i = 1; i <= 20; ++i) {
    ASSERT_EQ(Ipxe("127.0.1." + std::to_string(i), kDhcpMacQuery).status, 200) << i;
  }
  Response ok = DhcpConfig(machine);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, kDhcpConfig);
  for (int i = 1; i <= 20; ++i) {
    ExpectForbidden(DhcpConfig("127.0.1." + std::to_string(i)));
  }
  EXPECT_EQ(Count("served"), 1);
  EXPECT_EQ(Count("denied_address"), 20);
}

// The grant ends with its window, not with a served config: a node that
// retries its download (Talos does on any error, e.g. a cut connection)
// gets it again; once the holder's window has passed, the next address to
// fetch the iPXE script takes the grant.
TEST_F(ConfigHttpTest, GrantSurvivesARetryAndEndsWithTheWindow) {
  auto o = NoRate();
  o.window = 10min;
  Start(o);
  const std::string machine = "127.0.0.60";
  ASSERT_EQ(Ipxe(machine, kDhcpMacQuery).status, 200);
  EXPECT_EQ(DhcpConfig(machine).status, 200);
  clock_->Advance(1min);
  EXPECT_EQ(DhcpConfig(machine).status, 200);  // the retry
  clock_->Advance(8min);
  ASSERT_EQ(Ipxe(machine, kDhcpMacQuery).status, 200);  // a reboot renews the grant
  clock_->Advance(9min);
  ASSERT_EQ(Ipxe("127.0.0.61", kDhcpMacQuery).status, 200);  // still held: 18 min after the first
  ExpectForbidden(DhcpConfig("127.0.0.61"));
  clock_->Advance(2min);  // 11 min after the holder's last iPXE fetch
  ASSERT_EQ(Ipxe("127.0.0.61", kDhcpMacQuery).status, 200);
  EXPECT_EQ(DhcpConfig("127.0.0.61").status, 200);
  ExpectForbidden(DhcpConfig(machine));
  EXPECT_EQ(Count("served"), 3);
  EXPECT_EQ(Count("denied_address"), 2);
}

// Issue 15 defect 3, the token: with -config-token a stranger's iPXE script
// carries no token, for a static machine and for a DHCP machine whose grant
// is held; the machines' own scripts do, and their tokens work.
TEST_F(ConfigHttpTest, TokensGoOnlyToTheMachine) {
  auto o = NoRate();
  o.tokens = true;
  Start(o);
  Response stranger = Ipxe(kStranger, kMacQuery);
  ASSERT_EQ(stranger.status, 200);
  EXPECT_NE(stranger.body.find("talos.config="), std::string::npos) << stranger.body;
  EXPECT_EQ(stranger.body.find("token="), std::string::npos) << stranger.body;
  ExpectForbidden(Config(kStranger));

  std::string token = TokenIn(Ipxe(kStaticAddress, kMacQuery).body);
  ASSERT_EQ(token.size(), 32u);
  EXPECT_EQ(Config(kStaticAddress, "&token=" + token).status, 200);

  const std::string machine = "127.0.0.60";
  std::string dhcp_token = TokenIn(Ipxe(machine, kDhcpMacQuery).body);
  ASSERT_EQ(dhcp_token.size(), 32u);
  Response late = Ipxe(kStranger, kDhcpMacQuery);
  ASSERT_EQ(late.status, 200);
  EXPECT_EQ(late.body.find("token="), std::string::npos) << late.body;
  ExpectForbidden(DhcpConfig(kStranger, "&token=" + dhcp_token));  // a stolen token alone
  EXPECT_EQ(DhcpConfig(machine, "&token=" + dhcp_token).status, 200);
  EXPECT_EQ(Count("served"), 2);
  EXPECT_EQ(Count("denied_address"), 2);
}

// With tokens on, /ipxe puts a token in the talos.config= URL; /config needs
// it: missing and wrong tokens get 403, the issued one the config, again on
// a retry while the window lasts, and 403 after it.
TEST_F(ConfigHttpTest, Token) {
  auto o = NoRate();
  o.tokens = true;
  Start(o);
  ExpectForbidden(Config(kStaticAddress));  // no iPXE fetch, no token
  Response ipxe = Get(kStaticAddress, std::string("/ipxe?mac=") + kMacQuery);
  ASSERT_EQ(ipxe.status, 200);
  const std::string marker = "/config?mac=${mac:hexhyp}&token=";
  auto at = ipxe.body.find(marker);
  ASSERT_NE(at, std::string::npos) << ipxe.body;
  std::string token = ipxe.body.substr(at + marker.size(), 32);
  ASSERT_EQ(token.size(), 32u);
  EXPECT_EQ(ipxe.body.substr(at + marker.size() + 32, 1), " ");  // the argument ends there

  ExpectForbidden(Config(kStaticAddress));
  ExpectForbidden(Config(kStaticAddress, "&token=" + std::string(32, 'f')));
  ExpectForbidden(Config("127.0.0.3", "&token=" + token));  // right token, wrong address
  Response ok = Config(kStaticAddress, "&token=" + token);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, kConfig);
  EXPECT_EQ(Config(kStaticAddress, "&token=" + token).status, 200);  // a retry
  clock_->Advance(access_->options().window + 1s);
  ExpectForbidden(Config(kStaticAddress, "&token=" + token));  // expired
  EXPECT_EQ(Count("served"), 2);
  EXPECT_EQ(Count("denied_token"), 4);
  EXPECT_EQ(Count("denied_address"), 1);
}

// An address past its burst gets 429 (rate_limited); other addresses are not affected.
TEST_F(ConfigHttpTest, RateLimitPerAddress) {
  ConfigAccessOptions o;
  o.rate_per_second = 10.0 / 60;
  o.burst = 5;
  Start(o);
  for (int i = 0; i < 5; ++i) {
    ExpectForbidden(Config("127.0.0.6"));
  }
  Response limited = Config("127.0.0.6");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.body, "429 too many requests\n");
  EXPECT_EQ(Config(kStaticAddress).status, 200);
  clock_->Advance(6s);
  ExpectForbidden(Config("127.0.0.6"));  // one more allowed after the refill
  EXPECT_EQ(Count("rate_limited"), 1);
  EXPECT_EQ(Count("denied_address"), 6);
  EXPECT_EQ(Count("served"), 1);
}

// An unknown MAC gets the same 403 as a wrong address (no MAC enumeration),
// counted as unknown_mac; even from the static address of another machine.
TEST_F(ConfigHttpTest, UnknownMac) {
  Start(NoRate());
  ExpectForbidden(Get(kStaticAddress, "/config?mac=52-54-00-00-00-99"));
  EXPECT_EQ(Count("unknown_mac"), 1);
  EXPECT_EQ(Count("served"), 0);
}

}  // namespace
}  // namespace ironboot::bootserver
