// The real HttpServer on 127.0.0.1 (port 0) with a real HTTP client and raw
// sockets: every endpoint, assets (Range, HEAD, 304), traversal, broken files,
// reload under load, limits and timeouts, the connection cap, graceful
// shutdown, and /metrics moving with traffic.

#include "bootserver/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "bootserver/data_dir_watcher.h"
#include "bootserver/render.h"
#include "tests/testutil/raw_conn.h"
#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testutil::HttpGet;
using testutil::HttpResponse;
using testutil::RawConn;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;
using Clock = std::chrono::steady_clock;

constexpr char kIpxe[] =
    "#!ipxe\nkernel /assets/vmlinuz console=ttyS0 talos.platform=metal\n"
    "initrd /assets/initramfs.xz\nboot\n";

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  }
  return s;
}

// One sample from a Prometheus text exposition; -1 when absent.
double Sample(const std::string& text, const std::string& name,
              const std::map<std::string, std::string>& labels = {}) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos = eol == std::string::npos ? text.size() : eol + 1;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    size_t space = line.rfind(' ');
    std::string key = line.substr(0, space);
    std::string metric = key.substr(0, key.find('{'));
    if (metric != name) {
      continue;
    }
    std::map<std::string, std::string> have;
    if (size_t brace = key.find('{'); brace != std::string::npos) {
      std::string body = key.substr(brace + 1, key.size() - brace - 2);
      size_t i = 0;
      while (i < body.size()) {
        size_t eq = body.find('=', i);
        size_t close = body.find('"', eq + 2);
        have[body.substr(i, eq - i)] = body.substr(eq + 2, close - eq - 2);
        i = close + 2;
      }
    }
    if (have == labels) {
      return std::stod(line.substr(space + 1));
    }
  }
  return -1;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "data/groups/cp1.json",
              R"({"id":"cp1","name":"CP1","profile":"cp1","selector":{"mac":"52:54:00:ab:cd:ef"},
                  "metadata":{"hostname":"cp1"}})");
    WriteFile(dir_ / "data/profiles/cp1.json", ProfileJson("/assets/vmlinuz"));
    WriteFile(dir_ / "data/generic/cp1.tmpl",
              "hostname={{.hostname}} mac={{.request.query.mac}}\n");
    big_ = Pattern(100000);
    WriteFile(dir_ / "data/assets/vmlinuz", big_);
    WriteFile(dir_ / "data/assets/talos/controlplane1.yaml", "machine:\n  type: controlplane\n");
    WriteFile(dir_ / "data/secret.txt", "secret\n");
    fs::create_symlink("../secret.txt", dir_ / "data/assets/link-out");
    ASSERT_TRUE(watcher_.Reload());
    handler_ = std::make_unique<BootHandler>(
        BootHandler::Options{fs::canonical(dir_ / "data/assets")}, &holder_, &metrics_);
  }

  static std::string ProfileJson(const std::string& kernel) {
    return R"({"id":"cp1","generic_id":"cp1.tmpl","boot":{"kernel":")" + kernel +
           R"(","initrd":["/assets/initramfs.xz"],"args":["console=ttyS0","talos.platform=metal"]}})";
  }

  void StartServer(ServerOptions options = {}) {
    options.address = "127.0.0.1:0";
    server_ = std::make_unique<HttpServer>(options, handler_.get());
    auto started = server_->Start();
    ASSERT_TRUE(started) << started.error().message;
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  std::string Metrics() { return HttpGet(port_, "/metrics").body; }

  static std::string Raw(int port, const std::string& request) {
    RawConn c(port);
    EXPECT_TRUE(c.connected());
    c.Send(request);
    return c.ReadUntilClose(5s);
  }

  TempDir dir_;
  std::string big_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  HttpMetrics metrics_{registry_};
  StoreHolder holder_;
  DataDirWatcher watcher_{dir_ / "data", &holder_, &metrics_};
  std::unique_ptr<BootHandler> handler_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

// Every Matchbox endpoint answers over HTTP with the exact body and content type.
TEST_F(HttpServerTest, EveryEndpointExact) {
  StartServer();
  struct Case {
    std::string target;
    int status;
    std::string body;
    std::string type;
  };
  const std::string plain = "text/plain; charset=utf-8";
  for (const Case& tc : std::vector<Case>{
           {"/", 200, "matchbox\n", plain},
           {"/boot.ipxe", 200, std::string(kChainloadScript), plain},
           {"/boot.ipxe.0", 200, std::string(kChainloadScript), plain},
           {"/ipxe?mac=52-54-00-AB-CD-EF", 200, kIpxe, plain},
           {"/ipxe?mac=52:54:00:00:00:01", 404, "404 page not found\n", plain},
           {"/ipxe", 404, "404 page not found\n", plain},
           {"/grub?mac=52:54:00:ab:cd:ef", 200,
            "default=0\nfallback=1\ntimeout=1\nmenuentry \"CoreOS (EFI)\" {\necho \"Loading "
            "kernel\"\n"
            "linuxefi \"/assets/vmlinuz\" console=ttyS0 talos.platform=metal\necho \"Loading "
            "initrd\"\n"
            "initrdefi  \"/assets/initramfs.xz\"\n}\nmenuentry \"CoreOS (BIOS)\" {\necho \"Loading "
            "kernel\"\n"
            "linux \"/assets/vmlinuz\" console=ttyS0 talos.platform=metal\necho \"Loading "
            "initrd\"\n"
            "initrd  \"/assets/initramfs.xz\"\n}\n",
            plain},
           {"/metadata?mac=52-54-00-ab-cd-ef", 200,
            "HOSTNAME=cp1\nMAC=52:54:00:ab:cd:ef\nREQUEST_QUERY_MAC=52:54:00:ab:cd:ef\n"
            "REQUEST_RAW_QUERY=mac=52-54-00-ab-cd-ef\n",
            "plain/text"},
           {"/metadata?mac=52:54:00:00:00:01", 404, "404 page not found\n", plain},
           {"/generic?mac=5254.00ab.cdef", 200, "hostname=cp1 mac=52:54:00:ab:cd:ef\n", plain},
           {"/generic?mac=52:54:00:00:00:01", 404, "404 page not found\n", plain},
           {"/nope", 404, "404 page not found\n", plain},
           {"/ignition?mac=52:54:00:ab:cd:ef", 404, "404 page not found\n", plain},
           {"/healthz", 200, "ok\n", plain},
           {"/assets/talos/controlplane1.yaml", 200, "machine:\n  type: controlplane\n",
            "application/yaml"},
       }) {
    HttpResponse r = HttpGet(port_, tc.target);
    ASSERT_TRUE(r.error.empty()) << tc.target << ": " << r.error;
    EXPECT_EQ(r.status, tc.status) << tc.target;
    EXPECT_EQ(r.body, tc.body) << tc.target;
    EXPECT_EQ(r.headers["content-type"], tc.type) << tc.target;
    EXPECT_EQ(r.headers["content-length"], std::to_string(tc.body.size())) << tc.target;
  }
  HttpResponse ready = HttpGet(port_, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body,
            "ready: serving dir:" + (dir_ / "data").string() + " (1 groups, 1 profiles)\n");
}

// Assets: whole file, single Range (206 + Content-Range), 416, HEAD without a
// body, 304 by If-None-Match and by If-Modified-Since.
TEST_F(HttpServerTest, AssetsRangeHeadAndConditional) {
  StartServer();
  HttpResponse full = HttpGet(port_, "/assets/vmlinuz");
  EXPECT_EQ(full.status, 200);
  EXPECT_EQ(full.body, big_);
  EXPECT_EQ(full.headers["content-length"], "100000");
  EXPECT_EQ(full.headers["content-type"], "application/octet-stream");
  EXPECT_EQ(full.headers["accept-ranges"], "bytes");
  std::string etag = full.headers["etag"];
  std::string last_modified = full.headers["last-modified"];
  ASSERT_FALSE(etag.empty());
  ASSERT_FALSE(last_modified.empty());

  HttpResponse part = HttpGet(port_, "/assets/vmlinuz", {{"Range", "bytes=1000-1999"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.headers["content-range"], "bytes 1000-1999/100000");
  EXPECT_EQ(part.headers["content-length"], "1000");
  EXPECT_EQ(part.body, big_.substr(1000, 1000));

  HttpResponse tail = HttpGet(port_, "/assets/vmlinuz", {{"Range", "bytes=-10"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, big_.substr(99990));

  HttpResponse multi = HttpGet(port_, "/assets/vmlinuz", {{"Range", "bytes=0-1,5-9"}});
  EXPECT_EQ(multi.status, 200);
  EXPECT_EQ(multi.body.size(), big_.size());

  HttpResponse past = HttpGet(port_, "/assets/vmlinuz", {{"Range", "bytes=100000-"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.headers["content-range"], "bytes */100000");

  HttpResponse head = testutil::HttpRequest(port_, "HEAD", "/assets/vmlinuz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], "100000");
  EXPECT_EQ(head.headers["etag"], etag);
  EXPECT_TRUE(head.body.empty());
  // On the wire: headers only, nothing after them.
  std::string raw =
      Raw(port_, "HEAD /assets/vmlinuz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw;
  EXPECT_EQ(raw.size(), raw.find("\r\n\r\n") + 4) << raw;
  std::string raw_ipxe = Raw(
      port_, "HEAD /ipxe?mac=52:54:00:ab:cd:ef HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(raw_ipxe.find("Content-Length: " + std::to_string(std::strlen(kIpxe))),
            std::string::npos)
      << raw_ipxe;
  EXPECT_EQ(raw_ipxe.size(), raw_ipxe.find("\r\n\r\n") + 4) << raw_ipxe;

  HttpResponse by_etag = HttpGet(port_, "/assets/vmlinuz", {{"If-None-Match", etag}});
  EXPECT_EQ(by_etag.status, 304);
  EXPECT_TRUE(by_etag.body.empty());
  EXPECT_EQ(by_etag.headers["etag"], etag);
  HttpResponse by_date = HttpGet(port_, "/assets/vmlinuz", {{"If-Modified-Since", last_modified}});
  EXPECT_EQ(by_date.status, 304);
  HttpResponse old_date =
      HttpGet(port_, "/assets/vmlinuz", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  EXPECT_EQ(old_date.status, 200);
  EXPECT_EQ(old_date.body, big_);
  HttpResponse other_etag = HttpGet(port_, "/assets/vmlinuz", {{"If-None-Match", "\"nope\""}});
  EXPECT_EQ(other_etag.status, 200);
}

// Raw traversal targets (dot-dot, encoded dot-dot, encoded slash, symlink out,
// a directory) get 404 and never the file's content.
TEST_F(HttpServerTest, TraversalAttemptsAre404) {
  StartServer();
  for (const char* target :
       {"/assets/../secret.txt", "/assets/%2e%2e/secret.txt", "/assets/%2E%2E%2Fsecret.txt",
        "/assets/talos/../../secret.txt", "/assets/link-out", "/assets/talos", "/assets/talos/",
        "/assets/", "/assets/%00"}) {
    std::string raw = Raw(
        port_, std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(raw.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << target << "\n" << raw;
    EXPECT_EQ(raw.find("secret"), std::string::npos) << target;
  }
}

// A broken file beside good ones: the good ones serve, /readyz lists the
// broken one, and the invalid-files gauge counts it.
TEST_F(HttpServerTest, BrokenFileBesideGoodOnes) {
  WriteFile(dir_ / "data/groups/broken.json", "{\"id\": \"broken\", ");
  WriteFile(dir_ / "data/groups/typo.json",
            R"({"id":"typo","profile":"cp1","selector":{"mac":"52:54:00:ab:cd"}})");
  ASSERT_TRUE(watcher_.Reload());
  StartServer();
  EXPECT_EQ(HttpGet(port_, "/ipxe?mac=52:54:00:ab:cd:ef").body, kIpxe);
  HttpResponse ready = HttpGet(port_, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find("2 problem(s)"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find("  groups/broken.json: invalid JSON"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find(
                "  groups/typo.json: field \"selector.mac\": \"52:54:00:ab:cd\" is not a MAC"),
            std::string::npos)
      << ready.body;
  std::string m = Metrics();
  EXPECT_EQ(Sample(m, "ironboot_store_invalid_files"), 2) << m;
  EXPECT_EQ(Sample(m, "ironboot_store_groups"), 1);
  EXPECT_EQ(Sample(m, "ironboot_store_profiles"), 1);
}

// While clients hammer /ipxe, a profile is replaced atomically (rename): every
// answer is the old or the new script, never an error or a mix, and the new
// one shows up within a deadline.
TEST_F(HttpServerTest, ReloadUnderLoad) {
  StartServer(ServerOptions{.threads = 2});
  watcher_.Start();
  const std::string old_script = kIpxe;
  std::string new_script = old_script;
  new_script.replace(new_script.find("/assets/vmlinuz"), 15, "/assets/vmlinuz-new");
  std::atomic<bool> stop{false};
  std::atomic<int> old_seen{0}, new_seen{0}, bad{0};
  std::mutex mu;
  std::string first_bad;
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        HttpResponse r = HttpGet(port_, "/ipxe?mac=52:54:00:ab:cd:ef");
        if (r.status == 200 && r.body == old_script) {
          ++old_seen;
        } else if (r.status == 200 && r.body == new_script) {
          ++new_seen;
        } else {
          ++bad;
          std::lock_guard lock(mu);
          first_bad = std::to_string(r.status) + " " + r.error + " " + r.body;
        }
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] { return old_seen > 50; }, 10s));
  uint64_t generation = watcher_.generation();
  WriteFile(dir_ / "data/.cp1.json.tmp", ProfileJson("/assets/vmlinuz-new"));
  fs::rename(dir_ / "data/.cp1.json.tmp", dir_ / "data/profiles/cp1.json");
  auto changed = Clock::now();
  EXPECT_TRUE(WaitFor([&] { return new_seen > 0; }, 5s)) << "the new profile never showed up";
  auto latency = Clock::now() - changed;
  int at_switch = new_seen;
  EXPECT_TRUE(WaitFor([&] { return new_seen > at_switch + 50; }, 10s));
  stop = true;
  for (auto& t : clients) {
    t.join();
  }
  EXPECT_EQ(bad.load(), 0) << first_bad;
  EXPECT_GT(watcher_.generation(), generation);
  std::cout << "reload under load: old=" << old_seen << " new=" << new_seen << " latency_ms="
            << std::chrono::duration_cast<std::chrono::milliseconds>(latency).count() << "\n";
  EXPECT_GE(Sample(Metrics(), "ironboot_store_reloads_total", {{"result", "ok"}}), 2);
  watcher_.Stop();
}

// POST and PUT get 405 with Allow: GET, HEAD.
TEST_F(HttpServerTest, MethodNotAllowed) {
  StartServer();
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    HttpResponse r = testutil::HttpRequest(port_, method, "/ipxe?mac=52:54:00:ab:cd:ef", {}, "x");
    EXPECT_EQ(r.status, 405) << method << r.error;
    EXPECT_EQ(r.headers["allow"], "GET, HEAD") << method;
  }
}

// Headers over the limit get 431 and the connection is closed.
TEST_F(HttpServerTest, OversizedHeadersGet431) {
  StartServer(ServerOptions{.header_limit = 4096});
  std::string big(6000, 'a');
  RawConn c(port_);
  c.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n");
  std::string raw = c.ReadUntilClose(5s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0), 0u) << raw;
  EXPECT_NE(raw.find("limit 4096 bytes"), std::string::npos) << raw;
  EXPECT_TRUE(c.closed());
  // Under the limit is fine.
  HttpResponse ok = HttpGet(port_, "/", {{"X-Big", std::string(3000, 'a')}});
  EXPECT_EQ(ok.status, 200);
}

// A client that stops sending mid-request is cut off after read_timeout,
// even one that trickles a byte at a time (the timer runs from the first byte).
TEST_F(HttpServerTest, StalledRequestTimesOut) {
  StartServer(ServerOptions{.idle_timeout = 5000ms, .read_timeout = 300ms});
  RawConn stalled(port_);
  auto start = Clock::now();
  stalled.Send("GET /ipxe?mac=52:54:00:ab:cd:ef HTTP/1.1\r\nHost: x\r\n");
  std::string got = stalled.ReadUntilClose(5s);
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(stalled.closed());
  EXPECT_EQ(got, "");
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s);

  RawConn trickle(port_);
  start = Clock::now();
  trickle.Send("GET / HTTP/1.1\r\n");
  while (!trickle.closed() && Clock::now() - start < 5s) {
    trickle.Send("X");  // the client's pace, not a wait for the server
    trickle.ReadSome(4096, 50ms);
  }
  elapsed = Clock::now() - start;
  EXPECT_TRUE(trickle.closed());
  EXPECT_LT(elapsed, 2s);
  EXPECT_TRUE(WaitFor([&] { return server_->active_connections() == 0; }, 2s));
}

// An idle keep-alive connection is closed after idle_timeout; one in use is kept.
TEST_F(HttpServerTest, IdleKeepAliveCloses) {
  StartServer(ServerOptions{.idle_timeout = 300ms, .read_timeout = 5000ms});
  RawConn c(port_);
  for (int i = 0; i < 3; ++i) {  // keep-alive: several requests on one connection
    c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string r = c.ReadResponse(5s);
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_EQ(r.substr(r.size() - 9), "matchbox\n");
  }
  auto start = Clock::now();
  c.ReadUntilClose(5s);
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(c.closed());
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2s);
}

// Over the connection cap a new client gets 503 and is closed; once a slot
// frees, requests are served again.
TEST_F(HttpServerTest, ConnectionCapGives503) {
  StartServer(ServerOptions{.max_connections = 2});
  auto a = std::make_unique<RawConn>(port_);
  RawConn b(port_);
  ASSERT_TRUE(WaitFor([&] { return server_->active_connections() == 2; }, 5s));
  RawConn third(port_);
  std::string raw = third.ReadUntilClose(5s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << raw;
  EXPECT_NE(raw.find("503 too many connections"), std::string::npos) << raw;
  a.reset();
  ASSERT_TRUE(WaitFor([&] { return server_->active_connections() == 1; }, 5s));
  EXPECT_EQ(HttpGet(port_, "/").status, 200);
}

// Shutdown lets a slow in-flight download finish while new connections are
// refused, and returns as soon as it has, well within the grace period.
TEST_F(HttpServerTest, GracefulShutdownFinishesInFlightDownload) {
  const std::string huge = Pattern(16 << 20);
  WriteFile(dir_ / "data/assets/huge.img", huge);
  StartServer();
  RawConn slow(port_, 4096);
  ASSERT_TRUE(slow.connected());
  slow.Send("GET /assets/huge.img HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string got = slow.ReadSome(4096, 5s);
  ASSERT_FALSE(got.empty());
  ASSERT_TRUE(WaitFor([&] { return server_->active_connections() == 1; }, 5s));

  auto start = Clock::now();
  auto shutdown = std::async(std::launch::async, [&] {
    server_->Shutdown(10s);
    return Clock::now();
  });
  // While the download is still in flight, new connections are refused.
  EXPECT_TRUE(WaitFor([&] { return !RawConn(port_).connected(); }, 5s));
  EXPECT_EQ(shutdown.wait_for(0ms), std::future_status::timeout) << "shutdown did not wait";
  // Now the client reads the rest at full speed.
  got += slow.ReadUntilClose(20s);
  auto finished = Clock::now();
  auto header_end = got.find("\r\n\r\n");
  ASSERT_NE(header_end, std::string::npos);
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(got.size() - header_end - 4, huge.size());
  EXPECT_TRUE(got.compare(header_end + 4, std::string::npos, huge) == 0) << "body differs";
  auto returned = shutdown.get();
  EXPECT_LT(returned - start, 10s);
  EXPECT_LT(returned - finished, 2s);
}

// A client that stops reading cannot hold shutdown past the grace period.
TEST_F(HttpServerTest, ShutdownReturnsWithinGrace) {
  WriteFile(dir_ / "data/assets/huge.img", Pattern(16 << 20));
  StartServer();
  RawConn stuck(port_, 4096);
  stuck.Send("GET /assets/huge.img HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_FALSE(stuck.ReadSome(1024, 5s).empty());
  auto start = Clock::now();
  server_->Shutdown(500ms);
  auto took = Clock::now() - start;
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(server_->active_connections(), 0u);
}

// /metrics carries every name the issue lists, and the values move with traffic.
TEST_F(HttpServerTest, MetricsMoveWithTraffic) {
  StartServer();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(HttpGet(port_, "/ipxe?mac=52:54:00:ab:cd:ef").status, 200);
  }
  EXPECT_EQ(HttpGet(port_, "/ipxe?mac=52:54:00:00:00:01").status, 404);
  EXPECT_EQ(HttpGet(port_, "/assets/vmlinuz", {{"Range", "bytes=0-99"}}).status, 206);
  EXPECT_EQ(HttpGet(port_, "/assets/vmlinuz").status, 200);
  // The server counts after writing the response: poll.
  std::string m;
  EXPECT_TRUE(WaitFor(
      [&] {
        m = Metrics();
        return Sample(m, "ironboot_http_requests_total",
                      {{"handler", "assets"}, {"code", "200"}}) == 1 &&
               Sample(m, "ironboot_http_requests_total",
                      {{"handler", "assets"}, {"code", "206"}}) == 1 &&
               Sample(m, "ironboot_http_requests_total", {{"handler", "ipxe"}, {"code", "404"}}) ==
                   1;
      },
      5s))
      << m;
  EXPECT_EQ(Sample(m, "ironboot_http_requests_total", {{"handler", "ipxe"}, {"code", "200"}}), 3);
  EXPECT_EQ(Sample(m, "ironboot_http_requests_total", {{"handler", "ipxe"}, {"code", "404"}}), 1);
  EXPECT_EQ(Sample(m, "ironboot_http_requests_total", {{"handler", "assets"}, {"code", "206"}}), 1);
  EXPECT_EQ(Sample(m, "ironboot_http_request_duration_seconds_count", {{"handler", "ipxe"}}), 4);
  EXPECT_EQ(Sample(m, "ironboot_boot_selections_total", {{"group", "cp1"}}), 3);
  EXPECT_EQ(Sample(m, "ironboot_boot_unmatched_total", {{"handler", "ipxe"}}), 1);
  EXPECT_EQ(Sample(m, "ironboot_asset_bytes_sent_total"), 100100);
  EXPECT_EQ(Sample(m, "ironboot_store_groups"), 1);
  EXPECT_EQ(Sample(m, "ironboot_store_profiles"), 1);
  EXPECT_EQ(Sample(m, "ironboot_store_invalid_files"), 0);
  EXPECT_EQ(Sample(m, "ironboot_store_reloads_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(Sample(m, "ironboot_store_reloads_total", {{"result", "error"}}), 0);
  // A query value never becomes a label.
  EXPECT_EQ(m.find("52:54:00:00:00:01"), std::string::npos);
  // A failed reload keeps serving and is counted.
  fs::rename(dir_ / "data", dir_ / "moved");
  EXPECT_FALSE(watcher_.Reload());
  fs::rename(dir_ / "moved", dir_ / "data");
  EXPECT_EQ(HttpGet(port_, "/ipxe?mac=52:54:00:ab:cd:ef").body, kIpxe);
  m = Metrics();
  EXPECT_EQ(Sample(m, "ironboot_store_reloads_total", {{"result", "error"}}), 1);
}

// HTTP/1.0 gets a 1.0 answer and the connection closed; pipelined 1.1
// requests on one connection are answered in order.
TEST_F(HttpServerTest, Http10AndPipelining) {
  StartServer();
  std::string old = Raw(port_, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << old;
  EXPECT_EQ(old.substr(old.size() - 9), "matchbox\n");
  std::string two =
      Raw(port_,
          "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /ipxe?mac=52:54:00:ab:cd:ef HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t first = two.find("matchbox\n");
  size_t second = two.find(kIpxe);
  EXPECT_NE(first, std::string::npos) << two;
  EXPECT_NE(second, std::string::npos) << two;
  EXPECT_LT(first, second);
}

// A malformed request gets 400 and a body over the limit 413; both close the connection.
TEST_F(HttpServerTest, MalformedRequestAndBodyLimit) {
  StartServer(ServerOptions{.body_limit = 1000});
  std::string bad = Raw(port_, "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(bad.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << bad;
  std::string big = Raw(port_, "POST /hooks/git HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" +
                                   std::string(5000, 'x'));
  EXPECT_EQ(big.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u) << big;
  EXPECT_NE(big.find("limit 1000 bytes"), std::string::npos) << big;
}

// A body is read only on POST /hooks/git. A GET or HEAD announcing one gets
// 413 naming that route; other methods get their route's answer (405/404) with
// the body left unread and the connection closed.
TEST_F(HttpServerTest, BodyOnlyOnWebhookPost) {
  StartServer();
  std::string get = Raw(port_, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
                                   std::string(100, 'x'));
  EXPECT_EQ(get.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u) << get;
  EXPECT_NE(get.find("only POST /hooks/git carries a body"), std::string::npos) << get;
  for (std::string method : {"POST /ipxe", "PUT /hooks/git", "DELETE /"}) {
    // Keep-alive asked for, and a second request behind the body: neither is
    // read, the connection ends after the first answer.
    std::string r = Raw(port_, method + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" +
                                   std::string(100, 'x') + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // 405, or 404 where the route does not exist (no /hooks/git in Matchbox mode).
    EXPECT_TRUE(r.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0 ||
                r.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0)
        << method << r;
    EXPECT_EQ(r.find("matchbox\n"), std::string::npos) << method << r;
  }
  // Content-Length: 0 is no body: served as usual.
  std::string empty = Raw(port_, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(empty.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << empty;
}

// Transfer-Encoding is refused from the header alone (Beast 1.74 puts no limit
// on chunk extensions or trailers): chunked gets 411, any other coding list
// 400 (RFC 9112), on every route, and the connection is closed with the body
// unread.
TEST_F(HttpServerTest, TransferEncodingRefusedBeforeTheBody) {
  StartServer();
  struct Case {
    std::string headers;
    std::string status;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {"POST /hooks/git HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
            "HTTP/1.1 411 Length Required\r\n", "send the body with Content-Length"},
           {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
            "HTTP/1.1 411 Length Required\r\n", "send the body with Content-Length"},
           // Beast may refuse these itself ("bad transfer encoding"): 400 either way.
           {"POST /hooks/git HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n",
            "HTTP/1.1 400 Bad Request\r\n", "400 bad request"},
           {"POST /hooks/git HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n",
            "HTTP/1.1 400 Bad Request\r\n", "400 bad request"},
       }) {
    RawConn conn(port_);
    // A chunk whose extension alone is 1 MiB: never parsed.
    conn.Send(c.headers + "\r\n");
    std::string r = conn.ReadSome(4096, 5s);
    EXPECT_EQ(r.rfind(c.status, 0), 0u) << c.headers << r;
    EXPECT_NE(r.find(c.says), std::string::npos) << r;
    conn.Send("1;" + std::string(1 << 20, 'e') + "\r\nx\r\n0\r\n\r\n");
    conn.ReadUntilClose(5s);
    EXPECT_TRUE(conn.closed()) << c.headers;
  }
}

// HTTP/1.1 needs exactly one Host header (RFC 9112 3.2): none or two get 400;
// HTTP/1.0 may leave it out.
TEST_F(HttpServerTest, HostHeaderRules) {
  StartServer();
  std::string none = Raw(port_, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(none.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << none;
  EXPECT_NE(none.find("needs a Host header"), std::string::npos) << none;
  std::string two = Raw(port_, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  EXPECT_EQ(two.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << two;
  EXPECT_NE(two.find("more than one Host header"), std::string::npos) << two;
  std::string old = Raw(port_, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << old;
}

// A connection that never sends a byte is closed after first_byte_timeout,
// not after the (longer) keep-alive idle timeout.
TEST_F(HttpServerTest, SilentConnectionClosedAfterFirstByteTimeout) {
  StartServer(ServerOptions{.first_byte_timeout = 300ms, .idle_timeout = 60000ms});
  RawConn silent(port_);
  ASSERT_TRUE(silent.connected());
  auto start = Clock::now();
  silent.ReadUntilClose(10s);
  EXPECT_TRUE(silent.closed());
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_TRUE(WaitFor([&] { return server_->active_connections() == 0; }, 2s));
}

// One client address cannot take every slot: past max_connections_per_client
// it gets 503, while another address is still served.
TEST_F(HttpServerTest, PerClientConnectionCap) {
  StartServer(ServerOptions{.max_connections = 100, .max_connections_per_client = 3});
  std::vector<std::unique_ptr<RawConn>> hog;
  for (int i = 0; i < 3; ++i) {
    hog.push_back(std::make_unique<RawConn>(port_, 0, "127.0.0.2"));
    ASSERT_TRUE(hog.back()->connected());
  }
  ASSERT_TRUE(WaitFor([&] { return server_->active_connections() == 3; }, 5s));
  RawConn fourth(port_, 0, "127.0.0.2");
  std::string raw = fourth.ReadUntilClose(5s);
  EXPECT_EQ(raw.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << raw;
  RawConn other(port_, 0, "127.0.0.3");
  other.Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string ok = other.ReadUntilClose(5s);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  hog.pop_back();  // a slot of 127.0.0.2 frees up
  ASSERT_TRUE(WaitFor([&] { return server_->active_connections() == 2; }, 5s));
  RawConn again(port_, 0, "127.0.0.2");
  again.Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string back = again.ReadUntilClose(5s);
  EXPECT_EQ(back.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << back;
}

// Out of file descriptors (EMFILE), waiting clients get 503 instead of
// hanging, the accept loop backs off instead of spinning at 100 % CPU, and
// serving resumes once descriptors are free again.
TEST_F(HttpServerTest, OutOfDescriptorsAnswers503WithoutSpinning) {
  StartServer();
  ASSERT_EQ(HttpGet(port_, "/").status, 200);
  ASSERT_TRUE(WaitFor([&] { return server_->active_connections() == 0; }, 5s));
  constexpr int kClients = 8;
  std::vector<int> sockets;
  for (int i = 0; i < kClients; ++i) {
    sockets.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  }
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(highest) + 1;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::vector<int> fillers;  // every free descriptor below the limit taken
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) {
    fillers.push_back(fd);
  }
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  std::vector<std::string> answers;
  for (int fd : sockets) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    constexpr std::string_view kRequest = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)!::send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL);
  }
  auto deadline = Clock::now() + 5s;
  for (int fd : sockets) {
    pollfd p{fd, POLLIN, 0};
    std::string got;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max(left, 1ms).count())) > 0) {
      char buf[512];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      got.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
    }
    answers.push_back(got);
  }
  std::this_thread::sleep_for(1s);  // the window in which the old loop spun
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  for (int fd : sockets) {
    ::close(fd);
  }
  for (int fd : fillers) {
    ::close(fd);
  }
  // Every client hears back: 503 from the reserve descriptor, or 200 when a
  // descriptor happened to be free; at least one took the EMFILE path.
  int refused = 0;
  for (const auto& got : answers) {
    bool busy = got.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0;
    refused += busy ? 1 : 0;
    EXPECT_TRUE(busy || got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0) << got;
  }
  EXPECT_GE(refused, 1);
  auto cpu = [](const rusage& r) {
    return std::chrono::seconds(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           std::chrono::microseconds(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  };
  EXPECT_LT(cpu(after) - cpu(before), 500ms) << "the accept loop spun while out of descriptors";
  EXPECT_TRUE(WaitFor([&] { return HttpGet(port_, "/").status == 200; }, 5s));
}

// Shutdown closes idle keep-alive connections at once instead of waiting out the grace.
TEST_F(HttpServerTest, ShutdownClosesIdleConnectionsAtOnce) {
  StartServer();
  RawConn idle(port_);
  idle.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(idle.ReadResponse(5s).find("matchbox\n"), std::string::npos);
  auto start = Clock::now();
  server_->Shutdown(10s);
  EXPECT_LT(Clock::now() - start, 2s);
  idle.ReadUntilClose(2s);
  EXPECT_TRUE(idle.closed());
  EXPECT_FALSE(RawConn(port_).connected());
}

// A bad listen address is refused naming it; a taken port is kUnavailable.
TEST_F(HttpServerTest, StartErrorsNameTheAddress) {
  HttpServer bad(ServerOptions{.address = "nonsense"}, handler_.get());
  auto r = bad.Start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  EXPECT_NE(r.error().message.find("\"nonsense\""), std::string::npos) << r.error().message;
  StartServer();
  HttpServer taken(ServerOptions{.address = "127.0.0.1:" + std::to_string(port_)}, handler_.get());
  auto t = taken.Start();
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(t.error().message.find("127.0.0.1:" + std::to_string(port_)), std::string::npos)
      << t.error().message;
}

// Secret query values are masked in the logged target; long targets truncated.
TEST(LoggableTargetTest, MasksSecretsAndTruncates) {
  EXPECT_EQ(LoggableTarget("/config?mac=x&token=abc&secret=s&password=p"),
            "/config?mac=x&token=***&secret=***&password=***");
  EXPECT_EQ(LoggableTarget("/ipxe?mac=52:54:00:ab:cd:ef"), "/ipxe?mac=52:54:00:ab:cd:ef");
  std::string long_target = "/" + std::string(1000, 'a');
  EXPECT_EQ(LoggableTarget(long_target).size(), 512u);
}

}  // namespace
}  // namespace ironboot::bootserver
