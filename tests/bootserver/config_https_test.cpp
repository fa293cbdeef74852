// /config over HTTPS: the real HttpServer in TLS mode on 127.0.0.1 beside the
// plain one, both on one BootHandler, and curl as the TLS client (it trusts
// only the test CA and binds a chosen loopback source address, so the server
// sees different clients). Also the certificate loader's errors, reloading,
// and the talos.config= URL rewrite that points machines at the listener.

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "bootserver/config_access.h"
#include "bootserver/handler.h"
#include "bootserver/http_server.h"
#include "bootserver/metrics.h"
#include "bootserver/store.h"
#include "bootserver/store_holder.h"
#include "bootserver/tls_context.h"
#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testutil::TempDir;

constexpr char kMac[] = "52:54:00:12:34:56";
constexpr char kMacQuery[] = "52-54-00-12-34-56";
constexpr char kConfig[] = "machine:\n  token: very-secret-join-token\n";
constexpr char kStaticAddress[] = "127.0.0.2";

struct Cert {
  std::string cert;
  std::string key;
};

// A self-signed P-256 certificate for IP 127.0.0.1 (its own CA), from the openssl CLI.
Cert MakeCert(const fs::path& dir, const std::string& name) {
  Cert c{(dir / (name + ".crt")).string(), (dir / (name + ".key")).string()};
  auto r = testutil::Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", c.key, "-out", c.cert,
                          "-days", "2", "-subj", "/CN=ironboot-" + name, "-addext",
                          "subjectAltName=IP:127.0.0.1"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return c;
}

struct CurlResult {
  int status = 0;  // 0: no HTTP response (the TLS handshake or connection failed)
  std::string body;
  std::string output;  // everything curl said
};

// GET `url` with curl, trusting only `ca`, from source address `source`.
CurlResult Curl(const std::string& url, const std::string& ca,
                const std::string& source = "127.0.0.1") {
  std::vector<std::string> argv = {"curl",        "-sS",  "--max-time", "10",
                                   "--interface", source, "-w",         "\n%{http_code}"};
  if (!ca.empty()) {
    argv.insert(argv.end(), {"--cacert", ca});
  }
  argv.push_back(url);
  auto r = testutil::Run(argv);
  CurlResult out;
  out.output = r.output;
  size_t nl = r.output.rfind('\n');
  if (nl != std::string::npos) {
    try {
      out.status = std::stoi(r.output.substr(nl + 1));
    } catch (...) {
    }
    out.body = r.output.substr(0, nl);
  }
  return out;
}

class ConfigHttpsTest : public ::testing::Test {
 protected:
  void SetUp() override { cert_ = MakeCert(dir_.path(), "a"); }

  void Start(ConfigAccessOptions options, bool tls_only = false) {
    StoreContent content;
    Group g;
    g.id = "cp1";
    g.profile = "cp1";
    g.selector = {{"mac", kMac}};
    content.groups.push_back(g);
    Profile p;
    p.id = "cp1";
    p.kernel = "/assets/vmlinuz";
    p.args = {"talos.platform=metal", "talos.config=http://127.0.0.1:8080/config?mac=${mac:hexhyp}",
              "console=ttyS0"};
    content.profiles.push_back(p);
    content.machine_configs[kMac] = kConfig;
    content.machine_addresses[kMac] = kStaticAddress;
    content.revision = "test";
    holder_.Publish(Store::Build(std::move(content)));
    access_ = std::make_unique<ConfigAccess>(options, clock_);

    // The handler names the HTTPS port in its talos.config= URL, so pick it first.
    const int tls_port = testutil::FreePort();
    BootHandler::Options handler_options;
    handler_options.config_access = access_.get();
    handler_options.config_tls_only = tls_only;
    handler_options.config_url_base = "https://127.0.0.1:" + std::to_string(tls_port);
    handler_ = std::make_unique<BootHandler>(handler_options, &holder_, &metrics_);

    ServerOptions tls_options;
    tls_options.address = "127.0.0.1:" + std::to_string(tls_port);
    tls_options.tls_cert_file = cert_.cert;
    tls_options.tls_key_file = cert_.key;
    tls_options.only_paths = {"/config"};
    tls_server_ = std::make_unique<HttpServer>(tls_options, handler_.get());
    auto tls_started = tls_server_->Start();
    ASSERT_TRUE(tls_started.has_value()) << tls_started.error().message;

    ServerOptions plain;
    plain.address = "127.0.0.1:0";
    server_ = std::make_unique<HttpServer>(plain, handler_.get());
    auto started = server_->Start();
    ASSERT_TRUE(started.has_value()) << started.error().message;
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(1s);
    }
    if (tls_server_) {
      tls_server_->Shutdown(1s);
    }
  }
  static ConfigAccessOptions NoRate() {
    ConfigAccessOptions o;
    o.rate_per_second = 0;
    return o;
  }
  std::string Https(const std::string& target) const {
    return "https://127.0.0.1:" + std::to_string(tls_server_->port()) + target;
  }
  std::string Plain(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + target;
  }
  CurlResult Config(const std::string& source, const std::string& extra = "") {
    return Curl(Https(std::string("/config?mac=") + kMacQuery + extra), cert_.cert, source);
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
  static void ExpectForbidden(const CurlResult& r) {
    EXPECT_EQ(r.status, 403) << r.output;
    EXPECT_EQ(r.body, "403 forbidden\n");
  }

  TempDir dir_;
  Cert cert_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  HttpMetrics metrics_{registry_};
  StoreHolder holder_;
  std::unique_ptr<ConfigAccess> access_;
  std::unique_ptr<BootHandler> handler_;
  std::unique_ptr<HttpServer> tls_server_;
  std::unique_ptr<HttpServer> server_;
};

// Over HTTPS the machine's static address gets its config; the right MAC
// from another address gets 403 with no detail, also after that address
// fetched the machine's iPXE script (on the plain listener).
TEST_F(ConfigHttpsTest, ServedToTheRightMacAndAddress) {
  Start(NoRate());
  CurlResult ok = Config(kStaticAddress);
  EXPECT_EQ(ok.status, 200) << ok.output;
  EXPECT_EQ(ok.body, kConfig);
  ExpectForbidden(Config("127.0.0.3"));
  ASSERT_EQ(Curl(Plain(std::string("/ipxe?mac=") + kMacQuery), "", "127.0.0.4").status, 200);
  ExpectForbidden(Config("127.0.0.4"));
  EXPECT_EQ(Count("served"), 1);
  EXPECT_EQ(Count("denied_address"), 2);
}

// Every refusal path answers the same over HTTPS: missing and wrong tokens
// (denied_token; the issued one works, also for a retry), an unknown MAC (unknown_mac, same 403), a client
// past its burst (429, rate_limited), and a bad MAC (400).
TEST_F(ConfigHttpsTest, EveryRefusalOverHttps) {
  ConfigAccessOptions o;
  o.tokens = true;
  o.rate_per_second = 10.0 / 60;
  o.burst = 6;
  Start(o);
  ExpectForbidden(Config(kStaticAddress));  // no iPXE fetch, no token
  CurlResult ipxe = Curl(Plain(std::string("/ipxe?mac=") + kMacQuery), "", kStaticAddress);
  ASSERT_EQ(ipxe.status, 200);
  const std::string marker = "/config?mac=${mac:hexhyp}&token=";
  auto at = ipxe.body.find(marker);
  ASSERT_NE(at, std::string::npos) << ipxe.body;
  std::string token = ipxe.body.substr(at + marker.size(), 32);
  ExpectForbidden(Config(kStaticAddress, "&token=" + std::string(32, 'f')));
  CurlResult ok = Config(kStaticAddress, "&token=" + token);
  EXPECT_EQ(ok.status, 200) << ok.output;
  EXPECT_EQ(ok.body, kConfig);
  EXPECT_EQ(Config(kStaticAddress, "&token=" + token).status, 200);  // a retry
  EXPECT_EQ(Count("denied_token"), 2);

  ExpectForbidden(Curl(Https("/config?mac=52-54-00-00-00-99"), cert_.cert, kStaticAddress));
  EXPECT_EQ(Count("unknown_mac"), 1);
  CurlResult bad = Curl(Https("/config?mac=nonsense"), cert_.cert, kStaticAddress);
  EXPECT_EQ(bad.status, 400);
  for (int i = 0; i < 6; ++i) {
    ExpectForbidden(Config("127.0.0.6"));
  }
  CurlResult limited = Config("127.0.0.6");
  EXPECT_EQ(limited.status, 429) << limited.output;
  EXPECT_EQ(limited.body, "429 too many requests\n");
  EXPECT_EQ(Count("rate_limited"), 1);
  EXPECT_EQ(Count("served"), 2);
}

// With -config-tls-only, plain /config is refused (403, counted as
// denied_tls) even from the static address, while HTTPS serves it; the iPXE
// script on the plain listener sends the machine to the HTTPS URL, token last.
TEST_F(ConfigHttpsTest, PlainConfigRefusedWhenTlsOnly) {
  auto o = NoRate();
  o.tokens = true;
  Start(o, /*tls_only=*/true);
  CurlResult plain = Curl(Plain(std::string("/config?mac=") + kMacQuery), "", kStaticAddress);
  EXPECT_EQ(plain.status, 403);
  EXPECT_EQ(plain.body, "403 forbidden\n");
  EXPECT_EQ(Count("denied_tls"), 1);

  CurlResult ipxe = Curl(Plain(std::string("/ipxe?mac=") + kMacQuery), "", kStaticAddress);
  ASSERT_EQ(ipxe.status, 200);
  const std::string want = "talos.config=" + Https("/config?mac=${mac:hexhyp}&token=");
  auto at = ipxe.body.find(want);
  ASSERT_NE(at, std::string::npos) << ipxe.body;
  EXPECT_EQ(ipxe.body.find("http://127.0.0.1:8080"), std::string::npos) << ipxe.body;
  std::string token = ipxe.body.substr(at + want.size(), 32);
  CurlResult ok = Config(kStaticAddress, "&token=" + token);
  EXPECT_EQ(ok.status, 200) << ok.output;
  EXPECT_EQ(ok.body, kConfig);
  EXPECT_EQ(Count("served"), 1);
  EXPECT_EQ(Count("denied_tls"), 1);
}

// The HTTPS listener answers /config only (404 elsewhere, even routes the
// plain listener has); plain HTTP to it and a client that does not trust the
// certificate get no response, and it keeps serving afterwards.
TEST_F(ConfigHttpsTest, ListenerServesConfigOnlyAndOnlyOverTls) {
  Start(NoRate());
  EXPECT_EQ(Curl(Https("/metrics"), cert_.cert).status, 404);
  EXPECT_EQ(Curl(Https(std::string("/ipxe?mac=") + kMacQuery), cert_.cert).status, 404);
  EXPECT_EQ(Curl(Plain("/metrics"), "").status, 200);
  std::string plain_to_tls =
      "http://127.0.0.1:" + std::to_string(tls_server_->port()) + "/config?mac=" + kMacQuery;
  EXPECT_EQ(Curl(plain_to_tls, "", kStaticAddress).status, 0);
  CurlResult untrusted = Curl(Https(std::string("/config?mac=") + kMacQuery), "", kStaticAddress);
  EXPECT_EQ(untrusted.status, 0);
  EXPECT_NE(untrusted.output.find("certificate"), std::string::npos) << untrusted.output;
  EXPECT_EQ(Config(kStaticAddress).status, 200);
  EXPECT_EQ(Count("served"), 1);
}

// ReloadTls swaps the certificate for new connections; a broken file on
// reload is an error naming it and the old certificate stays in use.
TEST_F(ConfigHttpsTest, ReloadSwapsCertificate) {
  Start(NoRate());
  Cert b = MakeCert(dir_.path(), "b");
  std::string url = Https(std::string("/config?mac=") + kMacQuery);
  EXPECT_EQ(Curl(url, b.cert, kStaticAddress).status, 0);
  fs::copy_file(cert_.cert, dir_.path() / "a.crt.orig");
  fs::copy_file(b.cert, cert_.cert, fs::copy_options::overwrite_existing);
  fs::copy_file(b.key, cert_.key, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(tls_server_->ReloadTls().has_value());
  EXPECT_EQ(Curl(url, b.cert, kStaticAddress).status, 200);
  EXPECT_EQ(Curl(url, (dir_.path() / "a.crt.orig").string(), kStaticAddress).status, 0);

  testutil::WriteFile(cert_.cert, "not a certificate\n");
  auto failed = tls_server_->ReloadTls();
  ASSERT_FALSE(failed.has_value());
  EXPECT_NE(failed.error().message.find(cert_.cert), std::string::npos) << failed.error().message;
  EXPECT_EQ(Curl(url, b.cert, kStaticAddress).status, 200);
  EXPECT_FALSE(server_->ReloadTls().has_value());  // the plain listener has no certificate
}

// A bad certificate or key file stops Start with an error naming the file and
// saying what was expected; no key material in it.
TEST(ServerTlsContext, BadFilesNamed) {
  TempDir dir;
  Cert a = MakeCert(dir.path(), "a");
  Cert b = MakeCert(dir.path(), "b");
  std::string missing = (dir.path() / "missing.crt").string();
  std::string garbage = (dir.path() / "garbage.pem").string();
  testutil::WriteFile(garbage, "hello\n");
  std::string encrypted = (dir.path() / "enc.key").string();
  auto enc = testutil::Run(
      {"openssl", "pkey", "-in", a.key, "-aes256", "-passout", "pass:pw", "-out", encrypted});
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  struct Case {
    std::string cert, key, want;
  };
  for (const Case& tc : std::vector<Case>{
           {missing, a.key, "certificate file \"" + missing + "\" cannot be read: No such file"},
           {a.cert, missing, "private key file \"" + missing + "\" cannot be read"},
           {garbage, a.key, "certificate file \"" + garbage + "\": not a PEM certificate chain"},
           {a.cert, garbage,
            "private key file \"" + garbage + "\": not an unencrypted PEM private key"},
           {a.cert, encrypted, "private key file \"" + encrypted + "\": not an unencrypted PEM"},
           {a.cert, b.key,
            "private key file \"" + b.key +
                "\" does not belong to the certificate in certificate file \"" + a.cert + "\""},
       }) {
    ServerOptions o;
    o.address = "127.0.0.1:0";
    o.tls_cert_file = tc.cert;
    o.tls_key_file = tc.key;
    auto registry = std::make_shared<prometheus::Registry>();
    HttpMetrics metrics(registry);
    StoreHolder holder;
    BootHandler handler({}, &holder, &metrics);
    HttpServer server(o, &handler);
    auto started = server.Start();
    ASSERT_FALSE(started.has_value()) << tc.want;
    EXPECT_NE(started.error().message.find(tc.want), std::string::npos) << started.error().message;
    std::string key_text = testutil::ReadFile(a.key);
    std::string key_body = key_text.substr(key_text.find('\n') + 1, 40);
    EXPECT_EQ(started.error().message.find(key_body), std::string::npos);
  }
}

// The talos.config= URL base is replaced up to "/config"; other URLs, other
// arguments and scripts without talos.config= are untouched.
TEST(RewriteConfigUrl, ReplacesBaseOfConfigUrlOnly) {
  EXPECT_EQ(RewriteConfigUrl("kernel k talos.config=http://10.0.0.2:8080/config?mac=${mac:hexhyp} "
                             "console=ttyS0\nboot\n",
                             "https://boot.lan:8443"),
            "kernel k talos.config=https://boot.lan:8443/config?mac=${mac:hexhyp} console=ttyS0\n"
            "boot\n");
  EXPECT_EQ(RewriteConfigUrl("k talos.config=http://h/ironboot/config?mac=x\n", "https://p/x"),
            "k talos.config=https://p/x/config?mac=x\n");
  EXPECT_EQ(RewriteConfigUrl("k talos.config=http://h/config", "https://b"),
            "k talos.config=https://b/config");
  for (const char* unchanged :
       {"k talos.config=http://h/assets/cp1.yaml a\n", "k a=b\n",
        "k talos.config=http://h/configs?x\n", "k talos.config=nonsense\n"}) {
    EXPECT_EQ(RewriteConfigUrl(unchanged, "https://b"), unchanged);
  }
}

// -config-url takes http(s)://host[:port][/prefix]; anything else names the
// flag, the value and what is wanted.
TEST(ParseConfigUrlBase, AcceptsBaseUrlsOnly) {
  EXPECT_EQ(*ParseConfigUrlBase("config-url", "https://boot.lan:8443/"), "https://boot.lan:8443");
  EXPECT_EQ(*ParseConfigUrlBase("config-url", "http://10.0.0.2/prefix"), "http://10.0.0.2/prefix");
  for (const char* bad : {"boot.lan:8443", "ftp://x", "https://", "https://:8443",
                          "https://b/config?mac=1", "https://b#x", "https://b c"}) {
    auto r = ParseConfigUrlBase("config-url", bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_NE(r.error().message.find("-config-url \"" + std::string(bad) +
                                     "\": want the base URL machines fetch /config from"),
              std::string::npos)
        << r.error().message;
  }
}

}  // namespace
}  // namespace ironboot::bootserver
