// Tests of GitSource against real repositories made with the git CLI, served
// over file://, a local path, git:// (git daemon) and smart HTTP (lighttpd +
// git http-backend), all on loopback.

#include "controller/git_source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <git2.h>
#include <openssl/evp.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "common/log.h"
#include "tests/testutil/git.h"
#include "tests/testutil/testutil.h"

namespace ironboot::controller {
namespace {

namespace fs = std::filesystem;
using testutil::Git;
using testutil::GitEnv;
using testutil::Accepts;
using testutil::GitDaemon;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using testutil::Process;
using testutil::Run;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

// A bare repository under <root>/srv/<name> and a work clone that pushes to it.
class ClusterRepo {
 public:
  ClusterRepo(const fs::path& root, const std::string& name, const std::string& branch = "main")
      : bare_(root / "srv" / name), work_(root / ("work-" + name)), branch_(branch) {
    fs::create_directories(bare_);
    Git(bare_, {"init", "-q", "--bare", "-b", branch});
    fs::create_directories(work_);
    Git(work_, {"init", "-q", "-b", branch});
    Git(work_, {"remote", "add", "origin", bare_.string()});
  }

  // Writes `files` (an empty content deletes the file), commits and pushes
  // the current branch. Returns the new commit id.
  std::string Commit(const std::map<std::string, std::string>& files,
                     const std::string& message = "change") {
    for (const auto& [path, content] : files) {
      if (content.empty()) {
        fs::remove(work_ / path);
      } else {
        WriteFile(work_ / path, content);
      }
    }
    Git(work_, {"add", "-A"});
    Git(work_, {"commit", "-q", "-m", message});
    Git(work_, {"push", "-q", "-f", "origin", "HEAD"});
    return Head();
  }
  std::string Head() { return Git(work_, {"rev-parse", "HEAD"}); }

  const fs::path& bare() const { return bare_; }
  const fs::path& work() const { return work_; }
  std::string FileUrl() const { return "file://" + bare_.string(); }

 private:
  fs::path bare_;
  fs::path work_;
  std::string branch_;
};

// lighttpd running git http-backend as CGI for <root>/srv under /git/;
// /git/private.git requires basic auth alice:<password>.
class HttpGitServer {
 public:
  static constexpr const char* kPassword = "correct-horse-battery-staple";

  // With `tls`, serves https with a certificate for 127.0.0.1 signed by a
  // fresh CA written to <root>/tls/ca.crt.
  explicit HttpGitServer(const fs::path& root, bool tls = false)
      : port_(testutil::FreePort()), tls_(tls) {
    fs::create_directories(root / "www");
    WriteFile(root / "lighttpd-users", std::string("alice:") + kPassword + "\n");
    std::string conf =
        "server.document-root = \"" + (root / "www").string() + "\"\n" +
        "server.bind = \"127.0.0.1\"\n" + "server.port = " + std::to_string(port_) + "\n" +
        "server.errorlog = \"" + (root / "lighttpd-error.log").string() + "\"\n" +
        "server.modules = (\"mod_alias\", \"mod_setenv\", \"mod_auth\", \"mod_authn_file\", "
        "\"mod_cgi\")\n"
        "alias.url = (\"/git\" => \"/usr/lib/git-core/git-http-backend\")\n"
        "$HTTP[\"url\"] =~ \"^/git\" {\n"
        "  cgi.assign = (\"\" => \"\")\n"
        "  setenv.add-environment = (\"GIT_PROJECT_ROOT\" => \"" +
        (root / "srv").string() +
        "\", \"GIT_HTTP_EXPORT_ALL\" => \"\", \"GIT_CONFIG_NOSYSTEM\" => \"1\")\n"
        "}\n"
        "auth.backend = \"plain\"\n"
        "auth.backend.plain.userfile = \"" +
        (root / "lighttpd-users").string() +
        "\"\n"
        "auth.require = (\"/git/private.git\" => (\"method\" => \"basic\", \"realm\" => "
        "\"git\", \"require\" => \"valid-user\"))\n";
    if (tls) {
      fs::path dir = root / "tls";
      fs::create_directories(dir);
      WriteFile(dir / "san.ext", "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\n");
      for (const char* cmd :
           {"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            "-keyout ca.key -out ca.crt -days 2 -subj /CN=ironboot-test-ca",
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            "-keyout server.key -out server.csr -subj /CN=127.0.0.1",
            "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
            "-out server.crt -days 2 -extfile san.ext"}) {
        auto r = testutil::Sh("cd " + dir.string() + " && " + std::string(cmd) + " 2>&1");
        EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.output;
      }
      conf +=
          "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\n"
          "ssl.pemfile = \"" +
          (dir / "server.crt").string() + "\"\nssl.privkey = \"" + (dir / "server.key").string() +
          "\"\n";
      ca_file_ = dir / "ca.crt";
    }
    WriteFile(root / "lighttpd.conf", conf);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"lighttpd", "-D", "-f", (root / "lighttpd.conf").string()});
    EXPECT_TRUE(WaitFor([&] { return Accepts(port_); })) << process_->Output();
  }
  std::string Url(const std::string& repo) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
           "/git/" + repo;
  }
  const fs::path& ca_file() const { return ca_file_; }

 private:
  int port_;
  bool tls_;
  fs::path ca_file_;
  std::unique_ptr<Process> process_;
};

// Captures what the "source" logger writes during a test.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(200)) {
    logger_ = Logger("source");
    old_level_ = logger_->level();
    logger_->set_level(spdlog::level::debug);
    logger_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = logger_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    logger_->set_level(old_level_);
  }
  std::string Text() const {
    std::string all;
    for (const auto& line : sink_->last_formatted()) {
      all += line;
    }
    return all;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  spdlog::level::level_enum old_level_;
};

GitSourceOptions Opts(std::string url, std::string ref = "", std::string path = "") {
  GitSourceOptions options;
  options.url = std::move(url);
  options.ref = std::move(ref);
  options.path = std::move(path);
  return options;
}
GitSourceOptions WithState(GitSourceOptions options, fs::path state_dir) {
  options.state_dir = std::move(state_dir);
  return options;
}

class GitSourceTest : public ::testing::Test {
 protected:
  std::unique_ptr<GitSource> MakeSource(GitSourceOptions options) {
    if (options.state_dir.empty()) {
      options.state_dir = tmp_ / "state";
    }
    auto source = GitSource::Create(std::move(options));
    EXPECT_TRUE(source.has_value()) << source.error().message;
    return source ? std::move(*source) : nullptr;
  }

  TempDir tmp_;
};

// First fetch over file:// reads every file of the commit from the object
// database into the snapshot, with "<ref>@sha1:<hex>" as the revision.
TEST_F(GitSourceTest, FirstFetchOverFileUrl) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  std::string sha = repo.Commit(
      {{"cluster.yaml", "kind: Cluster\n"}, {"machines/cp1.yaml", "kind: Machine\nname: cp1\n"}});
  auto source = MakeSource(Opts(repo.FileUrl(), "main"));
  auto snap = source->Fetch();
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->revision, "main@sha1:" + sha);
  EXPECT_EQ(snap->commit, sha);
  EXPECT_EQ(snap->files, (std::map<std::string, std::string>{
                             {"cluster.yaml", "kind: Cluster\n"},
                             {"machines/cp1.yaml", "kind: Machine\nname: cp1\n"}}));
  // A bare mirror in the state dir, no working tree.
  EXPECT_TRUE(fs::exists(source->mirror_dir() / "HEAD"));
  EXPECT_TRUE(source->mirror_dir().string().starts_with((tmp_ / "state" / "git").string()));
  EXPECT_FALSE(fs::exists(source->mirror_dir() / "cluster.yaml"));
  EXPECT_EQ(source->Describe(), repo.FileUrl() + " main");
}

// A new commit (file changed, file deleted) is picked up by the next fetch.
TEST_F(GitSourceTest, NewCommitPickedUpOverLocalPath) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  repo.Commit({{"a.yaml", "a: 1\n"}, {"b.yaml", "b: 1\n"}});
  auto source = MakeSource(Opts(repo.bare().string(), "main"));
  ASSERT_TRUE(source->Fetch());
  std::string sha2 = repo.Commit({{"a.yaml", "a: 2\n"}, {"b.yaml", ""}});
  auto snap = source->Fetch();
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->commit, sha2);
  EXPECT_EQ(snap->files, (std::map<std::string, std::string>{{"a.yaml", "a: 2\n"}}));
}

// A damaged mirror (objects removed) is recreated with a warning and the
// fetch succeeds; two sources on one mirror fetch concurrently without harm.
TEST_F(GitSourceTest, DamagedMirrorRecreatedAndConcurrentFetches) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  std::string sha = repo.Commit({{"a.yaml", "a\n"}});
  auto source = MakeSource(Opts(repo.FileUrl(), "main"));
  ASSERT_TRUE(source->Fetch());
  fs::remove_all(source->mirror_dir() / "objects");

  LogCapture logs;
  auto snap = source->Fetch();
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->commit, sha);
  EXPECT_THAT(logs.Text(), HasSubstr("mirror=" + source->mirror_dir().string() +
                                     " is not a readable git repository"));

  auto twin = MakeSource(Opts(repo.FileUrl(), "main"));
  ASSERT_EQ(twin->mirror_dir(), source->mirror_dir());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto r = (i % 2 == 0 ? source : twin)->Fetch();
      if (r && r->commit == sha) {
        ++ok;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok.load(), 4);
}

// With no ref configured, the remote HEAD's branch is followed and named in
// the revision.
TEST_F(GitSourceTest, DefaultRefIsRemoteHeadBranch) {
  ClusterRepo repo(tmp_.path(), "cluster.git", "trunk");
  std::string sha = repo.Commit({{"a.yaml", "a\n"}});
  auto source = MakeSource(Opts(repo.FileUrl()));
  auto snap = source->Fetch();
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->revision, "trunk@sha1:" + sha);
}

// Tags (annotated, short or full name) and commit ids select that commit,
// not the branch tip; an unknown commit is kNotFound naming it and the URL.
TEST_F(GitSourceTest, TagAndCommitRefs) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  std::string sha1 = repo.Commit({{"v.yaml", "v1\n"}});
  Git(repo.work(), {"tag", "-a", "-m", "release", "v1.0"});
  Git(repo.work(), {"push", "-q", "origin", "v1.0"});
  std::string sha2 = repo.Commit({{"v.yaml", "v2\n"}});

  for (std::string ref : std::vector<std::string>{"v1.0", "refs/tags/v1.0", sha1}) {
    SCOPED_TRACE(ref);
    auto snap = MakeSource(Opts(repo.FileUrl(), ref))->Fetch();
    ASSERT_TRUE(snap) << snap.error().message;
    EXPECT_EQ(snap->commit, sha1);
    EXPECT_EQ(snap->revision, ref + "@sha1:" + sha1);
    EXPECT_EQ(snap->files.at("v.yaml"), "v1\n");
  }
  auto tip = MakeSource(Opts(repo.FileUrl(), "refs/heads/main"))->Fetch();
  ASSERT_TRUE(tip);
  EXPECT_EQ(tip->commit, sha2);

  std::string missing(40, 'a');
  auto err = MakeSource(Opts(repo.FileUrl(), missing))->Fetch();
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(err.error().message, HasSubstr(missing));
  EXPECT_THAT(err.error().message, HasSubstr(repo.FileUrl()));
}

// `path` selects a subdirectory; file names are relative to it. A missing
// path is kNotFound, a file is kInvalid, ".." is refused at creation.
TEST_F(GitSourceTest, SubdirectoryPath) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  std::string sha = repo.Commit({{"README.md", "readme\n"},
                                 {"clusters/prod/cluster.yaml", "prod\n"},
                                 {"clusters/prod/machines/cp1.yaml", "cp1\n"},
                                 {"clusters/lab/cluster.yaml", "lab\n"}});
  auto snap = MakeSource(Opts(repo.FileUrl(), "main", "/clusters/prod/"))->Fetch();
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->files, (std::map<std::string, std::string>{{"cluster.yaml", "prod\n"},
                                                             {"machines/cp1.yaml", "cp1\n"}}));

  auto missing = MakeSource(Opts(repo.FileUrl(), "main", "clusters/qa"))->Fetch();
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(missing.error().message,
              HasSubstr("\"clusters/qa\" not found in " + repo.FileUrl() + " at main@sha1:" + sha));

  auto file = MakeSource(Opts(repo.FileUrl(), "main", "README.md"))->Fetch();
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(file.error().message, HasSubstr("is a file, want a directory"));

  auto escape =
      GitSource::Create(WithState(Opts(repo.FileUrl(), "", "clusters/../../etc"), tmp_ / "state"));
  ASSERT_FALSE(escape);
  EXPECT_EQ(escape.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(escape.error().message, HasSubstr("\"clusters/../../etc\""));
}

// Files over the size limit, symlinks and submodules are skipped with a
// warning naming them; the rest of the snapshot is read.
TEST_F(GitSourceTest, SkipsLargeFilesSymlinksAndSubmodules) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  WriteFile(repo.work() / "small.yaml", "ok\n");
  WriteFile(repo.work() / "big.iso", std::string(300, 'x'));
  fs::create_symlink("small.yaml", repo.work() / "link.yaml");
  std::string sub_sha = repo.Commit({{"small.yaml", "ok\n"}});
  Git(repo.work(), {"update-index", "--add", "--cacheinfo", "160000," + sub_sha + ",vendor/sub"});
  Git(repo.work(), {"commit", "-q", "-m", "submodule"});
  Git(repo.work(), {"push", "-q", "origin", "HEAD"});

  LogCapture logs;
  GitSourceOptions options = Opts(repo.FileUrl(), "main");
  options.max_file_bytes = 100;
  auto snap = MakeSource(options)->Fetch();
  ASSERT_TRUE(snap) << snap.error().message;
  EXPECT_EQ(snap->files, (std::map<std::string, std::string>{{"small.yaml", "ok\n"}}));
  EXPECT_THAT(logs.Text(), HasSubstr("skipping large file"));
  EXPECT_THAT(logs.Text(), HasSubstr("file=big.iso bytes=300 limit=100"));
  EXPECT_THAT(logs.Text(), HasSubstr("skipping symlink"));
  EXPECT_THAT(logs.Text(), HasSubstr("skipping submodule"));
}

// A force-push over git:// is followed (the new history is served) and
// logged at warn with the old and new commits.
TEST_F(GitSourceTest, ForcePushFollowedOverGitDaemon) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  repo.Commit({{"a.yaml", "base\n"}});
  std::string old_sha = repo.Commit({{"a.yaml", "bad\n"}});
  GitDaemon daemon(tmp_ / "srv", testutil::FreePort());
  auto source = MakeSource(Opts(daemon.Url("cluster.git"), "main"));
  auto first = source->Fetch();
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->commit, old_sha);

  Git(repo.work(), {"reset", "-q", "--hard", "HEAD~1"});
  std::string new_sha = repo.Commit({{"a.yaml", "rewritten\n"}});
  LogCapture logs;
  auto second = source->Fetch();
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->commit, new_sha);
  EXPECT_EQ(second->files.at("a.yaml"), "rewritten\n");
  EXPECT_THAT(logs.Text(), HasSubstr("warning"));
  EXPECT_THAT(logs.Text(), HasSubstr("force-push detected url=" + daemon.Url("cluster.git") +
                                     " ref=main old=" + old_sha + " new=" + new_sha));

  // A fast-forward afterwards is not a force-push.
  repo.Commit({{"a.yaml", "next\n"}});
  LogCapture quiet;
  ASSERT_TRUE(source->Fetch());
  EXPECT_THAT(quiet.Text(), Not(HasSubstr("force-push")));
}

// A deleted branch is kNotFound naming the ref and the URL (the mirror prunes
// it, so the stale commit is not served).
TEST_F(GitSourceTest, DeletedBranchIsNotFound) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  repo.Commit({{"a.yaml", "a\n"}});
  Git(repo.work(), {"push", "-q", "origin", "HEAD:refs/heads/feature"});
  GitDaemon daemon(tmp_ / "srv", testutil::FreePort());
  auto source = MakeSource(Opts(daemon.Url("cluster.git"), "feature"));
  ASSERT_TRUE(source->Fetch());

  Git(repo.work(), {"push", "-q", "origin", "--delete", "feature"});
  auto gone = source->Fetch();
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(gone.error().message,
              HasSubstr("ref \"feature\" not found at " + daemon.Url("cluster.git")));
}

// A remote that is down fails fast with kUnavailable naming the URL; when it
// is back, the next fetch succeeds.
TEST_F(GitSourceTest, RemoteDownThenUp) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  repo.Commit({{"a.yaml", "a\n"}});
  GitDaemon daemon(tmp_ / "srv", testutil::FreePort());
  auto source = MakeSource(Opts(daemon.Url("cluster.git"), "main"));
  ASSERT_TRUE(source->Fetch());

  daemon.Kill();
  std::string sha2 = repo.Commit({{"a.yaml", "b\n"}});
  auto start = std::chrono::steady_clock::now();
  auto down = source->Fetch();
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(down.error().message, HasSubstr(daemon.Url("cluster.git")));
  EXPECT_THAT(down.error().message, HasSubstr("failed to connect to 127.0.0.1"));
  EXPECT_LT(elapsed, 2s);

  daemon.Start();
  auto up = source->Fetch();
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up->commit, sha2);
}

// A remote that accepts the connection but never answers fails with
// kUnavailable after the I/O timeout instead of hanging.
TEST_F(GitSourceTest, SilentRemoteTimesOut) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);  // never accepted: the kernel completes handshakes
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string url = "git://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/cluster.git";

  GitSourceOptions options = Opts(url, "main");
  options.io_timeout = 300ms;
  auto source = MakeSource(options);
  auto start = std::chrono::steady_clock::now();
  auto result = source->Fetch();
  auto elapsed = std::chrono::steady_clock::now() - start;
  SetGitNetworkTimeouts(10s, 60s);
  close(fd);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(result.error().message, HasSubstr(url));
  EXPECT_THAT(result.error().message, HasSubstr("timed out"));
  EXPECT_LT(elapsed, 3s);
}

// A silent remote over ssh (libssh2 waits on the socket with no timeout of
// its own) and over git:// with a long read timeout: the fetch deadline
// shuts the connection down and the fetch fails with kUnavailable.
TEST_F(GitSourceTest, FetchDeadlineBoundsSilentSshAndGitRemotes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);  // never accepted, never answers
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string port = std::to_string(ntohs(addr.sin_port));
  WriteFile(tmp_ / "known_hosts", "");

  for (std::string url : std::vector<std::string>{"ssh://git@127.0.0.1:" + port + "/cluster.git",
                                                  "git://127.0.0.1:" + port + "/cluster.git"}) {
    SCOPED_TRACE(url);
    GitSourceOptions options = Opts(url, "main");
    options.fetch_timeout = 500ms;
    if (url.starts_with("ssh")) {
      options.credentials.ssh_known_hosts_file = tmp_ / "known_hosts";
    }
    auto source = MakeSource(options);
    auto start = std::chrono::steady_clock::now();
    auto result = source->Fetch();
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
    EXPECT_THAT(result.error().message,
                HasSubstr("fetch " + url + ": no complete answer within 500 ms (fetch_timeout)"));
    EXPECT_GE(elapsed, 500ms);
    EXPECT_LT(elapsed, 3s);
  }
  close(fd);
}

// A remote that does not complete the TCP handshake (its accept queue is
// full, so the kernel drops our SYN) fails with kUnavailable after the connect
// timeout instead of waiting for the kernel's minutes-long SYN retries.
TEST_F(GitSourceTest, UnansweredConnectTimesOut) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 0), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {  // fill the accept queue, never accepted
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    fillers.push_back(fd);
  }
  std::string url = "git://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/cluster.git";

  GitSourceOptions options = Opts(url, "main");
  options.connect_timeout = 300ms;
  auto source = MakeSource(options);
  auto start = std::chrono::steady_clock::now();
  auto result = source->Fetch();
  auto elapsed = std::chrono::steady_clock::now() - start;
  SetGitNetworkTimeouts(10s, 60s);
  for (int fd : fillers) {
    close(fd);
  }
  close(listener);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(result.error().message, HasSubstr(url));
  EXPECT_THAT(result.error().message, HasSubstr("timed out after 300 ms"));
  EXPECT_LT(elapsed, 3s);
}

// A local repository that does not exist is kUnavailable naming the URL.
TEST_F(GitSourceTest, MissingLocalRepositoryIsUnavailable) {
  std::string url = "file://" + (tmp_ / "nope.git").string();
  auto result = MakeSource(Opts(url, "main"))->Fetch();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(result.error().message, HasSubstr(url));
}

// Smart HTTP through git http-backend: first fetch and a new commit.
TEST_F(GitSourceTest, SmartHttpFetch) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  repo.Commit({{"a.yaml", "a\n"}});
  HttpGitServer http(tmp_.path());
  auto source = MakeSource(Opts(http.Url("cluster.git")));
  auto first = source->Fetch();
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->files.at("a.yaml"), "a\n");
  std::string sha2 = repo.Commit({{"a.yaml", "b\n"}});
  auto second = source->Fetch();
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->revision, "main@sha1:" + sha2);
}

// https with a private CA: refused (kUnavailable, with a hint) while only
// the system CAs are trusted; fetched once ca_file names the CA. Runs the TLS
// stream over GitSource's timeout socket stream.
TEST_F(GitSourceTest, HttpsWithPrivateCa) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  std::string sha = repo.Commit({{"a.yaml", "tls\n"}});
  HttpGitServer https(tmp_.path(), /*tls=*/true);
  const std::string url = https.Url("cluster.git");
  ASSERT_TRUE(url.starts_with("https://"));

  auto untrusted = MakeSource(Opts(url, "main"))->Fetch();
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(untrusted.error().message, HasSubstr(url));
  EXPECT_THAT(untrusted.error().message, HasSubstr("certificate"));
  EXPECT_THAT(untrusted.error().message, HasSubstr("needs ca_file"));

  GitSourceOptions trusted = Opts(url, "main");
  trusted.ca_file = https.ca_file();
  auto ok = MakeSource(trusted)->Fetch();
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->revision, "main@sha1:" + sha);
  // Restore the system bundle for the rest of the process.
  git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, "/etc/ssl/certs/ca-certificates.crt", nullptr);

  GitSourceOptions bad_ca = Opts(url, "main");
  bad_ca.ca_file = tmp_ / "missing-ca.pem";
  bad_ca.state_dir = tmp_ / "state";
  auto refused = GitSource::Create(bad_ca);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalid);
  EXPECT_THAT(refused.error().message,
              HasSubstr("git ca_file " + (tmp_ / "missing-ca.pem").string() + " is not readable"));
}

// HTTP basic auth: no credentials, a wrong password, an unreadable file are
// kUnauthorized naming the URL and the credential file, never the password;
// the right basic-auth file or token file works.
TEST_F(GitSourceTest, HttpBasicAuth) {
  ClusterRepo repo(tmp_.path(), "private.git");
  std::string sha = repo.Commit({{"secret-cluster.yaml", "x\n"}});
  HttpGitServer http(tmp_.path());
  const std::string url = http.Url("private.git");
  LogCapture logs;

  auto none = MakeSource(Opts(url))->Fetch();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(none.error().message, HasSubstr(url));
  EXPECT_THAT(none.error().message, HasSubstr("none are configured"));

  const std::string wrong_password = "wrong-password-1234";
  fs::path wrong_file = tmp_ / "creds" / "wrong";
  WriteFile(wrong_file, "alice:" + wrong_password + "\n");
  GitSourceOptions wrong = Opts(url);
  wrong.credentials.basic_auth_file = wrong_file;
  auto refused = MakeSource(wrong)->Fetch();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(refused.error().message, HasSubstr(url));
  EXPECT_THAT(refused.error().message, HasSubstr(wrong_file.string()));
  EXPECT_THAT(refused.error().message, Not(HasSubstr(wrong_password)));

  GitSourceOptions unreadable = Opts(url);
  unreadable.credentials.token_file = tmp_ / "creds" / "missing-token";
  auto missing = MakeSource(unreadable)->Fetch();
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(missing.error().message,
              HasSubstr("cannot read token file " + (tmp_ / "creds" / "missing-token").string()));

  fs::path malformed_file = tmp_ / "creds" / "malformed";
  WriteFile(malformed_file, "just-a-password-5678\n");
  GitSourceOptions malformed = Opts(url);
  malformed.credentials.basic_auth_file = malformed_file;
  auto bad_format = MakeSource(malformed)->Fetch();
  ASSERT_FALSE(bad_format);
  EXPECT_EQ(bad_format.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(bad_format.error().message,
              HasSubstr("basic auth file " + malformed_file.string() +
                        " must hold \"username:password\" on one line"));
  EXPECT_THAT(bad_format.error().message, Not(HasSubstr("just-a-password-5678")));

  fs::path right_file = tmp_ / "creds" / "right";
  WriteFile(right_file, std::string("alice:") + HttpGitServer::kPassword + "\n");
  GitSourceOptions right = Opts(url);
  right.credentials.basic_auth_file = right_file;
  auto ok = MakeSource(right)->Fetch();
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->commit, sha);

  fs::path token_file = tmp_ / "creds" / "token";
  WriteFile(token_file, std::string(HttpGitServer::kPassword) + "\n");
  GitSourceOptions token = Opts(url);
  token.credentials.token_file = token_file;
  token.credentials.username = "alice";
  auto with_token = MakeSource(token)->Fetch();
  ASSERT_TRUE(with_token) << with_token.error().message;

  EXPECT_THAT(logs.Text(), Not(HasSubstr(wrong_password)));
  EXPECT_THAT(logs.Text(), Not(HasSubstr(HttpGitServer::kPassword)));
}

// sshd on 127.0.0.1 accepting the key in <root>/ssh/client for the current
// user; its ed25519 host key is <root>/ssh/hostkey. Skips (with a reason)
// when sshd is not installed or cannot run here.
class SshServer {
 public:
  explicit SshServer(const fs::path& root) : dir_(root / "ssh"), port_(testutil::FreePort()) {
    fs::create_directories(dir_);
    for (const char* name : {"hostkey", "client", "stranger"}) {
      auto r = testutil::Run(
          {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir_ / name).string()});
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
    fs::copy_file(dir_ / "client.pub", dir_ / "authorized_keys");
    fs::permissions(dir_ / "authorized_keys", fs::perms::owner_read | fs::perms::owner_write);
    WriteFile(dir_ / "sshd_config",
              "Port " + std::to_string(port_) + "\nListenAddress 127.0.0.1\nHostKey " +
                  (dir_ / "hostkey").string() + "\nAuthorizedKeysFile " +
                  (dir_ / "authorized_keys").string() +
                  "\nPidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n"
                  "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n");
  }
  // Returns an empty string when running, else why not.
  std::string Start() {
    if (!fs::exists("/usr/sbin/sshd")) {
      return "/usr/sbin/sshd is not installed (Debian package openssh-server)";
    }
    std::error_code ec;
    if (!fs::exists("/run/sshd") && !fs::create_directories("/run/sshd", ec)) {
      return "sshd needs /run/sshd and it cannot be created: " + ec.message();
    }
    process_ = std::make_unique<Process>(std::vector<std::string>{
        "/usr/sbin/sshd", "-D", "-e", "-f", (dir_ / "sshd_config").string()});
    if (!WaitFor([&] { return Accepts(port_); }, 5s)) {
      return "sshd did not start: " + process_->Output();
    }
    return "";
  }
  // A known_hosts line for this server with the public key in `pub_file`.
  std::string KnownHostsLine(const std::string& pub_file) const {
    std::stringstream fields(testutil::ReadFile(dir_ / pub_file));
    std::string type, key;
    fields >> type >> key;
    return "[127.0.0.1]:" + std::to_string(port_) + " " + type + " " + key + "\n";
  }
  std::string Url(const fs::path& bare) const {
    return "ssh://" + User() + "@127.0.0.1:" + std::to_string(port_) + bare.string();
  }
  static std::string User() {
    auto r = testutil::Run({"id", "-un"});
    while (!r.output.empty() && r.output.back() == '\n') {
      r.output.pop_back();
    }
    return r.output;
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  int port_;
  std::unique_ptr<Process> process_;
};

// ssh with a private key file, the host key checked against a known_hosts
// file: success; a changed host key, an unknown host and a refused client key
// are kUnauthorized naming the file involved.
TEST_F(GitSourceTest, SshWithKeyAndKnownHosts) {
  ClusterRepo repo(tmp_.path(), "cluster.git");
  std::string sha = repo.Commit({{"a.yaml", "over ssh\n"}});
  SshServer sshd(tmp_.path());
  if (std::string why = sshd.Start(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  const std::string url = sshd.Url(repo.bare());
  auto options_with = [&](const std::string& key, const std::string& known_hosts_line) {
    fs::path known_hosts = tmp_ / "creds" / ("known_hosts-" + key);
    WriteFile(known_hosts, known_hosts_line);
    GitSourceOptions options = Opts(url, "main");
    options.credentials.ssh_key_file = sshd.dir() / key;
    options.credentials.ssh_known_hosts_file = known_hosts;
    return options;
  };

  auto ok = MakeSource(options_with("client", sshd.KnownHostsLine("hostkey.pub")))->Fetch();
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->revision, "main@sha1:" + sha);
  EXPECT_EQ(ok->files.at("a.yaml"), "over ssh\n");

  GitSourceOptions changed = options_with("client", sshd.KnownHostsLine("stranger.pub"));
  auto mitm = MakeSource(changed)->Fetch();
  ASSERT_FALSE(mitm);
  EXPECT_EQ(mitm.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(mitm.error().message,
              HasSubstr("ssh host key of 127.0.0.1 does not match known_hosts file " +
                        changed.credentials.ssh_known_hosts_file.string()));

  auto unknown =
      MakeSource(
          options_with("client", "other.example.com " +
                                     sshd.KnownHostsLine("hostkey.pub")
                                         .substr(sshd.KnownHostsLine("hostkey.pub").find(' ') + 1)))
          ->Fetch();
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(unknown.error().message, HasSubstr("ssh host 127.0.0.1 is not in known_hosts file"));

  GitSourceOptions no_key = options_with("client", sshd.KnownHostsLine("hostkey.pub"));
  no_key.credentials.ssh_key_file = tmp_ / "creds" / "no-such-key";
  auto unreadable = MakeSource(no_key)->Fetch();
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(unreadable.error().message,
              HasSubstr("cannot read ssh key file " + no_key.credentials.ssh_key_file.string()));

  GitSourceOptions keyless = options_with("client", sshd.KnownHostsLine("hostkey.pub"));
  keyless.credentials.ssh_key_file.clear();
  auto anonymous = MakeSource(keyless)->Fetch();
  ASSERT_FALSE(anonymous);
  EXPECT_EQ(anonymous.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(anonymous.error().message, HasSubstr("requires credentials and none are configured"));

  auto refused = MakeSource(options_with("stranger", sshd.KnownHostsLine("hostkey.pub")))->Fetch();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthorized);
  EXPECT_THAT(refused.error().message, HasSubstr(url));
  EXPECT_THAT(refused.error().message,
              HasSubstr("credentials from ssh key file " + (sshd.dir() / "stranger").string() +
                        " were refused"));
}

// Bad options are refused at creation with the field and value named.
TEST_F(GitSourceTest, CreateRejectsBadOptions) {
  struct Case {
    GitSourceOptions options;
    std::string want;
  };
  fs::path state = tmp_ / "state";
  std::vector<Case> cases;
  cases.push_back({WithState(Opts(""), state), "git url is empty"});
  cases.push_back(
      {WithState(Opts("ftp://host/repo.git"), state), "\"ftp://host/repo.git\" is not supported"});
  cases.push_back({WithState(Opts("https://bob:hunter2@host/repo.git"), state),
                   "\"https://bob:REDACTED@host/repo.git\" carries a password"});
  cases.push_back(
      {WithState(Opts("file:///r.git", "bad..ref"), state), "git ref \"bad..ref\" is not a valid"});
  cases.push_back({Opts("file:///r.git"), "state_dir is empty"});
  cases.push_back(
      {WithState(Opts("ssh://git@host/r.git"), state), "a known_hosts file is required"});
  GitSourceOptions token_on_git = WithState(Opts("git://host/r.git"), state);
  token_on_git.credentials.token_file = "/etc/token";
  cases.push_back({token_on_git, "apply to http(s) URLs, not \"git://host/r.git\""});
  GitSourceOptions key_on_http = WithState(Opts("https://host/r.git"), state);
  key_on_http.credentials.ssh_key_file = "/etc/key";
  cases.push_back({key_on_http, "an ssh key applies to ssh URLs"});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.options.url);
    auto result = GitSource::Create(c.options);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::kInvalid);
    EXPECT_THAT(result.error().message, HasSubstr(c.want));
    EXPECT_THAT(result.error().message, Not(HasSubstr("hunter2")));
  }
}

// known_hosts lookup: plain names, [host]:port, hashed entries (made by
// ssh-keygen -H), a changed key, a revoked key, an unknown host.
TEST(KnownHostsTest, MatchesPlainHashedAndPortEntries) {
  TempDir tmp;
  auto keygen = [&](const std::string& name) {
    auto r =
        testutil::Run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (tmp / name).string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::string pub = testutil::ReadFile(tmp / (name + ".pub"));
    std::stringstream fields(pub);
    std::string type, b64;
    fields >> type >> b64;
    return std::pair{type + " " + b64, b64};
  };
  auto [line_a, b64_a] = keygen("a");
  auto [line_b, b64_b] = keygen("b");
  auto blob = [](const std::string& b64) {
    std::string out(b64.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(b64.data()),
                            static_cast<int>(b64.size()));
    out.resize(static_cast<size_t>(n) - (b64.ends_with("==") ? 2 : b64.ends_with("=") ? 1 : 0));
    return out;
  };
  std::string key_a = blob(b64_a);
  std::string key_b = blob(b64_b);

  std::string plain = "# comment\ngit.example.com,10.0.0.1 " + line_a + "\n[127.0.0.1]:2222 " +
                      line_b + "\n@revoked old.example.com " + line_b + "\n";
  EXPECT_EQ(CheckKnownHosts(plain, "git.example.com", 22, key_a), KnownHostsResult::kMatch);
  EXPECT_EQ(CheckKnownHosts(plain, "10.0.0.1", 22, key_a), KnownHostsResult::kMatch);
  EXPECT_EQ(CheckKnownHosts(plain, "git.example.com", 22, key_b), KnownHostsResult::kMismatch);
  EXPECT_EQ(CheckKnownHosts(plain, "127.0.0.1", 2222, key_b), KnownHostsResult::kMatch);
  EXPECT_EQ(CheckKnownHosts(plain, "127.0.0.1", 22, key_b), KnownHostsResult::kUnknownHost);
  EXPECT_EQ(CheckKnownHosts(plain, "old.example.com", 22, key_b), KnownHostsResult::kRevoked);
  EXPECT_EQ(CheckKnownHosts(plain, "other.example.com", 22, key_a), KnownHostsResult::kUnknownHost);

  WriteFile(tmp / "known_hosts",
            "git.example.com " + line_a + "\n[127.0.0.1]:2222 " + line_b + "\n");
  auto hashed = testutil::Run({"ssh-keygen", "-H", "-f", (tmp / "known_hosts").string()});
  ASSERT_EQ(hashed.exit_code, 0) << hashed.output;
  std::string text = testutil::ReadFile(tmp / "known_hosts");
  ASSERT_THAT(text, HasSubstr("|1|"));
  ASSERT_THAT(text, Not(HasSubstr("git.example.com")));
  EXPECT_EQ(CheckKnownHosts(text, "git.example.com", 22, key_a), KnownHostsResult::kMatch);
  EXPECT_EQ(CheckKnownHosts(text, "git.example.com", 22, key_b), KnownHostsResult::kMismatch);
  EXPECT_EQ(CheckKnownHosts(text, "127.0.0.1", 2222, key_b), KnownHostsResult::kMatch);
  EXPECT_EQ(CheckKnownHosts(text, "evil.example.com", 22, key_a), KnownHostsResult::kUnknownHost);
}

// URLs are shown without a password.
TEST(RedactUrlTest, HidesPasswordOnly) {
  EXPECT_EQ(RedactUrl("https://bob:pw@host/r.git"), "https://bob:REDACTED@host/r.git");
  EXPECT_EQ(RedactUrl("https://bob@host/r.git"), "https://bob@host/r.git");
  EXPECT_EQ(RedactUrl("git@host:org/r.git"), "git@host:org/r.git");
  EXPECT_EQ(RedactUrl("file:///srv/a@b:c"), "file:///srv/a@b:c");
}

}  // namespace
}  // namespace ironboot::controller
