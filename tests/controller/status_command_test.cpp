// `ironboot status` as a user runs it: the built binary against a real HTTP
// server on loopback (a stub that answers canned /status documents, and a
// real `ironboot serve` in Matchbox mode, which has no /status).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/testutil/testutil.h"

namespace ironboot::controller {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A one-thread HTTP/1.1 server on 127.0.0.1:<ephemeral> that answers every
// request with the same status line, content type and body, and records the
// request targets. With `hang`, it reads the request and never answers.
class StubServer {
 public:
  StubServer(int status, std::string content_type, std::string body, bool hang = false)
      : status_(status),
        content_type_(std::move(content_type)),
        body_(std::move(body)),
        hang_(hang) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 16) != 0) {
      ADD_FAILURE() << "stub server: bind/listen failed";
      return;
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~StubServer() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
  }
  StubServer(const StubServer&) = delete;
  StubServer& operator=(const StubServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> targets() const {
    std::lock_guard lock(mu_);
    return targets_;
  }

 private:
  void Serve() {
    std::vector<int> held;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) {
        continue;
      }
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        pollfd c{conn, POLLIN, 0};
        if (::poll(&c, 1, 2000) <= 0) {
          break;
        }
        ssize_t n = ::read(conn, buf, sizeof(buf));
        if (n <= 0) {
          break;
        }
        request.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        auto first_space = request.find(' ');
        auto second_space = request.find(' ', first_space + 1);
        if (first_space != std::string::npos && second_space != std::string::npos) {
          targets_.push_back(request.substr(first_space + 1, second_space - first_space - 1));
        }
      }
      if (hang_) {
        held.push_back(conn);
        continue;
      }
      std::string response = "HTTP/1.1 " + std::to_string(status_) +
                             " Stub\r\nContent-Type: " + content_type_ +
                             "\r\nContent-Length: " + std::to_string(body_.size()) +
                             "\r\nConnection: close\r\n\r\n" + body_;
      size_t off = 0;
      while (off < response.size()) {
        ssize_t n = ::write(conn, response.data() + off, response.size() - off);
        if (n <= 0) {
          break;
        }
        off += static_cast<size_t>(n);
      }
      ::close(conn);
    }
    for (int conn : held) {
      ::close(conn);
    }
  }

  int status_;
  std::string content_type_;
  std::string body_;
  bool hang_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> targets_;
};

// A /status document of a GitOps server with a fleet mid-rollout.
json ProgressingStatus() {
  return json::parse(R"json({
    "source": {"description": "git file:///repo (main)", "last_fetch": {
  "result" : "ok"}},
    "served": {"revision": "abc1234", "published_at": "2026-11-27T13:59:58Z", "machines": []},
    "rejected": {"revision": "bad0001", "time": "2026-11-27T14:00:00Z",
                 "errors": ["machines/w-9.yaml:4: spec.role: want controlplane or worker"],
                 "warnings": []},
    "held_back": [],
    "fleet": {
  "machines": [
        {"name": "cp-1", "role": "controlplane", "desired": "v1.11.5", "served": "v1.11.5",
         "observed": "v1.11.5", "phase": "running", "ready": true, "last_boot": "2026-11-27T14:00:10Z"},
        {"name": "w-1", "role": "worker", "desired": "v1.11.5", "served": "v1.11.5",
         "observed": "v1.11.3", "phase": "upgrading", "ready": false, "last_boot": ""},
        {"name": "w-2", "role": "worker", "desired": "v1.11.5", "served": "v1.11.3",
         "observed": "v1.11.3", "phase": "failed", "ready": false, "last_boot": "",
         "failed_reason": "gate boot timed out after 10m"}],
      "rollout": {"state": "progressing", "strategy": "rolling", "halted_reason": "",
                  "blocked_reason": "",
                  "steps": [{"machine": "w-1", "from": "v1.11.3", "to": "v1.11.5", "rollback": false,
                             "canary": false, "phase": "gates", "gate": "version",
                             "gates_passed": ["boot"], "started": "2026-11-27T14:01:00.000Z",
                             "reboot_sent": "2026-11-27T14:01:01.000Z",
                             "waiting_on": "node reports v1.11.3"}],
                  "progress": {"done": 1, "pending": 0, "in_progress": 1, "failed": 1, "total": 3},
                  "completed_steps": []},
      "bootstrap": {
    "node" : "cp-1",
             "decided" : "2026-11-27T10:00:00.000Z",
                         "done" : "2026-11-27T10:00:05.000Z",
                                  "found_running" : false,
                                                    "status" : ""
  }
}
})json");
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Against a server with a fleet: exit 0, the header with the rejected
// revision, the rollout and step lines, the table and the failed reason; the
// request went to /status (a trailing slash on --server is fine).
TEST(StatusCommand, PrintsFleetFromServer) {
  StubServer server(200, "application/json", ProgressingStatus().dump(2) + "\n");
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "--server", server.url() + "/"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output,
                       "served: abc1234 (published 2026-11-27T13:59:58Z), 0 machines; rejected: "
                       "bad0001 (1 error)\n"))
      << r.output;
  EXPECT_TRUE(Contains(r.output,
                       "rollout: progressing (rolling), 1/3 done, 1 in progress, 1 failed\n"
                       "  step: w-1 v1.11.3 -> v1.11.5, gates, gate version"))
      << r.output;
  EXPECT_TRUE(Contains(r.output, "    waiting on: node reports v1.11.3\n")) << r.output;
  EXPECT_TRUE(Contains(r.output, "bootstrap: done on cp-1 at 2026-11-27T10:00:05.000Z\n"))
      << r.output;
  EXPECT_TRUE(Contains(r.output,
                       "NAME  ROLE          DESIRED  OBSERVED  PHASE      READY  LAST-BOOT\n"
                       "cp-1  controlplane  v1.11.5  v1.11.5   running    yes    "
                       "2026-11-27T14:00:10Z\n"
                       "w-1   worker        v1.11.5  v1.11.3   upgrading  no     -\n"
                       "w-2   worker        v1.11.5  v1.11.3   failed     no     -\n"
                       "w-2 failed: gate boot timed out after 10m\n"))
      << r.output;
  EXPECT_EQ(server.targets(), std::vector<std::string>{"/status"});
}

// IRONBOOT_SERVER picks the server when --server is not given; --json prints
// the document as the server sent it.
TEST(StatusCommand, EnvServerAndJson) {
  std::string body = ProgressingStatus().dump(2) + "\n";
  StubServer server(200, "application/json", body);
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "--json"}, std::nullopt,
                         {{"IRONBOOT_SERVER", server.url()}});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, body);
}

// Without a fleet section (no Talos credentials) the GitOps part prints and
// the reason there is no fleet is given; exit 0.
TEST(StatusCommand, NoFleetSection) {
  json status = ProgressingStatus();
  status.erase("fleet");
  StubServer server(200, "application/json", status.dump());
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "-server", server.url()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "served: abc1234")) << r.output;
  EXPECT_TRUE(Contains(r.output, "fleet: not managed: this server has no Talos API credentials"))
      << r.output;
}

// Nothing listening: exit 1 naming the URL and curl's reason.
TEST(StatusCommand, UnreachableServer) {
  int port = testutil::FreePort();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "--server", url});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "ironboot status: cannot reach " + url + "/status: ")) << r.output;
  EXPECT_TRUE(Contains(r.output, "onnect"))
      << r.output;  // "Failed to connect ... Connection refused"
}

// A server that accepts but never answers: --timeout bounds the wait, exit 1
// naming the URL.
TEST(StatusCommand, TimeoutOnSilentServer) {
  StubServer server(200, "application/json", "{}", /*hang=*/true);
  auto start = std::chrono::steady_clock::now();
  auto r =
      testutil::Run({IRONBOOT_BINARY, "status", "--server", server.url(), "--timeout", "300ms"});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "ironboot status: cannot reach " + server.url() + "/status: "))
      << r.output;
  EXPECT_TRUE(Contains(r.output, "imed out")) << r.output;
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A non-200 answer: exit 1 naming the URL and the HTTP status.
TEST(StatusCommand, Non200Answer) {
  StubServer server(503, "text/plain", "overloaded\n");
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "--server", server.url()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(
      Contains(r.output, "ironboot status: " + server.url() + "/status answered HTTP 503, not 200"))
      << r.output;
}

// A 200 answer that is not JSON (or not an object): exit 1 naming the URL,
// the content type and the start of the body.
TEST(StatusCommand, BadJsonAnswer) {
  StubServer server(200, "text/html", "<html>hello</html>");
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "--server", server.url()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "ironboot status: " + server.url() +
                                     "/status answered HTTP 200 but not a JSON status document "
                                     "(content-type \"text/html\", body \"<html>hello</html>\")"))
      << r.output;

  StubServer array_server(200, "application/json", "[1, 2]");
  r = testutil::Run({IRONBOOT_BINARY, "status", "--server", array_server.url()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "not a JSON status document")) << r.output;
}

// A real `ironboot serve` in Matchbox mode has no /status: exit 1 with the
// 404 and a hint that GitOps mode (--repo) is needed.
TEST(StatusCommand, MatchboxModeServerHasNoStatus) {
  testutil::TempDir tmp;
  fs::path data = tmp.path() / "data";
  fs::copy(fs::path(IRONBOOT_SOURCE_DIR) / "examples" / "matchbox", data,
           fs::copy_options::recursive);
  int port = testutil::FreePort();
  testutil::Process serve({IRONBOOT_BINARY, "serve", "-address",
                           "127.0.0.1:" + std::to_string(port), "-data-path", data.string(),
                           "-assets-path", (data / "assets").string()});
  ASSERT_TRUE(testutil::WaitFor([&] { return testutil::HttpGet(port, "/readyz").status == 200; }))
      << serve.Output();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "--server", url});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "ironboot status: " + url +
                                     "/status answered HTTP 404, not 200 (no /status here: is it "
                                     "`ironboot serve` in GitOps mode, with --repo?"))
      << r.output;
}

// Against a real GitOps server with a fleet (`ironboot demo`: serve on a git
// repo + a simulated Talos fleet over gRPC): the real /status renders with
// the bootstrap done and one row per machine, so the formatter and
// UpgradeLoop::Status() agree on the shape.
TEST(StatusCommand, RealDemoFleet) {
  testutil::TempDir tmp;
  int port = testutil::FreePort();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  testutil::Process demo({IRONBOOT_BINARY, "demo", "--address", "127.0.0.1:" + std::to_string(port),
                          "--dir", (tmp.path() / "demo").string(),
                          "--machine-net", testutil::UniqueLoopbackNet()});
  ASSERT_TRUE(testutil::WaitFor([&] { return Contains(demo.Output(), "fleet up in"); },
                                std::chrono::seconds(60)))
      << demo.Output();
  testutil::CommandResult r;
  // The upgrade loop's report follows its next pass: poll until it shows the
  // bootstrap and all five machines observed.
  bool shown = testutil::WaitFor(
      [&] {
        r = testutil::Run({IRONBOOT_BINARY, "status", "--server", url});
        return r.exit_code == 0 && Contains(r.output, "bootstrap: done on controlplane1") &&
               Contains(r.output, "5/5 done");
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(shown) << r.output << demo.Output();
  EXPECT_TRUE(Contains(r.output, "served: main@sha1:")) << r.output;
  EXPECT_TRUE(Contains(
      r.output, "NAME           ROLE          DESIRED  OBSERVED  PHASE    READY  LAST-BOOT\n"))
      << r.output;
  for (const char* name :
       {"controlplane1 ", "controlplane2 ", "controlplane3 ", "worker1 ", "worker2 "}) {
    EXPECT_TRUE(Contains(r.output, std::string("\n") + name)) << name << "\n" << r.output;
  }
  EXPECT_FALSE(Contains(r.output, "fleet: not managed")) << r.output;
  demo.Signal(SIGTERM);
  EXPECT_TRUE(demo.Wait(std::chrono::seconds(20)).has_value()) << demo.Output();
}

// Usage errors exit 2 naming the bad flag or argument; --help exits 0.
TEST(StatusCommand, UsageErrors) {
  auto r = testutil::Run({IRONBOOT_BINARY, "status", "--timeout", "soon"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--timeout \"soon\" is not a duration")) << r.output;
  r = testutil::Run({IRONBOOT_BINARY, "status", "extra"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "unexpected argument \"extra\"")) << r.output;
  r = testutil::Run({IRONBOOT_BINARY, "status", "--bogus"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "bogus")) << r.output;
  r = testutil::Run({IRONBOOT_BINARY, "status", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "usage: ironboot status")) << r.output;
}

}  // namespace
}  // namespace ironboot::controller
