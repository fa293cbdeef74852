// `ironboot serve` as a user runs it: Matchbox's flag forms and MATCHBOX_*
// environment, errors naming the bad flag, the access log, SIGTERM draining,
// assets disabled, and the seed example data dir.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "bootserver/render.h"
#include "bootserver/store.h"
#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testutil::HttpGet;
using testutil::Process;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

const std::string kBinary = IRONBOOT_BINARY;
const fs::path kExamples = fs::path(IRONBOOT_SOURCE_DIR) / "examples/matchbox";

bool Serving(int port) {
  return HttpGet(port, "/healthz").status == 200;
}

// A small data dir: one group for 52:54:00:ab:cd:ef, its profile, one asset.
void WriteDataDir(const fs::path& dir) {
  WriteFile(dir / "groups/g.json",
            R"({"id":"g","profile":"p","selector":{"mac":"52:54:00:ab:cd:ef"}})");
  WriteFile(dir / "profiles/p.json", R"({"id":"p","boot":{"kernel":"/assets/k","args":["a"]}})");
  WriteFile(dir / "assets/k", "kernel bytes\n");
}

constexpr char kScript[] = "#!ipxe\nkernel /assets/k a\nboot\n";

// Matchbox's flag forms -flag value, -flag=value and --flag all work.
TEST(ServeCommandTest, MatchboxFlagForms) {
  TempDir dir;
  WriteDataDir(dir.path());
  const std::string data = dir.path().string();
  for (auto form : std::vector<std::vector<std::string>>{
           {"-address", "ADDR", "-data-path", data},
           {"-address=ADDR", "-data-path=" + data},
           {"--address", "ADDR", "--data-path=" + data},
       }) {
    int port = testutil::FreePort();
    for (auto& arg : form) {
      if (auto pos = arg.find("ADDR"); pos != std::string::npos) {
        arg.replace(pos, 4, "127.0.0.1:" + std::to_string(port));
      }
    }
    std::vector<std::string> argv = {kBinary, "serve"};
    argv.insert(argv.end(), form.begin(), form.end());
    Process p(argv);
    ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
    ASSERT_TRUE(p.Running()) << form[0] << "\n" << p.Output();
    EXPECT_EQ(HttpGet(port, "/ipxe?mac=52-54-00-ab-cd-ef").body, kScript) << form[0];
  }
}

// MATCHBOX_ADDRESS / MATCHBOX_DATA_PATH configure the server; the command line wins.
TEST(ServeCommandTest, EnvironmentAndCommandLineWins) {
  TempDir dir;
  WriteDataDir(dir.path());
  int env_port = testutil::FreePort();
  {
    Process p({kBinary, "serve"}, {{"MATCHBOX_ADDRESS", "127.0.0.1:" + std::to_string(env_port)},
                                   {"MATCHBOX_DATA_PATH", dir.path().string()}});
    ASSERT_TRUE(WaitFor([&] { return Serving(env_port) || !p.Running(); }, 10s)) << p.Output();
    EXPECT_EQ(HttpGet(env_port, "/ipxe?mac=52:54:00:ab:cd:ef").body, kScript);
  }
  int flag_port = testutil::FreePort();
  env_port = testutil::FreePort();
  Process p({kBinary, "serve", "-address", "127.0.0.1:" + std::to_string(flag_port)},
            {{"MATCHBOX_ADDRESS", "127.0.0.1:" + std::to_string(env_port)},
             {"MATCHBOX_DATA_PATH", dir.path().string()}});
  ASSERT_TRUE(WaitFor([&] { return Serving(flag_port) || !p.Running(); }, 10s)) << p.Output();
  EXPECT_FALSE(HttpGet(env_port, "/healthz").error.empty()) << "env address should not be bound";
}

// Bad flags and a missing data path exit non-zero with a message naming them.
TEST(ServeCommandTest, BadInvocationsExitNonZeroNamingTheProblem) {
  TempDir dir;
  WriteDataDir(dir.path());
  const std::string data = "-data-path=" + dir.path().string();
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  for (const Case& tc : std::vector<Case>{
           {{"-bogus"}, "unknown flag \"-bogus\""},
           {{"--no-such-flag=1"}, "unknown flag \"--no-such-flag=1\""},
           {{"-data-path=" + (dir.path() / "missing").string()},
            "-data-path " + (dir.path() / "missing").string() + " is not a directory"},
           {{data, "-address"}, "flag -address needs a value"},
           {{data, "-address=nonsense"}, "address \"nonsense\": want host:port"},
           {{data, "-log-level=loud"}, "flag -log-level: \"loud\" is not one of"},
           {{data, "-read-timeout=soon"}, "flag -read-timeout: \"soon\" is not a duration"},
           {{data, "extra"}, "unexpected argument \"extra\""},
       }) {
    std::vector<std::string> argv = {kBinary, "serve"};
    argv.insert(argv.end(), tc.args.begin(), tc.args.end());
    auto r = testutil::Run(argv);
    EXPECT_NE(r.exit_code, 0) << tc.args.back();
    EXPECT_NE(r.output.find(tc.want), std::string::npos) << tc.args.back() << ":\n" << r.output;
  }
  // A port already in use names the address.
  int port = testutil::FreePort();
  Process first({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port), data});
  ASSERT_TRUE(WaitFor([&] { return Serving(port) || !first.Running(); }, 10s)) << first.Output();
  auto r = testutil::Run({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port), data});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << r.output;
}

// One access-log line per request with client, method, target, status, bytes,
// duration and the matched group.
TEST(ServeCommandTest, AccessLogLine) {
  TempDir dir;
  WriteDataDir(dir.path());
  int port = testutil::FreePort();
  Process p({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port),
             "-data-path=" + dir.path().string()});
  ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
  EXPECT_EQ(HttpGet(port, "/ipxe?mac=52-54-00-ab-cd-ef&token=hunter2").status, 200);
  EXPECT_EQ(HttpGet(port, "/ipxe?mac=52:54:00:00:00:01").status, 404);
  const std::string hit =
      "client=127.0.0.1 method=GET target=\"/ipxe?mac=52-54-00-ab-cd-ef&token=***\" "
      "status=200 bytes=" +
      std::to_string(std::strlen(kScript)) + " duration_ms=";
  const std::string miss =
      "client=127.0.0.1 method=GET target=\"/ipxe?mac=52:54:00:00:00:01\" status=404 bytes=19 "
      "duration_ms=";
  ASSERT_TRUE(WaitFor(
      [&] {
        auto out = p.Output();
        return out.find(hit) != std::string::npos && out.find(miss) != std::string::npos;
      },
      5s))
      << p.Output();
  std::string out = p.Output();
  std::string hit_line = out.substr(out.find(hit));
  hit_line = hit_line.substr(0, hit_line.find('\n'));
  EXPECT_NE(hit_line.find(" group=g"), std::string::npos) << hit_line;
  std::string miss_line = out.substr(out.find(miss));
  miss_line = miss_line.substr(0, miss_line.find('\n'));
  EXPECT_NE(miss_line.find(" group=-"), std::string::npos) << miss_line;
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << "a secret reached the log";
}

// -assets-path="" disables /assets/ (404); another directory is served instead of <data>/assets.
TEST(ServeCommandTest, AssetsPathFlag) {
  TempDir dir;
  WriteDataDir(dir.path());
  WriteFile(dir / "elsewhere/k", "elsewhere\n");
  const std::string data = "-data-path=" + dir.path().string();
  int port = testutil::FreePort();
  {
    Process p({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port), data});
    ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
    EXPECT_EQ(HttpGet(port, "/assets/k").body, "kernel bytes\n");
  }
  port = testutil::FreePort();
  {
    Process p(
        {kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port), data, "-assets-path="});
    ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
    auto r = HttpGet(port, "/assets/k");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, "404 page not found\n");
    EXPECT_EQ(HttpGet(port, "/ipxe?mac=52:54:00:ab:cd:ef").body, kScript);
  }
  port = testutil::FreePort();
  {
    Process p({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port), data},
              {{"MATCHBOX_ASSETS_PATH", (dir / "elsewhere").string()}});
    ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
    EXPECT_EQ(HttpGet(port, "/assets/k").body, "elsewhere\n");
  }
}

// SIGTERM: an in-flight download finishes, then the process exits 0.
TEST(ServeCommandTest, SigtermDrainsAndExitsZero) {
  TempDir dir;
  WriteDataDir(dir.path());
  std::string big(8 << 20, 'x');
  WriteFile(dir / "assets/big.img", big);
  int port = testutil::FreePort();
  Process p({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port),
             "-data-path=" + dir.path().string()});
  ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();

  // A client with a small receive buffer that has read only the start.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rcvbuf = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string req = "GET /assets/big.img HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[65536];
  auto read_some = [&](int timeout_ms) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) {
      return false;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return false;
    }
    got.append(buf, static_cast<size_t>(n));
    return true;
  };
  ASSERT_TRUE(read_some(5000));

  ASSERT_TRUE(p.Signal(SIGTERM));
  ASSERT_TRUE(WaitFor([&] { return p.Output().find("draining") != std::string::npos; }, 5s))
      << p.Output();
  EXPECT_TRUE(p.Running()) << "exited before the download finished";
  while (read_some(10000)) {
  }
  ::close(fd);
  size_t header_end = got.find("\r\n\r\n");
  ASSERT_NE(header_end, std::string::npos);
  EXPECT_EQ(got.size() - header_end - 4, big.size());
  auto status = p.Wait(10s);
  ASSERT_TRUE(status.has_value()) << p.Output();
  EXPECT_EQ(*status, 0) << p.Output();
  EXPECT_NE(p.Output().find("stopped"), std::string::npos) << p.Output();
}

// SIGHUP reloads the data dir at once; SIGINT drains and exits 0 like SIGTERM.
TEST(ServeCommandTest, SighupReloadsSigintExitsZero) {
  TempDir dir;
  WriteDataDir(dir.path());
  int port = testutil::FreePort();
  Process p({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port),
             "-data-path=" + dir.path().string()});
  ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
  ASSERT_TRUE(p.Signal(SIGHUP));
  EXPECT_TRUE(
      WaitFor([&] { return p.Output().find("SIGHUP: reloading") != std::string::npos; }, 5s))
      << p.Output();
  EXPECT_TRUE(p.Running());
  EXPECT_EQ(HttpGet(port, "/ipxe?mac=52:54:00:ab:cd:ef").body, kScript);
  ASSERT_TRUE(p.Signal(SIGINT));
  auto status = p.Wait(10s);
  ASSERT_TRUE(status.has_value()) << p.Output();
  EXPECT_EQ(*status, 0) << p.Output();
  EXPECT_NE(p.Output().find("signal=SIGINT: draining"), std::string::npos) << p.Output();
}

// -log-level=warn (or MATCHBOX_LOG_LEVEL) silences the info-level access log;
// Matchbox's gRPC flags are accepted with a warning so an old unit still starts.
TEST(ServeCommandTest, LogLevelAndIgnoredGrpcFlags) {
  TempDir dir;
  WriteDataDir(dir.path());
  int port = testutil::FreePort();
  Process p({kBinary, "serve", "-address=127.0.0.1:" + std::to_string(port),
             "-data-path=" + dir.path().string(), "-rpc-address=127.0.0.1:8081",
             "-cert-file=/etc/matchbox/server.crt"},
            {{"MATCHBOX_LOG_LEVEL", "warn"}});
  ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
  EXPECT_EQ(HttpGet(port, "/ipxe?mac=52:54:00:ab:cd:ef").body, kScript);
  ASSERT_TRUE(p.Signal(SIGTERM));
  ASSERT_TRUE(p.Wait(10s).has_value());
  std::string out = p.Output();
  EXPECT_NE(out.find("flag -rpc-address is ignored"), std::string::npos) << out;
  EXPECT_NE(out.find("flag -cert-file is ignored"), std::string::npos) << out;
  EXPECT_EQ(out.find("method=GET"), std::string::npos) << out;
}

// --help exits 0 and lists each Matchbox flag with its MATCHBOX_* variable.
TEST(ServeCommandTest, HelpListsFlagsAndEnvironment) {
  auto r = testutil::Run({kBinary, "serve", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* want :
       {"-address", "MATCHBOX_ADDRESS", "-data-path", "MATCHBOX_DATA_PATH", "-assets-path",
        "MATCHBOX_ASSETS_PATH", "-log-level", "MATCHBOX_LOG_LEVEL"}) {
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  }
}

// Serving examples/matchbox answers the seed's first control plane (MAC
// 00:23:24:e7:29:40) with profile cp-1.11.3-1's script and serves its assets.
TEST(ServeCommandTest, ServesSeedExample) {
  int port = testutil::FreePort();
  Process p({kBinary, "serve", "-address", "127.0.0.1:" + std::to_string(port), "-data-path",
             kExamples.string()});
  ASSERT_TRUE(WaitFor([&] { return Serving(port) || !p.Running(); }, 10s)) << p.Output();
  auto profile = ParseProfile(testutil::ReadFile(kExamples / "profiles/cp-1.11.3-1.json"),
                              "profiles/cp-1.11.3-1.json");
  ASSERT_TRUE(profile) << profile.error().message;
  for (const char* mac : {"00:23:24:e7:29:40", "00-23-24-E7-29-40"}) {
    auto r = HttpGet(port, std::string("/ipxe?mac=") + mac);
    EXPECT_EQ(r.status, 200) << mac;
    EXPECT_EQ(r.body, IpxeScript(*profile)) << mac;
    EXPECT_NE(r.body.find("talos.config=http://10.0.112.2/assets/talos/1.11.3/controlplane1.yaml"),
              std::string::npos)
        << r.body;
  }
  EXPECT_NE(HttpGet(port, "/ipxe?mac=00:23:24:e7:29:41").body.find("controlplane2.yaml"),
            std::string::npos);
  EXPECT_EQ(HttpGet(port, "/ipxe?mac=00:23:24:e7:29:99").status, 404);
  EXPECT_EQ(HttpGet(port, "/assets/talos/1.11.3/amd64/vmlinuz").status, 200);
  auto ready = HttpGet(port, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find("(3 groups, 3 profiles)"), std::string::npos) << ready.body;
  EXPECT_EQ(ready.body.find("problem"), std::string::npos) << ready.body;
}

}  // namespace
}  // namespace ironboot::bootserver
